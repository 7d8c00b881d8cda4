//! The worker service: consume jobs with a bounded prefetch, run each one
//! through its model's pipeline, publish the result with confirms, then ack.
//! Messages that can never be handled go to the dead-letter queue; jobs a
//! store outage interrupts are handed back to the queue until their
//! transient deadline ([`crate::hand_back`]); jobs still running when the
//! grace period after shutdown ends go back to the queue; jobs of a run that
//! has finished are dropped unrun.

use crate::archives::ArchiveCheck;
use crate::config::WorkerConfig;
use crate::cpu_pool::CpuPool;
use crate::error::{ErrorKind, WorkerError};
use crate::hand_back::{Outages, now_unix_ms};
use crate::health::Health;
use crate::job::{self, JobRun, TileCounts};
use crate::metered_store::MeteredStore;
use crate::metrics::{WorkerMetrics, job_outcome};
use crate::model_cache::{ModelCache, ModelSource};
use crate::pipeline::BatchSettings;
use crate::runtime::Runtime;
use crate::tile::TileStages;
use bytes::Bytes;
use nodal_common::broker::{Acker, BrokerError, Delivery, SharedBroker, Subscription};
use nodal_common::retry::retry;
use nodal_common::store::SharedStore;
use nodal_types::layout::{cancelled_key, run_record_key};
use nodal_types::wire::{self, HandedBack, Job, JobResult, Message, WireError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info, warn};

/// Longest wait for the inference threads after the jobs are settled.
const THREAD_STOP_WAIT: Duration = Duration::from_secs(2);

/// What a worker works with, shared with the rest of the process.
#[derive(Debug, Clone)]
pub struct WorkerDeps {
    /// Where tiles, manifests and models are read.
    pub store: SharedStore,
    /// Where jobs come from and results go.
    pub broker: SharedBroker,
    /// ONNX Runtime (one per process; workers share it).
    pub runtime: Arc<Runtime>,
    /// The process's worker metrics (register once per registry, clone into each worker).
    pub metrics: WorkerMetrics,
    /// The process's health, for `/healthz` and `/readyz`.
    pub health: Health,
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Jobs whose result was published and acked.
    pub jobs_answered: u64,
    /// Jobs returned to the queue.
    pub jobs_requeued: u64,
    /// Jobs handed back to the queue after a store outage.
    pub jobs_handed_back: u64,
    /// Jobs dropped unrun because their run had finished.
    pub jobs_dropped: u64,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// Tiles with an output, over answered jobs.
    pub tiles_ok: u64,
    /// Tiles recorded as failures, over answered jobs.
    pub tiles_failed: u64,
}

#[derive(Debug, Default)]
struct Counts {
    answered: AtomicU64,
    requeued: AtomicU64,
    handed_back: AtomicU64,
    dropped: AtomicU64,
    dead_lettered: AtomicU64,
    tiles_ok: AtomicU64,
    tiles_failed: AtomicU64,
}

/// Run a worker until `shutdown` is cancelled (or a fatal error): stop
/// taking jobs, give those in hand `config.grace_period` to finish, return
/// the rest to the queue, and return what was done. Several workers may run
/// in one process with the same [`WorkerDeps`].
pub async fn run_worker(
    config: WorkerConfig,
    deps: WorkerDeps,
    shutdown: CancellationToken,
) -> Result<WorkerSummary, WorkerError> {
    let worker = Arc::new(Worker::new(config, deps, &shutdown).await?);
    let queue = worker.deps.broker.queues().jobs.clone();
    let mut subscription = worker
        .deps
        .broker
        .subscribe(&queue, worker.config.prefetch)
        .await?;
    info!(worker_id = %worker.config.worker_id, %queue, prefetch = worker.config.prefetch, "worker consuming jobs");
    let jobs = TaskTracker::new();
    let consuming = worker.deps.health.consuming();
    let closed = worker.consume(subscription.as_mut(), &jobs).await;
    drop(consuming);
    let draining_since = Instant::now();
    if closed {
        error!(%queue, "the job subscription closed for good; returning the jobs in hand");
        worker.abort.cancel();
    }
    worker.drain(&jobs).await;
    drop(subscription);
    let summary = worker.summary();
    let fatal = worker
        .fatal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Ok(worker) = Arc::try_unwrap(worker) {
        worker.stop_pipelines().await;
    }
    info!(
        ?summary,
        drained_s = draining_since.elapsed().as_secs_f64(),
        "worker stopped"
    );
    match (fatal, closed) {
        (Some(e), _) => Err(e),
        (None, true) => {
            Err(BrokerError::permanent("consume", &queue, "the subscription closed").into())
        }
        (None, false) => Ok(summary),
    }
}

