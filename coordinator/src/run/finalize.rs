//! Turning a settled run's stored results into its result files.
//!
//! Parts are merged per case (exact whatever the split, see
//! `nodal_types::partial`), every submitted case lands in predictions.csv or
//! as a case row in failures.csv, and run.json is written last.

use super::live::JobState;
use super::{Cancellation, RunSpec};
use crate::output::failures::{self, FailureLevel, FailureRow, FailureStage};
use crate::output::predictions::{self, PredictionRow, PredictionSchema};
use crate::output::provenance::*;
use crate::plan::Plan;
use chrono::Utc;
use nodal_common::store::{ObjectStore, StoreError};
use nodal_types::layout::part_key;
use nodal_types::manifest::Manifest;
use nodal_types::model_card::{Aggregation, ModelCard, OutputRole};
use nodal_types::partial::CasePartial;
use nodal_types::study::Task;
use nodal_types::wire::{self, JobResult, Message};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a run's result files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    /// Reading parts or writing files failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored part does not decode.
    #[error("stored result {key} does not decode: {message}")]
    BadPart {
        /// The part's key.
        key: String,
        /// Why.
        message: String,
    },
    /// Writing CSV failed.
    #[error("writing {file}: {message}")]
    Render {
        /// The file.
        file: &'static str,
        /// Why.
        message: String,
    },
}

/// Everything finalisation reads about a settled run.
#[derive(Debug, Clone, Copy)]
pub struct SettledRun<'a> {
    /// The run's spec.
    pub spec: &'a RunSpec,
    /// The model card.
    pub card: &'a ModelCard,
    /// Manifests with the SHA-256 of their bytes, in request order.
    pub manifests: &'a [(Manifest, String)],
    /// The plan.
    pub plan: &'a Plan,
    /// Each job's final state, by plan index.
    pub jobs: &'a [JobState],
    /// Re-publications during the run.
    pub republished: u64,
    /// Who cancelled the run and when, if it was.
    pub cancelled: Option<&'a Cancellation>,
}

/// The rendered result files and the provenance they were built with.
#[derive(Debug, Clone)]
pub struct RunOutputs {
    /// predictions.csv bytes.
    pub predictions_csv: Vec<u8>,
    /// failures.csv bytes.
    pub failures_csv: Vec<u8>,
    /// failures.csv rows.
    pub failures: Vec<FailureRow>,
    /// The provenance that becomes run.json.
    pub provenance: RunProvenance,
}

/// Read the run's stored results and render the result files (nothing is
/// written: the engine stores them, run.json last).
pub async fn collect(
    store: &dyn ObjectStore,
    run: SettledRun<'_>,
) -> Result<RunOutputs, FinalizeError> {
    let mut results = Vec::with_capacity(run.plan.jobs.len());
    for (job, state) in run.plan.jobs.iter().zip(run.jobs) {
        if *state != JobState::Done {
            results.push(None);
            continue;
        }
        let key = part_key(run.spec.run_id, job.job_id);
        let bytes = store.get(&key).await?;
        match wire::decode(&bytes) {
            Ok(Message::Result(r)) => results.push(Some(r)),
            Ok(Message::Job(_) | Message::HandedBack(_)) => {
                return Err(FinalizeError::BadPart {
                    key,
                    message: "holds a job, not a result".into(),
                });
            }
            Err(e) => {
                return Err(FinalizeError::BadPart {
                    key,
                    message: e.to_string(),
                });
            }
        }
    }
    build_outputs(run, &results)
}

