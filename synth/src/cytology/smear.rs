//! Rendering one smear image: glass, background elements (blood,
//! lymphocytes, necrosis, mucin, colloid), then clusters of tumour cells.

use super::cells::{self, Cell};
use super::morph::{ARRANGEMENTS, Arrangement, Profile, Trait};
use super::record::weighted;
use super::stain::Palette;
use crate::canvas::{Blob, Canvas, mix, scale};
use crate::noise;
use rand::Rng;
use std::f32::consts::TAU;

/// Smear image width, pixels.
pub(crate) const WIDTH: usize = 1024;
/// Smear image height, pixels.
pub(crate) const HEIGHT: usize = 768;

/// Paint a normal smear of the profile onto a fresh canvas.
pub(crate) fn render(p: &Profile, pal: &Palette, rng: &mut impl Rng) -> Canvas {
    let mut c = glass(pal, rng);
    background(&mut c, p, pal, rng);
    let weights: Vec<f64> = p.arrangement.iter().map(|&w| f64::from(w)).collect();
    let clusters = rng.random_range(8..=14);
    for _ in 0..clusters {
        let arrangement = ARRANGEMENTS[weighted(rng, &weights)];
        let (cx, cy) = (
            rng.random_range(60.0..WIDTH as f32 - 60.0),
            rng.random_range(60.0..HEIGHT as f32 - 60.0),
        );
        let cells = cells::cluster(p, arrangement, rng, cx, cy);
        draw_cluster(&mut c, p, pal, rng, arrangement, &cells, (cx, cy));
    }
    c
}

/// An almost empty slide: glass, a few red cells, perhaps a lymphocyte.
pub(crate) fn render_blank(pal: &Palette, rng: &mut impl Rng) -> Canvas {
    let mut c = glass(pal, rng);
    for _ in 0..rng.random_range(3..15) {
        erythrocyte(&mut c, pal, rng);
    }
    c
}

fn glass(pal: &Palette, rng: &mut impl Rng) -> Canvas {
    // Uneven illumination: a smooth separable ±3 % variation.
    let mut c = Canvas::new(WIDTH, HEIGHT, pal.glass);
    let seed: u64 = rng.random();
    let cols: Vec<f32> = (0..WIDTH)
        .map(|x| noise::value(seed, x as f32 / 170.0, 0.5) - 0.5)
        .collect();
    let rows: Vec<f32> = (0..HEIGHT)
        .map(|y| noise::value(seed ^ 1, y as f32 / 170.0, 0.5) - 0.5)
        .collect();
    c.for_each(|x, y, px| *px = scale(*px, 1.0 + 0.03 * (cols[x] + rows[y])));
    c
}

fn random_point(rng: &mut impl Rng) -> (f32, f32) {
    (
        rng.random_range(0.0..WIDTH as f32),
        rng.random_range(0.0..HEIGHT as f32),
    )
}

fn erythrocyte(c: &mut Canvas, pal: &Palette, rng: &mut impl Rng) {
    let (x, y) = random_point(rng);
    let r = rng.random_range(3.2..4.4);
    let col = pal.erythrocyte;
    c.paint_blob(&Blob::circle(x, y, r), |px, bp| {
        let a = if bp.r < 0.45 { 0.35 } else { 0.7 };
        *px = mix(*px, col, a * bp.coverage);
    });
}