struct Worker {
    config: WorkerConfig,
    deps: WorkerDeps,
    models: ModelCache,
    /// The models' batchers.
    pipelines: TaskTracker,
    archives: ArchiveCheck,
    pool: CpuPool,
    /// Tiles being fetched or decoded, over all jobs.
    slots: Semaphore,
    counts: Counts,
    /// Runs seen ended (cancelled or finished), whose jobs are dropped,
    /// with the outcome label they are dropped under.
    ended_runs: Mutex<HashMap<uuid::Uuid, &'static str>>,
    fatal: Mutex<Option<WorkerError>>,
    /// Stop taking jobs (shutdown, or a fatal error).
    stop: CancellationToken,
    /// Stop running jobs and return them (the grace period is over).
    abort: CancellationToken,
}

/// Lowers the in-flight gauge when a delivery is settled, however its task ends.
struct InFlight(WorkerMetrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight_jobs.dec();
    }
}

impl Worker {
    /// Check the settings and the device, and set up the pools and caches.
    async fn new(
        config: WorkerConfig,
        deps: WorkerDeps,
        shutdown: &CancellationToken,
    ) -> Result<Self, WorkerError> {
        config.validate()?;
        let deps = WorkerDeps {
            store: MeteredStore::wrap(deps.store.clone(), deps.metrics.clone()),
            ..deps
        };
        let runtime = deps.runtime.clone();
        tokio::task::spawn_blocking(move || crate::probe::check_device(&runtime))
            .await
            .map_err(|e| WorkerError::Config(format!("the device check stopped: {e}")))??;
        let pool = CpuPool::new(config.decode_threads())?;
        let pipelines = TaskTracker::new();
        let source = ModelSource {
            store: deps.store.clone(),
            dirs: config.model_dirs.clone(),
            retry: config.store_retry,
            runtime: deps.runtime.clone(),
            batching: BatchSettings {
                batch_size: config.batch_size,
                deadline: config.batch_deadline,
            },
            pool: pool.clone(),
            metrics: deps.metrics.clone(),
        };
        Ok(Self {
            models: ModelCache::new(source, pipelines.clone()),
            pipelines,
            archives: ArchiveCheck::new(deps.store.clone(), config.store_retry),
            slots: Semaphore::new(config.fetch_concurrency),
            pool,
            counts: Counts::default(),
            ended_runs: Mutex::new(HashMap::new()),
            fatal: Mutex::new(None),
            stop: shutdown.child_token(),
            abort: CancellationToken::new(),
            config,
            deps,
        })
    }

    /// Stop the models' inference threads and batchers, waiting a little for each.
    async fn stop_pipelines(self) {
        self.models.stop(THREAD_STOP_WAIT).await;
        self.pipelines.close();
        let _ = tokio::time::timeout(THREAD_STOP_WAIT, self.pipelines.wait()).await;
    }

