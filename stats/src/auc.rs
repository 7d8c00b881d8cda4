//! Area under the ROC curve (Mann–Whitney, ties count one half), its DeLong
//! variance by the fast midrank algorithm of Sun & Xu (2014), ROC points, and
//! a pre-ranked form for fast weighted (bootstrap) AUCs.

use crate::interval::{BootstrapInterval, Z95};
use serde::Serialize;

/// An AUC with its DeLong 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AucInterval {
    /// The AUC.
    pub estimate: f64,
    /// Lower bound (clipped at 0); `null` when the variance is undefined.
    pub ci_low: Option<f64>,
    /// Upper bound (clipped at 1); `null` when the variance is undefined.
    pub ci_high: Option<f64>,
    /// Always `"delong"`.
    pub method: &'static str,
    /// Percentile bootstrap interval, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInterval>,
}

/// Why an AUC could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AucUndefined {
    /// No positive cases.
    NoPositives,
    /// No negative cases.
    NoNegatives,
}

impl AucUndefined {
    /// A short reason for warnings.
    pub fn reason(self) -> &'static str {
        match self {
            AucUndefined::NoPositives => "no positive cases",
            AucUndefined::NoNegatives => "no negative cases",
        }
    }
}

/// Midranks (1-based, ties get their mean rank) of `values`.
pub fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mean = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean;
        }
        start = end;
    }
    ranks
}

/// AUC of `scores` against `positive` with its DeLong interval.
///
/// The interval is `null` (with the estimate kept) when either class has
/// fewer than two cases, as the variance needs two of each.
pub fn auc_delong(scores: &[f64], positive: &[bool]) -> Result<AucInterval, AucUndefined> {
    let pos: Vec<f64> = scores
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f64> = scores
        .iter()
        .zip(positive)
        .filter(|(_, p)| !**p)
        .map(|(s, _)| *s)
        .collect();
    let (m, n) = (pos.len(), neg.len());
    if m == 0 {
        return Err(AucUndefined::NoPositives);
    }
    if n == 0 {
        return Err(AucUndefined::NoNegatives);
    }
    let combined: Vec<f64> = pos.iter().chain(&neg).copied().collect();
    let tz = midranks(&combined);
    let tx = midranks(&pos);
    let ty = midranks(&neg);
    let (mf, nf) = (m as f64, n as f64);
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / nf).collect();
    let v01: Vec<f64> = (0..n).map(|j| 1.0 - (tz[m + j] - ty[j]) / mf).collect();
    let auc = v10.iter().sum::<f64>() / mf;
    let (ci_low, ci_high) = match (sample_variance(&v10), sample_variance(&v01)) {
        (Some(s10), Some(s01)) => {
            let se = (s10 / mf + s01 / nf).max(0.0).sqrt();
            (
                Some((auc - Z95 * se).max(0.0)),
                Some((auc + Z95 * se).min(1.0)),
            )
        }
        _ => (None, None),
    };
    Ok(AucInterval {
        estimate: auc,
        ci_low,
        ci_high,
        method: "delong",
        bootstrap: None,
    })
}

/// Unbiased sample variance (denominator n − 1); `None` below two values.
fn sample_variance(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    Some(values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0))
}

/// One point of an empirical ROC curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    /// False-positive rate (1 − specificity).
    pub fpr: f64,
    /// True-positive rate (sensitivity).
    pub tpr: f64,
}

/// The empirical ROC curve from (0, 0) to (1, 1), one point per distinct
/// score (a case positive when `score >= t`); empty when a class is missing.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<RocPoint> {
    let total_pos = positive.iter().filter(|p| **p).count() as f64;
    let total_neg = positive.len() as f64 - total_pos;
    if total_pos == 0.0 || total_neg == 0.0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![RocPoint { fpr: 0.0, tpr: 0.0 }];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (j, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let group_ends = order
            .get(j + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if group_ends {
            points.push(RocPoint {
                fpr: fp / total_neg,
                tpr: tp / total_pos,
            });
        }
    }
    points
}

/// Scores ranked once so that the AUC of any weighting of the cases (a
/// bootstrap replicate's multiplicities) takes one pass without sorting.
#[derive(Debug, Clone)]
pub struct RankedScores {
    /// Case index | positive flag (bit 30) | last-of-tie-group flag (bit 31),
    /// in ascending score order.
    packed: Vec<u32>,
}

const POSITIVE_BIT: u32 = 1 << 30;
const GROUP_END_BIT: u32 = 1 << 31;
const INDEX_MASK: u32 = POSITIVE_BIT - 1;

