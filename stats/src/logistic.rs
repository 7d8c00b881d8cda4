//! Maximum-likelihood logistic regression by Newton–Raphson (IRLS) on
//! nalgebra, with Wald standard errors and a separation check.
//!
//! A fit that converges has a maximum-likelihood estimate, however close to
//! 0 or 1 some fitted probabilities are (steep slopes, scores of 1e-12): it
//! is returned. Separation is what makes Newton fail to converge: the data
//! admit a direction β with (2y − 1)·xᵀβ ≥ 0 for every row, along which the
//! likelihood keeps rising as the coefficients diverge. When a fit stops
//! without converging, the direction its coefficients diverged in is checked
//! for exactly that.

use nalgebra::{DMatrix, DVector};

/// Most Newton steps before a fit is declared not converged.
const MAX_ITERATIONS: usize = 100;
/// A step is converged when no coefficient moves more than this (relative).
const STEP_TOLERANCE: f64 = 1e-10;
/// A row's margin (2y − 1)·xᵀβ may fall this far below 0, relative to the
/// largest margin, and still count as on the separating side (the direction
/// of a diverging fit is known only to rounding).
const SEPARATION_TOLERANCE: f64 = 1e-6;
/// A fit whose coefficients grew no larger than this has not diverged.
const DIVERGED_NORM: f64 = 10.0;

/// A converged fit.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitFit {
    /// Coefficients, in the design matrix's column order.
    pub beta: Vec<f64>,
    /// Wald standard errors (square roots of the inverse information's diagonal).
    pub se: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
}

/// Why a fit has no usable coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitFailure {
    /// The outcome is (quasi-)perfectly predicted: maximum likelihood does not exist.
    Separation,
    /// Newton–Raphson did not converge within its step limit.
    NotConverged,
    /// The information matrix is singular (collinear or constant columns).
    Singular,
    /// Fewer rows than coefficients, or no rows.
    TooFewRows,
}

impl LogitFailure {
    /// A short reason for warnings.
    pub fn reason(self) -> &'static str {
        match self {
            LogitFailure::Separation => {
                "perfect or quasi-perfect separation (a direction of the covariates separates the outcomes; the maximum-likelihood estimate does not exist)"
            }
            LogitFailure::NotConverged => "the fit did not converge",
            LogitFailure::Singular => "the design is singular (collinear or constant covariates)",
            LogitFailure::TooFewRows => "fewer complete rows than terms",
        }
    }
}

fn sigmoid(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        eta.exp() / (1.0 + eta.exp())
    }
}

/// log(1 + e^η) without overflow.
fn softplus(eta: f64) -> f64 {
    if eta > 0.0 {
        eta + (-eta).exp().ln_1p()
    } else {
        eta.exp().ln_1p()
    }
}

fn log_likelihood(eta: &DVector<f64>, y: &[f64]) -> f64 {
    eta.iter().zip(y).map(|(e, y)| y * e - softplus(*e)).sum()
}

/// Fits `P(y = 1) = σ(offset + Xβ)`; `x` has one row per observation
/// (include a column of ones for an intercept), `y` is 0/1.
pub fn fit_logit(
    x: &DMatrix<f64>,
    y: &[f64],
    offset: Option<&[f64]>,
) -> Result<LogitFit, LogitFailure> {
    let (n, k) = x.shape();
    if n == 0 || n < k || y.len() != n || offset.is_some_and(|o| o.len() != n) {
        return Err(LogitFailure::TooFewRows);
    }
    let offset = DVector::from_iterator(n, (0..n).map(|i| offset.map_or(0.0, |o| o[i])));
    let mut beta = DVector::<f64>::zeros(k);
    let mut eta = &offset + x * &beta;
    let mut ll = log_likelihood(&eta, y);
    for iteration in 1..=MAX_ITERATIONS {
        let (gradient, information) = score_and_information(x, y, &eta);
        let chol = information.cholesky().filter(|c| well_conditioned(&c.l()));
        let Some(chol) = chol else {
            return Err(if separates(x, y, &beta) {
                LogitFailure::Separation
            } else {
                LogitFailure::Singular
            });
        };
        let step = chol.solve(&gradient);
        // Step halving keeps every iteration uphill.
        let mut scale = 1.0;
        let (mut next_beta, mut next_eta, mut next_ll);
        loop {
            next_beta = &beta + &step * scale;
            next_eta = &offset + x * &next_beta;
            next_ll = log_likelihood(&next_eta, y);
            if next_ll >= ll - 1e-12 * ll.abs() || scale < 1e-6 {
                break;
            }
            scale /= 2.0;
        }
        let moved = step
            .iter()
            .zip(next_beta.iter())
            .map(|(s, b)| (s * scale).abs() / (1.0 + b.abs()))
            .fold(0.0, f64::max);
        beta = next_beta;
        eta = next_eta;
        ll = next_ll;
        if moved < STEP_TOLERANCE {
            let (_, information) = score_and_information(x, y, &eta);
            let inverse = information.try_inverse().ok_or(LogitFailure::Singular)?;
            let se: Vec<f64> = (0..k).map(|j| inverse[(j, j)].max(0.0).sqrt()).collect();
            if se.iter().any(|s| !s.is_finite()) {
                return Err(LogitFailure::Singular);
            }
            return Ok(LogitFit {
                beta: beta.iter().copied().collect(),
                se,
                iterations: iteration,
            });
        }
    }
    Err(if separates(x, y, &beta) {
        LogitFailure::Separation
    } else {
        LogitFailure::NotConverged
    })
}

