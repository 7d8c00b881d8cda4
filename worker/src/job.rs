//! One job: its tiles read in a few shard ranges ([`crate::ranges`]), every
//! tile through the model's pipeline at once (bounded by the worker's
//! preparation slots), the outputs folded into one partial aggregate per
//! case, failures listed in tile order.

use crate::metrics::{WorkerMetrics, tile_outcome};
use crate::pipeline::ModelPipeline;
use crate::ranges::ranges;
use crate::tile::{TileDone, TileStages};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nodal_types::model_card::ModelCard;
use nodal_types::partial::CasePartial;
use nodal_types::wire::{FailureStage, Job, JobCase, JobResult, StageTimings, TileFailure};
use std::sync::Arc;

/// A job's result, and how many of its tiles could not be read because the
/// store was unavailable (those are among the result's failures).
pub(crate) struct JobRun {
    /// The result as it would be answered.
    pub result: JobResult,
    /// Tiles the store could not serve for now.
    pub store_unavailable: usize,
}

/// Run every tile of `job` and fold the outputs into its result.
pub(crate) async fn run_job(
    job: &Job,
    worker: &str,
    pipeline: &ModelPipeline,
    stages: TileStages<'_>,
) -> JobRun {
    let card = pipeline.card();
    let widths: Vec<usize> = card.outputs.iter().map(|o| o.width).collect();
    let mut cases: Vec<CasePartial> = job
        .cases
        .iter()
        .map(|c| CasePartial::new(&job.archive_id, &c.case_id, &widths))
        .collect();
    let mut failures: Vec<((usize, usize), TileFailure)> = Vec::new();
    let mut timings = StageTimings::default();
    let mut store_unavailable = 0;
    let mut reports = Vec::with_capacity(job.cases.len());
    let mut wanted = Vec::with_capacity(job.tile_count());
    for (case_index, case) in job.cases.iter().enumerate() {
        match case_report(case, card) {
            Ok(report) => {
                wanted.extend((0..case.tiles.len()).map(|index| (case_index, index)));
                reports.push(report);
            }
            Err(reason) => {
                for (index, tile) in case.tiles.iter().enumerate() {
                    let reason = format!("{}: {reason}", tile.name);
                    let failure = failure(case, &tile.name, FailureStage::Infer, reason);
                    failures.push(((case_index, index), failure));
                }
                reports.push(None);
            }
        }
    }
    let mut running: FuturesUnordered<_> = ranges(job, &wanted)
        .into_iter()
        .map(|range| stages.run_range(job, range, &reports, pipeline))
        .collect();
    while let Some(done) = running.next().await {
        for done in done {
            let TileDone {
                case,
                index,
                outcome,
                store_unavailable: unavailable,
                times,
            } = done;
            store_unavailable += usize::from(unavailable);
            timings.fetch_s += times.fetch.as_secs_f64();
            timings.decode_s += times.decode.as_secs_f64();
            timings.infer_s += times.infer.as_secs_f64();
            match outcome {
                Ok(rows) => {
                    let partial = &mut cases[case];
                    partial.tiles_ok += 1;
                    for (head, row) in partial.heads.iter_mut().zip(&rows) {
                        head.add(row);
                    }
                }
                Err((stage, reason)) => {
                    let job_case = &job.cases[case];
                    failures.push((
                        (case, index),
                        failure(job_case, &job_case.tiles[index].name, stage, reason),
                    ));
                }
            }
        }
    }
    failures.sort_by_key(|(at, _)| *at);
    let result = JobResult {
        run_id: job.run_id,
        job_id: job.job_id,
        worker: worker.to_owned(),
        cases,
        tile_failures: failures.into_iter().map(|(_, f)| f).collect(),
        timings,
    };
    JobRun {
        result,
        store_unavailable,
    }
}

/// The report vector a case's tiles go with: `None` for image-only models,
/// else the case's vector, which must have the card's width.
fn case_report(case: &JobCase, card: &ModelCard) -> Result<Option<Arc<[f32]>>, String> {
    let width = card.report_width();
    match (width, &case.report) {
        (0, _) => Ok(None),
        (w, Some(report)) if report.len() == w => Ok(Some(Arc::from(report.as_slice()))),
        (w, Some(report)) => Err(format!(
            "case {}: the report vector has {} values, model {} takes {w}",
            case.case_id,
            report.len(),
            card.name
        )),
        (w, None) => Err(format!(
            "case {}: model {} needs the case's encoded report ({w} values) and the job carries none",
            case.case_id, card.name
        )),
    }
}

fn failure(case: &JobCase, tile: &str, stage: FailureStage, reason: String) -> TileFailure {
    TileFailure {
        case_id: case.case_id.clone(),
        tile: tile.to_owned(),
        stage,
        reason,
    }
}

/// An answered job's tiles by outcome, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TileCounts {
    /// Tiles with an output.
    pub ok: u64,
    /// Tiles that could not be fetched.
    pub fetch_failed: u64,
    /// Tiles that could not be decoded.
    pub decode_failed: u64,
    /// Tiles inference failed for.
    pub infer_failed: u64,
}

impl TileCounts {
    /// Count a result's tiles.
    pub(crate) fn of(result: &JobResult) -> Self {
        let mut counts = Self {
            ok: result.cases.iter().map(|c| c.tiles_ok).sum(),
            ..Self::default()
        };
        for f in &result.tile_failures {
            match f.stage {
                FailureStage::Fetch => counts.fetch_failed += 1,
                FailureStage::Decode => counts.decode_failed += 1,
                FailureStage::Infer => counts.infer_failed += 1,
            }
        }
        counts
    }

    /// Tiles that failed, at any stage.
    pub(crate) fn failed(&self) -> u64 {
        self.fetch_failed + self.decode_failed + self.infer_failed
    }

    /// Add the counts to `nodal_worker_tiles_total`.
    pub(crate) fn record(&self, metrics: &WorkerMetrics) {
        for (outcome, n) in [
            (tile_outcome::OK, self.ok),
            (tile_outcome::FETCH_FAILED, self.fetch_failed),
            (tile_outcome::DECODE_FAILED, self.decode_failed),
            (tile_outcome::INFER_FAILED, self.infer_failed),
        ] {
            metrics.tiles.with_label_values(&[outcome]).inc_by(n);
        }
    }
}
