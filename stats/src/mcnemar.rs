//! The exact McNemar test on paired correct/incorrect outcomes.

use statrs::distribution::{Binomial, DiscreteCDF};

/// Two-sided exact McNemar p-value from the discordant counts `b` and `c`:
/// `min(1, 2 · P(X ≤ min(b, c)))` with `X ~ Binomial(b + c, 1/2)`; 1 when
/// there are no discordant pairs.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    match Binomial::new(0.5, n) {
        Ok(binomial) => (2.0 * binomial.cdf(b.min(c))).min(1.0),
        // p = 0.5 and n > 0 are always valid parameters.
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_binomial_tails() {
        // b = 1, c = 9: 2 · (1 + 10) / 1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }
}
