//! End-to-end throughput: the real worker service over a store and a broker,
//! timed from the publish of the first job to the last result.

use super::ThroughputError;
use super::cpu::{Stopwatch, Throughput};
use super::memory::{MemoryUse, peak_rss_bytes, reset_peak_rss, rss_bytes};
use super::stages::StageSnapshot;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::service::{WorkerDeps, WorkerSummary, run_worker};
use bytes::Bytes;
use nodal_common::broker::{Broker, Subscription};
use nodal_types::wire::{self, Job, Message};
use std::collections::HashSet;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Longest wait for the next result before a measurement is abandoned.
const STALL: Duration = Duration::from_secs(120);

/// The jobs of one end-to-end measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Answered before the clock starts: loads the model, starts the pools.
    pub warmup: Job,
    /// The timed jobs (ids distinct from each other and from the warm-up's).
    pub jobs: Vec<Job>,
}

impl Workload {
    /// Tiles over the timed jobs.
    pub fn tile_count(&self) -> usize {
        self.jobs.iter().map(Job::tile_count).sum()
    }
}

/// What one end-to-end measurement saw.
#[derive(Debug, Clone, PartialEq)]
pub struct EndToEnd {
    /// Tiles of the timed jobs with a model output, from the first publish
    /// to the last result.
    pub throughput: Throughput,
    /// Tiles of the timed jobs recorded as failures.
    pub tiles_failed: u64,
    /// The first failure's reason, if any.
    pub first_failure: Option<String>,
    /// The workers' stage histograms over the timed stretch.
    pub stages: StageSnapshot,
    /// The process's memory.
    pub memory: MemoryUse,
}

impl EndToEnd {
    /// Tiles with an output per second.
    pub fn tiles_per_s(&self) -> f64 {
        self.throughput.tiles_per_s()
    }
}

/// Start one worker per config over `deps`, answer the warm-up job, then
/// publish the timed jobs and wait for all their results; stop the workers.
/// Results of other jobs on the results queue are acked and ignored.
pub async fn end_to_end(
    deps: &WorkerDeps,
    configs: &[WorkerConfig],
    workload: &Workload,
) -> Result<EndToEnd, ThroughputError> {
    let before_bytes = rss_bytes();
    let shutdown = CancellationToken::new();
    let mut workers = JoinSet::new();
    for config in configs {
        workers.spawn(run_worker(config.clone(), deps.clone(), shutdown.clone()));
    }
    let measured = measure(deps, workload, before_bytes, &mut workers).await;
    shutdown.cancel();
    while let Some(ended) = workers.join_next().await {
        let ended = ended.map_err(|e| ThroughputError::Stalled(format!("a worker task: {e}")));
        if let (Ok(_), Err(e)) = (&measured, ended.and_then(|r| r.map_err(Into::into))) {
            return Err(e);
        }
    }
    measured
}

type Workers = JoinSet<Result<WorkerSummary, WorkerError>>;

async fn measure(
    deps: &WorkerDeps,
    workload: &Workload,
    before_bytes: u64,
    workers: &mut Workers,
) -> Result<EndToEnd, ThroughputError> {
    let broker = deps.broker.as_ref();
    let published = deps.metrics.publish_seconds.get_sample_count();
    let mut results = broker.subscribe(&broker.queues().results, 0).await?;
    publish(broker, &workload.warmup).await?;
    let warmup = HashSet::from([workload.warmup.job_id]);
    collect(results.as_mut(), warmup, workers).await?;
    publishes_recorded(deps, published + 1).await;

    let after_warmup_bytes = rss_bytes();
    let peak_reset = reset_peak_rss();
    let before = StageSnapshot::of(&deps.metrics);
    let watch = Stopwatch::start();
    for job in &workload.jobs {
        publish(broker, job).await?;
    }
    let expected = workload.jobs.iter().map(|j| j.job_id).collect();
    let tally = collect(results.as_mut(), expected, workers).await?;
    let throughput = watch.stop(tally.ok);
    publishes_recorded(deps, before.publish.count + workload.jobs.len() as u64).await;
    Ok(EndToEnd {
        throughput,
        tiles_failed: tally.failed,
        first_failure: tally.first_failure,
        stages: StageSnapshot::of(&deps.metrics).since(&before),
        memory: MemoryUse {
            before_bytes,
            after_warmup_bytes,
            end_bytes: rss_bytes(),
            peak_bytes: peak_rss_bytes(),
            peak_reset,
        },
    })
}

/// Wait (briefly) until the workers have recorded `count` result publishes:
/// a worker times its publish after the broker has taken the result, so
/// the result can arrive here before its timing does.
async fn publishes_recorded(deps: &WorkerDeps, count: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while deps.metrics.publish_seconds.get_sample_count() < count
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn publish(broker: &dyn Broker, job: &Job) -> Result<(), ThroughputError> {
    let body = Bytes::from(wire::encode(&Message::Job(job.clone()))?);
    broker.publish(&broker.queues().jobs, body).await?;
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    first_failure: Option<String>,
}

/// Take results until every job of `expected` has one.
async fn collect(
    results: &mut dyn Subscription,
    mut expected: HashSet<Uuid>,
    workers: &mut Workers,
) -> Result<Tally, ThroughputError> {
    let mut tally = Tally::default();
    let total = expected.len();
    while !expected.is_empty() {
        let delivery = tokio::select! {
            delivery = results.next() => delivery.ok_or_else(|| {
                ThroughputError::Stalled("the results subscription closed".into())
            })?,
            Some(ended) = workers.join_next() => {
                let why = match ended {
                    Ok(Ok(_)) => "stopped".to_string(),
                    Ok(Err(e)) => format!("failed: {e}"),
                    Err(e) => format!("ended: {e}"),
                };
                return Err(ThroughputError::Stalled(format!(
                    "a worker {why} with {} of {total} jobs unanswered",
                    expected.len()
                )));
            }
            () = tokio::time::sleep(STALL) => {
                return Err(ThroughputError::Stalled(format!(
                    "no result for {} s with {} of {total} jobs unanswered (dead-lettered?)",
                    STALL.as_secs(),
                    expected.len()
                )));
            }
        };
        let message = wire::decode(&delivery.body);
        delivery.acker.ack().await?;
        if let Message::Result(result) = message? {
            if !expected.remove(&result.job_id) {
                continue;
            }
            tally.ok += result.cases.iter().map(|c| c.tiles_ok).sum::<u64>();
            tally.failed += result.tile_failures.len() as u64;
            if tally.first_failure.is_none() {
                tally.first_failure = result
                    .tile_failures
                    .first()
                    .map(|f| format!("{} ({}): {}", f.tile, f.stage.as_str(), f.reason));
            }
        }
    }
    Ok(tally)
}
