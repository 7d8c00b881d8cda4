//! Runs: a run is (archives, model) → a plan of jobs → stored results →
//! result files. This module holds the run's stored layout and its types;
//! `engine` drives runs over the broker, `live` tracks one run's progress,
//! `finalize` turns stored results into the result files.

pub mod engine;
pub mod finalize;
pub mod live;

use chrono::{DateTime, Utc};
use nodal_types::wire::ModelRef;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The result files a finished run has, relative to its folder. `run.json`
/// is written last: its presence marks a finished run.
pub const RESULT_FILES: &[&str] = &[
    "predictions.csv",
    "failures.csv",
    "metrics.json",
    "report.html",
    "validation/metrics.json",
    "validation/report.html",
    "run.json",
];

/// What a client asks for when it creates a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Archive ids, in the order their cases should appear.
    pub archives: Vec<String>,
    /// Model name, or `name@version`.
    pub model: String,
    /// Tiles per job (default: the coordinator's setting).
    #[serde(default)]
    pub job_tiles: Option<usize>,
    /// A free-form label for people.
    #[serde(default)]
    pub label: Option<String>,
}

/// A run as stored at creation: enough to re-plan it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The run.
    pub run_id: Uuid,
    /// Free-form label.
    pub label: Option<String>,
    /// Archive ids, in request order.
    pub archives: Vec<String>,
    /// The resolved model.
    pub model: ModelRef,
    /// Tiles per job.
    pub job_tiles: usize,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RunState {
    /// Jobs are out; results are coming in.
    Running,
    /// All jobs are settled; the result files are being written.
    Finalizing,
    /// The result files are written.
    Finished,
    /// The run could not be completed.
    Failed {
        /// Why.
        reason: String,
    },
    /// An operator cancelled the run: its result files are written from
    /// the results stored until then, every other case is in failures.csv
    /// with stage `cancelled`.
    Cancelled,
}

impl RunState {
    /// Every state's name, as `state` in the API and the metrics' label.
    pub const NAMES: [&'static str; 5] =
        ["running", "finalizing", "finished", "failed", "cancelled"];

    /// The state's name, as `state` in the API.
    pub fn name(&self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finalizing => "finalizing",
            RunState::Finished => "finished",
            RunState::Failed { .. } => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// True when the run will not change any more.
    pub fn is_ended(&self) -> bool {
        matches!(
            self,
            RunState::Finished | RunState::Failed { .. } | RunState::Cancelled
        )
    }

    /// True when the run's result files are written (finished or cancelled).
    pub fn has_results(&self) -> bool {
        matches!(self, RunState::Finished | RunState::Cancelled)
    }
}

/// What `runs/<id>/cancelled.json` holds: who cancelled the run, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancellation {
    /// When the cancel request was taken.
    pub cancelled_at: DateTime<Utc>,
    /// The token's name that cancelled it.
    pub by: String,
}

/// A run's progress, as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunStatus {
    /// The run.
    pub run_id: Uuid,
    /// Free-form label.
    pub label: Option<String>,
    /// Model `name@version`.
    pub model: String,
    /// Archive ids.
    pub archives: Vec<String>,
    /// Where the run stands.
    #[serde(flatten)]
    pub state: RunState,
    /// Jobs planned.
    pub jobs_total: usize,
    /// Jobs with a stored result.
    pub jobs_done: usize,
    /// Jobs given up on.
    pub jobs_failed: usize,
    /// Jobs never run because the run was cancelled.
    #[serde(default)]
    pub jobs_cancelled: usize,
    /// Jobs published and awaiting a result.
    pub jobs_in_flight: usize,
    /// Tiles planned.
    pub tiles_total: usize,
    /// Tiles with an output.
    pub tiles_done: u64,
    /// Tiles that failed.
    pub tiles_failed: u64,
    /// Tiles per second since the run started (this coordinator's view).
    pub tiles_per_second: f64,
    /// Seconds until all tiles are done at the current rate.
    pub eta_seconds: Option<f64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the result files were written.
    pub finished_at: Option<DateTime<Utc>>,
}
