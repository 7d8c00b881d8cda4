//! The run engine: creates runs, publishes their jobs, collects results
//! exactly once, re-publishes what stalls, resumes unfinished runs after a
//! restart, and finalizes settled runs.
//!
//! All run state that matters lives in the object store (`runs/<id>/spec.json`
//! and the stored parts); the in-memory bookkeeping is re-derived from it at
//! start, so a coordinator killed at any point loses nothing.
//!
//! By concern: [`intake`] takes runs (create, plan, resume after a
//! restart); [`supervision`] collects results and re-publishes what
//! stalls; [`finalisation`] turns a settled run into its result files and
//! statistics; [`cancellation`] stops a run an operator cancels;
//! [`queries`] answers what the API asks.

mod cancellation;
mod catalog;
mod finalisation;
mod intake;
mod queries;
mod supervision;

use super::finalize::{self, FinalizeError, SettledRun};
use super::live::{JobState, LiveRun, Recorded};
use super::{RunRequest, RunSpec, RunState, RunStatus};
use crate::leadership::{Fence, FenceError};
use crate::metrics::CoordinatorMetrics;
use crate::models::{self, ModelError};
use crate::output::provenance::RunProvenance;
use crate::plan::{self, PlanError};
use crate::statistics::{self, StatsInput};
use bytes::Bytes;
use chrono::Utc;
use nodal_common::broker::{BrokerError, Delivery, SharedBroker};
use nodal_common::retry::{RetryPolicy, retry};
use nodal_common::store::{SharedStore, StoreError};
use nodal_types::layout::manifest_key;
use nodal_types::layout::{
    self, RunObject, cancelled_key, parse_part_key, part_key, published_key, run_file_key,
    run_record_key, spec_key,
};
use nodal_types::manifest::Manifest;
use nodal_types::model_card::ModelCard;
use nodal_types::wire::{self, HandedBack, Message};
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
    /// Publications of one job; after the last, it is waited for until
    /// `job_deadline`, then given up on.
    pub max_publishes: u32,
    /// Time after a job's last publication with no result before it is
    /// given up on (its cases reported failed); above the workers'
    /// transient deadline.
    pub job_deadline: Duration,
    /// How often the supervisor looks at the runs.
    pub check_interval: Duration,
    /// Unacked results the coordinator holds at once.
    pub results_prefetch: u16,
}

/// Default tiles per job.
pub const DEFAULT_JOB_TILES: usize = 256;
/// Default time without results (and an empty job queue) before overdue
/// jobs are published again.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default publications of one job.
pub const DEFAULT_MAX_PUBLISHES: u32 = 4;
/// Default wait after a job's last publication before it is given up on:
/// more than the workers' default transient deadline (20 min).
pub const DEFAULT_JOB_DEADLINE: Duration = Duration::from_secs(30 * 60);

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            job_tiles: DEFAULT_JOB_TILES,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            max_publishes: DEFAULT_MAX_PUBLISHES,
            job_deadline: DEFAULT_JOB_DEADLINE,
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
    /// The run has ended (or is writing its result files): it cannot be cancelled.
    #[error("run {run_id} is {state}: only a running run can be cancelled")]
    Ended {
        /// The run.
        run_id: Uuid,
        /// Its state's name.
        state: &'static str,
    },
    /// A named archive has no manifest in the store.
    #[error("unknown archive {0:?}: no manifest at {key} (submit it first; an interrupted submit has no manifest yet)", key = manifest_key(.0))]
    UnknownArchive(String),
    /// A stored manifest or run record that cannot be used.
    #[error("{key}: {message}")]
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
    /// Another coordinator has taken over: this one writes no result files.
    #[error("fenced: {0}")]
    Fenced(#[from] FenceError),
    /// This coordinator is handing the runs over (it lost the lease).
    #[error("this coordinator is stepping down: another one takes over the runs; retry")]
    SteppingDown,
    /// The coordinator failed in a way no request could cause (a record
    /// that does not serialise, a statistics task that panicked).
    #[error("internal error: {0}")]
    Internal(String),
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
    fence: Fence,
    /// Cancelled when the engine stops (shutdown, or stepping down).
    shutdown: CancellationToken,
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
    /// `fence` is the epoch this coordinator leads under; result files are
    /// written only while it is the store's.
    pub async fn start(
        store: SharedStore,
        broker: SharedBroker,
        config: EngineConfig,
        metrics: CoordinatorMetrics,
        fence: Fence,
        shutdown: CancellationToken,
    ) -> Result<Engine, EngineError> {
        broker.declare().await?;
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                broker,
                config,
                metrics,
                fence,
                shutdown: shutdown.clone(),
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