fn background(c: &mut Canvas, p: &Profile, pal: &Palette, rng: &mut impl Rng) {
    for _ in 0..rng.random_range(20..110) {
        erythrocyte(c, pal, rng);
    }
    for _ in 0..(p.get(Trait::Mucin) * 7.0).round() as usize {
        let (x, y) = random_point(rng);
        let blob = irregular(x, y, rng.random_range(50.0..140.0), 0.35, rng);
        let seed: u64 = rng.random();
        let col = pal.mucin;
        c.paint_blob(&blob, |px, bp| {
            let streak = noise::value(seed, bp.x as f32 / 40.0, bp.y as f32 / 9.0);
            *px = mix(*px, col, (0.15 + 0.35 * streak) * bp.coverage);
        });
    }
    for _ in 0..(p.get(Trait::Colloid) * 6.0).round() as usize {
        let (x, y) = random_point(rng);
        let blob = irregular(x, y, rng.random_range(25.0..80.0), 0.2, rng);
        let col = pal.colloid;
        let crack = rng.random::<f32>() * TAU;
        c.paint_blob(&blob, |px, bp| {
            let on_crack = (bp.u * crack.sin() - bp.v * crack.cos()).abs() < 0.04;
            let a = if on_crack { 0.1 } else { 0.6 };
            *px = mix(*px, col, a * bp.coverage);
        });
    }
    for _ in 0..(p.get(Trait::Necrosis) * 45.0).round() as usize {
        let (x, y) = random_point(rng);
        let blob = irregular(x, y, rng.random_range(8.0..30.0), 0.3, rng);
        let seed: u64 = rng.random();
        let col = pal.necrosis;
        c.paint_blob(&blob, |px, bp| {
            let g = noise::hash2(seed, bp.x as i64 / 2, bp.y as i64 / 2);
            let a = if g > 0.6 { 0.75 } else { 0.25 };
            *px = mix(*px, col, a * bp.coverage);
        });
    }
    for _ in 0..(p.get(Trait::Lymphocytes) * 420.0).round() as usize {
        let (x, y) = random_point(rng);
        let r = rng.random_range(3.4..4.6);
        c.fill_blob(&Blob::circle(x, y, r * 1.3), pal.cyto_cyan, 0.35);
        let seed = rng.random_range(0..512u32);
        let col = pal.lymphocyte;
        c.paint_blob(&Blob::circle(x, y, r), |px, bp| {
            let g = 0.85 + 0.3 * noise::texture(bp.x as f32 + seed as f32, bp.y as f32);
            *px = mix(*px, scale(col, g), 0.9 * bp.coverage);
        });
    }
}

/// A blob with a lumpy outline.
fn irregular(x: f32, y: f32, r: f32, lumpiness: f32, rng: &mut impl Rng) -> Blob {
    Blob {
        cx: x,
        cy: y,
        rx: r,
        ry: r * rng.random_range(0.5..1.0),
        angle: rng.random::<f32>() * TAU,
        harmonics: [
            (
                3.0,
                lumpiness * rng.random::<f32>(),
                rng.random::<f32>() * TAU,
            ),
            (
                5.0,
                lumpiness * 0.5 * rng.random::<f32>(),
                rng.random::<f32>() * TAU,
            ),
        ],
        soft: 2.0,
    }
}

fn draw_cluster(
    c: &mut Canvas,
    p: &Profile,
    pal: &Palette,
    rng: &mut impl Rng,
    arrangement: Arrangement,
    cells: &[Cell],
    centre: (f32, f32),
) {
    let keratin = p.get(Trait::Keratin);
    let alpha = p.get(Trait::CytoAlpha);
    if arrangement == Arrangement::Syncytial {
        let reach = cells::syncytium_extent(cells, centre.0, centre.1);
        let blob = irregular(centre.0, centre.1, reach, 0.15, rng);
        let col = mix(pal.cyto_cyan, pal.cyto_keratin, keratin);
        c.fill_blob(&Blob { ry: reach, ..blob }, col, alpha * 0.6);
    }
    for cell in cells.iter().filter(|cell| cell.rx > 0.0) {
        cytoplasm(c, p, pal, rng, cell, keratin, alpha);
    }
    for cell in cells {
        nucleus(c, p, pal, rng, cell);
    }
}

