//! A floating-point RGB canvas with the few drawing operations the
//! synthetic images need: soft irregular blobs, thick lines, blurs.

use image::RgbImage;

/// An RGB colour with channels on the 0–255 scale.
pub(crate) type Rgb = [f32; 3];

/// Mix two colours: `t = 0` gives `a`, `t = 1` gives `b`.
pub(crate) fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Multiply a colour by a factor.
pub(crate) fn scale(c: Rgb, f: f32) -> Rgb {
    [c[0] * f, c[1] * f, c[2] * f]
}

/// An ellipse whose outline is modulated by a few harmonics, with a soft edge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blob {
    /// Centre x, pixels.
    pub cx: f32,
    /// Centre y, pixels.
    pub cy: f32,
    /// Semi-axis along the blob's own x direction, pixels.
    pub rx: f32,
    /// Semi-axis along the blob's own y direction, pixels.
    pub ry: f32,
    /// Rotation, radians.
    pub angle: f32,
    /// Outline harmonics `(frequency, relative amplitude, phase)`.
    pub harmonics: [(f32, f32, f32); 2],
    /// Width of the anti-aliased edge, pixels.
    pub soft: f32,
}

impl Blob {
    /// A plain ellipse with a one-pixel soft edge.
    pub(crate) fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32, angle: f32) -> Self {
        Blob {
            cx,
            cy,
            rx,
            ry,
            angle,
            harmonics: [(0.0, 0.0, 0.0); 2],
            soft: 1.0,
        }
    }

    /// A circle with a one-pixel soft edge.
    pub(crate) fn circle(cx: f32, cy: f32, r: f32) -> Self {
        Self::ellipse(cx, cy, r, r, 0.0)
    }
}

/// Where a painted pixel lies in its blob.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlobPixel {
    /// Pixel x.
    pub x: usize,
    /// Pixel y.
    pub y: usize,
    /// Normalised radius: 0 at the centre, 1 on the outline.
    pub r: f32,
    /// Anti-aliasing coverage in `[0, 1]`.
    pub coverage: f32,
    /// Position along the blob's own x axis, normalised by `rx`.
    pub u: f32,
    /// Position along the blob's own y axis, normalised by `ry`.
    pub v: f32,
}

/// A blob outline radius as a function of angle, tabulated.
struct Outline {
    table: [f32; OUTLINE_STEPS + 1],
}

/// Angular resolution of [`Outline`].
const OUTLINE_STEPS: usize = 128;

impl Outline {
    fn new(harmonics: &[(f32, f32, f32); 2]) -> Self {
        let mut table = [1.0f32; OUTLINE_STEPS + 1];
        for (i, t) in table.iter_mut().enumerate() {
            let theta =
                i as f32 / OUTLINE_STEPS as f32 * std::f32::consts::TAU - std::f32::consts::PI;
            *t = 1.0
                + harmonics
                    .iter()
                    .map(|&(k, a, ph)| a * (k * theta + ph).sin())
                    .sum::<f32>();
        }
        Outline { table }
    }

    /// Outline radius in the direction `atan2(y, x)`, linearly interpolated.
    fn at(&self, y: f32, x: f32) -> f32 {
        let pos = (fast_atan2(y, x) + std::f32::consts::PI) / std::f32::consts::TAU
            * OUTLINE_STEPS as f32;
        let i = (pos as usize).min(OUTLINE_STEPS - 1);
        let f = pos - i as f32;
        self.table[i] + (self.table[i + 1] - self.table[i]) * f
    }
}

/// `atan2` to about 0.005 rad, several times faster than libm's.
fn fast_atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let (ax, ay) = (x.abs(), y.abs());
    let (num, den) = if ax >= ay { (ay, ax) } else { (ax, ay) };
    if den == 0.0 {
        return 0.0;
    }
    let t = num / den;
    let mut a = t * (0.995_354 + t * t * (-0.288_679 + t * t * 0.079_331));
    if ay > ax {
        a = FRAC_PI_2 - a;
    }
    if x < 0.0 {
        a = PI - a;
    }
    if y < 0.0 { -a } else { a }
}

/// A floating-point RGB image.
pub(crate) struct Canvas {
    /// Width, pixels.
    pub w: usize,
    /// Height, pixels.
    pub h: usize,
    px: Vec<Rgb>,
}

impl Canvas {
    /// A canvas filled with one colour.
    pub(crate) fn new(w: usize, h: usize, fill: Rgb) -> Self {
        Canvas {
            w,
            h,
            px: vec![fill; w * h],
        }
    }

    /// The colour at `(x, y)`.
    pub(crate) fn get(&self, x: usize, y: usize) -> Rgb {
        self.px[y * self.w + x]
    }

    /// Mutable access to the colour at `(x, y)`.
    pub(crate) fn at(&mut self, x: usize, y: usize) -> &mut Rgb {
        &mut self.px[y * self.w + x]
    }

