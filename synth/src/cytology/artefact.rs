//! Planted smear defects: heavy artefacts (marker ink, air bubbles, a fold,
//! debris) and the blur of an out-of-focus scan.

use crate::canvas::{Blob, Canvas, Rgb, scale};
use rand::Rng;
use std::f32::consts::TAU;

/// Marker-ink colours: every channel stays below 80, darker than any stained nucleus.
const INKS: [Rgb; 3] = [[18.0, 24.0, 72.0], [14.0, 52.0, 34.0], [12.0, 12.0, 16.0]];

/// Cover a smear with heavy artefacts: two or three broad marker-ink
/// strokes (together about a third of the slide), air bubbles, a fold and debris.
pub(crate) fn apply(c: &mut Canvas, rng: &mut impl Rng) {
    let (w, h) = (c.w as f32, c.h as f32);
    let ink = INKS[rng.random_range(0..INKS.len())];
    for stroke in 0..rng.random_range(2..4) {
        let y0 = h * (0.2 + 0.3 * stroke as f32) + rng.random_range(-40.0..40.0);
        let width = rng.random_range(110.0..150.0);
        let mut prev = (-20.0, y0);
        for step in 1..=8 {
            let next = (
                w * step as f32 / 8.0 + 20.0,
                y0 + rng.random_range(-60.0..60.0),
            );
            c.line(prev, next, width, ink, 0.95);
            prev = next;
        }
    }
    for _ in 0..rng.random_range(2..6) {
        let (x, y, r) = (
            rng.random_range(0.0..w),
            rng.random_range(0.0..h),
            rng.random_range(50.0..140.0),
        );
        let rim = rng.random_range(5.0..9.0) / r;
        c.paint_blob(&Blob::circle(x, y, r), |px, bp| {
            if bp.r > 1.0 - rim {
                *px = [45.0, 45.0, 50.0];
            } else {
                *px = scale(*px, 1.06);
            }
        });
    }
    let (fx, angle) = (rng.random_range(0.2..0.8) * w, rng.random::<f32>() * TAU);
    let fold = Blob {
        harmonics: [(2.0, 0.05, 0.0), (0.0, 0.0, 0.0)],
        soft: 6.0,
        ..Blob::ellipse(fx, h / 2.0, 500.0, 35.0, angle)
    };
    c.paint_blob(&fold, |px, bp| *px = scale(*px, 1.0 - 0.45 * bp.coverage));
    for _ in 0..rng.random_range(30..60) {
        let blob = Blob {
            harmonics: [(3.0, 0.3, rng.random::<f32>() * TAU), (0.0, 0.0, 0.0)],
            ..Blob::ellipse(
                rng.random_range(0.0..w),
                rng.random_range(0.0..h),
                rng.random_range(3.0..10.0),
                rng.random_range(2.0..6.0),
                rng.random::<f32>() * TAU,
            )
        };
        c.fill_blob(&blob, [40.0, 30.0, 25.0], 0.9);
    }
}

/// Heavy defocus: a Gaussian blur of 7–10 px.
pub(crate) fn blur(c: &mut Canvas, rng: &mut impl Rng) {
    c.gaussian_blur(rng.random_range(7.0..10.0));
}
