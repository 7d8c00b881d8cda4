//! Planted poor-quality ultrasound frames: heavy colour-flash artefact and
//! a strongly blurred capture. (A blank frame is rendered by `scan` itself.)

use crate::canvas::{Blob, Canvas};
use rand::Rng;
use std::f32::consts::TAU;

/// Cover most of the imaged field with motion colour flash (saturated red
/// and blue) and add reverberation bands.
pub(crate) fn apply(c: &mut Canvas, rng: &mut impl Rng) {
    let (w, h) = (c.w as f32, c.h as f32);
    for _ in 0..rng.random_range(35..55) {
        let towards = rng.random_bool(0.5);
        let col = if towards {
            [220.0, 30.0, 20.0]
        } else {
            [30.0, 90.0, 235.0]
        };
        let blob = Blob {
            harmonics: [
                (3.0, 0.3, rng.random::<f32>() * TAU),
                (5.0, 0.15, rng.random::<f32>() * TAU),
            ],
            soft: 3.0,
            ..Blob::ellipse(
                rng.random_range(90.0..w - 90.0),
                rng.random_range(50.0..h - 50.0),
                rng.random_range(40.0..90.0),
                rng.random_range(25.0..60.0),
                rng.random::<f32>() * TAU,
            )
        };
        c.fill_blob(&blob, col, 0.9);
    }
    for k in 0..rng.random_range(3..6) {
        let y = 70.0 + k as f32 * rng.random_range(45.0..70.0);
        c.line((80.0, y), (560.0, y), 4.0, [235.0, 235.0, 235.0], 0.8);
    }
}

/// Heavy blur (σ 6–9 px), as of a moving probe.
pub(crate) fn blur(c: &mut Canvas, rng: &mut impl Rng) {
    c.gaussian_blur(rng.random_range(6.0..9.0));
}
