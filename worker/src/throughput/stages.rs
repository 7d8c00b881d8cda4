//! Per-stage totals read from a worker's metrics, so a stretch of a run can
//! be measured as the difference of two snapshots.

use crate::metrics::WorkerMetrics;
use prometheus::Histogram;
use serde::Serialize;

/// Observations of one histogram: how many, and their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTotals {
    /// Observations (tiles, batches or jobs, by stage).
    pub count: u64,
    /// Their sum (seconds for timings, tiles for batch sizes).
    pub sum: f64,
}

impl StageTotals {
    fn of(histogram: &Histogram) -> Self {
        Self {
            count: histogram.get_sample_count(),
            sum: histogram.get_sample_sum(),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            count: self.count.saturating_sub(before.count),
            sum: (self.sum - before.sum).max(0.0),
        }
    }

    /// The mean observation; zero when there is none.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// The stage histograms of [`WorkerMetrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSnapshot {
    /// One ranged read of a shard, retries included (seconds).
    pub fetch: StageTotals,
    /// One tile's decode on the pool (seconds).
    pub decode: StageTotals,
    /// A decoded tile's wait for its batch to go (seconds).
    pub queue_wait: StageTotals,
    /// One batch through the model (seconds).
    pub infer: StageTotals,
    /// One result's publish, confirm included (seconds).
    pub publish: StageTotals,
    /// Tiles per batch.
    pub batch_size: StageTotals,
    /// Tiles per batch over the batch size.
    pub batch_fill: StageTotals,
}

impl StageSnapshot {
    /// Read the histograms now.
    pub fn of(metrics: &WorkerMetrics) -> Self {
        Self {
            fetch: StageTotals::of(&metrics.fetch_seconds),
            decode: StageTotals::of(&metrics.decode_seconds),
            queue_wait: StageTotals::of(&metrics.queue_wait_seconds),
            infer: StageTotals::of(&metrics.infer_seconds),
            publish: StageTotals::of(&metrics.publish_seconds),
            batch_size: StageTotals::of(&metrics.batch_size),
            batch_fill: StageTotals::of(&metrics.batch_fill_ratio),
        }
    }

    /// What was observed between `before` and this snapshot.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            fetch: self.fetch.since(before.fetch),
            decode: self.decode.since(before.decode),
            queue_wait: self.queue_wait.since(before.queue_wait),
            infer: self.infer.since(before.infer),
            publish: self.publish.since(before.publish),
            batch_size: self.batch_size.since(before.batch_size),
            batch_fill: self.batch_fill.since(before.batch_fill),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_difference_keeps_only_the_stretch_between() {
        let metrics = WorkerMetrics::register(&prometheus::Registry::new()).expect("metrics");
        metrics.decode_seconds.observe(1.0);
        let before = StageSnapshot::of(&metrics);
        metrics.decode_seconds.observe(0.25);
        metrics.decode_seconds.observe(0.75);
        metrics.batch_fill_ratio.observe(0.5);
        let stretch = StageSnapshot::of(&metrics).since(&before);
        assert_eq!(stretch.decode.count, 2);
        assert!((stretch.decode.mean() - 0.5).abs() < 1e-12);
        assert!((stretch.batch_fill.mean() - 0.5).abs() < 1e-12);
        assert_eq!(stretch.infer, StageTotals::default());
        assert_eq!(stretch.infer.mean(), 0.0);
    }
}
