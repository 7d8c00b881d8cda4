//! `PipelineArgs`: how the worker pipelines of one process take jobs, batch
//! tiles and decode them (worker, bench, demo).

use clap::Args;
use nodal_worker::WorkerConfig;
use nodal_worker::config::{
    DEFAULT_BATCH_DEADLINE, DEFAULT_FETCH_CONCURRENCY, DEFAULT_PIPELINES, DEFAULT_PREFETCH,
};
use std::time::Duration;

/// The settings every pipeline of a process shares.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Jobs held unacknowledged at once, per pipeline (the broker prefetch;
    /// bounds the jobs in flight).
    #[arg(long, env = "NODAL_PREFETCH", default_value_t = DEFAULT_PREFETCH)]
    pub prefetch: u16,
    /// Tiles per inference batch [default: the model card's preferred batch].
    #[arg(long, env = "NODAL_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Milliseconds a partial batch waits for more tiles, from its first tile.
    #[arg(long, env = "NODAL_BATCH_DEADLINE_MS", default_value_t = DEFAULT_BATCH_DEADLINE.as_millis() as u64)]
    pub batch_deadline_ms: u64,
    /// Tiles being decoded or waiting for their batch at once, over all jobs of a pipeline.
    #[arg(long, env = "NODAL_FETCH_CONCURRENCY", default_value_t = DEFAULT_FETCH_CONCURRENCY)]
    pub fetch_concurrency: usize,
    /// Threads decoding tiles (0: one per core), shared out among the pipelines.
    #[arg(long, env = "NODAL_DECODE_THREADS", default_value_t = 0)]
    pub decode_threads: usize,
    /// Independent pipelines (consumer, batcher, model runs) in this process.
    /// On CPU, one per core overlaps one pipeline's inference with another's
    /// decoding (docs/benchmarks.md); each holds up to --prefetch jobs
    /// [default: 1; `nodal demo`: one per core]. `--workers` is an alias.
    #[arg(long, alias = "workers", env = "NODAL_WORKER_PIPELINES")]
    pub pipelines: Option<usize>,
}

impl PipelineArgs {
    /// `--pipelines`, or [`DEFAULT_PIPELINES`].
    pub fn pipelines(&self) -> usize {
        self.pipelines.unwrap_or(DEFAULT_PIPELINES)
    }

    /// The worker settings these flags describe for one pipeline named `worker_id`.
    pub fn worker_config(&self, worker_id: impl Into<String>) -> WorkerConfig {
        let mut config = WorkerConfig::new(worker_id);
        config.prefetch = self.prefetch;
        config.batch_size = self.batch_size;
        config.batch_deadline = Duration::from_millis(self.batch_deadline_ms);
        config.fetch_concurrency = self.fetch_concurrency;
        config.decode_threads = self.decode_threads;
        config
    }
}
