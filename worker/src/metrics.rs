//! The worker's Prometheus metrics (prefix `nodal_worker_`, units in the
//! names). Created once per registry by the caller and cloned into every
//! worker of the process: several workers share the same series.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// Buckets of per-stage durations, seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of batch sizes, tiles.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Buckets of batch fill ratios.
const FILL_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 0.75, 0.9, 1.0];

/// Outcome labels of `nodal_worker_jobs_total`.
pub mod job_outcome {
    /// Result published and job acknowledged.
    pub const ANSWERED: &str = "answered";
    /// Job returned to the queue (transient failure or shutdown).
    pub const REQUEUED: &str = "requeued";
    /// Job sent to the dead-letter queue.
    pub const DEAD_LETTERED: &str = "dead_lettered";
    /// Job handed back to the queue after a store outage.
    pub const HANDED_BACK: &str = "handed_back";
    /// Job dropped unrun: its run had finished.
    pub const RUN_FINISHED: &str = "run_finished";
    /// Job dropped unrun: its run was cancelled.
    pub const RUN_CANCELLED: &str = "run_cancelled";
    /// Every outcome, to start their series at 0.
    pub const ALL: [&str; 6] = [
        ANSWERED,
        REQUEUED,
        DEAD_LETTERED,
        HANDED_BACK,
        RUN_FINISHED,
        RUN_CANCELLED,
    ];
}

/// Outcome labels of `nodal_worker_tiles_total`.
pub mod tile_outcome {
    /// The tile has a model output.
    pub const OK: &str = "ok";
    /// The tile could not be fetched.
    pub const FETCH_FAILED: &str = "fetch_failed";
    /// The tile could not be decoded.
    pub const DECODE_FAILED: &str = "decode_failed";
    /// Inference failed for the tile.
    pub const INFER_FAILED: &str = "infer_failed";
    /// Every outcome, to start their series at 0.
    pub const ALL: [&str; 4] = [OK, FETCH_FAILED, DECODE_FAILED, INFER_FAILED];
}

/// Operation labels of the `nodal_worker_store_*` counters.
pub const STORE_OPS: [&str; 6] = ["get", "get_range", "head", "list", "put", "delete"];

/// Metrics of the workers of one process. Every labelled series with a
/// closed set of labels starts at 0, so that `increase()` in an alert sees
/// the first event.
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    /// Jobs settled, by outcome (`answered`, `requeued`, `dead_lettered`).
    pub jobs: IntCounterVec,
    /// Tiles of answered jobs, by outcome (`ok`, `fetch_failed`, `decode_failed`, `infer_failed`).
    pub tiles: IntCounterVec,
    /// Messages sent to the dead-letter queue, by reason.
    pub dead_lettered: IntCounterVec,
    /// Tiles per inference batch.
    pub batch_size: Histogram,
    /// Tiles per batch over the batch size.
    pub batch_fill_ratio: Histogram,
    /// Time a decoded tile waits for its batch to be sent to inference.
    pub queue_wait_seconds: Histogram,
    /// Time to fetch one range of tiles (retries included).
    pub fetch_seconds: Histogram,
    /// Store requests made, by operation (`get`, `get_range`, `head`, …).
    pub store_requests: IntCounterVec,
    /// Bytes read from or written to the store, by operation.
    pub store_bytes: IntCounterVec,
    /// Store calls that failed (after the store's own retries), by operation.
    pub store_errors: IntCounterVec,
    /// Time to decode one tile.
    pub decode_seconds: Histogram,
    /// Time to run one batch through the model.
    pub infer_seconds: Histogram,
    /// Time to publish one result (confirm and retries included).
    pub publish_seconds: Histogram,
    /// Time to fetch, verify and load a model.
    pub model_load_seconds: Histogram,
    /// Jobs received and not yet settled.
    pub in_flight_jobs: IntGauge,
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
}

