//! Per-case partial aggregates that merge associatively and exactly.
//!
//! A case larger than a job is split over several jobs; each worker returns a
//! [`CasePartial`] per case part, and the coordinator merges them. Sums are
//! kept in fixed point (quantum 2⁻⁴⁰) in integers, so the merged score is
//! bit-identical whatever the split and whatever the order of arrival.

use serde::{Deserialize, Serialize};

/// Fixed-point scale of probability sums: one unit is 2⁻⁴⁰.
const FIXED_ONE: f64 = (1u64 << 40) as f64;

/// Convert a probability in [0, 1] to fixed point (clamped).
fn to_fixed(p: f32) -> u64 {
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    (f64::from(p) * FIXED_ONE).round() as u64
}

/// Running sums, maxima and count of one output head over some tiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadPartial {
    /// Fixed-point sums of each column's probability.
    pub sum: Vec<u64>,
    /// Maximum of each column, in fixed point.
    pub max: Vec<u64>,
}

impl HeadPartial {
    /// An empty aggregate of `width` columns.
    pub fn new(width: usize) -> Self {
        Self {
            sum: vec![0; width],
            max: vec![0; width],
        }
    }

    /// Fold in one tile's probabilities (must have the head's width).
    pub fn add(&mut self, probs: &[f32]) {
        debug_assert_eq!(probs.len(), self.sum.len());
        for ((s, m), p) in self.sum.iter_mut().zip(self.max.iter_mut()).zip(probs) {
            let f = to_fixed(*p);
            *s += f;
            *m = (*m).max(f);
        }
    }

    /// Merge another aggregate of the same width into this one.
    pub fn merge(&mut self, other: &HeadPartial) {
        for (s, o) in self.sum.iter_mut().zip(&other.sum) {
            *s += o;
        }
        for (m, o) in self.max.iter_mut().zip(&other.max) {
            *m = (*m).max(*o);
        }
    }

    /// Column means over `count` tiles.
    pub fn mean(&self, count: u64) -> Vec<f64> {
        self.sum
            .iter()
            .map(|s| {
                if count == 0 {
                    0.0
                } else {
                    *s as f64 / FIXED_ONE / count as f64
                }
            })
            .collect()
    }

    /// Column maxima as probabilities.
    pub fn maxima(&self) -> Vec<f64> {
        self.max.iter().map(|m| *m as f64 / FIXED_ONE).collect()
    }
}

/// Partial aggregate of one case over the tiles one job held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePartial {
    /// The archive the case belongs to.
    pub archive_id: String,
    /// The case.
    pub case_id: String,
    /// Tiles that produced an output.
    pub tiles_ok: u64,
    /// One aggregate per model output the worker reads, in card order.
    pub heads: Vec<HeadPartial>,
}

impl CasePartial {
    /// An empty aggregate for a case, with one head per output width.
    pub fn new(archive_id: &str, case_id: &str, widths: &[usize]) -> Self {
        Self {
            archive_id: archive_id.to_string(),
            case_id: case_id.to_string(),
            tiles_ok: 0,
            heads: widths.iter().map(|w| HeadPartial::new(*w)).collect(),
        }
    }

    /// Merge another part of the same case.
    pub fn merge(&mut self, other: &CasePartial) {
        self.tiles_ok += other.tiles_ok;
        for (h, o) in self.heads.iter_mut().zip(&other.heads) {
            h.merge(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merge_is_exact_whatever_the_split(
            tiles in prop::collection::vec(prop::collection::vec(0.0f32..=1.0, 3), 1..60),
            cut in 0usize..60,
        ) {
            let cut = cut.min(tiles.len());
            let mut whole = CasePartial::new("a", "c", &[3]);
            for t in &tiles { whole.heads[0].add(t); whole.tiles_ok += 1; }
            let mut left = CasePartial::new("a", "c", &[3]);
            let mut right = CasePartial::new("a", "c", &[3]);
            for t in &tiles[..cut] { left.heads[0].add(t); left.tiles_ok += 1; }
            for t in tiles[cut..].iter().rev() { right.heads[0].add(t); right.tiles_ok += 1; }
            right.merge(&left);
            prop_assert_eq!(&right, &whole);
            let mean = whole.heads[0].mean(whole.tiles_ok);
            for (j, m) in mean.iter().enumerate() {
                let direct: f64 = tiles.iter().map(|t| f64::from(t[j])).sum::<f64>() / tiles.len() as f64;
                prop_assert!((m - direct).abs() < 1e-9);
            }
        }
    }
}
