//! Image QC: three measures on a downscaled copy of each image — coverage
//! (tissue or echo signal), focus (variance of the Laplacian of the grey
//! image) and artefact fraction (pixels of colours the study's images never
//! show) — judged against per-study thresholds.

use super::tiling::is_tissue;
use image::RgbImage;
use nodal_types::manifest::{QcReason, QcThresholds, QcVerdict};
use nodal_types::study::Study;

/// Images are box-averaged by a whole factor until their longer side is at
/// most this many pixels before they are measured.
pub const MEASURE_SIDE: u32 = 512;

/// Default thresholds of a study (see `docs/submission.md` for how they were
/// tuned on `nodal synth` archives).
pub fn default_thresholds(study: Study) -> QcThresholds {
    match study {
        Study::Cytology => QcThresholds {
            min_coverage: 0.01,
            min_laplacian_var: 60.0,
            max_artefact_fraction: 0.05,
        },
        Study::Ultrasound => QcThresholds {
            min_coverage: 0.10,
            min_laplacian_var: 100.0,
            max_artefact_fraction: 0.10,
        },
    }
}

/// The three measures of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QcMeasures {
    /// Fraction of signal pixels (stained or dark tissue; echoes).
    pub coverage: f64,
    /// Variance of the 4-neighbour Laplacian of the grey image.
    pub laplacian_var: f64,
    /// Fraction of artefact pixels.
    pub artefact_fraction: f64,
}

/// Measure `image` as `study` sees it (each measure rounded to 6 decimals).
pub fn measure(study: Study, image: &RgbImage) -> QcMeasures {
    let small = downscale(image);
    let (w, h) = (small.width() as usize, small.height() as usize);
    let total = (w * h).max(1) as f64;
    let mut signal = 0usize;
    let mut artefact = 0usize;
    let mut grey = Vec::with_capacity(w * h);
    for px in small.pixels() {
        let rgb = [px[0], px[1], px[2]];
        signal += usize::from(is_signal(study, rgb));
        artefact += usize::from(is_artefact(study, rgb));
        grey.push(luma(rgb));
    }
    QcMeasures {
        coverage: round6(signal as f64 / total),
        laplacian_var: round6(laplacian_variance(&grey, w, h)),
        artefact_fraction: round6(artefact as f64 / total),
    }
}

/// Round to 6 decimals: enough for any threshold, short in the manifest,
/// and read back from JSON as exactly the same number.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The verdict on `m`: the first failed check in the order blank, blur,
/// artefact, or a pass.
pub fn judge(m: &QcMeasures, t: &QcThresholds) -> QcVerdict {
    let reason = if m.coverage < t.min_coverage {
        Some(QcReason::Blank)
    } else if m.laplacian_var < t.min_laplacian_var {
        Some(QcReason::Blur)
    } else if m.artefact_fraction > t.max_artefact_fraction {
        Some(QcReason::Artefact)
    } else {
        None
    };
    QcVerdict {
        passed: reason.is_none(),
        reason,
        coverage: m.coverage,
        laplacian_var: m.laplacian_var,
        artefact_fraction: m.artefact_fraction,
    }
}

/// Why a set of thresholds is unusable, or `None`.
pub fn threshold_problem(t: &QcThresholds) -> Option<String> {
    let fraction = |name: &str, v: f64| {
        (!(0.0..=1.0).contains(&v)).then(|| format!("{name} must be between 0 and 1, not {v}"))
    };
    fraction("--min-coverage", t.min_coverage)
        .or_else(|| fraction("--max-artefact-fraction", t.max_artefact_fraction))
        .or_else(|| {
            (!(t.min_laplacian_var.is_finite() && t.min_laplacian_var >= 0.0)).then(|| {
                format!(
                    "--min-laplacian-var must be a number ≥ 0, not {}",
                    t.min_laplacian_var
                )
            })
        })
}

/// A pixel that carries signal: tissue by the tiling rule (cytology), or an
/// echo brighter than the empty field (ultrasound).
fn is_signal(study: Study, rgb: [u8; 3]) -> bool {
    match study {
        Study::Cytology => is_tissue(rgb),
        Study::Ultrasound => luma(rgb) >= 40.0,
    }
}

/// A pixel of a colour the study's images never show: near-black marker
/// ink, bubble rims and debris on a smear (darker than any stained nucleus);
/// saturated colour-flash on an ultrasound frame.
fn is_artefact(study: Study, rgb: [u8; 3]) -> bool {
    match study {
        Study::Cytology => luma(rgb) < 60.0,
        Study::Ultrasound => chroma(rgb) >= 120,
    }
}

fn luma(rgb: [u8; 3]) -> f32 {
    0.299 * f32::from(rgb[0]) + 0.587 * f32::from(rgb[1]) + 0.114 * f32::from(rgb[2])
}

fn chroma(rgb: [u8; 3]) -> u8 {
    let max = rgb.iter().copied().max().unwrap_or(0);
    let min = rgb.iter().copied().min().unwrap_or(0);
    max - min
}

