//! Cohen's weighted kappa over ordered categories.

/// Disagreement weights of a weighted kappa.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KappaWeights {
    /// `|i − j|`.
    Linear,
    /// `(i − j)²`.
    Quadratic,
}

/// Weighted kappa of paired category indices (`0..k`), as scikit-learn's
/// `cohen_kappa_score`; `None` when the expected disagreement is zero (for
/// example a single category), where kappa is undefined.
pub fn weighted_kappa(
    first: &[usize],
    second: &[usize],
    k: usize,
    weights: KappaWeights,
) -> Option<f64> {
    let mut observed = vec![0.0; k * k];
    for (&a, &b) in first.iter().zip(second) {
        observed[a * k + b] += 1.0;
    }
    let total: f64 = observed.iter().sum();
    if total == 0.0 {
        return None;
    }
    let rows: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| observed[i * k + j]).sum())
        .collect();
    let cols: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| observed[i * k + j]).sum())
        .collect();
    let (mut obs_dis, mut exp_dis) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            let d = i.abs_diff(j) as f64;
            let w = match weights {
                KappaWeights::Linear => d,
                KappaWeights::Quadratic => d * d,
            };
            obs_dis += w * observed[i * k + j];
            exp_dis += w * rows[i] * cols[j] / total;
        }
    }
    if exp_dis == 0.0 {
        None
    } else {
        Some(1.0 - obs_dis / exp_dis)
    }
}

/// The large-sample standard error of a weighted kappa over a k × k table
/// of counts (rows one rater, columns the other), by Fleiss, Cohen and
/// Everitt (1969), with agreement weights 1 − d / (k − 1) (linear) or
/// 1 − d² / (k − 1)² (quadratic), as statsmodels' `cohens_kappa`; `None`
/// where kappa is undefined.
pub fn weighted_kappa_se(counts: &[Vec<u64>], weights: KappaWeights) -> Option<f64> {
    let k = counts.len();
    let n: f64 = counts.iter().flatten().map(|&c| c as f64).sum();
    if k < 2 || n == 0.0 {
        return None;
    }
    let p = |i: usize, j: usize| counts[i][j] as f64 / n;
    let rows: Vec<f64> = (0..k).map(|i| (0..k).map(|j| p(i, j)).sum()).collect();
    let cols: Vec<f64> = (0..k).map(|j| (0..k).map(|i| p(i, j)).sum()).collect();
    let span = (k - 1) as f64;
    let w = |i: usize, j: usize| {
        let d = i.abs_diff(j) as f64;
        match weights {
            KappaWeights::Linear => 1.0 - d / span,
            KappaWeights::Quadratic => 1.0 - (d * d) / (span * span),
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for (i, row) in rows.iter().enumerate() {
        for (j, col) in cols.iter().enumerate() {
            observed += w(i, j) * p(i, j);
            expected += w(i, j) * row * col;
        }
    }
    if (1.0 - expected).abs() < f64::EPSILON {
        return None;
    }
    let kappa = (observed - expected) / (1.0 - expected);
    let row_mean: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| cols[j] * w(i, j)).sum())
        .collect();
    let col_mean: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| rows[i] * w(i, j)).sum())
        .collect();
    let mut sum = 0.0;
    for (i, row) in row_mean.iter().enumerate() {
        for (j, col) in col_mean.iter().enumerate() {
            let term = w(i, j) - (row + col) * (1.0 - kappa);
            sum += p(i, j) * term * term;
        }
    }
    let shift = kappa - expected * (1.0 - kappa);
    let variance = (sum - shift * shift) / (n * (1.0 - expected).powi(2));
    Some(variance.max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_agreement_is_one_and_one_category_is_undefined() {
        let a = [0, 1, 2, 1];
        assert_eq!(weighted_kappa(&a, &a, 3, KappaWeights::Linear), Some(1.0));
        assert_eq!(
            weighted_kappa(&[0, 0], &[0, 0], 1, KappaWeights::Quadratic),
            None
        );
    }

    #[test]
    fn the_standard_error_shrinks_with_n_and_is_undefined_for_one_category() {
        let small = vec![vec![8, 2, 0], vec![2, 6, 2], vec![0, 1, 9]];
        let large: Vec<Vec<u64>> = small
            .iter()
            .map(|r| r.iter().map(|c| c * 4).collect())
            .collect();
        let se = |t: &[Vec<u64>]| weighted_kappa_se(t, KappaWeights::Linear).unwrap();
        // Same proportions, four times the cases: half the standard error.
        assert!((se(&small) / se(&large) - 2.0).abs() < 1e-12);
        assert_eq!(weighted_kappa_se(&[vec![5]], KappaWeights::Quadratic), None);
        // statsmodels 0.15 `cohens_kappa(table, wt=...).std_kappa` on `small`.
        let quadratic = weighted_kappa_se(&small, KappaWeights::Quadratic).unwrap();
        assert!(
            (se(&small) - 0.08990092642877594).abs() < 1e-12,
            "{}",
            se(&small)
        );
        assert!(
            (quadratic - 0.06347040247623967).abs() < 1e-12,
            "{quadratic}"
        );
    }

    #[test]
    fn quadratic_penalises_far_misses_more() {
        let truth = [0, 1, 2, 3, 0, 1, 2, 3];
        let pred = [0, 1, 2, 3, 3, 1, 2, 0];
        let lin = weighted_kappa(&truth, &pred, 4, KappaWeights::Linear).unwrap();
        let quad = weighted_kappa(&truth, &pred, 4, KappaWeights::Quadratic).unwrap();
        assert!(quad < lin, "{quad} {lin}");
    }
}
