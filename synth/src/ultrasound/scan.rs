//! Rendering one colour-Doppler frame: B-mode anatomy with speckle, the
//! nodule as the report describes it (with gross invasion where the case has
//! it), the central-compartment lymph node that carries the image-only
//! feature, a lateral node when one is in view, colour flow, and screen
//! overlays.

use super::record::{Pole, UsCase};
use crate::canvas::{Blob, Canvas, Rgb, mix};
use crate::font::draw_text;
use crate::noise;
use nodal_types::ajcc::Extension;
use rand::Rng;
use rand_distr::StandardNormal;
use std::f32::consts::{PI, TAU};

/// Frame width, pixels.
pub(crate) const WIDTH: usize = 640;
/// Frame height, pixels.
pub(crate) const HEIGHT: usize = 480;
/// The imaged field (x0, y0, x1, y1).
const FIELD: (usize, usize, usize, usize) = (80, 40, 560, 440);
/// Pixels per millimetre of tissue.
pub(crate) const PX_PER_MM: f32 = 6.5;

/// How a site's scanner renders frames.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Machine {
    /// Overall gain.
    gain: f32,
    /// Speckle grain (horizontal, vertical blur radius).
    grain: (usize, usize),
    /// Speckle contrast.
    contrast: f32,
    /// Grey-scale tint.
    tint: Rgb,
    /// Label in the top-left corner.
    name: &'static str,
}

/// The four ultrasound centres' scanners.
pub(crate) const MACHINES: [Machine; 4] = [
    Machine {
        gain: 1.0,
        grain: (2, 1),
        contrast: 0.6,
        tint: [1.0, 1.0, 1.0],
        name: "NODAL US 7",
    },
    Machine {
        gain: 0.92,
        grain: (3, 1),
        contrast: 0.55,
        tint: [1.0, 0.97, 0.9],
        name: "ECHOLINE X",
    },
    Machine {
        gain: 1.08,
        grain: (2, 2),
        contrast: 0.65,
        tint: [0.95, 0.98, 1.0],
        name: "SONOVIEW 5",
    },
    Machine {
        gain: 0.97,
        grain: (1, 1),
        contrast: 0.5,
        tint: [1.0, 1.0, 1.0],
        name: "NODAL US 9",
    },
];