    /// Take deliveries until told to stop; true when the subscription closed.
    async fn consume(
        self: &Arc<Self>,
        subscription: &mut dyn Subscription,
        jobs: &TaskTracker,
    ) -> bool {
        loop {
            let delivery = tokio::select! {
                biased;
                () = self.stop.cancelled() => return false,
                delivery = subscription.next() => delivery,
            };
            let Some(delivery) = delivery else {
                return true;
            };
            self.deps.metrics.in_flight_jobs.inc();
            let guard = InFlight(self.deps.metrics.clone());
            let worker = self.clone();
            jobs.spawn(async move {
                worker.handle(delivery).await;
                drop(guard);
            });
        }
    }

    /// Wait for the jobs in hand for the grace period, then return the rest.
    async fn drain(&self, jobs: &TaskTracker) {
        jobs.close();
        if tokio::time::timeout(self.config.grace_period, jobs.wait())
            .await
            .is_err()
        {
            warn!(
                grace_s = self.config.grace_period.as_secs_f64(),
                jobs = jobs.len(),
                "grace period over; returning unfinished jobs to the queue"
            );
            self.abort.cancel();
            jobs.wait().await;
        }
    }

    async fn handle(&self, delivery: Delivery) {
        let Delivery {
            body,
            redelivered,
            acker,
        } = delivery;
        let (job, outages) = match wire::decode(&body) {
            Ok(Message::Job(job)) => (job, Outages::default()),
            Ok(Message::HandedBack(handed_back)) => {
                let outages = Outages::of(&handed_back);
                (handed_back.job, outages)
            }
            Ok(Message::Result(result)) => {
                let detail = format!("a result (job {}) arrived on the jobs queue", result.job_id);
                return self.dead_letter(acker, "wrong_kind", &detail).await;
            }
            Err(e) => {
                let reason = match e {
                    WireError::UnknownVersion { .. } => "unknown_version",
                    _ => "undecodable",
                };
                return self
                    .dead_letter(acker, reason, &format!("{e} ({} bytes)", body.len()))
                    .await;
            }
        };
        let span = tracing::info_span!(
            "job",
            worker = %self.config.worker_id,
            run_id = %job.run_id,
            job_id = %job.job_id,
            index = job.index,
            archive_id = %job.archive_id,
            model = %job.model.name,
            tiles = job.tile_count(),
            redelivered,
            handed_back = outages.times(),
            traceparent = job.traceparent.as_deref().unwrap_or(""),
        );
        self.handle_job(job, outages, acker).instrument(span).await;
    }

    async fn handle_job(&self, job: Job, outages: Outages, acker: Box<dyn Acker>) {
        if let Some(outcome) = self.run_ended(job.run_id).await {
            return self.drop_job(acker, outcome).await;
        }
        let outcome = tokio::select! {
            biased;
            () = self.abort.cancelled() => None,
            outcome = self.run_job(&job) => Some(outcome),
        };
        match outcome {
            None => {
                info!("returning the unfinished job to the queue");
                self.requeue(acker).await;
            }
            Some(Ok(run)) if run.store_unavailable > 0 => {
                let now = now_unix_ms();
                if outages.past_deadline(now, self.config.transient_deadline) {
                    warn!(
                        tiles = run.store_unavailable,
                        "store still unavailable at the job's transient deadline; recording the unread tiles as failures"
                    );
                    self.answer(run.result, acker).await;
                } else {
                    let why = format!("{} tiles could not be read", run.store_unavailable);
                    self.hand_back(outages.hand_back(job, now), acker, &why)
                        .await;
                }
            }
            Some(Ok(run)) => self.answer(run.result, acker).await,
            Some(Err((reason, e))) => match e.kind() {
                // Only a store outage is handed back: other transient errors
                // (a denied read, an ONNX Runtime hiccup) are requeued, and
                // the queue's delivery limit dead-letters one that persists.
                ErrorKind::Transient if e.is_store_unavailable() => {
                    let now = now_unix_ms();
                    if outages.past_deadline(now, self.config.transient_deadline) {
                        let detail = format!("{e} (still, at the job's transient deadline)");
                        self.dead_letter(acker, reason, &detail).await;
                    } else {
                        let handed_back = outages.hand_back(job, now);
                        self.hand_back(handed_back, acker, &e.to_string()).await;
                    }
                }
                ErrorKind::Transient => {
                    warn!(error = %e, "job failed for now; returning it to the queue");
                    self.requeue(acker).await;
                }
                ErrorKind::Permanent => self.dead_letter(acker, reason, &e.to_string()).await,
                ErrorKind::Fatal => {
                    error!(error = %e, "this worker cannot run jobs; returning the job and stopping");
                    self.requeue(acker).await;
                    self.fail(e);
                }
            },
        }
    }

