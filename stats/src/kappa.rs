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
    fn quadratic_penalises_far_misses_more() {
        let truth = [0, 1, 2, 3, 0, 1, 2, 3];
        let pred = [0, 1, 2, 3, 3, 1, 2, 0];
        let lin = weighted_kappa(&truth, &pred, 4, KappaWeights::Linear).unwrap();
        let quad = weighted_kappa(&truth, &pred, 4, KappaWeights::Quadratic).unwrap();
        assert!(quad < lin, "{quad} {lin}");
    }
}