/// Whether a Cholesky factor's pivots span less than ~1e14 in condition number.
fn well_conditioned(l: &DMatrix<f64>) -> bool {
    let diagonal = l.diagonal();
    let max = diagonal.iter().copied().fold(0.0, f64::max);
    let min = diagonal.iter().copied().fold(f64::INFINITY, f64::min);
    max > 0.0 && min / max > 1e-7
}

/// Whether `beta`, the coefficients of a fit that stopped without
/// converging, have diverged along a separating direction: every row's
/// margin (2y − 1)·xᵀβ is non-negative, to rounding, and some are large.
fn separates(x: &DMatrix<f64>, y: &[f64], beta: &DVector<f64>) -> bool {
    if beta.norm() < DIVERGED_NORM {
        return false;
    }
    let margins: Vec<f64> = (x * beta)
        .iter()
        .zip(y)
        .map(|(m, y)| if *y > 0.5 { *m } else { -m })
        .collect();
    let largest = margins.iter().copied().fold(0.0, f64::max);
    largest > 0.0
        && margins
            .iter()
            .all(|m| *m >= -SEPARATION_TOLERANCE * largest)
}

/// Gradient `Xᵀ(y − p)` and information `XᵀWX` at linear predictor `eta`.
fn score_and_information(
    x: &DMatrix<f64>,
    y: &[f64],
    eta: &DVector<f64>,
) -> (DVector<f64>, DMatrix<f64>) {
    let (n, k) = x.shape();
    let mut gradient = DVector::zeros(k);
    let mut information = DMatrix::zeros(k, k);
    for i in 0..n {
        let p = sigmoid(eta[i]);
        let w = p * (1.0 - p);
        let r = y[i] - p;
        for a in 0..k {
            let xa = x[(i, a)];
            gradient[a] += xa * r;
            for b in 0..=a {
                information[(a, b)] += w * xa * x[(i, b)];
            }
        }
    }
    for a in 0..k {
        for b in 0..a {
            information[(b, a)] = information[(a, b)];
        }
    }
    (gradient, information)
}

/// Two-sided Wald p-value of `z`.
pub fn wald_p_value(z: f64) -> f64 {
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_the_log_odds() {
        let y = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0];
        let x = DMatrix::from_element(8, 1, 1.0);
        let fit = fit_logit(&x, &y, None).unwrap();
        assert!((fit.beta[0] - (5.0f64 / 3.0).ln()).abs() < 1e-9);
        // Var = 1/(n p (1 − p)).
        assert!((fit.se[0] - (1.0 / (8.0 * 0.625 * 0.375f64)).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn separated_data_is_reported_not_fitted() {
        let x = DMatrix::from_row_slice(
            6,
            2,
            &[1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 4.0, 1.0, 5.0, 1.0, 6.0],
        );
        let y = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(fit_logit(&x, &y, None), Err(LogitFailure::Separation));
    }

    #[test]
    fn quasi_separated_data_is_reported_not_fitted() {
        // Both classes only at x = 3: x ≥ 3 predicts y = 1 up to that tie.
        let x = DMatrix::from_row_slice(
            6,
            2,
            &[1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 3.0, 1.0, 4.0, 1.0, 5.0],
        );
        let y = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(fit_logit(&x, &y, None), Err(LogitFailure::Separation));
    }

    #[test]
    fn a_steep_fit_with_probabilities_near_0_and_1_is_estimated() {
        // The classes overlap at x = 0 and 1, so the estimate exists; the
        // ends are fitted within 1e-8 of 0 and 1.
        let xs = [-60.0, -40.0, -20.0, 0.0, 0.0, 1.0, 1.0, 20.0, 40.0, 60.0];
        let y = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let x = DMatrix::from_fn(xs.len(), 2, |r, c| if c == 0 { 1.0 } else { xs[r] });
        let fit = fit_logit(&x, &y, None).expect("the estimate exists");
        let p_low = sigmoid(fit.beta[0] + fit.beta[1] * -60.0);
        assert!(p_low < 1e-8, "fitted {p_low}");
        // The score equations hold: Σ (y − p) = 0 and Σ x (y − p) = 0.
        let residual = |weight: &dyn Fn(f64) -> f64| -> f64 {
            xs.iter()
                .zip(&y)
                .map(|(x, y)| weight(*x) * (y - sigmoid(fit.beta[0] + fit.beta[1] * x)))
                .sum()
        };
        assert!(residual(&|_| 1.0).abs() < 1e-9 && residual(&|x| x).abs() < 1e-8);
    }

    #[test]
    fn collinear_columns_are_singular() {
        let x = DMatrix::from_row_slice(
            4,
            3,
            &[1.0, 1.0, 2.0, 1.0, 2.0, 4.0, 1.0, 3.0, 6.0, 1.0, 4.0, 8.0],
        );
        let y = [0.0, 1.0, 0.0, 1.0];
        assert_eq!(fit_logit(&x, &y, None), Err(LogitFailure::Singular));
    }

    #[test]
    fn wald_p_of_1_96_is_five_percent() {
        assert!((wald_p_value(1.959964) - 0.05).abs() < 1e-6);
    }
}