    /// Why `run_id`'s jobs are no longer wanted — its run was cancelled
    /// (`cancelled.json` exists) or has finished (`run.json` exists) — as
    /// the outcome label of a dropped job; `None` while it runs. A store
    /// error counts as running. Ended runs are remembered.
    async fn run_ended(&self, run_id: uuid::Uuid) -> Option<&'static str> {
        let remembered = self
            .ended_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&run_id)
            .copied();
        if remembered.is_some() {
            return remembered;
        }
        let exists =
            |key: String| async move { matches!(self.deps.store.head(&key).await, Ok(Some(_))) };
        let ended = if exists(cancelled_key(run_id)).await {
            job_outcome::RUN_CANCELLED
        } else if exists(run_record_key(run_id)).await {
            job_outcome::RUN_FINISHED
        } else {
            return None;
        };
        let mut runs = self.ended_runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.len() >= 10_000 {
            runs.clear();
        }
        runs.insert(run_id, ended);
        Some(ended)
    }

    /// Ack a job of an ended run without running it; `outcome` says why.
    async fn drop_job(&self, acker: Box<dyn Acker>, outcome: &'static str) {
        info!(outcome, "the job's run has ended; dropping the job unrun");
        if let Err(e) = acker.ack().await {
            warn!(error = %e, "could not ack the dropped job; it will come back and be dropped again");
        }
        self.settled(outcome, &self.counts.dropped);
    }

    /// After a pause, publish the job again and ack this delivery: a fresh
    /// message, so that outages do not count toward the queue's delivery
    /// limit. Shutdown during the pause returns it to the queue instead.
    async fn hand_back(&self, handed_back: HandedBack, acker: Box<dyn Acker>, why: &str) {
        warn!(
            why,
            times = handed_back.times,
            pause_s = self.config.hand_back_pause.as_secs_f64(),
            "store unavailable; handing the job back to the queue"
        );
        let body = match wire::encode(&Message::HandedBack(handed_back)) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                error!(error = %e, "cannot encode the handed-back job; returning it to the queue");
                return self.requeue(acker).await;
            }
        };
        tokio::select! {
            biased;
            () = self.abort.cancelled() => return self.requeue(acker).await,
            () = tokio::time::sleep(self.config.hand_back_pause) => {}
        }
        let queue = &self.deps.broker.queues().jobs;
        if let Err(e) = self.publish(queue, body).await {
            error!(error = %e, "cannot hand the job back; returning it to the queue");
            return self.requeue(acker).await;
        }
        if let Err(e) = acker.ack().await {
            warn!(error = %e, "job handed back but the ack failed; it will come back twice");
        }
        self.settled(job_outcome::HANDED_BACK, &self.counts.handed_back);
    }

    /// Check the archive, get the model, run the tiles. Errors carry the
    /// dead-letter reason they would have.
    async fn run_job(&self, job: &Job) -> Result<JobRun, (&'static str, WorkerError)> {
        self.archives
            .ensure(&job.archive_id)
            .await
            .map_err(|e| ("missing_archive", e))?;
        let pipeline = self
            .models
            .get(&job.model)
            .await
            .map_err(|e| ("bad_model", e))?;
        let stages = TileStages {
            store: self.deps.store.as_ref(),
            retry: self.config.store_retry,
            pool: &self.pool,
            slots: &self.slots,
            metrics: &self.deps.metrics,
        };
        Ok(job::run_job(job, &self.config.worker_id, &pipeline, stages).await)
    }

    /// Publish the result (waiting for the confirm, retrying transient
    /// errors), then ack the job; if the result cannot be published, requeue.
    async fn answer(&self, result: JobResult, acker: Box<dyn Acker>) {
        let tiles = TileCounts::of(&result);
        let metrics = &self.deps.metrics;
        let body = match wire::encode(&Message::Result(result)) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                return self
                    .dead_letter(acker, "unencodable_result", &e.to_string())
                    .await;
            }
        };
        let queue = &self.deps.broker.queues().results;
        let timer = metrics.publish_seconds.start_timer();
        let published = self.publish(queue, body).await;
        timer.observe_duration();
        if let Err(e) = published {
            error!(error = %e, "cannot publish the result; returning the job to the queue");
            return self.requeue(acker).await;
        }
        if let Err(e) = acker.ack().await {
            warn!(error = %e, "result published but the ack failed; the job will come back and be answered again");
        }
        self.settled(job_outcome::ANSWERED, &self.counts.answered);
        tiles.record(metrics);
        self.counts.tiles_ok.fetch_add(tiles.ok, Ordering::Relaxed);
        self.counts
            .tiles_failed
            .fetch_add(tiles.failed(), Ordering::Relaxed);
        info!(
            tiles_ok = tiles.ok,
            tiles_failed = tiles.failed(),
            "job answered"
        );
    }

    async fn requeue(&self, acker: Box<dyn Acker>) {
        if let Err(e) = acker.requeue().await {
            warn!(error = %e, "could not requeue the job; the broker returns it when the subscription closes");
        }
        self.settled(job_outcome::REQUEUED, &self.counts.requeued);
    }

    async fn dead_letter(&self, acker: Box<dyn Acker>, reason: &'static str, detail: &str) {
        warn!(
            reason,
            detail, "sending the message to the dead-letter queue"
        );
        if let Err(e) = acker.reject().await {
            warn!(error = %e, "could not dead-letter the message; the broker will deliver it again");
        }
        self.deps
            .metrics
            .dead_lettered
            .with_label_values(&[reason])
            .inc();
        self.settled(job_outcome::DEAD_LETTERED, &self.counts.dead_lettered);
    }

    /// Publish `body` to `queue`, waiting for the confirm and retrying
    /// transient errors.
    async fn publish(&self, queue: &str, body: Bytes) -> Result<(), BrokerError> {
        let broker = &self.deps.broker;
        retry(
            self.config.publish_retry,
            |e: &BrokerError| e.transient,
            || broker.publish(queue, body.clone()),
        )
        .await
    }

    /// Count a settled delivery under `outcome` (`nodal_worker_jobs_total`)
    /// and in this worker's summary `counter`.
    fn settled(&self, outcome: &'static str, counter: &AtomicU64) {
        self.deps.metrics.jobs.with_label_values(&[outcome]).inc();
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Remember the first fatal error and stop taking jobs.
    fn fail(&self, e: WorkerError) {
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
        self.deps.health.fail();
        self.stop.cancel();
    }

    fn summary(&self) -> WorkerSummary {
        let c = &self.counts;
        WorkerSummary {
            jobs_answered: c.answered.load(Ordering::Relaxed),
            jobs_requeued: c.requeued.load(Ordering::Relaxed),
            jobs_handed_back: c.handed_back.load(Ordering::Relaxed),
            jobs_dropped: c.dropped.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            tiles_ok: c.tiles_ok.load(Ordering::Relaxed),
            tiles_failed: c.tiles_failed.load(Ordering::Relaxed),
        }
    }
}