/// Box-average `image` by the smallest whole factor that brings its longer
/// side to at most [`MEASURE_SIDE`]; the ragged right and bottom edges left
/// by the factor are dropped.
fn downscale(image: &RgbImage) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let f = w.max(h).div_ceil(MEASURE_SIDE as usize).max(1);
    if f == 1 {
        return image.clone();
    }
    // Accepted images are at least 32 pixels and at most 16,384 a side, so
    // f ≤ 32 and both sides hold at least one block.
    let (sw, sh) = ((w / f).max(1), (h / f).max(1));
    let (fx, fy) = (f.min(w), f.min(h));
    let n = (fx * fy) as u32;
    let raw = image.as_raw();
    let mut out = Vec::with_capacity(sw * sh * 3);
    let mut sums = vec![0u32; sw * 3];
    for sy in 0..sh {
        sums.fill(0);
        for y in sy * fy..(sy + 1) * fy {
            let row = &raw[y * w * 3..][..sw * fx * 3];
            for (sx, block) in row.chunks_exact(fx * 3).enumerate() {
                for px in block.chunks_exact(3) {
                    sums[sx * 3] += u32::from(px[0]);
                    sums[sx * 3 + 1] += u32::from(px[1]);
                    sums[sx * 3 + 2] += u32::from(px[2]);
                }
            }
        }
        out.extend(sums.iter().map(|&s| ((s + n / 2) / n) as u8));
    }
    RgbImage::from_raw(sw as u32, sh as u32, out).unwrap_or_else(|| image.clone())
}

/// Variance of the 4-neighbour Laplacian over the interior pixels.
fn laplacian_variance(grey: &[f32], w: usize, h: usize) -> f64 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut sum, mut sum_sq) = (0f64, 0f64);
    for y in 1..h - 1 {
        let row = y * w;
        for x in 1..w - 1 {
            let i = row + x;
            let l =
                f64::from(grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4.0 * grey[i]);
            sum += l;
            sum_sq += l * l;
        }
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const GLASS: Rgb<u8> = Rgb([236, 233, 239]);

    /// Stained cells (3-pixel blocks) on glass, a third of the area.
    fn smear(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if ((x / 3) * 7 + (y / 3) * 13) % 3 == 0 {
                Rgb([150, 90, 170])
            } else {
                GLASS
            }
        })
    }

    #[test]
    fn downscale_averages_whole_blocks() {
        let img = RgbImage::from_fn(1024, 8, |x, _| {
            if x % 2 == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let small = downscale(&img);
        assert_eq!(small.dimensions(), (512, 4));
        // 1030 wide needs a factor of 3; the ragged edges are dropped.
        assert_eq!(downscale(&RgbImage::new(1030, 8)).dimensions(), (343, 2));
        assert_eq!(small.get_pixel(7, 2)[0], 128);
        let img = RgbImage::from_pixel(300, 200, GLASS);
        assert_eq!(downscale(&img).dimensions(), (300, 200));
    }

    #[test]
    fn each_defect_fails_its_own_check() {
        let t = default_thresholds(Study::Cytology);
        let sharp = smear(1024, 768);
        let ok = judge(&measure(Study::Cytology, &sharp), &t);
        assert!(ok.passed, "{ok:?}");
        let blank = judge(
            &measure(Study::Cytology, &RgbImage::from_pixel(1024, 768, GLASS)),
            &t,
        );
        assert_eq!(
            (blank.reason, blank.coverage, blank.artefact_fraction),
            (Some(QcReason::Blank), 0.0, 0.0)
        );
        let blurred = judge(
            &measure(Study::Cytology, &image::imageops::blur(&sharp, 8.0)),
            &t,
        );
        assert_eq!(blurred.reason, Some(QcReason::Blur), "{blurred:?}");
        assert!(blurred.coverage > t.min_coverage);
        let mut inked = sharp.clone();
        for y in 300..450 {
            for x in 0..1024 {
                inked.put_pixel(x, y, Rgb([18, 24, 72]));
            }
        }
        let inked = judge(&measure(Study::Cytology, &inked), &t);
        assert_eq!(inked.reason, Some(QcReason::Artefact), "{inked:?}");
        assert!(
            (inked.artefact_fraction - 150.0 / 768.0).abs() < 0.01,
            "{inked:?}"
        );
    }

    #[test]
    fn ultrasound_counts_echoes_and_colour_flash() {
        let t = default_thresholds(Study::Ultrasound);
        let frame = RgbImage::from_fn(640, 480, |x, y| {
            let g = (60 + (x * 31 + y * 17) % 140) as u8;
            if x < 160 {
                Rgb([220, 30, 20])
            } else {
                Rgb([g, g, g])
            }
        });
        let m = measure(Study::Ultrasound, &frame);
        assert!((m.artefact_fraction - 0.25).abs() < 0.01, "{m:?}");
        assert_eq!(judge(&m, &t).reason, Some(QcReason::Artefact));
        let dark = judge(
            &measure(
                Study::Ultrasound,
                &RgbImage::from_pixel(640, 480, Rgb([9, 9, 9])),
            ),
            &t,
        );
        assert_eq!(dark.reason, Some(QcReason::Blank));
    }

    #[test]
    fn thresholds_are_checked() {
        let ok = default_thresholds(Study::Cytology);
        assert_eq!(threshold_problem(&ok), None);
        let bad = QcThresholds {
            max_artefact_fraction: -0.1,
            ..ok.clone()
        };
        assert!(threshold_problem(&bad).is_some_and(|p| p.contains("--max-artefact-fraction")));
        let bad = QcThresholds {
            min_laplacian_var: -1.0,
            ..ok
        };
        assert!(threshold_problem(&bad).is_some_and(|p| p.contains("--min-laplacian-var")));
    }
}