impl WorkerMetrics {
    /// Create the metrics and register them in `registry` (once per registry).
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            jobs: IntCounterVec::new(
                Opts::new("nodal_worker_jobs_total", "Jobs settled, by outcome."),
                &["outcome"],
            )?,
            tiles: IntCounterVec::new(
                Opts::new(
                    "nodal_worker_tiles_total",
                    "Tiles of answered jobs, by outcome.",
                ),
                &["outcome"],
            )?,
            dead_lettered: IntCounterVec::new(
                Opts::new(
                    "nodal_worker_dead_lettered_total",
                    "Messages the worker sent to the dead-letter queue, by reason.",
                ),
                &["reason"],
            )?,
            batch_size: histogram(
                "nodal_worker_batch_size",
                "Tiles per inference batch.",
                BATCH_BUCKETS,
            )?,
            batch_fill_ratio: histogram(
                "nodal_worker_batch_fill_ratio",
                "Tiles per inference batch over the batch size.",
                FILL_BUCKETS,
            )?,
            queue_wait_seconds: histogram(
                "nodal_worker_queue_wait_seconds",
                "Time a decoded tile waits for its batch to go to inference.",
                SECONDS_BUCKETS,
            )?,
            fetch_seconds: histogram(
                "nodal_worker_fetch_seconds",
                "Time to fetch one range of tiles from the store, retries included.",
                SECONDS_BUCKETS,
            )?,
            store_requests: IntCounterVec::new(
                Opts::new(
                    "nodal_worker_store_requests_total",
                    "Store requests made (each retry counted), by operation.",
                ),
                &["op"],
            )?,
            store_bytes: IntCounterVec::new(
                Opts::new(
                    "nodal_worker_store_bytes_total",
                    "Bytes read from or written to the store, by operation.",
                ),
                &["op"],
            )?,
            store_errors: IntCounterVec::new(
                Opts::new(
                    "nodal_worker_store_errors_total",
                    "Store calls that failed after the store's own retries, by operation.",
                ),
                &["op"],
            )?,
            decode_seconds: histogram(
                "nodal_worker_decode_seconds",
                "Time to decode one tile.",
                SECONDS_BUCKETS,
            )?,
            infer_seconds: histogram(
                "nodal_worker_infer_seconds",
                "Time to run one batch through the model.",
                SECONDS_BUCKETS,
            )?,
            publish_seconds: histogram(
                "nodal_worker_publish_seconds",
                "Time to publish one result, confirm and retries included.",
                SECONDS_BUCKETS,
            )?,
            model_load_seconds: histogram(
                "nodal_worker_model_load_seconds",
                "Time to fetch, verify and load a model.",
                SECONDS_BUCKETS,
            )?,
            in_flight_jobs: IntGauge::new(
                "nodal_worker_in_flight_jobs",
                "Jobs received and not yet settled.",
            )?,
        };
        for outcome in job_outcome::ALL {
            m.jobs.with_label_values(&[outcome]);
        }
        for outcome in tile_outcome::ALL {
            m.tiles.with_label_values(&[outcome]);
        }
        for op in STORE_OPS {
            m.store_requests.with_label_values(&[op]);
            m.store_bytes.with_label_values(&[op]);
            m.store_errors.with_label_values(&[op]);
        }
        registry.register(Box::new(m.jobs.clone()))?;
        registry.register(Box::new(m.tiles.clone()))?;
        registry.register(Box::new(m.dead_lettered.clone()))?;
        registry.register(Box::new(m.batch_size.clone()))?;
        registry.register(Box::new(m.batch_fill_ratio.clone()))?;
        registry.register(Box::new(m.queue_wait_seconds.clone()))?;
        registry.register(Box::new(m.fetch_seconds.clone()))?;
        registry.register(Box::new(m.store_requests.clone()))?;
        registry.register(Box::new(m.store_bytes.clone()))?;
        registry.register(Box::new(m.store_errors.clone()))?;
        registry.register(Box::new(m.decode_seconds.clone()))?;
        registry.register(Box::new(m.infer_seconds.clone()))?;
        registry.register(Box::new(m.publish_seconds.clone()))?;
        registry.register(Box::new(m.model_load_seconds.clone()))?;
        registry.register(Box::new(m.in_flight_jobs.clone()))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_per_registry_with_units_in_names() {
        let registry = Registry::new();
        let m = WorkerMetrics::register(&registry).expect("registers");
        m.jobs.with_label_values(&[job_outcome::ANSWERED]).inc();
        m.infer_seconds.observe(0.2);
        assert!(
            WorkerMetrics::register(&registry).is_err(),
            "a second registration is refused"
        );
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("nodal_worker_")),
            "{names:?}"
        );
        assert!(
            names.contains(&"nodal_worker_infer_seconds".to_string()),
            "{names:?}"
        );
        assert!(
            WorkerMetrics::register(&Registry::new()).is_ok(),
            "another registry takes them again"
        );
    }

    #[test]
    fn closed_label_sets_are_exported_at_zero_before_any_event() {
        let registry = Registry::new();
        WorkerMetrics::register(&registry).expect("registers");
        let families = registry.gather();
        let series = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map_or(0, |f| f.get_metric().len())
        };
        assert_eq!(series("nodal_worker_jobs_total"), job_outcome::ALL.len());
        assert_eq!(series("nodal_worker_tiles_total"), tile_outcome::ALL.len());
        assert_eq!(series("nodal_worker_store_errors_total"), STORE_OPS.len());
    }
}
