//! The worker's settings: one struct, with the defaults the CLI shows.

use crate::error::WorkerError;
use nodal_common::retry::RetryPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// Default jobs held unacknowledged at once.
pub const DEFAULT_PREFETCH: u16 = 4;
/// Default wait for a partial batch to fill, from its first tile.
pub const DEFAULT_BATCH_DEADLINE: Duration = Duration::from_millis(10);
/// Default tiles being fetched or decoded at once, over all jobs.
pub const DEFAULT_FETCH_CONCURRENCY: usize = 32;
/// Default time in-flight jobs get to finish after shutdown is asked for.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(25);
/// Default time a job interrupted by store outages keeps being handed back
/// to the queue, from the first outage, before its unread tiles are
/// recorded as failures (below the coordinator's default job deadline).
pub const DEFAULT_TRANSIENT_DEADLINE: Duration = Duration::from_secs(20 * 60);
/// Default pause before a job interrupted by a store outage is handed back.
pub const DEFAULT_HAND_BACK_PAUSE: Duration = Duration::from_secs(5);
/// Default independent pipelines in one worker process.
pub const DEFAULT_PIPELINES: usize = 1;

/// `threads` (0: one per core) shared out among `n` pipelines, at least one each.
pub fn share_threads(threads: usize, n: usize) -> usize {
    let total = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |c| c.get())
    } else {
        threads
    };
    (total / n.max(1)).max(1)
}

/// The settings of each of `n` pipelines of one process built from `one`:
/// ids `<id>-p<i>` and the decode threads shared out (`n == 1`: `one`).
pub fn pipeline_configs(one: &WorkerConfig, n: usize) -> Result<Vec<WorkerConfig>, WorkerError> {
    if n == 0 {
        return Err(WorkerError::Config("--pipelines must be at least 1".into()));
    }
    if n == 1 {
        return Ok(vec![one.clone()]);
    }
    let decode = share_threads(one.decode_threads, n);
    Ok((0..n)
        .map(|i| {
            let mut config = one.clone();
            config.worker_id = format!("{}-p{i}", one.worker_id);
            config.decode_threads = decode;
            config
        })
        .collect())
}

/// How a worker runs. Build with [`WorkerConfig::new`] and change fields.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Identity written into every result (`hostname-pid` in the CLI).
    pub worker_id: String,
    /// Jobs held unacknowledged at once (at least 1): the broker's prefetch,
    /// and so the bound on jobs in flight.
    pub prefetch: u16,
    /// Tiles per inference batch; `None`: the model card's `preferred_batch`.
    pub batch_size: Option<usize>,
    /// How long a partial batch waits for more tiles, from its first tile.
    pub batch_deadline: Duration,
    /// Tiles being decoded or waiting for their batch at once, over all
    /// jobs (at least 1); a job's shard ranges are read as it starts.
    pub fetch_concurrency: usize,
    /// Threads of the decode pool; 0: one per core.
    pub decode_threads: usize,
    /// Time in-flight jobs get to finish after shutdown; what is left is
    /// returned to the queue.
    pub grace_period: Duration,
    /// Folders searched for `<name>/card.json` before the object store; a
    /// model found there is used only when its hash is the job's.
    pub model_dirs: Vec<PathBuf>,
    /// Retries of transient store errors (tiles, cards, models, manifests).
    pub store_retry: RetryPolicy,
    /// Retries of transient errors publishing a result.
    pub publish_retry: RetryPolicy,
    /// How long, from its first store outage, a job is handed back to the
    /// queue instead of being answered with its unread tiles as failures.
    pub transient_deadline: Duration,
    /// Pause before a job interrupted by a store outage is handed back.
    pub hand_back_pause: Duration,
}

impl WorkerConfig {
    /// The defaults, with the given worker id.
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            prefetch: DEFAULT_PREFETCH,
            batch_size: None,
            batch_deadline: DEFAULT_BATCH_DEADLINE,
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            decode_threads: 0,
            grace_period: DEFAULT_GRACE_PERIOD,
            model_dirs: Vec::new(),
            // At least 3.9 s (at most 7.75 s) of waiting over the attempts,
            // on top of the S3 client's own retries: a store that restarts
            // in a few seconds costs no tile.
            store_retry: RetryPolicy {
                max_attempts: 6,
                base_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(4),
            },
            publish_retry: RetryPolicy::default(),
            transient_deadline: DEFAULT_TRANSIENT_DEADLINE,
            hand_back_pause: DEFAULT_HAND_BACK_PAUSE,
        }
    }

    /// Refuse settings the pipeline cannot run with.
    pub fn validate(&self) -> Result<(), WorkerError> {
        let problem = if self.worker_id.trim().is_empty() {
            Some("the worker id is empty".to_string())
        } else if self.prefetch == 0 {
            Some("prefetch must be at least 1 (0 would hold unboundedly many jobs)".into())
        } else if self.batch_size == Some(0) {
            Some("batch size must be at least 1".into())
        } else if self.fetch_concurrency == 0 {
            Some("fetch concurrency must be at least 1".into())
        } else if self.store_retry.max_attempts == 0 || self.publish_retry.max_attempts == 0 {
            Some("retry policies need at least one attempt".into())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(WorkerError::Config(p)))
    }

    /// Threads of the decode pool: the setting, or one per core.
    pub fn decode_threads(&self) -> usize {
        if self.decode_threads > 0 {
            self.decode_threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeroes_are_refused() {
        let config = WorkerConfig::new("w1");
        assert!(config.validate().is_ok());
        assert!(config.decode_threads() >= 1);
        for broken in [
            WorkerConfig {
                prefetch: 0,
                ..config.clone()
            },
            WorkerConfig {
                batch_size: Some(0),
                ..config.clone()
            },
            WorkerConfig {
                fetch_concurrency: 0,
                ..config.clone()
            },
            WorkerConfig {
                worker_id: " ".into(),
                ..config.clone()
            },
        ] {
            let err = broken.validate().expect_err("refused");
            assert!(matches!(err, WorkerError::Config(_)), "{err}");
        }
    }
}