fn cytoplasm(
    c: &mut Canvas,
    p: &Profile,
    pal: &Palette,
    rng: &mut impl Rng,
    cell: &Cell,
    keratin: f32,
    alpha: f32,
) {
    let k = (keratin * rng.random_range(0.75..1.25)).clamp(0.0, 1.0);
    let col = mix(pal.cyto_cyan, pal.cyto_keratin, k);
    let seed: u64 = rng.random();
    let (ox, oy) = (
        rng.random_range(0.0..512.0f32),
        rng.random_range(0.0..512.0f32),
    );
    let pigmented = rng.random_bool(f64::from(p.get(Trait::Pigment)));
    let vacuole = cell.vacuole.then(|| {
        (
            2.0 * cell.x - cell.nx,
            2.0 * cell.y - cell.ny,
            cell.rx.min(cell.ry) * 0.62,
        )
    });
    let blob = Blob {
        cx: cell.x,
        cy: cell.y,
        rx: cell.rx,
        ry: cell.ry,
        angle: cell.angle,
        harmonics: [(4.0, 0.06, rng.random::<f32>() * TAU), (0.0, 0.0, 0.0)],
        soft: 1.5,
    };
    let (glass, pigment) = (pal.glass, pal.pigment);
    c.paint_blob(&blob, |px, bp| {
        let grain = noise::texture(bp.x as f32 * 0.6 + ox, bp.y as f32 * 0.6 + oy);
        let mut a = alpha * (0.75 + 0.3 * grain) * (0.85 + 0.3 * bp.r.powi(4));
        let mut col = col;
        if let Some((vx, vy, vr)) = vacuole {
            let d = ((bp.x as f32 - vx).powi(2) + (bp.y as f32 - vy).powi(2)).sqrt();
            if d < vr {
                a *= 0.3;
                col = mix(col, glass, 0.6);
            }
        }
        if pigmented && noise::hash2(seed ^ 1, bp.x as i64 / 2, bp.y as i64 / 2) > 0.8 {
            col = pigment;
            a = 0.85;
        }
        *px = mix(*px, col, a.min(1.0) * bp.coverage);
    });
}

fn nucleus(c: &mut Canvas, p: &Profile, pal: &Palette, rng: &mut impl Rng, cell: &Cell) {
    let irregular = p.get(Trait::Irregular);
    let blob = Blob {
        cx: cell.nx,
        cy: cell.ny,
        rx: cell.nuc_long,
        ry: cell.nuc_short,
        angle: cell.nuc_angle,
        harmonics: [
            (
                3.0,
                irregular * rng.random::<f32>(),
                rng.random::<f32>() * TAU,
            ),
            (
                rng.random_range(5..8) as f32,
                irregular * 0.6 * rng.random::<f32>(),
                rng.random::<f32>() * TAU,
            ),
        ],
        soft: 1.0,
    };
    let dark = (p.get(Trait::Dark) * rng.random_range(0.85..1.15)).clamp(0.0, 1.0);
    let base = mix(pal.nucleus_pale, pal.nucleus_dark, dark);
    let chromatin = p.get(Trait::Chromatin);
    let grain = 1.2 + 2.8 * chromatin;
    let amp = 0.12 + 0.45 * chromatin;
    let vesicular = p.get(Trait::Vesicular);
    let nucleolus = rng
        .random_bool(f64::from(p.get(Trait::Nucleolus)))
        .then(|| {
            (
                rng.random_range(-0.35..0.35f32),
                rng.random_range(-0.35..0.35f32),
                rng.random_range(0.16..0.26f32),
            )
        });
    let groove = rng.random_bool(f64::from(p.get(Trait::Groove)));
    let inclusion = groove && rng.random_bool(0.3);
    let (ox, oy) = (
        rng.random_range(0.0..512.0f32),
        rng.random_range(0.0..512.0f32),
    );
    let zoom = 1.5 / grain;
    let (pale, darkest, nucleolus_col) = (pal.nucleus_pale, pal.nucleus_dark, pal.nucleolus);
    c.paint_blob(&blob, |px, bp| {
        let n = noise::texture(bp.x as f32 * zoom + ox, bp.y as f32 * zoom + oy);
        let mut col = scale(base, (1.0 - amp * (n - 0.35)).clamp(0.72, 1.2));
        if vesicular > 0.0 {
            if bp.r > 0.72 {
                col = mix(col, darkest, vesicular * 0.7);
            } else {
                col = mix(col, pale, vesicular * (1.0 - bp.r) * 0.8);
            }
        }
        if groove && bp.v.abs() < 0.09 && bp.u.abs() < 0.8 {
            col = mix(col, darkest, 0.6);
        }
        if inclusion && ((bp.u - 0.3).powi(2) + bp.v.powi(2)).sqrt() < 0.28 {
            col = mix(col, pale, 0.75);
        }
        if let Some((nu, nv, nr)) = nucleolus
            && ((bp.u - nu).powi(2) + (bp.v - nv).powi(2)).sqrt() < nr
        {
            col = nucleolus_col;
        }
        *px = mix(*px, col, 0.92 * bp.coverage);
    });
}
