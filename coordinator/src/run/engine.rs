//! The run engine: creates runs, publishes their jobs, collects results
//! exactly once, re-publishes what stalls, resumes unfinished runs after a
//! restart, and finalizes settled runs.
//!
//! All run state that matters lives in the object store (`runs/<id>/spec.json`
//! and the stored parts); the in-memory bookkeeping is re-derived from it at
//! start, so a coordinator killed at any point loses nothing.

use super::finalize::{self, FinalizeError, SettledRun};
use super::live::{JobState, LiveRun, Recorded};
use super::{RunRequest, RunSpec, RunState, RunStatus, file_key, part_key, parts_prefix, spec_key};
use crate::metrics::CoordinatorMetrics;
use crate::models::{self, ModelError};
use crate::output::provenance::RunProvenance;
use crate::plan::{self, PlanError};
use bytes::Bytes;
use chrono::Utc;
use nodal_common::broker::{BrokerError, Delivery, SharedBroker};
use nodal_common::manifest::{Manifest, manifest_key};
use nodal_common::retry::{RetryPolicy, retry};
use nodal_common::store::{SharedStore, StoreError};
use nodal_common::wire::{self, Message};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, instrument, warn};
use uuid::Uuid;

/// Largest job size a request may ask for.
pub const MAX_JOB_TILES: usize = 10_000;

/// Settings of the run engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Default tiles per job.
    pub job_tiles: usize,
    /// A run with no result for this long, while the job queue is empty,
    /// gets its overdue jobs published again.
    pub stall_timeout: Duration,
    /// Publications of one job before it is given up on.
    pub max_publishes: u32,
    /// How often the supervisor looks at the runs.
    pub check_interval: Duration,
    /// Unacked results the coordinator holds at once.
    pub results_prefetch: u16,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            job_tiles: 256,
            stall_timeout: Duration::from_secs(60),
            max_publishes: 4,
            check_interval: Duration::from_secs(2),
            results_prefetch: 32,
        }
    }
}

/// What can go wrong driving runs.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No run of that id.
    #[error("unknown run {0}")]
    UnknownRun(Uuid),
    /// The run has not finished yet.
    #[error("run {0} has not finished")]
    NotFinished(Uuid),
    /// A named archive has no manifest in the store.
    #[error("unknown archive {0:?}: no manifest at {key} (submit it first; an interrupted submit has no manifest yet)", key = manifest_key(.0))]
    UnknownArchive(String),
    /// A manifest that does not parse.
    #[error("{key}: not a valid manifest: {message}")]
    BadManifest {
        /// The manifest's key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No such result file.
    #[error("run {run_id} has no result file {name:?}")]
    UnknownFile {
        /// The run.
        run_id: Uuid,
        /// The file asked for.
        name: String,
    },
    /// The model could not be resolved.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The run cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Writing the result files failed.
    #[error(transparent)]
    Finalize(#[from] FinalizeError),
}

/// Hook that writes the statistics files of a finished run (metrics.json,
/// report.html, and the validation subset) from its predictions.csv.
pub type StatsHook =
    Arc<dyn Fn(&StatsInput) -> Result<Vec<(String, Vec<u8>)>, String> + Send + Sync>;

/// What the statistics hook gets.
#[derive(Debug)]
pub struct StatsInput<'a> {
    /// The model card (task, classes, stages).
    pub card: &'a nodal_common::model_card::ModelCard,
    /// The rendered predictions.csv.
    pub predictions_csv: &'a [u8],
    /// The rows of failures.csv.
    pub failures: &'a [crate::output::failures::FailureRow],
    /// The run's manifests (for the participant flow).
    pub manifests: &'a [(Manifest, String)],
    /// run.json as it will be written.
    pub provenance: &'a RunProvenance,
}

/// The run engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    broker: SharedBroker,
    config: EngineConfig,
    metrics: CoordinatorMetrics,
    stats: Option<StatsHook>,
    runs: Mutex<BTreeMap<Uuid, LiveRun>>,
    kick: Notify,
    changed: watch::Sender<u64>,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store.describe())
            .field("broker", &self.inner.broker.describe())
            .finish()
    }
}

