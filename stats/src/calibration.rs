//! Calibration of predicted probabilities: logistic recalibration intercept
//! and slope (Van Calster et al. 2016), Brier score, 10-bin reliability curve.

use crate::interval::{Interval, Z95};
use crate::logistic::fit_logit;
use nalgebra::DMatrix;
use serde::Serialize;

/// Number of equal-width bins of the reliability curve.
pub const BINS: usize = 10;

/// One equal-width bin of the reliability curve: `[0, 0.1]`, then
/// `(lower, upper]`, as scikit-learn's `calibration_curve`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Lower edge (excluded, except 0 for the first bin).
    pub lower: f64,
    /// Upper edge (included).
    pub upper: f64,
    /// Cases whose score falls in the bin.
    pub n: u64,
    /// Mean score in the bin; `null` when empty.
    pub mean_predicted: Option<f64>,
    /// Observed fraction of positives in the bin; `null` when empty.
    pub observed: Option<f64>,
}

/// The `calibration` block of metrics.json (per class for the multi-class task).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Labelled cases used.
    pub n: u64,
    /// Cases with a score of exactly 0 or 1, left out of the intercept and
    /// slope fits (their logit is infinite), as rms `val.prob` does.
    pub n_excluded: u64,
    /// Calibration-in-the-large: `a` in `logit P(y) = a + logit(p)`, Wald interval.
    pub intercept: Option<Interval>,
    /// Calibration slope: `b` in `logit P(y) = a + b·logit(p)`, Wald interval.
    pub slope: Option<Interval>,
    /// Mean squared difference between score and outcome.
    pub brier: Option<f64>,
    /// Reliability curve, [`BINS`] equal-width bins over [0, 1].
    pub bins: Vec<ReliabilityBin>,
}

/// Bin of a probability: the number of interior edges `i/10` (computed as
/// numpy's `linspace`, `i · 0.1`) strictly below it (numpy `searchsorted`,
/// side left, as `calibration_curve`).
fn bin_of(p: f64) -> usize {
    (1..BINS)
        .filter(|&i| i as f64 * (1.0 / BINS as f64) < p)
        .count()
}

/// Calibration of `scores` against `positive`; reasons for `null` values are
/// pushed to `warnings`, prefixed with `context`.
pub fn calibration(
    scores: &[f64],
    positive: &[bool],
    context: &str,
    warnings: &mut Vec<String>,
) -> Calibration {
    let n = scores.len();
    let y: Vec<f64> = positive
        .iter()
        .map(|&p| if p { 1.0 } else { 0.0 })
        .collect();
    let brier = (n > 0).then(|| {
        scores
            .iter()
            .zip(&y)
            .map(|(s, y)| (s - y) * (s - y))
            .sum::<f64>()
            / n as f64
    });
    let mut sums = [(0u64, 0.0f64, 0u64); BINS];
    for (s, &p) in scores.iter().zip(positive) {
        let bin = &mut sums[bin_of(*s)];
        bin.0 += 1;
        bin.1 += s;
        bin.2 += u64::from(p);
    }
    let step = 1.0 / BINS as f64;
    let bins = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, total, pos))| ReliabilityBin {
            lower: i as f64 * step,
            upper: if i + 1 == BINS {
                1.0
            } else {
                (i + 1) as f64 * step
            },
            n: count,
            mean_predicted: (count > 0).then(|| total / count as f64),
            observed: (count > 0).then(|| pos as f64 / count as f64),
        })
        .collect();
    let kept: Vec<usize> = (0..n)
        .filter(|&i| scores[i] > 0.0 && scores[i] < 1.0)
        .collect();
    let n_excluded = (n - kept.len()) as u64;
    if n_excluded > 0 {
        warnings.push(format!(
            "{context}calibration: {n_excluded} case(s) with a score of exactly 0 or 1 left out of the intercept and slope fits"
        ));
    }
    let logit: Vec<f64> = kept
        .iter()
        .map(|&i| (scores[i] / (1.0 - scores[i])).ln())
        .collect();
    let yk: Vec<f64> = kept.iter().map(|&i| y[i]).collect();
    let ones = DMatrix::from_element(kept.len(), 1, 1.0);
    let intercept = match fit_logit(&ones, &yk, Some(&logit)) {
        Ok(fit) => Some(wald(fit.beta[0], fit.se[0])),
        Err(failure) => {
            warnings.push(format!(
                "{context}calibration intercept undefined: {}",
                failure.reason()
            ));
            None
        }
    };
    let design = DMatrix::from_fn(kept.len(), 2, |r, c| if c == 0 { 1.0 } else { logit[r] });
    let slope = match fit_logit(&design, &yk, None) {
        Ok(fit) => Some(wald(fit.beta[1], fit.se[1])),
        Err(failure) => {
            warnings.push(format!(
                "{context}calibration slope undefined: {}",
                failure.reason()
            ));
            None
        }
    };
    Calibration {
        n: n as u64,
        n_excluded,
        intercept,
        slope,
        brier,
        bins,
    }
}

fn wald(estimate: f64, se: f64) -> Interval {
    Interval {
        estimate,
        ci_low: estimate - Z95 * se,
        ci_high: estimate + Z95 * se,
        bootstrap: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_numpy_edges() {
        assert_eq!(bin_of(0.0), 0);
        assert_eq!(bin_of(0.1), 0);
        assert_eq!(bin_of(0.1000001), 1);
        // 3 · 0.1 = 0.30000000000000004 > 0.3, as in numpy.
        assert_eq!(bin_of(0.3), 2);
        assert_eq!(bin_of(0.3000000000000001), 3);
        assert_eq!(bin_of(0.95), 9);
        assert_eq!(bin_of(1.0), 9);
    }

    #[test]
    fn brier_and_bins_count_every_case() {
        let scores = [0.05, 0.15, 0.15, 0.95, 1.0];
        let positive = [false, false, true, true, true];
        let mut warnings = Vec::new();
        let c = calibration(&scores, &positive, "", &mut warnings);
        let brier = (0.05f64.powi(2) + 0.15f64.powi(2) + 0.85f64.powi(2) + 0.05f64.powi(2)) / 5.0;
        assert!((c.brier.unwrap() - brier).abs() < 1e-12);
        assert_eq!(c.bins.iter().map(|b| b.n).sum::<u64>(), 5);
        assert_eq!(c.bins[1].observed, Some(0.5));
        assert_eq!(c.bins[9].n, 2);
        assert_eq!(c.n_excluded, 1);
        assert!(warnings.iter().any(|w| w.contains("exactly 0 or 1")));
    }
}