impl RankedScores {
    /// Ranks `scores` (with `positive`, both parallel to `cases`); `cases`
    /// holds each score's index into the weight vector later passed to
    /// [`RankedScores::weighted_auc`]. `None` if an index needs over 30 bits.
    pub fn new(cases: &[usize], scores: &[f64], positive: &[bool]) -> Option<Self> {
        if cases.iter().any(|&c| c > INDEX_MASK as usize) {
            return None;
        }
        let mut order: Vec<usize> = (0..cases.len()).collect();
        order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let packed = order
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                let end = order
                    .get(j + 1)
                    .is_none_or(|&next| scores[next] != scores[k]);
                // The bound was checked above.
                let index = cases[k] as u32;
                index
                    | if positive[k] { POSITIVE_BIT } else { 0 }
                    | if end { GROUP_END_BIT } else { 0 }
            })
            .collect();
        Some(Self { packed })
    }

    /// AUC when case `i` counts `weights[i]` times; `None` when the weighted
    /// sample lacks a class.
    pub fn weighted_auc(&self, weights: &[u32]) -> Option<f64> {
        let (mut group_pos, mut group_neg) = (0u64, 0u64);
        let (mut below_neg, mut total_pos) = (0u64, 0u64);
        let mut twice_wins = 0u64;
        for &p in &self.packed {
            let w = u64::from(weights[(p & INDEX_MASK) as usize]);
            if p & POSITIVE_BIT != 0 {
                group_pos += w;
            } else {
                group_neg += w;
            }
            if p & GROUP_END_BIT != 0 {
                twice_wins += group_pos * (2 * below_neg + group_neg);
                below_neg += group_neg;
                total_pos += group_pos;
                group_pos = 0;
                group_neg = 0;
            }
        }
        if total_pos == 0 || below_neg == 0 {
            return None;
        }
        Some(twice_wins as f64 / (2.0 * total_pos as f64 * below_neg as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_auc(scores: &[f64], positive: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if positive[i] && !positive[j] {
                    pairs += 1.0;
                    wins += if si > sj {
                        1.0
                    } else if si == sj {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        wins / pairs
    }

    fn sample() -> (Vec<f64>, Vec<bool>) {
        let scores = vec![0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2, 0.4, 0.65, 0.1];
        let positive = vec![
            false, false, true, true, true, true, false, false, true, true,
        ];
        (scores, positive)
    }

    #[test]
    fn midranks_average_ties() {
        assert_eq!(midranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn delong_estimate_equals_pairwise_count_with_ties() {
        let (s, p) = sample();
        let a = auc_delong(&s, &p).unwrap();
        assert!((a.estimate - brute_auc(&s, &p)).abs() < 1e-12);
        assert!(a.ci_low.unwrap() < a.estimate && a.estimate < a.ci_high.unwrap());
    }

    #[test]
    fn delong_needs_both_classes_and_two_of_each_for_the_interval() {
        assert_eq!(
            auc_delong(&[0.1, 0.2], &[false, false]),
            Err(AucUndefined::NoPositives)
        );
        assert_eq!(
            auc_delong(&[0.1, 0.2], &[true, true]),
            Err(AucUndefined::NoNegatives)
        );
        let one_pos = auc_delong(&[0.1, 0.2, 0.9], &[false, false, true]).unwrap();
        assert_eq!(one_pos.estimate, 1.0);
        assert_eq!(one_pos.ci_low, None);
    }

    #[test]
    fn weighted_auc_equals_auc_of_the_materialised_resample() {
        let (s, p) = sample();
        let cases: Vec<usize> = (0..s.len()).collect();
        let ranked = RankedScores::new(&cases, &s, &p).unwrap();
        let weights = [2u32, 0, 1, 3, 1, 0, 1, 2, 1, 1];
        let (mut rs, mut rp) = (Vec::new(), Vec::new());
        for (i, &w) in weights.iter().enumerate() {
            for _ in 0..w {
                rs.push(s[i]);
                rp.push(p[i]);
            }
        }
        let fast = ranked.weighted_auc(&weights).unwrap();
        assert!((fast - brute_auc(&rs, &rp)).abs() < 1e-12, "{fast}");
        assert!(
            ranked
                .weighted_auc(&[1, 1, 0, 0, 0, 0, 1, 1, 0, 0])
                .is_none()
        );
    }

    #[test]
    fn roc_curve_runs_from_origin_to_corner() {
        let (s, p) = sample();
        let roc = roc_curve(&s, &p);
        assert_eq!(roc.first(), Some(&RocPoint { fpr: 0.0, tpr: 0.0 }));
        assert_eq!(roc.last(), Some(&RocPoint { fpr: 1.0, tpr: 1.0 }));
        // One point per distinct score (7) plus the origin.
        assert_eq!(roc.len(), 1 + 7);
    }
}