fn gauss(rng: &mut impl Rng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

fn grey(v: f32) -> Rgb {
    [v, v, v]
}

/// Geometry of the nodule in the frame.
struct Nodule {
    blob: Blob,
}

/// Render a frame of the case. `blank` leaves the field without echoes
/// (probe lifted); overlays are drawn either way.
pub(crate) fn render(case: &UsCase, machine: &Machine, blank: bool, rng: &mut impl Rng) -> Canvas {
    // Echo amplitudes (0–1) are painted as grey levels first, then speckled.
    let mut c = Canvas::new(WIDTH, HEIGHT, [0.0; 3]);
    let nodule = place_nodule(case, rng);
    if !blank {
        anatomy(&mut c, case, rng);
        lymph_nodes(&mut c, case, &nodule, rng);
        invasion(&mut c, case, &nodule);
        paint_nodule(&mut c, case, &nodule, rng);
    }
    speckle(&mut c, machine, blank, rng);
    if !blank {
        doppler(&mut c, case, &nodule, rng);
    }
    overlays(&mut c, case, machine, &nodule, rng);
    c
}

fn field_rect() -> (f32, f32, f32, f32) {
    (
        FIELD.0 as f32,
        FIELD.1 as f32,
        FIELD.2 as f32,
        FIELD.3 as f32,
    )
}

/// Thyroid outline for the view (longitudinal lobe or transverse isthmus).
fn thyroid(case: &UsCase) -> Blob {
    let (x0, y0, x1, _) = field_rect();
    let cx = (x0 + x1) / 2.0;
    if case.pole == Pole::Isthmus {
        Blob {
            harmonics: [(2.0, 0.05, 0.3), (0.0, 0.0, 0.0)],
            soft: 2.0,
            ..Blob::ellipse(cx, y0 + 120.0, 230.0, 55.0, 0.0)
        }
    } else {
        Blob {
            harmonics: [(2.0, 0.06, 1.0), (3.0, 0.03, 0.0)],
            soft: 2.0,
            ..Blob::ellipse(cx, y0 + 150.0, 215.0, 90.0, 0.0)
        }
    }
}

fn place_nodule(case: &UsCase, rng: &mut impl Rng) -> Nodule {
    let t = thyroid(case);
    let x = match case.pole {
        Pole::Upper => t.cx - 120.0,
        Pole::Middle | Pole::Isthmus => t.cx,
        Pole::Lower => t.cx + 120.0,
    } + 18.0 * gauss(rng);
    let size = (case.diameter_mm as f32 * PX_PER_MM).min(270.0);
    let aspect = case.aspect_ratio as f32;
    let (w, h) = if aspect > 1.0 {
        (size / aspect, size)
    } else {
        (size, size * aspect)
    };
    let mut y = t.cy + 10.0 * gauss(rng);
    if case.margin == "extrathyroidal" {
        // Breaks through the anterior capsule.
        y = t.cy - t.ry + h * 0.3;
    }
    let harmonics = match case.margin {
        "lobulated" => [
            (
                rng.random_range(3..6) as f32,
                0.12,
                rng.random::<f32>() * TAU,
            ),
            (0.0, 0.0, 0.0),
        ],
        "irregular" | "extrathyroidal" => [
            (
                rng.random_range(7..12) as f32,
                0.09,
                rng.random::<f32>() * TAU,
            ),
            (
                rng.random_range(13..18) as f32,
                0.05,
                rng.random::<f32>() * TAU,
            ),
        ],
        _ => [(2.0, 0.02, rng.random::<f32>() * TAU), (0.0, 0.0, 0.0)],
    };
    let soft = if case.margin == "ill-defined" {
        12.0
    } else {
        1.5
    };
    Nodule {
        blob: Blob {
            cx: x,
            cy: y,
            rx: w / 2.0,
            ry: h / 2.0,
            angle: 0.05 * gauss(rng),
            harmonics,
            soft,
        },
    }
}

fn anatomy(c: &mut Canvas, case: &UsCase, rng: &mut impl Rng) {
    let (x0, y0, x1, y1) = FIELD;
    let seed: u64 = rng.random();
    let y0f = y0 as f32;
    for y in y0..y1 {
        let d = y as f32 - y0f;
        for x in x0..x1 {
            let fib = noise::value(seed, x as f32 / 40.0, y as f32 / 3.0);
            let v = if d < 9.0 {
                0.85
            } else if d < 34.0 {
                0.32 + 0.25 * (fib - 0.5)
            } else if d < 37.0 {
                0.7
            } else if d < 76.0 {
                0.26 + 0.3 * (fib - 0.5)
            } else {
                0.3 + 0.2 * (fib - 0.5)
            };
            *c.at(x, y) = grey(v);
        }
    }
    let t = thyroid(case);
    let level = if case.hashimoto { 0.42 } else { 0.6 };
    let patch_seed: u64 = rng.random();
    let hashimoto = case.hashimoto;
    c.paint_blob(&t, |px, bp| {
        let mut v = level;
        if hashimoto {
            // Heterogeneous parenchyma with hypoechoic micronodules.
            let n = noise::value(patch_seed, bp.x as f32 / 14.0, bp.y as f32 / 14.0);
            v *= if n < 0.35 { 0.55 } else { 1.0 };
        }
        if bp.r > 0.96 {
            v = 0.8;
        }
        *px = mix(*px, grey(v), bp.coverage);
    });
    // Deep structures: carotid (long axis) for lobe views, trachea for the isthmus.
    let cx = (x0 + x1) as f32 / 2.0;
    if case.pole == Pole::Isthmus {
        let (ty, r) = (t.cy + t.ry + 60.0, 70.0);
        c.paint_blob(&Blob::ellipse(cx, ty, r, r * 0.6, 0.0), |px, bp| {
            let v = if bp.r > 0.9 && bp.v < 0.0 { 0.95 } else { 0.05 };
            *px = mix(*px, grey(v), bp.coverage);
        });
        for k in 1..4 {
            let y = ty + k as f32 * 28.0;
            c.line(
                (cx - 40.0, y),
                (cx + 40.0, y),
                3.0,
                grey(0.5 / k as f32),
                0.8,
            );
        }
    } else {
        let vy = y0 as f32 + 345.0;
        c.line(
            (x0 as f32, vy),
            (x1 as f32, vy + 10.0),
            44.0,
            grey(0.75),
            1.0,
        );
        c.line(
            (x0 as f32, vy),
            (x1 as f32, vy + 10.0),
            36.0,
            grey(0.03),
            1.0,
        );
    }
    // Depth attenuation.
    c.for_each(|_, y, px| {
        if y >= y0 && y < y1 {
            let f = 1.0 - 0.35 * (y - y0) as f32 / (y1 - y0) as f32;
            *px = [px[0] * f, px[1] * f, px[2] * f];
        }
    });
}

fn echo_level(echogenicity: &str) -> f32 {
    match echogenicity {
        "anechoic" => 0.03,
        "very-hypoechoic" => 0.13,
        "hypoechoic" => 0.3,
        "isoechoic" => 0.56,
        _ => 0.8,
    }
}

fn paint_nodule(c: &mut Canvas, case: &UsCase, nodule: &Nodule, rng: &mut impl Rng) {
    let b = nodule.blob;
    let level = echo_level(case.echogenicity);
    let cysts: Vec<(f32, f32, f32)> = if case.composition == "mixed" {
        (0..rng.random_range(2..5))
            .map(|_| {
                (
                    rng.random_range(-0.5..0.5),
                    rng.random_range(-0.5..0.5),
                    rng.random_range(0.2..0.4),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let seed: u64 = rng.random();
    c.paint_blob(&b, |px, bp| {
        let mut v = level * (0.85 + 0.3 * noise::value(seed, bp.x as f32 / 6.0, bp.y as f32 / 6.0));
        if cysts
            .iter()
            .any(|&(u, w, r)| ((bp.u - u).powi(2) + (bp.v - w).powi(2)).sqrt() < r)
        {
            v = 0.03;
        }
        *px = mix(*px, grey(v), bp.coverage);
    });
    let (_, _, _, y1) = field_rect();
    let below = |c: &mut Canvas, x0: f32, x1: f32, from: f32, factor: f32| {
        for y in from.max(0.0) as usize..y1 as usize {
            for x in x0.max(0.0) as usize..(x1.max(0.0) as usize).min(WIDTH) {
                let p = c.at(x, y);
                *p = [p[0] * factor, p[1] * factor, p[2] * factor];
            }
        }
    };
    if case.composition == "cystic" {
        // Posterior acoustic enhancement.
        below(c, b.cx - b.rx * 0.7, b.cx + b.rx * 0.7, b.cy + b.ry, 1.35);
    }
    if case.margin == "extrathyroidal" {
        // The capsule line is interrupted where the tumour breaks through.
        let t = thyroid(case);
        c.line(
            (b.cx - b.rx, t.cy - t.ry),
            (b.cx + b.rx, t.cy - t.ry),
            6.0,
            grey(level),
            0.9,
        );
    }
    match case.calcification {
        "microcalcification" => {
            let n = 8 + (case.diameter_mm / 2.0) as usize;
            for _ in 0..n {
                let (a, r) = (rng.random::<f32>() * TAU, 0.8 * rng.random::<f32>().sqrt());
                let (x, y) = (b.cx + a.cos() * r * b.rx, b.cy + a.sin() * r * b.ry);
                c.fill_blob(
                    &Blob::circle(x, y, rng.random_range(1.1..2.0)),
                    grey(1.0),
                    1.0,
                );
            }
        }
        "macrocalcification" => {
            for _ in 0..rng.random_range(1..3) {
                let (x, y) = (
                    b.cx + b.rx * 0.5 * gauss(rng).clamp(-1.0, 1.0),
                    b.cy + b.ry * 0.3 * gauss(rng).clamp(-1.0, 1.0),
                );
                let r = rng.random_range(6.0..12.0);
                c.fill_blob(
                    &Blob::ellipse(x, y, r, r * 0.5, 0.3 * gauss(rng)),
                    grey(1.0),
                    1.0,
                );
                below(c, x - r * 0.8, x + r * 0.8, y + r * 0.5, 0.25);
            }
        }
        "rim" => {
            let steps = 40;
            let start = PI + rng.random_range(-0.5..0.5);
            for k in 0..steps {
                let a0 = start + k as f32 * PI / steps as f32;
                let a1 = a0 + PI / steps as f32;
                c.line(
                    (b.cx + a0.cos() * b.rx, b.cy + a0.sin() * b.ry),
                    (b.cx + a1.cos() * b.rx, b.cy + a1.sin() * b.ry),
                    4.0,
                    grey(1.0),
                    1.0,
                );
            }
            below(c, b.cx - b.rx * 0.8, b.cx + b.rx * 0.8, b.cy, 0.4);
        }
        _ => {}
    }
}

/// The central-compartment lymph node whose look follows the case's latent
/// feature, drawn below the thyroid on the side away from the nodule; and,
/// when the case has one in view, a lateral-compartment node near the
/// nodule's side (abnormal in most N1b frames).
fn lymph_nodes(c: &mut Canvas, case: &UsCase, nodule: &Nodule, rng: &mut impl Rng) {
    let (x0, _, x1, y1) = field_rect();
    let nodule_right = nodule.blob.cx > (x0 + x1) / 2.0;
    let (near, far) = if nodule_right {
        (x1 - 85.0, x0 + 85.0)
    } else {
        (x0 + 85.0, x1 - 85.0)
    };
    let s = 1.0 / (1.0 + (-1.3 * case.latent as f32).exp());
    lymph_node(c, (far, y1 - 115.0 + 8.0 * gauss(rng)), s, rng);
    if let Some(abnormal) = case.lateral_node {
        let s = if abnormal {
            0.75 + 0.2 * rng.random::<f32>()
        } else {
            0.15 * rng.random::<f32>()
        };
        lymph_node(c, (near, y1 - 50.0 + 6.0 * gauss(rng)), s, rng);
    }
}

/// One lymph node at `(cx, cy)` whose abnormality `s` (0–1) makes it
/// larger, rounder, brighter, its hilum lost, with cystic change and bright
/// flecks.
fn lymph_node(c: &mut Canvas, (cx, cy): (f32, f32), s: f32, rng: &mut impl Rng) {
    let long = 34.0 + 28.0 * s;
    let short = long * (0.42 + 0.52 * s);
    let blob = Blob {
        soft: 2.0,
        ..Blob::ellipse(cx, cy, long, short, 0.15 * gauss(rng))
    };
    let cortex = 0.2 + 0.55 * s;
    let hilum = 1.0 - s;
    let cyst = (s > 0.6).then(|| {
        (
            rng.random_range(-0.3..0.3f32),
            rng.random_range(-0.2..0.2f32),
            0.25 + 0.2 * (s - 0.6),
        )
    });
    c.paint_blob(&blob, |px, bp| {
        let mut v = cortex;
        if bp.v.abs() < 0.22 && bp.u.abs() < 0.7 {
            v = v + (0.9 - v) * hilum;
        }
        if let Some((u, w, r)) = cyst
            && ((bp.u - u).powi(2) + (bp.v - w).powi(2)).sqrt() < r
        {
            v = 0.04;
        }
        *px = mix(*px, grey(v.min(1.0)), bp.coverage);
    });
    let flecks = ((s - 0.5).max(0.0) * 24.0) as usize;
    for _ in 0..flecks {
        let (a, r) = (rng.random::<f32>() * TAU, 0.75 * rng.random::<f32>().sqrt());
        c.fill_blob(
            &Blob::circle(cx + a.cos() * r * long, cy + a.sin() * r * short, 1.5),
            grey(1.0),
            1.0,
        );
    }
}

/// Gross invasion beyond the strap muscles: a tongue of tumour from the
/// nodule's deep edge towards the deep structures (short for visceral
/// invasion, reaching and cuffing the vessel for vascular invasion).
fn invasion(c: &mut Canvas, case: &UsCase, nodule: &Nodule) {
    let b = nodule.blob;
    let (_, y0, _, _) = field_rect();
    let level = grey(echo_level(case.echogenicity));
    let from = (b.cx, b.cy + b.ry * 0.8);
    match case.extension {
        Extension::Visceral => {
            c.line(
                from,
                (b.cx + 25.0, from.1 + 70.0),
                b.rx.max(14.0) * 0.6,
                level,
                0.95,
            );
        }
        Extension::Vascular => {
            let vessel_y = y0 + 345.0;
            c.line(
                from,
                (b.cx + 10.0, vessel_y),
                b.rx.max(14.0) * 0.7,
                level,
                0.95,
            );
            c.line(
                (b.cx - 70.0, vessel_y - 26.0),
                (b.cx + 70.0, vessel_y - 24.0),
                14.0,
                level,
                0.95,
            );
        }
        Extension::None | Extension::StrapMuscles => {}
    }
}

/// Multiplicative speckle over the field, then log-like compression to grey levels.
fn speckle(c: &mut Canvas, m: &Machine, blank: bool, rng: &mut impl Rng) {
    let (x0, y0, x1, y1) = FIELD;
    let seed: u64 = rng.random();
    let mut sp = Canvas::new(x1 - x0, y1 - y0, [0.0; 3]);
    sp.for_each(|x, y, px| {
        let u = noise::hash2(seed, x as i64, y as i64).max(1e-6);
        let r = (-2.0 * u.ln()).sqrt();
        *px = [r, r, r];
    });
    sp.box_blur(m.grain.0, m.grain.1);
    let mean = 1.2533;
    for y in y0..y1 {
        for x in x0..x1 {
            let s = sp.get(x - x0, y - y0)[0] / mean;
            let echo = if blank { 0.02 } else { c.get(x, y)[0] };
            let v = (echo * (1.0 - m.contrast + m.contrast * s)).max(0.0);
            let g = 255.0 * m.gain * v.powf(0.85);
            *c.at(x, y) = [g * m.tint[0], g * m.tint[1], g * m.tint[2]];
        }
    }
}

/// Colour of flow at intensity `t` (0–1), towards (red) or away (blue).
fn flow_colour(t: f32, towards: bool) -> Rgb {
    if towards {
        mix([170.0, 10.0, 10.0], [255.0, 215.0, 70.0], t)
    } else {
        mix([10.0, 40.0, 170.0], [90.0, 220.0, 255.0], t)
    }
}

/// A vessel as a polyline of coloured segments.
fn vessel(c: &mut Canvas, points: &[(f32, f32)], width: f32, towards: bool) {
    let n = points.len().max(2) - 1;
    for (k, seg) in points.windows(2).enumerate() {
        let t = 1.0 - (k as f32 / n as f32 - 0.5).abs() * 1.6;
        c.line(
            seg[0],
            seg[1],
            width,
            flow_colour(t.clamp(0.0, 1.0), towards),
            1.0,
        );
    }
}

fn doppler(c: &mut Canvas, case: &UsCase, nodule: &Nodule, rng: &mut impl Rng) {
    let b = nodule.blob;
    let (fx0, fy0, fx1, fy1) = field_rect();
    let bx0 = (b.cx - b.rx - 35.0).max(fx0);
    let bx1 = (b.cx + b.rx + 35.0).min(fx1 - 1.0);
    let by0 = (b.cy - b.ry - 30.0).max(fy0);
    let by1 = (b.cy + b.ry + 30.0).min(fy1 - 1.0);
    let peripheral = matches!(case.vascularity, "peripheral" | "mixed");
    let central = matches!(case.vascularity, "central" | "mixed");
    if peripheral {
        for _ in 0..rng.random_range(3..7) {
            let start = rng.random::<f32>() * TAU;
            let span = rng.random_range(0.5..1.2);
            let rr = rng.random_range(1.05..1.15);
            let pts: Vec<(f32, f32)> = (0..=8)
                .map(|k| {
                    let a = start + span * k as f32 / 8.0;
                    (b.cx + a.cos() * b.rx * rr, b.cy + a.sin() * b.ry * rr)
                })
                .collect();
            vessel(c, &pts, rng.random_range(3.0..5.0), rng.random_bool(0.6));
        }
    }
    if central {
        for _ in 0..rng.random_range(2..6) {
            let a = rng.random::<f32>() * TAU;
            let mut p = (b.cx + a.cos() * b.rx, b.cy + a.sin() * b.ry);
            let mut pts = vec![p];
            let mut dir = (a + PI) + 0.3 * gauss(rng);
            let step = (b.rx.min(b.ry) / 5.0).max(3.0);
            for _ in 0..6 {
                p = (p.0 + dir.cos() * step, p.1 + dir.sin() * step);
                pts.push(p);
                dir += 0.35 * gauss(rng);
            }
            vessel(c, &pts, rng.random_range(2.5..4.5), rng.random_bool(0.6));
        }
    }
    if case.vascularity == "none" {
        for _ in 0..rng.random_range(0..3) {
            let (x, y) = (rng.random_range(bx0..bx1), rng.random_range(by0..by1));
            c.fill_blob(&Blob::circle(x, y, 1.5), flow_colour(0.5, true), 1.0);
        }
    }
    // The colour box outline, dotted.
    let mut dot = |x: f32, y: f32| c.blend(x as i64, y as i64, [200.0; 3], 0.9);
    let mut x = bx0;
    while x <= bx1 {
        dot(x, by0);
        dot(x, by1);
        x += 4.0;
    }
    let mut y = by0;
    while y <= by1 {
        dot(bx0, y);
        dot(bx1, y);
        y += 4.0;
    }
}

fn overlays(c: &mut Canvas, case: &UsCase, m: &Machine, nodule: &Nodule, rng: &mut impl Rng) {
    let white = [225.0, 225.0, 225.0];
    let (fx0, fy0, fx1, fy1) = FIELD;
    draw_text(c, 8, 8, m.name, 1, white);
    draw_text(c, 8, 20, "L12-5  THYROID", 1, white);
    draw_text(c, 440, 8, &case.exam_date, 1, white);
    let gain = rng.random_range(40..60);
    draw_text(c, 8, 60, &format!("GN {gain}"), 1, white);
    draw_text(c, 8, 72, "FR 18HZ", 1, white);
    draw_text(c, 8, 84, "CF 62%", 1, white);
    draw_text(c, 8, 96, "PRF 1.2K", 1, white);
    draw_text(c, 8, 108, "MI 0.9", 1, white);
    // Depth scale: a tick every centimetre.
    let cm = (10.0 * PX_PER_MM) as usize;
    let mut k = 0;
    while fy0 + k * cm < fy1 {
        let y = (fy0 + k * cm) as f32;
        c.line(
            (fx1 as f32 + 4.0, y),
            (fx1 as f32 + 12.0, y),
            2.0,
            white,
            1.0,
        );
        draw_text(c, fx1 as i64 + 16, y as i64 - 3, &k.to_string(), 1, white);
        k += 1;
    }
    // Colour bar.
    for i in 0..120 {
        let t = i as f32 / 119.0;
        let col = if t < 0.5 {
            flow_colour(1.0 - 2.0 * t, true)
        } else {
            flow_colour(2.0 * t - 1.0, false)
        };
        c.line(
            (604.0, 150.0 + i as f32),
            (614.0, 150.0 + i as f32),
            1.0,
            col,
            1.0,
        );
    }
    draw_text(c, 596, 138, "+9.6", 1, white);
    draw_text(c, 596, 276, "-9.6", 1, white);
    // Body mark and caliper measurement.
    let view = match case.side {
        Some("left") => "LT LONG",
        Some(_) => "RT LONG",
        None => "ISTHMUS TR",
    };
    draw_text(c, 8, 452, view, 2, white);
    let b = nodule.blob;
    for (x, y) in [(b.cx - b.rx, b.cy), (b.cx + b.rx, b.cy)] {
        c.line((x - 4.0, y), (x + 4.0, y), 1.5, [240.0, 240.0, 120.0], 1.0);
        c.line((x, y - 4.0), (x, y + 4.0), 1.5, [240.0, 240.0, 120.0], 1.0);
    }
    draw_text(
        c,
        fx0 as i64 + 250,
        452,
        &format!("D1 {:.1}MM", case.diameter_mm),
        1,
        white,
    );
}