    /// Alpha-blend `c` over the pixel at `(x, y)` when it is on the canvas.
    pub(crate) fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f32) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let p = self.at(x as usize, y as usize);
            *p = mix(*p, c, alpha.clamp(0.0, 1.0));
        }
    }

    /// Apply `f` to every pixel.
    pub(crate) fn for_each(&mut self, mut f: impl FnMut(usize, usize, &mut Rgb)) {
        for y in 0..self.h {
            for x in 0..self.w {
                f(x, y, &mut self.px[y * self.w + x]);
            }
        }
    }

    /// Call `shade` for every pixel covered by `blob`.
    pub(crate) fn paint_blob(&mut self, blob: &Blob, mut shade: impl FnMut(&mut Rgb, BlobPixel)) {
        let amp: f32 = blob.harmonics.iter().map(|h| h.1.abs()).sum();
        let reach = blob.rx.max(blob.ry) * (1.0 + amp) + blob.soft + 1.0;
        let x0 = (blob.cx - reach).floor().max(0.0) as usize;
        let y0 = (blob.cy - reach).floor().max(0.0) as usize;
        let x1 = ((blob.cx + reach).ceil().max(0.0) as usize).min(self.w);
        let y1 = ((blob.cy + reach).ceil().max(0.0) as usize).min(self.h);
        let (s, c) = blob.angle.sin_cos();
        let (rx, ry) = (blob.rx.max(0.3), blob.ry.max(0.3));
        let (irx, iry) = (1.0 / rx, 1.0 / ry);
        let soft = blob.soft.max(0.5);
        let edge = rx.min(ry) / soft;
        let outline = (amp > 0.0).then(|| Outline::new(&blob.harmonics));
        // Beyond this normalised radius no pixel has any coverage.
        let outer2 = (1.0 + amp + 1.0 / edge).powi(2);
        // u and v are affine in x: start each row at x0 and step.
        let (du, dv) = (c * irx, -s * iry);
        for y in y0..y1 {
            let dy = y as f32 + 0.5 - blob.cy;
            let dx0 = x0 as f32 + 0.5 - blob.cx;
            let mut u = (dx0 * c + dy * s) * irx;
            let mut v = (-dx0 * s + dy * c) * iry;
            for x in x0..x1 {
                let (pu, pv) = (u, v);
                u += du;
                v += dv;
                let r2 = pu * pu + pv * pv;
                if r2 > outer2 {
                    continue;
                }
                let rn = r2.sqrt();
                let bound = outline.as_ref().map_or(1.0, |o| o.at(pv, pu));
                let coverage = ((bound - rn) * edge + 0.5).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    let p = &mut self.px[y * self.w + x];
                    shade(
                        p,
                        BlobPixel {
                            x,
                            y,
                            r: rn / bound,
                            coverage,
                            u: pu,
                            v: pv,
                        },
                    );
                }
            }
        }
    }

    /// Fill `blob` with colour `c` at opacity `alpha`.
    pub(crate) fn fill_blob(&mut self, blob: &Blob, c: Rgb, alpha: f32) {
        self.paint_blob(blob, |p, bp| *p = mix(*p, c, alpha * bp.coverage));
    }

    /// A thick line with round ends.
    pub(crate) fn line(
        &mut self,
        from: (f32, f32),
        to: (f32, f32),
        width: f32,
        c: Rgb,
        alpha: f32,
    ) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let len = (dx * dx + dy * dy).sqrt();
        let half = width / 2.0;
        let reach = half + 1.0;
        let x0 = (from.0.min(to.0) - reach).floor().max(0.0) as usize;
        let y0 = (from.1.min(to.1) - reach).floor().max(0.0) as usize;
        let x1 = ((from.0.max(to.0) + reach).ceil().max(0.0) as usize).min(self.w);
        let y1 = ((from.1.max(to.1) + reach).ceil().max(0.0) as usize).min(self.h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5 - from.0, y as f32 + 0.5 - from.1);
                let t = if len > 0.0 {
                    ((px * dx + py * dy) / (len * len)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (ex, ey) = (px - t * dx, py - t * dy);
                let d = (ex * ex + ey * ey).sqrt();
                let coverage = (half - d + 0.5).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    let p = &mut self.px[y * self.w + x];
                    *p = mix(*p, c, alpha * coverage);
                }
            }
        }
    }

    /// Box blur of radius `rx` along x, then `ry` along y (edges clamp).
    pub(crate) fn box_blur(&mut self, rx: usize, ry: usize) {
        if rx > 0 {
            let mut row = vec![[0.0f32; 3]; self.w];
            for y in 0..self.h {
                row.copy_from_slice(&self.px[y * self.w..(y + 1) * self.w]);
                blur_line(&row, &mut self.px[y * self.w..(y + 1) * self.w], rx);
            }
        }
        if ry > 0 {
            self.blur_columns(ry);
        }
    }

    /// Vertical sliding-window mean, row by row (cache friendly).
    fn blur_columns(&mut self, r: usize) {
        let (w, h) = (self.w, self.h);
        let src = self.px.clone();
        let row = |y: usize| &src[y * w..(y + 1) * w];
        let mut acc = vec![[0.0f32; 3]; w];
        for k in 0..=2 * r {
            let y = k.saturating_sub(r).min(h - 1);
            for (a, p) in acc.iter_mut().zip(row(y)) {
                for ch in 0..3 {
                    a[ch] += p[ch];
                }
            }
        }
        let norm = 1.0 / (2 * r + 1) as f32;
        for y in 0..h {
            for (out, a) in self.px[y * w..(y + 1) * w].iter_mut().zip(&acc) {
                *out = [a[0] * norm, a[1] * norm, a[2] * norm];
            }
            let (add, sub) = (row((y + r + 1).min(h - 1)), row(y.saturating_sub(r)));
            for ((a, p), q) in acc.iter_mut().zip(add).zip(sub) {
                for ch in 0..3 {
                    a[ch] += p[ch] - q[ch];
                }
            }
        }
    }

    /// Approximate Gaussian blur of standard deviation `sigma` (three box passes).
    pub(crate) fn gaussian_blur(&mut self, sigma: f32) {
        let r = ((((12.0 * sigma * sigma / 3.0) + 1.0).sqrt() - 1.0) / 2.0)
            .round()
            .max(1.0) as usize;
        for _ in 0..3 {
            self.box_blur(r, r);
        }
    }

    /// Quantise to 8-bit RGB, adding uniform grain of `±grain` levels.
    pub(crate) fn to_image(&self, grain: f32, seed: u64) -> RgbImage {
        let mut img = RgbImage::new(self.w as u32, self.h as u32);
        let mut state = crate::seed::mix64(seed) | 1;
        let scale = 2.0 * grain / (1u64 << 24) as f32;
        for (p, out) in self.px.iter().zip(img.pixels_mut()) {
            // xorshift64*: a fast sequential stream, deterministic per image.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let n = (r >> 40) as f32 * scale - grain;
            for (o, v) in out.0.iter_mut().zip(p) {
                *o = (v + n + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
        img
    }
}

/// Sliding-window mean of radius `r` over `src` into `dst` (edges clamp).
fn blur_line(src: &[Rgb], dst: &mut [Rgb], r: usize) {
    let n = src.len();
    let last = n - 1;
    let width = (2 * r + 1) as f32;
    let mut acc = [0.0f32; 3];
    for k in 0..=2 * r {
        let idx = k.saturating_sub(r).min(last);
        for ch in 0..3 {
            acc[ch] += src[idx][ch];
        }
    }
    for (i, d) in dst.iter_mut().enumerate().take(n) {
        *d = [acc[0] / width, acc[1] / width, acc[2] / width];
        let out_idx = i.saturating_sub(r);
        let in_idx = (i + r + 1).min(last);
        for ch in 0..3 {
            acc[ch] += src[in_idx][ch] - src[out_idx][ch];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_fills_its_inside_only() {
        let mut c = Canvas::new(40, 40, [255.0; 3]);
        c.fill_blob(&Blob::circle(20.0, 20.0, 8.0), [0.0; 3], 1.0);
        assert_eq!(c.get(20, 20), [0.0; 3]);
        assert_eq!(c.get(2, 2), [255.0; 3]);
        assert_eq!(c.get(20, 30), [255.0; 3]);
    }

    #[test]
    fn blur_keeps_mean_and_smooths() {
        let mut c = Canvas::new(50, 1, [0.0; 3]);
        *c.at(25, 0) = [100.0; 3];
        c.box_blur(2, 0);
        let total: f32 = (0..50).map(|x| c.get(x, 0)[0]).sum();
        assert!((total - 100.0).abs() < 1e-3, "mass kept: {total}");
        assert!((c.get(24, 0)[0] - 20.0).abs() < 1e-3);
    }

    #[test]
    fn fast_atan2_is_close_to_libm() {
        for i in 0..1000 {
            let a = i as f32 * 0.0123 - 6.0;
            let (y, x) = (
                a.sin() * (1.0 + i as f32 * 0.01),
                a.cos() * (1.0 + i as f32 * 0.01),
            );
            assert!((fast_atan2(y, x) - y.atan2(x)).abs() < 0.01, "{a}");
        }
    }

    #[test]
    fn quantisation_clamps() {
        let c = Canvas::new(2, 2, [300.0, -5.0, 128.0]);
        let img = c.to_image(0.0, 1);
        assert_eq!(img.get_pixel(1, 1).0, [255, 0, 128]);
    }
}
