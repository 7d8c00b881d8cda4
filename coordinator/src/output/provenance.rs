//! run.json: the provenance of a finished run.

use crate::run::Cancellation;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of the run.json layout.
pub const RUN_JSON_SCHEMA_VERSION: u32 = 1;

/// What a finished run records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProvenance {
    /// [`RUN_JSON_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run.
    pub run_id: Uuid,
    /// Free-form label given at creation.
    pub label: Option<String>,
    /// nodal version of the coordinator that finished the run.
    pub nodal_version: String,
    /// The model.
    pub model: ModelProvenance,
    /// The archives, in request order.
    pub archives: Vec<ArchiveProvenance>,
    /// Settings in force.
    pub settings: RunSettings,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When the result files were written.
    pub finished_at: DateTime<Utc>,
    /// Counts of cases, images, tiles and jobs.
    pub counts: RunCounts,
    /// Ids of the workers that returned results.
    pub workers: Vec<String>,
    /// Things an analyst should know (e.g. case ids qualified because they collided).
    pub warnings: Vec<String>,
    /// Who cancelled the run and when; absent for a run that ran to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Cancellation>,
}

/// The model a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelProvenance {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the ONNX file.
    pub onnx_sha256: String,
    /// Key of the card in the store.
    pub card_key: String,
}

/// One archive of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveProvenance {
    /// Archive id.
    pub archive_id: String,
    /// Submitting site.
    pub site: String,
    /// Study.
    pub study: String,
    /// SHA-256 of the manifest.json bytes the run read.
    pub manifest_sha256: String,
    /// nodal version that submitted it.
    pub submitted_with: String,
}

/// Settings a run was planned and aggregated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Target tiles per job.
    pub job_tiles: usize,
    /// Case aggregation rule from the model card.
    pub aggregation: String,
    /// Threshold rule used for metrics.
    pub threshold: String,
}

/// Counts over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Cases in the manifests.
    pub cases_submitted: usize,
    /// Cases meeting the eligibility criteria.
    pub cases_eligible: usize,
    /// Cases with a row in predictions.csv.
    pub cases_predicted: usize,
    /// Cases with a case-level row in failures.csv.
    pub cases_failed: usize,
    /// Images in the manifests.
    pub images: usize,
    /// Images excluded by QC.
    pub images_failed_qc: usize,
    /// Tiles planned into jobs.
    pub tiles_planned: usize,
    /// Tiles that produced an output.
    pub tiles_ok: u64,
    /// Tiles left out during the run.
    pub tiles_failed: usize,
    /// Jobs planned.
    pub jobs: usize,
    /// Jobs that never produced a result.
    pub jobs_failed: usize,
    /// Re-publications of jobs that had no result in time.
    pub jobs_republished: u64,
    /// Jobs never run because the run was cancelled.
    #[serde(default)]
    pub jobs_cancelled: usize,
    /// Cases not predicted because the run was cancelled (in failures.csv
    /// with stage `cancelled`; among `cases_failed`).
    #[serde(default)]
    pub cases_cancelled: usize,
}