impl Engine {
    /// Declare the queues, resume every unfinished run found in the store,
    /// and start collecting results and supervising runs until `shutdown`.
    pub async fn start(
        store: SharedStore,
        broker: SharedBroker,
        config: EngineConfig,
        metrics: CoordinatorMetrics,
        stats: Option<StatsHook>,
        shutdown: CancellationToken,
    ) -> Result<Engine, EngineError> {
        broker.declare().await?;
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                broker,
                config,
                metrics,
                stats,
                runs: Mutex::new(BTreeMap::new()),
                kick: Notify::new(),
                changed: watch::channel(0).0,
                tasks: TaskTracker::new(),
            }),
        };
        engine.resume_all().await?;
        let e = engine.clone();
        let token = shutdown.clone();
        engine
            .inner
            .tasks
            .spawn(async move { e.collect_results(token).await });
        let e = engine.clone();
        engine
            .inner
            .tasks
            .spawn(async move { e.supervise(shutdown).await });
        Ok(engine)
    }

    /// Wait for the engine's tasks to stop after shutdown was requested.
    pub async fn stopped(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn runs(&self) -> MutexGuard<'_, BTreeMap<Uuid, LiveRun>> {
        // A poisoned lock means a panic elsewhere; the data is still consistent
        // enough to report, so take it.
        self.inner.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify_changed(&self) {
        self.inner.changed.send_modify(|v| *v += 1);
    }

    /// Create a run: resolve the model, read the manifests, plan, store the
    /// spec, and hand the jobs to the supervisor for publication.
    #[instrument(skip_all, fields(model = %request.model))]
    pub async fn create_run(&self, request: RunRequest) -> Result<RunStatus, EngineError> {
        if request.archives.is_empty() {
            return Err(EngineError::BadRequest(
                "`archives` must name at least one archive".into(),
            ));
        }
        let job_tiles = request.job_tiles.unwrap_or(self.inner.config.job_tiles);
        if !(1..=MAX_JOB_TILES).contains(&job_tiles) {
            return Err(EngineError::BadRequest(format!(
                "`job_tiles` must be between 1 and {MAX_JOB_TILES}, got {job_tiles}"
            )));
        }
        let model = models::resolve_model(self.inner.store.as_ref(), &request.model).await?;
        let spec = RunSpec {
            run_id: Uuid::new_v4(),
            label: request.label,
            archives: request.archives,
            model: model.reference,
            job_tiles,
            created_at: Utc::now(),
        };
        let live = self.load_run(spec.clone()).await?;
        let body =
            serde_json::to_vec_pretty(&spec).map_err(|e| EngineError::BadRequest(e.to_string()))?;
        self.inner
            .store
            .put(&spec_key(spec.run_id), Bytes::from(body))
            .await?;
        let status = live.status(Instant::now());
        info!(run_id = %spec.run_id, jobs = status.jobs_total, tiles = status.tiles_total, "run created");
        self.runs().insert(spec.run_id, live);
        self.inner.kick.notify_one();
        self.notify_changed();
        Ok(status)
    }

    /// Re-derive a run's plan from its spec and the store.
    async fn load_run(&self, spec: RunSpec) -> Result<LiveRun, EngineError> {
        let store = self.inner.store.as_ref();
        let card_bytes = store.get(&spec.model.card_key).await?;
        let card = models::parse_card(&card_bytes, &spec.model.card_key)?;
        if card.onnx_sha256 != spec.model.onnx_sha256 {
            return Err(EngineError::BadRequest(format!(
                "model card {} changed since the run was created (sha256 {} ≠ {})",
                spec.model.card_key, card.onnx_sha256, spec.model.onnx_sha256
            )));
        }
        let mut manifests = Vec::with_capacity(spec.archives.len());
        for archive_id in &spec.archives {
            let key = manifest_key(archive_id);
            let bytes = match store.get(&key).await {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    return Err(EngineError::UnknownArchive(archive_id.clone()));
                }
                Err(e) => return Err(e.into()),
            };
            let sha = nodal_common::sha256_hex(&bytes);
            let manifest: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| EngineError::BadManifest {
                    key: key.clone(),
                    message: e.to_string(),
                })?;
            if manifest.archive_id != *archive_id {
                return Err(EngineError::BadManifest {
                    key,
                    message: format!("it names archive {:?}", manifest.archive_id),
                });
            }
            manifests.push((manifest, sha));
        }
        let only_manifests: Vec<Manifest> = manifests.iter().map(|(m, _)| m.clone()).collect();
        let plan = plan::plan_run(
            spec.run_id,
            &only_manifests,
            &card,
            &spec.model,
            spec.job_tiles,
        )?;
        Ok(LiveRun::new(
            spec,
            Arc::new(card),
            Arc::new(manifests),
            Arc::new(plan),
            Instant::now(),
        ))
    }

    /// Resume every run that has a spec but no run.json.
    async fn resume_all(&self) -> Result<(), EngineError> {
        let keys = self.inner.store.list("runs/").await?;
        let mut specs = Vec::new();
        let mut finished = std::collections::HashSet::new();
        for meta in &keys {
            let Some(rest) = meta.key.strip_prefix("runs/") else {
                continue;
            };
            if let Some(id) = rest.strip_suffix("/spec.json") {
                specs.push(id.to_string());
            } else if let Some(id) = rest.strip_suffix("/run.json") {
                finished.insert(id.to_string());
            }
        }
        for id in specs.into_iter().filter(|id| !finished.contains(id)) {
            let bytes = self
                .inner
                .store
                .get(&format!("runs/{id}/spec.json"))
                .await?;
            let spec: RunSpec = match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    error!(run_id = %id, error = %e, "cannot resume run: its spec does not parse");
                    continue;
                }
            };
            let run_id = spec.run_id;
            let mut live = match self.load_run(spec).await {
                Ok(l) => l,
                Err(e) => {
                    error!(%run_id, error = %e, "cannot resume run");
                    continue;
                }
            };
            let prefix = parts_prefix(run_id);
            let mut stored = 0;
            for meta in self.inner.store.list(&prefix).await? {
                let job = meta
                    .key
                    .strip_prefix(&prefix)
                    .and_then(|k| k.strip_suffix(".bin"))
                    .and_then(|k| Uuid::parse_str(k).ok());
                if let Some(job_id) = job {
                    live.mark_stored(job_id);
                    stored += 1;
                }
            }
            info!(%run_id, stored, jobs = live.jobs.len(), "resuming run");
            self.runs().insert(run_id, live);
        }
        Ok(())
    }

    /// The status of a run, live or finished.
    pub async fn run_status(&self, run_id: Uuid) -> Result<RunStatus, EngineError> {
        if let Some(run) = self.runs().get(&run_id) {
            return Ok(run.status(Instant::now()));
        }
        self.finished_status(run_id).await
    }

    async fn finished_status(&self, run_id: Uuid) -> Result<RunStatus, EngineError> {
        let bytes = match self.inner.store.get(&file_key(run_id, "run.json")).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(EngineError::UnknownRun(run_id)),
            Err(e) => return Err(e.into()),
        };
        let p: RunProvenance =
            serde_json::from_slice(&bytes).map_err(|e| EngineError::BadManifest {
                key: file_key(run_id, "run.json"),
                message: e.to_string(),
            })?;
        let elapsed = (p.finished_at - p.created_at).num_milliseconds().max(1) as f64 / 1000.0;
        Ok(RunStatus {
            run_id,
            label: p.label,
            model: format!("{}@{}", p.model.name, p.model.version),
            archives: p.archives.into_iter().map(|a| a.archive_id).collect(),
            state: RunState::Finished,
            jobs_total: p.counts.jobs,
            jobs_done: p.counts.jobs - p.counts.jobs_failed,
            jobs_failed: p.counts.jobs_failed,
            jobs_in_flight: 0,
            tiles_total: p.counts.tiles_planned,
            tiles_done: p.counts.tiles_ok,
            tiles_failed: p.counts.tiles_failed as u64,
            tiles_per_second: p.counts.tiles_ok as f64 / elapsed,
            eta_seconds: None,
            created_at: p.created_at,
            finished_at: Some(p.finished_at),
        })
    }

    /// Every run this store knows, newest first.
    pub async fn list_runs(&self) -> Result<Vec<RunStatus>, EngineError> {
        let mut ids: Vec<Uuid> = self
            .inner
            .store
            .list("runs/")
            .await?
            .iter()
            .filter_map(|m| {
                m.key
                    .strip_prefix("runs/")?
                    .strip_suffix("/spec.json")
                    .map(str::to_string)
            })
            .filter_map(|id| Uuid::parse_str(&id).ok())
            .collect();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.run_status(id).await {
                Ok(s) => out.push(s),
                Err(EngineError::UnknownRun(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    /// Wait until a run is finished or failed; returns its final status.
    pub async fn wait_finished(&self, run_id: Uuid) -> Result<RunStatus, EngineError> {
        let mut changed = self.inner.changed.subscribe();
        loop {
            let status = self.run_status(run_id).await?;
            if matches!(status.state, RunState::Finished | RunState::Failed { .. }) {
                return Ok(status);
            }
            if changed.changed().await.is_err() {
                return Err(EngineError::NotFinished(run_id));
            }
        }
    }

    /// One of a finished run's result files.
    pub async fn result_file(&self, run_id: Uuid, name: &str) -> Result<Bytes, EngineError> {
        if !super::RESULT_FILES.contains(&name) {
            return Err(EngineError::UnknownFile {
                run_id,
                name: name.to_string(),
            });
        }
        let status = self.run_status(run_id).await?;
        if status.state != RunState::Finished {
            return Err(EngineError::NotFinished(run_id));
        }
        match self.inner.store.get(&file_key(run_id, name)).await {
            Ok(b) => Ok(b),
            Err(e) if e.is_not_found() => Err(EngineError::UnknownFile {
                run_id,
                name: name.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Consume the results queue until shutdown, storing each result once.
    async fn collect_results(&self, shutdown: CancellationToken) {
        let queue = self.inner.broker.queues().results.clone();
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            ..RetryPolicy::default()
        };
        let mut attempt = 1;
        let mut sub = loop {
            let subscribed = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = self.inner.broker.subscribe(&queue, self.inner.config.results_prefetch) => s,
            };
            match subscribed {
                Ok(s) => break s,
                Err(e) => {
                    attempt += 1;
                    warn!(error = %e, "cannot subscribe to results; retrying");
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
            }
        };
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => return,
                d = sub.next() => d,
            };
            let Some(delivery) = delivery else { return };
            self.handle_result(delivery).await;
        }
    }

    /// Store one result delivery under its job id, then ack it.
    async fn handle_result(&self, delivery: Delivery) {
        let m = &self.inner.metrics;
        let result = match wire::decode(&delivery.body) {
            Ok(Message::Result(r)) => r,
            Ok(Message::Job(job)) => {
                warn!(job_id = %job.job_id, "a job arrived on the results queue; dead-lettering it");
                m.dead_lettered.with_label_values(&["wrong_kind"]).inc();
                settle(delivery.acker.reject().await);
                return;
            }
            Err(e) => {
                warn!(error = %e, bytes = delivery.body.len(), "undecodable result; dead-lettering it");
                m.dead_lettered.with_label_values(&["undecodable"]).inc();
                settle(delivery.acker.reject().await);
                return;
            }
        };
        let (run_id, job_id) = (result.run_id, result.job_id);
        let known = self
            .runs()
            .get(&run_id)
            .map(|r| (r.state.clone(), r.job(job_id).is_some()));
        match known {
            Some((RunState::Running, true)) => {}
            Some((RunState::Running, false)) => {
                warn!(%run_id, %job_id, "result for a job the run does not have; dead-lettering it");
                m.dead_lettered.with_label_values(&["unknown_job"]).inc();
                settle(delivery.acker.reject().await);
                return;
            }
            Some(_) => {
                m.results.with_label_values(&["late"]).inc();
                settle(delivery.acker.ack().await);
                return;
            }
            None => {
                let finished = self.inner.store.head(&file_key(run_id, "run.json")).await;
                if matches!(finished, Ok(Some(_))) {
                    m.results.with_label_values(&["late"]).inc();
                    settle(delivery.acker.ack().await);
                } else {
                    warn!(%run_id, %job_id, "result for an unknown run; dead-lettering it");
                    m.dead_lettered.with_label_values(&["unknown_run"]).inc();
                    settle(delivery.acker.reject().await);
                }
                return;
            }
        }
        let key = part_key(run_id, job_id);
        let stored = retry(RetryPolicy::default(), StoreError::is_transient, || {
            self.inner.store.put(&key, delivery.body.clone())
        })
        .await;
        if let Err(e) = stored {
            error!(%run_id, %job_id, error = %e, "cannot store result; returning it to the queue");
            settle(delivery.acker.requeue().await);
            return;
        }
        let tiles_ok: u64 = result.cases.iter().map(|c| c.tiles_ok).sum();
        let recorded = self.runs().get_mut(&run_id).map(|run| {
            run.record_result(
                job_id,
                tiles_ok,
                result.tile_failures.len() as u64,
                &result.worker,
                Instant::now(),
            )
        });
        match recorded {
            Some(Recorded::New) => {
                m.results.with_label_values(&["new"]).inc();
                m.tiles_done.inc_by(tiles_ok);
            }
            _ => m.results.with_label_values(&["duplicate"]).inc(),
        }
        settle(delivery.acker.ack().await);
        self.inner.kick.notify_one();
        self.notify_changed();
    }

    /// Publish, re-publish and finalize runs until shutdown.
    async fn supervise(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.inner.config.check_interval) => {}
                _ = self.inner.kick.notified() => {}
            }
            self.tick().await;
        }
    }

    /// One supervision pass over the running runs.
    async fn tick(&self) {
        let running: Vec<Uuid> = self
            .runs()
            .iter()
            .filter(|(_, r)| r.state == RunState::Running)
            .map(|(id, _)| *id)
            .collect();
        let mut depth = None;
        for run_id in running {
            let first = self
                .runs()
                .get(&run_id)
                .map(LiveRun::unpublished)
                .unwrap_or_default();
            self.publish(run_id, &first).await;
            let settled = self.runs().get(&run_id).is_some_and(LiveRun::is_settled);
            if settled {
                self.spawn_finalize(run_id);
                continue;
            }
            if depth.is_none() {
                depth = Some(
                    self.inner
                        .broker
                        .depth(&self.inner.broker.queues().jobs)
                        .await,
                );
            }
            if !matches!(depth, Some(Ok(0))) {
                continue;
            }
            let (config, metrics) = (&self.inner.config, &self.inner.metrics);
            let again = match self.runs().get_mut(&run_id) {
                Some(run) => {
                    let before = run.status(Instant::now()).jobs_failed;
                    let again =
                        run.overdue(Instant::now(), config.stall_timeout, config.max_publishes);
                    let failed = run.status(Instant::now()).jobs_failed - before;
                    metrics.jobs_failed.inc_by(failed as u64);
                    if failed > 0 {
                        warn!(%run_id, failed, "gave up on jobs with no result");
                    }
                    again
                }
                None => continue,
            };
            if !again.is_empty() {
                warn!(%run_id, jobs = again.len(), "run stalled; publishing its overdue jobs again");
                metrics.jobs_republished.inc_by(again.len() as u64);
                self.publish(run_id, &again).await;
            }
            if self.runs().get(&run_id).is_some_and(LiveRun::is_settled) {
                self.spawn_finalize(run_id);
            }
        }
        self.update_run_gauges();
    }

    /// Publish jobs `indices` of a run, with confirms; a job that cannot be
    /// published stays unpublished and is tried again at the next pass.
    async fn publish(&self, run_id: Uuid, indices: &[usize]) {
        let queue = self.inner.broker.queues().jobs.clone();
        for &i in indices {
            let job = match self.runs().get(&run_id) {
                Some(run) => run.plan.jobs[i].clone(),
                None => return,
            };
            let body = match wire::encode(&Message::Job(job)) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    error!(%run_id, index = i, error = %e, "cannot encode job");
                    continue;
                }
            };
            let published = retry(
                RetryPolicy::default(),
                |e: &BrokerError| e.transient,
                || self.inner.broker.publish(&queue, body.clone()),
            )
            .await;
            match published {
                Ok(()) => {
                    if let Some(run) = self.runs().get_mut(&run_id) {
                        run.mark_published(i, Instant::now());
                    }
                    self.inner.metrics.jobs_published.inc();
                }
                Err(e) => {
                    warn!(%run_id, index = i, error = %e, "cannot publish job; will retry");
                    return;
                }
            }
        }
    }

    fn spawn_finalize(&self, run_id: Uuid) {
        {
            let mut runs = self.runs();
            let Some(run) = runs.get_mut(&run_id) else {
                return;
            };
            if run.state != RunState::Running {
                return;
            }
            run.state = RunState::Finalizing;
        }
        let engine = self.clone();
        self.inner
            .tasks
            .spawn(async move { engine.finalize(run_id).await });
    }

    #[instrument(skip(self))]
    async fn finalize(&self, run_id: Uuid) {
        let timer = self.inner.metrics.finalize_seconds.start_timer();
        let snapshot = self.runs().get(&run_id).map(|r| {
            (
                r.spec.clone(),
                r.card.clone(),
                r.manifests.clone(),
                r.plan.clone(),
                r.jobs.clone(),
                r.republished,
            )
        });
        let Some((spec, card, manifests, plan, jobs, republished)) = snapshot else {
            return;
        };
        let settled = SettledRun {
            spec: &spec,
            card: &card,
            manifests: &manifests,
            plan: &plan,
            jobs: &jobs,
            republished,
        };
        let outcome = self.write_results(settled).await;
        let mut runs = self.runs();
        let Some(run) = runs.get_mut(&run_id) else {
            return;
        };
        match outcome {
            Ok(()) => {
                run.state = RunState::Finished;
                run.finished_at = Some(Utc::now());
                timer.observe_duration();
                info!(%run_id, "run finished");
            }
            Err(EngineError::Store(e)) if e.is_transient() => {
                warn!(%run_id, error = %e, "cannot write results yet; will retry");
                run.state = RunState::Running;
            }
            Err(e) => {
                error!(%run_id, error = %e, "run failed");
                run.state = RunState::Failed {
                    reason: e.to_string(),
                };
            }
        }
        drop(runs);
        self.notify_changed();
        self.update_run_gauges();
    }

    /// Write predictions.csv, failures.csv, the statistics files, then run.json.
    async fn write_results(&self, run: SettledRun<'_>) -> Result<(), EngineError> {
        let store = self.inner.store.as_ref();
        let outputs = finalize::collect(store, run).await?;
        let id = run.spec.run_id;
        let mut files = vec![
            (
                "predictions.csv".to_string(),
                outputs.predictions_csv.clone(),
            ),
            ("failures.csv".to_string(), outputs.failures_csv.clone()),
        ];
        if let Some(hook) = &self.inner.stats {
            let hook = hook.clone();
            let card = run.card.clone();
            let manifests = run.manifests.to_vec();
            let outputs = outputs.clone();
            let stats = tokio::task::spawn_blocking(move || {
                hook(&StatsInput {
                    card: &card,
                    predictions_csv: &outputs.predictions_csv,
                    failures: &outputs.failures,
                    manifests: &manifests,
                    provenance: &outputs.provenance,
                })
            })
            .await
            .map_err(|e| EngineError::BadRequest(format!("statistics task failed: {e}")))?;
            match stats {
                Ok(extra) => files.extend(extra),
                Err(message) => {
                    warn!(run_id = %id, %message, "statistics could not be computed; result files written without them")
                }
            }
        }
        for (name, bytes) in files {
            store.put(&file_key(id, &name), Bytes::from(bytes)).await?;
        }
        let run_json = serde_json::to_vec_pretty(&outputs.provenance)
            .map_err(|e| EngineError::BadRequest(format!("run.json: {e}")))?;
        store
            .put(&file_key(id, "run.json"), Bytes::from(run_json))
            .await?;
        Ok(())
    }

    fn update_run_gauges(&self) {
        let runs = self.runs();
        let gauge = &self.inner.metrics.runs;
        for state in ["running", "finalizing", "finished", "failed"] {
            gauge.with_label_values(&[state]).set(0);
        }
        for run in runs.values() {
            let state = match run.state {
                RunState::Running => "running",
                RunState::Finalizing => "finalizing",
                RunState::Finished => "finished",
                RunState::Failed { .. } => "failed",
            };
            gauge.with_label_values(&[state]).inc();
        }
    }

    /// The store the engine works on.
    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    /// Jobs of a run still awaiting a result (for tests and status tools).
    pub fn pending_jobs(&self, run_id: Uuid) -> Option<usize> {
        self.runs().get(&run_id).map(|r| {
            r.jobs
                .iter()
                .filter(|s| matches!(s, JobState::Pending { .. }))
                .count()
        })
    }
}

/// Log a failed settle: the broker redelivers what was not settled.
fn settle(outcome: Result<(), BrokerError>) {
    if let Err(e) = outcome {
        warn!(error = %e, "could not settle a delivery; the broker will redeliver it");
    }
}
