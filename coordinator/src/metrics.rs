//! The coordinator's Prometheus metrics (prefix `nodal_coordinator_`).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Outcome labels of `nodal_coordinator_results_total`.
pub mod result_outcome {
    /// The first result of a job of a running run.
    pub const NEW: &str = "new";
    /// A second result of a job already answered.
    pub const DUPLICATE: &str = "duplicate";
    /// A result of a run that has already ended.
    pub const LATE: &str = "late";
    /// Every outcome, to start their series at 0.
    pub const ALL: [&str; 3] = [NEW, DUPLICATE, LATE];
}

/// Reason labels of `nodal_coordinator_dead_lettered_total`.
pub mod dead_reason {
    /// A job (not a result) on the results queue.
    pub const WRONG_KIND: &str = "wrong_kind";
    /// A message that does not decode.
    pub const UNDECODABLE: &str = "undecodable";
    /// A result naming a job its run does not have.
    pub const UNKNOWN_JOB: &str = "unknown_job";
    /// A result of a run the coordinator never had.
    pub const UNKNOWN_RUN: &str = "unknown_run";
    /// Every reason, to start their series at 0.
    pub const ALL: [&str; 4] = [WRONG_KIND, UNDECODABLE, UNKNOWN_JOB, UNKNOWN_RUN];
}

/// State labels of `nodal_coordinator_runs`.
pub const RUN_STATES: [&str; 5] = crate::run::RunState::NAMES;

/// Metrics of one coordinator, registered in a caller-supplied registry.
/// Every labelled series it can have starts at 0, so that `increase()` in an
/// alert sees the first event and a dashboard has every line from the start.
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
        for outcome in result_outcome::ALL {
            m.results.with_label_values(&[outcome]);
        }
        for reason in dead_reason::ALL {
            m.dead_lettered.with_label_values(&[reason]);
        }
        for state in RUN_STATES {
            m.runs.with_label_values(&[state]);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_label_sets_are_exported_at_zero_before_any_event() {
        let registry = Registry::new();
        CoordinatorMetrics::register(&registry).expect("registers");
        let families = registry.gather();
        let series = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map_or(0, |f| f.get_metric().len())
        };
        assert_eq!(series("nodal_coordinator_results_total"), 3);
        assert_eq!(series("nodal_coordinator_dead_lettered_total"), 4);
        assert_eq!(series("nodal_coordinator_runs"), RUN_STATES.len());
    }
}