/// Merge results and render predictions.csv, failures.csv and the provenance.
/// `results[i]` is job `i`'s result, `None` for a job given up on.
pub fn build_outputs(
    run: SettledRun<'_>,
    results: &[Option<JobResult>],
) -> Result<RunOutputs, FinalizeError> {
    let mut merged: HashMap<(&str, &str), CasePartial> = HashMap::new();
    let mut runtime_failures = Vec::new();
    let site_of: HashMap<&str, &str> = run
        .manifests
        .iter()
        .map(|(m, _)| (m.archive_id.as_str(), m.site.as_str()))
        .collect();
    let mut workers = std::collections::BTreeSet::new();
    // A case with a part in a cancelled job is not predicted from its other
    // parts: the prediction would be the model's over some tiles only.
    let cancelled: HashSet<(&str, &str)> = run
        .plan
        .jobs
        .iter()
        .zip(run.jobs)
        .filter(|(_, state)| **state == JobState::Cancelled)
        .flat_map(|(job, _)| {
            job.cases
                .iter()
                .map(|c| (job.archive_id.as_str(), c.case_id.as_str()))
        })
        .collect();
    for ((job, state), result) in run.plan.jobs.iter().zip(run.jobs).zip(results) {
        let site = site_of
            .get(job.archive_id.as_str())
            .copied()
            .unwrap_or_default();
        match result {
            Some(r) => {
                workers.insert(r.worker.clone());
                for part in &r.cases {
                    merged
                        .entry((job.archive_id.as_str(), part.case_id.as_str()))
                        .and_modify(|m| m.merge(part))
                        .or_insert_with(|| part.clone());
                }
                runtime_failures.extend(r.tile_failures.iter().map(|f| FailureRow {
                    archive_id: job.archive_id.clone(),
                    site: site.to_string(),
                    case_id: f.case_id.clone(),
                    level: FailureLevel::Tile,
                    item: f.tile.clone(),
                    stage: match f.stage {
                        wire::FailureStage::Fetch => FailureStage::Fetch,
                        wire::FailureStage::Decode => FailureStage::Decode,
                        wire::FailureStage::Infer => FailureStage::Infer,
                    },
                    reason: f.reason.clone(),
                }));
            }
            None if *state == JobState::Cancelled => {}
            None => {
                let reason = match state {
                    JobState::Failed(r) => r.clone(),
                    _ => "the job has no stored result".to_string(),
                };
                for case in &job.cases {
                    runtime_failures.extend(case.tiles.iter().map(|t| FailureRow {
                        archive_id: job.archive_id.clone(),
                        site: site.to_string(),
                        case_id: case.case_id.clone(),
                        level: FailureLevel::Tile,
                        item: t.name.clone(),
                        stage: FailureStage::Job,
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    let score_head = run
        .card
        .outputs
        .iter()
        .position(|o| o.role == OutputRole::Score);
    let head = |role| run.card.outputs.iter().position(|o| o.role == role);
    let (t_head, n_head) = (
        head(OutputRole::PrimaryTumour),
        head(OutputRole::RegionalNodes),
    );
    let labels = |h: Option<usize>| h.map(|i| run.card.outputs[i].labels.as_slice());
    let ids = DisplayIds::new(run.manifests);
    let mut rows = Vec::new();
    let mut case_failures = Vec::new();
    let mut counts = RunCounts {
        jobs: run.plan.jobs.len(),
        jobs_failed: run
            .jobs
            .iter()
            .filter(|s| matches!(s, JobState::Failed(_)))
            .count(),
        jobs_republished: run.republished,
        jobs_cancelled: run
            .jobs
            .iter()
            .filter(|s| **s == JobState::Cancelled)
            .count(),
        tiles_planned: run.plan.tile_count(),
        ..RunCounts::default()
    };
    for (manifest, _) in run.manifests {
        for case in &manifest.cases {
            counts.cases_submitted += 1;
            counts.images += case.images.len();
            counts.images_failed_qc += case.images.iter().filter(|i| !i.qc.passed).count();
            counts.cases_eligible += usize::from(case.eligibility.is_eligible());
            if cancelled.contains(&(manifest.archive_id.as_str(), case.case_id.as_str())) {
                counts.cases_cancelled += 1;
                case_failures.push(FailureRow {
                    archive_id: manifest.archive_id.clone(),
                    site: manifest.site.clone(),
                    case_id: case.case_id.clone(),
                    level: FailureLevel::Case,
                    item: String::new(),
                    stage: FailureStage::Cancelled,
                    reason: "the run was cancelled before the case was predicted".into(),
                });
                continue;
            }
            let Some(part) = merged.get(&(manifest.archive_id.as_str(), case.case_id.as_str()))
            else {
                continue;
            };
            let problem = if !shape_matches(run.card, part) {
                Some((
                    FailureStage::Infer,
                    "the worker's result does not have the model card's output shape",
                ))
            } else if part.tiles_ok == 0 {
                Some((
                    dominant_stage(&runtime_failures, &manifest.archive_id, &case.case_id),
                    "no tile of the case produced an output",
                ))
            } else {
                None
            };
            if let Some((stage, reason)) = problem {
                case_failures.push(FailureRow {
                    archive_id: manifest.archive_id.clone(),
                    site: manifest.site.clone(),
                    case_id: case.case_id.clone(),
                    level: FailureLevel::Case,
                    item: String::new(),
                    stage,
                    reason: reason.into(),
                });
                continue;
            }
            counts.tiles_ok += part.tiles_ok;
            let head_values = |h: usize| match run.card.aggregation {
                Aggregation::Mean => part.heads[h].mean(part.tiles_ok),
                Aggregation::Max => part.heads[h].maxima(),
            };
            let mut scores = score_head.map(head_values).unwrap_or_default();
            if run.card.task == Task::Binary && scores.len() > 1 {
                scores = scores.split_off(scores.len() - 1);
            }
            rows.push(PredictionRow {
                case_id: ids.display(&manifest.site, &manifest.archive_id, &case.case_id),
                site: &manifest.site,
                archive_id: &manifest.archive_id,
                case,
                scores,
                t_probs: t_head.map(head_values),
                n_probs: n_head.map(head_values),
                tiles: part.tiles_ok,
            });
        }
    }
    // Cases planned into jobs that all failed have no merged part at all.
    for job in &run.plan.jobs {
        for jc in &job.cases {
            if !merged.contains_key(&(job.archive_id.as_str(), jc.case_id.as_str()))
                && !case_failures
                    .iter()
                    .any(|f| f.archive_id == job.archive_id && f.case_id == jc.case_id)
            {
                case_failures.push(FailureRow {
                    archive_id: job.archive_id.clone(),
                    site: site_of
                        .get(job.archive_id.as_str())
                        .copied()
                        .unwrap_or_default()
                        .to_string(),
                    case_id: jc.case_id.clone(),
                    level: FailureLevel::Case,
                    item: String::new(),
                    stage: FailureStage::Job,
                    reason: "no job holding the case produced a result".into(),
                });
            }
        }
    }
    counts.cases_predicted = rows.len();
    counts.tiles_failed = runtime_failures.len();

    let mut all_failures: Vec<FailureRow> = run.plan.left_out.clone();
    all_failures.extend(case_failures);
    all_failures.extend(runtime_failures);
    let order = CaseOrder::new(run.manifests);
    all_failures.sort_by(|a, b| {
        order
            .key(&a.archive_id, &a.case_id)
            .cmp(&order.key(&b.archive_id, &b.case_id))
            .then(a.level.cmp(&b.level))
            .then(a.item.cmp(&b.item))
            .then(a.stage.cmp(&b.stage))
    });
    counts.cases_failed = all_failures
        .iter()
        .filter(|f| f.level == FailureLevel::Case)
        .count();

    let schema = PredictionSchema {
        task: run.card.task,
        classes: &run.card.classes,
        t_labels: labels(t_head),
        n_labels: labels(n_head),
    };
    let predictions_csv =
        predictions::to_csv(&schema, &rows).map_err(|e| FinalizeError::Render {
            file: "predictions.csv",
            message: e.to_string(),
        })?;
    let failures_csv = failures::to_csv(&all_failures).map_err(|e| FinalizeError::Render {
        file: "failures.csv",
        message: e.to_string(),
    })?;
    let warnings = warnings(&ids, run.cancelled, counts.cases_cancelled);
    let provenance = RunProvenance {
        schema_version: RUN_JSON_SCHEMA_VERSION,
        run_id: run.spec.run_id,
        label: run.spec.label.clone(),
        nodal_version: nodal_types::NODAL_VERSION.to_string(),
        model: ModelProvenance {
            name: run.spec.model.name.clone(),
            version: run.spec.model.version.clone(),
            onnx_sha256: run.spec.model.onnx_sha256.clone(),
            card_key: run.spec.model.card_key.clone(),
        },
        archives: run
            .manifests
            .iter()
            .map(|(m, sha)| ArchiveProvenance {
                archive_id: m.archive_id.clone(),
                site: m.site.clone(),
                study: m.study.to_string(),
                manifest_sha256: sha.clone(),
                submitted_with: m.nodal_version.clone(),
            })
            .collect(),
        settings: RunSettings {
            job_tiles: run.spec.job_tiles,
            aggregation: format!("{:?}", run.card.aggregation).to_lowercase(),
            threshold: "youden".into(),
        },
        created_at: run.spec.created_at,
        finished_at: Utc::now(),
        counts,
        workers: workers.into_iter().collect(),
        warnings,
        cancelled: run.cancelled.cloned(),
    };
    Ok(RunOutputs {
        predictions_csv,
        failures_csv,
        failures: all_failures,
        provenance,
    })
}

/// The run's warnings: qualified case ids, and what a cancellation left out.
fn warnings(ids: &DisplayIds, cancelled: Option<&Cancellation>, cases: usize) -> Vec<String> {
    let mut out = ids.warnings();
    if let Some(c) = cancelled {
        out.push(format!(
            "the run was cancelled at {} by {}: {cases} cases were not predicted (failures.csv, stage cancelled); the statistics cover the predicted cases only",
            c.cancelled_at.to_rfc3339(),
            c.by
        ));
    }
    out
}

/// True when a partial has one head per card output, of the output's width.
pub fn shape_matches(card: &ModelCard, part: &CasePartial) -> bool {
    part.heads.len() == card.outputs.len()
        && part
            .heads
            .iter()
            .zip(&card.outputs)
            .all(|(h, o)| h.sum.len() == o.width && h.max.len() == o.width)
}

/// The stage most of a case's tile failures share.
fn dominant_stage(rows: &[FailureRow], archive_id: &str, case_id: &str) -> FailureStage {
    let mut by_stage: BTreeMap<FailureStage, usize> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.archive_id == archive_id && r.case_id == case_id)
    {
        *by_stage.entry(r.stage).or_default() += 1;
    }
    by_stage
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or(FailureStage::Infer, |(s, _)| s)
}

/// Case ids as written: plain when unique over the run, else qualified by
/// site (`site:case`), or by archive if sites collide too.
struct DisplayIds {
    qualify: Qualify,
}

#[derive(Clone, Copy, PartialEq)]
enum Qualify {
    None,
    Site,
    Archive,
}

impl DisplayIds {
    fn new(manifests: &[(Manifest, String)]) -> Self {
        let unique = |f: &dyn Fn(&Manifest, &str) -> String| {
            let mut seen = std::collections::HashSet::new();
            manifests
                .iter()
                .flat_map(|(m, _)| m.cases.iter().map(move |c| (m, c)))
                .all(|(m, c)| seen.insert(f(m, &c.case_id)))
        };
        let qualify = if unique(&|_, c| c.to_string()) {
            Qualify::None
        } else if unique(&|m, c| format!("{}:{c}", m.site)) {
            Qualify::Site
        } else {
            Qualify::Archive
        };
        Self { qualify }
    }

    fn display(&self, site: &str, archive_id: &str, case_id: &str) -> String {
        match self.qualify {
            Qualify::None => case_id.to_string(),
            Qualify::Site => format!("{site}:{case_id}"),
            Qualify::Archive => format!("{archive_id}:{case_id}"),
        }
    }

    fn warnings(&self) -> Vec<String> {
        match self.qualify {
            Qualify::None => vec![],
            Qualify::Site => vec![
                "case ids repeat across sites: predictions.csv writes them as site:case_id".into(),
            ],
            Qualify::Archive => {
                vec!["case ids repeat across archives: predictions.csv writes them as archive_id:case_id".into()]
            }
        }
    }
}

/// Sort key of cases: archive in request order, then case in manifest order.
struct CaseOrder<'a> {
    index: HashMap<(&'a str, &'a str), (usize, usize)>,
}

impl<'a> CaseOrder<'a> {
    fn new(manifests: &'a [(Manifest, String)]) -> Self {
        let index = manifests
            .iter()
            .enumerate()
            .flat_map(|(a, (m, _))| {
                m.cases
                    .iter()
                    .enumerate()
                    .map(move |(c, case)| ((m.archive_id.as_str(), case.case_id.as_str()), (a, c)))
            })
            .collect();
        Self { index }
    }

    fn key(&self, archive_id: &str, case_id: &str) -> (usize, usize) {
        self.index
            .get(&(archive_id, case_id))
            .copied()
            .unwrap_or((usize::MAX, usize::MAX))
    }
}
