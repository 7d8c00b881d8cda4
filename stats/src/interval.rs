//! Point estimates with 95 % intervals: Wilson score intervals for proportions.

use serde::Serialize;

/// The normal quantile of a two-sided 95 % interval, as the spec fixes it.
pub const Z95: f64 = 1.959964;

/// A percentile bootstrap interval, attached to an estimate when `--bootstrap N > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapInterval {
    /// 2.5th percentile of the replicates.
    pub ci_low: f64,
    /// 97.5th percentile of the replicates.
    pub ci_high: f64,
}

/// An estimate with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Point estimate.
    pub estimate: f64,
    /// Lower bound.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// Percentile bootstrap interval, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInterval>,
}

/// A proportion `successes / trials` with its Wilson score interval; `None`
/// when `trials` is zero.
pub fn wilson(successes: u64, trials: u64) -> Option<Interval> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        estimate: p,
        ci_low: (centre - half).max(0.0),
        ci_high: (centre + half).min(1.0),
        bootstrap: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_textbook_example() {
        // Newcombe (1998), example: 81 of 263 → 0.2553 to 0.3662.
        let i = wilson(81, 263).unwrap();
        assert!((i.ci_low - 0.2553).abs() < 1e-4, "{i:?}");
        assert!((i.ci_high - 0.3662).abs() < 1e-4, "{i:?}");
    }

    #[test]
    fn wilson_is_none_without_trials_and_bounded_at_extremes() {
        assert!(wilson(0, 0).is_none());
        let all = wilson(10, 10).unwrap();
        assert!((all.ci_high - 1.0).abs() < 1e-12);
        assert!(all.ci_low > 0.6 && all.ci_low < 0.8);
        let none = wilson(0, 10).unwrap();
        assert_eq!(none.ci_low, 0.0);
    }
}
