//! Cell placement: each [`Arrangement`] turns a profile into a list of
//! cells (position, size, shape, orientation) around a cluster centre.

use super::morph::{Arrangement, Profile, Trait};
use rand::Rng;
use rand_distr::StandardNormal;
use std::f32::consts::{PI, TAU};

/// One tumour cell to draw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    /// Cell centre, pixels.
    pub x: f32,
    /// Cell centre, pixels.
    pub y: f32,
    /// Cytoplasm semi-axes (0 = no own cytoplasm, as in a syncytium).
    pub rx: f32,
    /// Cytoplasm semi-axes.
    pub ry: f32,
    /// Cytoplasm orientation, radians.
    pub angle: f32,
    /// Nucleus centre, pixels.
    pub nx: f32,
    /// Nucleus centre, pixels.
    pub ny: f32,
    /// Nucleus long semi-axis.
    pub nuc_long: f32,
    /// Nucleus short semi-axis.
    pub nuc_short: f32,
    /// Nucleus orientation, radians.
    pub nuc_angle: f32,
    /// Signet-ring vacuole opposite the nucleus.
    pub vacuole: bool,
}

fn gauss(rng: &mut impl Rng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

/// Nuclear radius of one cell.
fn nucleus_radius(p: &Profile, rng: &mut impl Rng) -> f32 {
    (p.get(Trait::NucR) * (p.get(Trait::Pleo) * gauss(rng)).exp()).clamp(3.0, 30.0)
}

/// A cell at `(x, y)`; `axis` orients an elongated nucleus (random if `None`),
/// `basal` pushes the nucleus towards that direction.
fn cell(
    p: &Profile,
    rng: &mut impl Rng,
    x: f32,
    y: f32,
    axis: Option<f32>,
    basal: Option<f32>,
) -> Cell {
    let nr = nucleus_radius(p, rng);
    let aspect = (p.get(Trait::Aspect) * (0.1 * gauss(rng)).exp()).max(1.0);
    let nuc_long = nr * aspect.sqrt();
    let nuc_short = nr / aspect.sqrt();
    let cr = nr / p.get(Trait::Nc);
    let angle = rng.random::<f32>() * TAU;
    let nuc_angle = axis.unwrap_or_else(|| rng.random::<f32>() * TAU);
    let vacuole = rng.random_bool(f64::from(p.get(Trait::Vacuole)));
    let (dir, off) = match (vacuole, basal) {
        (true, _) => (rng.random::<f32>() * TAU, cr * 0.55),
        (false, Some(b)) => (b, cr * 0.3),
        (false, None) => (rng.random::<f32>() * TAU, cr * 0.15 * rng.random::<f32>()),
    };
    let (nuc_long, nuc_short, nuc_angle) = if vacuole {
        (nr * 1.25, nr * 0.6, dir + PI / 2.0)
    } else {
        (nuc_long, nuc_short, nuc_angle)
    };
    Cell {
        x,
        y,
        rx: cr * (1.0 + 0.12 * gauss(rng)).max(0.7),
        ry: cr * (1.0 + 0.12 * gauss(rng)).max(0.7),
        angle,
        nx: x + dir.cos() * off,
        ny: y + dir.sin() * off,
        nuc_long,
        nuc_short,
        nuc_angle,
        vacuole,
    }
}

/// Typical cell radius of the profile.
pub(crate) fn cell_radius(p: &Profile) -> f32 {
    p.get(Trait::NucR) / p.get(Trait::Nc)
}

/// Cells of one cluster of the given arrangement around `(cx, cy)`.
pub(crate) fn cluster(
    p: &Profile,
    arrangement: Arrangement,
    rng: &mut impl Rng,
    cx: f32,
    cy: f32,
) -> Vec<Cell> {
    let n =
        ((1.4 * p.get(Trait::Cells) * (0.45 * gauss(rng)).exp()).round() as usize).clamp(3, 120);
    let cr = cell_radius(p);
    match arrangement {
        Arrangement::Sheet => sheet(p, rng, cx, cy, n, cr),
        Arrangement::Acinar => acinar(p, rng, cx, cy, n, cr),
        Arrangement::Papillary => papillary(p, rng, cx, cy, n, cr),
        Arrangement::Dispersed => dispersed(p, rng, cx, cy, n, cr),
        Arrangement::Palisade => palisade(p, rng, cx, cy, n, cr),
        Arrangement::Chain => chain(p, rng, cx, cy, n),
        Arrangement::Syncytial => syncytium(p, rng, cx, cy, n, cr),
    }
}

fn sheet(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize, cr: f32) -> Vec<Cell> {
    let spacing = cr * 1.7;
    let radius = spacing * (n as f32 / 2.6).sqrt();
    let (k, phase) = (rng.random_range(2..5) as f32, rng.random::<f32>() * TAU);
    let steps = (radius / spacing).ceil() as i32 + 1;
    let mut cells = Vec::new();
    for j in -steps..=steps {
        for i in -steps..=steps {
            let x = (i as f32 + if j % 2 == 0 { 0.0 } else { 0.5 }) * spacing;
            let y = j as f32 * spacing * 0.866;
            let theta = y.atan2(x);
            if (x * x + y * y).sqrt() <= radius * (1.0 + 0.25 * (k * theta + phase).sin()) {
                let jx = 0.18 * spacing * gauss(rng);
                let jy = 0.18 * spacing * gauss(rng);
                cells.push(cell(p, rng, cx + x + jx, cy + y + jy, None, None));
            }
        }
    }
    cells
}

fn acinar(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize, cr: f32) -> Vec<Cell> {
    let mut cells = Vec::new();
    let rosettes = (n / 8).max(1);
    for r in 0..rosettes {
        let k = rng.random_range(6..11);
        let ring = k as f32 * cr * 1.5 / TAU;
        let spread = if r == 0 { 0.0 } else { ring * 2.4 };
        let (ox, oy) = (cx + spread * gauss(rng), cy + spread * gauss(rng));
        let phase = rng.random::<f32>() * TAU;
        for i in 0..k {
            let a = phase + i as f32 * TAU / k as f32;
            cells.push(cell(
                p,
                rng,
                ox + a.cos() * ring,
                oy + a.sin() * ring,
                Some(a),
                Some(a),
            ));
        }
    }
    cells
}

fn papillary(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize, cr: f32) -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut tips = vec![(cx, cy, rng.random::<f32>() * TAU)];
    while cells.len() < n {
        let Some((x, y, dir)) = tips.pop() else { break };
        let (mut x, mut y, mut dir) = (x, y, dir);
        for _ in 0..rng.random_range(4..9) {
            for side in [-1.0f32, 0.0, 1.0] {
                let (px, py) = (
                    x - dir.sin() * side * cr * 1.3,
                    y + dir.cos() * side * cr * 1.3,
                );
                let axis = dir + 0.4 * gauss(rng);
                cells.push(cell(p, rng, px, py, Some(axis), None));
            }
            x += dir.cos() * cr * 1.5;
            y += dir.sin() * cr * 1.5;
            dir += 0.35 * gauss(rng);
            if rng.random_bool(0.18) && tips.len() < 4 {
                tips.push((x, y, dir + if rng.random_bool(0.5) { 0.9 } else { -0.9 }));
            }
        }
        if tips.is_empty() && cells.len() < n {
            tips.push((x, y, dir));
        }
    }
    cells
}

