//! The coordinator's Prometheus metrics (prefix `nodal_coordinator_`).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Metrics of one coordinator, registered in a caller-supplied registry.
#[derive(Debug, Clone)]
pub struct CoordinatorMetrics {
    /// Results received, by outcome (`new`, `duplicate`, `late`).
    pub results: IntCounterVec,
    /// Messages sent to the dead-letter queue, by reason.
    pub dead_lettered: IntCounterVec,
    /// Job publications (first ones).
    pub jobs_published: IntCounter,
    /// Job re-publications after a stall.
    pub jobs_republished: IntCounter,
    /// Jobs given up on.
    pub jobs_failed: IntCounter,
    /// Tiles with an output, over all runs.
    pub tiles_done: IntCounter,
    /// Runs by state.
    pub runs: IntGaugeVec,
    /// 1 while this coordinator holds the lease and drives runs, else 0.
    pub leader: IntGauge,
    /// Time to write a run's result files.
    pub finalize_seconds: Histogram,
}

impl CoordinatorMetrics {
    /// Create the metrics and register them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            results: IntCounterVec::new(
                Opts::new(
                    "nodal_coordinator_results_total",
                    "Job results received, by outcome.",
                ),
                &["outcome"],
            )?,
            dead_lettered: IntCounterVec::new(
                Opts::new(
                    "nodal_coordinator_dead_lettered_total",
                    "Messages the coordinator sent to the dead-letter queue, by reason.",
                ),
                &["reason"],
            )?,
            jobs_published: IntCounter::new(
                "nodal_coordinator_jobs_published_total",
                "Jobs published.",
            )?,
            jobs_republished: IntCounter::new(
                "nodal_coordinator_jobs_republished_total",
                "Jobs published again after a stall.",
            )?,
            jobs_failed: IntCounter::new(
                "nodal_coordinator_jobs_failed_total",
                "Jobs given up on after repeated publications.",
            )?,
            tiles_done: IntCounter::new(
                "nodal_coordinator_tiles_done_total",
                "Tiles with a model output.",
            )?,
            runs: IntGaugeVec::new(
                Opts::new(
                    "nodal_coordinator_runs",
                    "Runs known to this coordinator, by state.",
                ),
                &["state"],
            )?,
            leader: IntGauge::new(
                "nodal_coordinator_leader",
                "1 while this coordinator holds the lease and drives runs; 0 while it stands by.",
            )?,
            finalize_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "nodal_coordinator_finalize_seconds",
                    "Time to write a run's result files.",
                )
                .buckets(vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
            )?,
        };
        registry.register(Box::new(m.results.clone()))?;
        registry.register(Box::new(m.leader.clone()))?;
        registry.register(Box::new(m.dead_lettered.clone()))?;
        registry.register(Box::new(m.jobs_published.clone()))?;
        registry.register(Box::new(m.jobs_republished.clone()))?;
        registry.register(Box::new(m.jobs_failed.clone()))?;
        registry.register(Box::new(m.tiles_done.clone()))?;
        registry.register(Box::new(m.runs.clone()))?;
        registry.register(Box::new(m.finalize_seconds.clone()))?;
        Ok(m)
    }
}
