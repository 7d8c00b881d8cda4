//! Cheap deterministic pixel noise: an integer hash and smooth value noise.

use crate::seed::mix64;
use std::sync::OnceLock;

/// Edge of the precomputed noise texture (a power of two, so it wraps by masking).
const TEXTURE: usize = 512;

/// Smooth noise in `[0, 1)` with a grain of about 1.5 px, looked up from a
/// precomputed wrapping texture (nearest sample). Scale and offset the
/// coordinates to set grain and placement; far cheaper than [`value`].
pub(crate) fn texture(x: f32, y: f32) -> f32 {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let period = (TEXTURE as f32 / 1.5) as i64;
        let mut t = vec![0.0; TEXTURE * TEXTURE];
        for (i, v) in t.iter_mut().enumerate() {
            let (tx, ty) = ((i % TEXTURE) as f32 / 1.5, (i / TEXTURE) as f32 / 1.5);
            *v = periodic_value(0x7E57, tx, ty, period);
        }
        t
    });
    let (xi, yi) = (
        x as i64 as usize & (TEXTURE - 1),
        y as i64 as usize & (TEXTURE - 1),
    );
    table[yi * TEXTURE + xi]
}

/// [`value`] noise whose lattice repeats every `period` cells, so the texture tiles seamlessly.
fn periodic_value(seed: u64, x: f32, y: f32, period: i64) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i64, yf as i64);
    let (tx, ty) = (smooth(x - xf), smooth(y - yf));
    let h = |a: i64, b: i64| hash2(seed, a.rem_euclid(period), b.rem_euclid(period));
    let top = h(xi, yi) + (h(xi + 1, yi) - h(xi, yi)) * tx;
    let bottom = h(xi, yi + 1) + (h(xi + 1, yi + 1) - h(xi, yi + 1)) * tx;
    top + (bottom - top) * ty
}

/// Uniform value in `[0, 1)` for the lattice point `(x, y)` under `seed`.
pub(crate) fn hash2(seed: u64, x: i64, y: i64) -> f32 {
    let h = mix64(seed ^ mix64((x as u64).wrapping_mul(0x9E37_79B9) ^ (y as u64).rotate_left(32)));
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in `[0, 1)`: lattice values at integer coordinates,
/// blended with a smoothstep. Scale the coordinates to set the grain.
pub(crate) fn value(seed: u64, x: f32, y: f32) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i64, yf as i64);
    let (tx, ty) = (smooth(x - xf), smooth(y - yf));
    let a = hash2(seed, xi, yi);
    let b = hash2(seed, xi + 1, yi);
    let c = hash2(seed, xi, yi + 1);
    let d = hash2(seed, xi + 1, yi + 1);
    let top = a + (b - a) * tx;
    let bottom = c + (d - c) * tx;
    top + (bottom - top) * ty
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_bounded_and_varies() {
        let mut lo: f32 = 1.0;
        let mut hi: f32 = 0.0;
        for i in 0..500 {
            let v = value(7, i as f32 * 0.37, i as f32 * 0.11);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        assert!(lo >= 0.0 && hi < 1.0);
        assert!(hi - lo > 0.5, "noise should span its range, got {lo}..{hi}");
        assert_eq!(hash2(1, 3, 4), hash2(1, 3, 4));
        let t: Vec<f32> = (0..2000)
            .map(|i| texture(i as f32 * 0.7, i as f32 * 0.3))
            .collect();
        assert!(t.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(
            t.iter().cloned().fold(0.0, f32::max) - t.iter().cloned().fold(1.0, f32::min) > 0.5
        );
        assert_eq!(
            texture(3.0, 4.0),
            texture(3.0 + 512.0, 4.0 - 512.0),
            "the texture wraps"
        );
    }
}