fn dispersed(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize, cr: f32) -> Vec<Cell> {
    let reach = cr * 2.2 * (n as f32).sqrt();
    (0..n)
        .map(|_| {
            let (a, d) = (
                rng.random::<f32>() * TAU,
                reach * rng.random::<f32>().sqrt(),
            );
            cell(p, rng, cx + a.cos() * d, cy + a.sin() * d, None, None)
        })
        .collect()
}

fn palisade(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize, cr: f32) -> Vec<Cell> {
    let along = rng.random::<f32>() * TAU;
    let normal = along + PI / 2.0;
    let spacing = cr * 0.75;
    let rows = if rng.random_bool(0.5) { 2 } else { 1 };
    let per_row = n.div_ceil(rows);
    let mut cells = Vec::new();
    for row in 0..rows {
        // Two rows face each other across a lumen, nuclei basal (outwards).
        let side = if row == 0 { -1.0 } else { 1.0 };
        let offset = side * cr * 1.6 * (rows as f32 - 1.0);
        let bend = 0.004 * gauss(rng);
        for i in 0..per_row {
            let t = (i as f32 - per_row as f32 / 2.0) * spacing;
            let curve = bend * t * t;
            let x = cx + along.cos() * t + normal.cos() * (offset + curve);
            let y = cy + along.sin() * t + normal.sin() * (offset + curve);
            let basal = if side < 0.0 { normal + PI } else { normal };
            let axis = normal + 0.15 * gauss(rng);
            let mut c = cell(p, rng, x, y, Some(axis), Some(basal));
            c.rx = cr * 0.45;
            c.ry = cr * 1.35;
            c.angle = along;
            cells.push(c);
        }
    }
    cells
}

fn chain(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize) -> Vec<Cell> {
    let (mut x, mut y, mut dir) = (cx, cy, rng.random::<f32>() * TAU);
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = cell(p, rng, x, y, Some(dir + PI / 2.0), None);
        // Moulding: nuclei pressed against each other, little cytoplasm between.
        c.nx = x;
        c.ny = y;
        let step = c.nuc_short * 1.7;
        cells.push(c);
        x += dir.cos() * step;
        y += dir.sin() * step;
        dir += 0.25 * gauss(rng);
    }
    cells
}

fn syncytium(p: &Profile, rng: &mut impl Rng, cx: f32, cy: f32, n: usize, cr: f32) -> Vec<Cell> {
    let reach = cr * 0.95 * (n as f32).sqrt();
    (0..n)
        .map(|_| {
            let (a, d) = (
                rng.random::<f32>() * TAU,
                reach * rng.random::<f32>().sqrt(),
            );
            let mut c = cell(p, rng, cx + a.cos() * d, cy + a.sin() * d, None, None);
            c.nx = c.x;
            c.ny = c.y;
            c.rx = 0.0;
            c.ry = 0.0;
            c
        })
        .collect()
}

/// Radius of the shared cytoplasm of a syncytium of `cells`.
pub(crate) fn syncytium_extent(cells: &[Cell], cx: f32, cy: f32) -> f32 {
    cells
        .iter()
        .map(|c| ((c.x - cx).powi(2) + (c.y - cy).powi(2)).sqrt() + c.nuc_long * 1.8)
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cytology::morph::{ARRANGEMENTS, draw_case_profile};
    use crate::cytology::record::{Origin, PathType};
    use crate::seed;

    #[test]
    fn every_arrangement_makes_cells_near_the_centre() {
        let mut rng = seed::stream(2, &[]);
        let p = draw_case_profile(&mut rng, Origin::Class(0), PathType::Adeno);
        for a in ARRANGEMENTS {
            let cells = cluster(&p, a, &mut rng, 500.0, 400.0);
            assert!(!cells.is_empty(), "{a:?}");
            let far = cells
                .iter()
                .filter(|c| (c.x - 500.0).abs() > 450.0 || (c.y - 400.0).abs() > 450.0)
                .count();
            assert!(
                far * 10 <= cells.len(),
                "{a:?}: {far} of {} cells far away",
                cells.len()
            );
        }
    }
}
