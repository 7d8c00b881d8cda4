//! Stratified bootstrap: patients resampled with replacement within their
//! site, replicates run in parallel, percentile intervals.

use crate::interval::BootstrapInterval;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Cases grouped by stratum (site), as indices into a weight vector.
#[derive(Debug, Clone)]
pub struct Strata {
    groups: Vec<Vec<u32>>,
    len: usize,
}

impl Strata {
    /// Groups cases `0..keys.len()` by equal key (e.g. their site).
    pub fn new<K: Ord>(keys: &[K]) -> Self {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let mut groups: Vec<Vec<u32>> = Vec::new();
        for (j, &i) in order.iter().enumerate() {
            if j == 0 || keys[order[j - 1]] != keys[i] {
                groups.push(Vec::new());
            }
            if let Some(group) = groups.last_mut() {
                // Case counts stay far below u32::MAX (checked by the caller's RankedScores).
                group.push(i as u32);
            }
        }
        Self {
            groups,
            len: keys.len(),
        }
    }

    /// Number of cases.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no cases.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `weights` with replicate `rep`'s multiplicities: each stratum of
    /// size n gets n draws with replacement from itself. Deterministic in
    /// (`seed`, `rep`), whatever the thread that runs it.
    pub fn replicate_weights(&self, seed: u64, rep: u64, weights: &mut [u32]) {
        weights.fill(0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(rep);
        for group in &self.groups {
            for _ in 0..group.len() {
                let pick = group[rng.random_range(0..group.len())];
                weights[pick as usize] += 1;
            }
        }
    }
}

/// Runs `replicates` replicates in parallel; `statistic` fills one slot per
/// metric from a weight vector (`None` where the replicate leaves it
/// undefined). Returns, per metric, the defined replicate values.
pub fn run_replicates<F>(
    strata: &Strata,
    replicates: usize,
    seed: u64,
    metrics: usize,
    statistic: F,
) -> Vec<Vec<f64>>
where
    F: Fn(&[u32], &mut [Option<f64>]) + Sync,
{
    let rows: Vec<Vec<Option<f64>>> = (0..replicates as u64)
        .into_par_iter()
        .map_init(
            || vec![0u32; strata.len()],
            |weights, rep| {
                strata.replicate_weights(seed, rep, weights);
                let mut out = vec![None; metrics];
                statistic(weights, &mut out);
                out
            },
        )
        .collect();
    (0..metrics)
        .map(|m| rows.iter().filter_map(|row| row[m]).collect())
        .collect()
}

/// The `q` quantile (0..=1) of sorted `values` by linear interpolation
/// (numpy's default); `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = q * last as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(last);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// The 2.5–97.5 % percentile interval of replicate values; `None` when empty.
pub fn percentile_interval(mut values: Vec<f64>) -> Option<BootstrapInterval> {
    values.sort_unstable_by(f64::total_cmp);
    Some(BootstrapInterval {
        ci_low: quantile(&values, 0.025)?,
        ci_high: quantile(&values, 0.975)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicates_keep_stratum_sizes_and_are_reproducible() {
        let sites = ["a", "b", "a", "c", "b", "a"];
        let strata = Strata::new(&sites);
        let mut w1 = vec![0; 6];
        let mut w2 = vec![0; 6];
        strata.replicate_weights(7, 3, &mut w1);
        strata.replicate_weights(7, 3, &mut w2);
        assert_eq!(w1, w2);
        assert_eq!(w1[0] + w1[2] + w1[5], 3);
        assert_eq!(w1[1] + w1[4], 2);
        assert_eq!(w1[3], 1);
        let differs = (0..20).any(|rep| {
            strata.replicate_weights(8, rep, &mut w2);
            strata.replicate_weights(7, rep, &mut w1);
            w1 != w2
        });
        assert!(differs);
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert!((quantile(&v, 0.025).unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn run_replicates_collects_defined_values_per_metric() {
        let strata = Strata::new(&[0, 0, 1, 1]);
        let out = run_replicates(&strata, 50, 1, 2, |w, out| {
            out[0] = Some(f64::from(w.iter().sum::<u32>()));
            out[1] = (w[0] > 0).then_some(1.0);
        });
        assert_eq!(out[0].len(), 50);
        assert!(out[0].iter().all(|&v| v == 4.0));
        assert!(out[1].len() < 50 && !out[1].is_empty());
    }
}
