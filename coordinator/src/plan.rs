//! Run planning: archives + model → jobs of about `job_tiles` tiles, cut
//! along case boundaries and, where they can be, along shard boundaries, so
//! that a job's tiles are one contiguous range of one shard (one GET).
//!
//! Pure and deterministic: the same manifests, card and settings give the
//! same jobs with the same ids, which is what lets a restarted coordinator
//! re-derive a run's plan and publish only what has no stored result.

use crate::output::failures::{FailureLevel, FailureRow, FailureStage};
use nodal_types::manifest::{Case, Manifest};
use nodal_types::model_card::ModelCard;
use nodal_types::wire::{Job, JobCase, JobTile, ModelRef};
use uuid::Uuid;

/// Why a run cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The archive belongs to another study than the model reads.
    #[error(
        "archive {archive_id} is a {archive_study} archive; model {model} reads {model_study} archives"
    )]
    StudyMismatch {
        /// The archive.
        archive_id: String,
        /// Its study.
        archive_study: String,
        /// The model.
        model: String,
        /// The model's study.
        model_study: String,
    },
    /// The archive was tiled differently from what the model expects.
    #[error(
        "archive {archive_id} was tiled {archive_tiling}; model {model} expects {model_tiling}: re-submit the site with the model's tiling"
    )]
    TilingMismatch {
        /// The archive.
        archive_id: String,
        /// The archive's tiling.
        archive_tiling: String,
        /// The model.
        model: String,
        /// The model's tiling.
        model_tiling: String,
    },
    /// The archive's tiles were encoded with another JPEG codec than the
    /// one the model was validated on: its scores would not be the model's.
    #[error(
        "archive {archive_id} was tiled with {archive_codec}; model {model} was validated on {model_codec}: re-submit the site with this nodal (its codec is the model's)"
    )]
    CodecMismatch {
        /// The archive.
        archive_id: String,
        /// The archive's codec.
        archive_codec: String,
        /// The model.
        model: String,
        /// The model card's codec.
        model_codec: String,
    },
    /// The same archive named twice.
    #[error("archive {0} is named twice in the run")]
    DuplicateArchive(String),
    /// Nothing to run.
    #[error("the run names no archives")]
    NoArchives,
    /// The job size is zero.
    #[error("job size must be at least one tile")]
    ZeroJobSize,
}

/// A planned run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The jobs, in index order.
    pub jobs: Vec<Job>,
    /// Cases and images left out before any inference, with the reason.
    pub left_out: Vec<FailureRow>,
}

impl Plan {
    /// Tiles over all jobs.
    pub fn tile_count(&self) -> usize {
        self.jobs.iter().map(Job::tile_count).sum()
    }
}

/// The deterministic id of job `index` of run `run_id`.
pub fn job_id(run_id: Uuid, index: u32) -> Uuid {
    Uuid::new_v5(&run_id, format!("job-{index}").as_bytes())
}

/// Plan a run over `manifests` (in request order) with `card`.
pub fn plan_run(
    run_id: Uuid,
    manifests: &[Manifest],
    card: &ModelCard,
    model: &ModelRef,
    job_tiles: usize,
) -> Result<Plan, PlanError> {
    check_inputs(manifests, card, job_tiles)?;
    let mut builder = JobBuilder {
        run_id,
        model,
        job_tiles,
        jobs: Vec::new(),
        open: None,
    };
    let mut left_out = Vec::new();
    for manifest in manifests {
        for case in &manifest.cases {
            left_out.extend(pre_run_exclusions(manifest, case));
            if !case.eligibility.is_eligible() || case.tile_count() == 0 {
                continue;
            }
            let report = match (card.report_width(), &case.report) {
                (0, _) => None,
                (_, Some(report)) => match card.encode_report(report) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        left_out.push(case_row(
                            manifest,
                            case,
                            FailureStage::Report,
                            e.to_string(),
                        ));
                        continue;
                    }
                },
                (_, None) => {
                    left_out.push(case_row(
                        manifest,
                        case,
                        FailureStage::Report,
                        "the model needs a structured report and the case has none".into(),
                    ));
                    continue;
                }
            };
            let tiles: Vec<JobTile> = case
                .images
                .iter()
                .filter(|i| i.qc.passed)
                .flat_map(|i| &i.tiles)
                .map(|t| JobTile::of(&manifest.archive_id, t))
                .collect();
            builder.add_case(&manifest.archive_id, &case.case_id, tiles, report);
        }
        builder.close();
    }
    Ok(Plan {
        jobs: builder.jobs,
        left_out,
    })
}

fn check_inputs(
    manifests: &[Manifest],
    card: &ModelCard,
    job_tiles: usize,
) -> Result<(), PlanError> {
    if manifests.is_empty() {
        return Err(PlanError::NoArchives);
    }
    if job_tiles == 0 {
        return Err(PlanError::ZeroJobSize);
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in manifests {
        if !seen.insert(&m.archive_id) {
            return Err(PlanError::DuplicateArchive(m.archive_id.clone()));
        }
        if m.study != card.study {
            return Err(PlanError::StudyMismatch {
                archive_id: m.archive_id.clone(),
                archive_study: m.study.to_string(),
                model: card.name.clone(),
                model_study: card.study.to_string(),
            });
        }
        if m.tiling.size != card.tile.size || m.tiling.mode != card.tile.mode {
            return Err(PlanError::TilingMismatch {
                archive_id: m.archive_id.clone(),
                archive_tiling: format!("{:?} {}px", m.tiling.mode, m.tiling.size),
                model: card.name.clone(),
                model_tiling: format!("{:?} {}px", card.tile.mode, card.tile.size),
            });
        }
        if m.tiling.codec != card.tile.codec {
            return Err(PlanError::CodecMismatch {
                archive_id: m.archive_id.clone(),
                archive_codec: m.tiling.codec.to_string(),
                model: card.name.clone(),
                model_codec: card.tile.codec.to_string(),
            });
        }
    }
    Ok(())
}

/// Rows for what a manifest already left out: ineligible cases, images that
/// failed QC, and eligible cases left with no usable tile.
fn pre_run_exclusions(manifest: &Manifest, case: &Case) -> Vec<FailureRow> {
    if let nodal_types::manifest::Eligibility::Excluded { criterion } = &case.eligibility {
        return vec![case_row(
            manifest,
            case,
            FailureStage::Eligibility,
            criterion.clone(),
        )];
    }
    let mut rows: Vec<FailureRow> = case
        .images
        .iter()
        .filter(|i| !i.qc.passed)
        .map(|i| FailureRow {
            archive_id: manifest.archive_id.clone(),
            site: manifest.site.clone(),
            case_id: case.case_id.clone(),
            level: FailureLevel::Image,
            item: i.path.clone(),
            stage: FailureStage::Qc,
            reason: i
                .qc
                .reason
                .map(|r| r.as_str().to_string())
                .unwrap_or_else(|| "failed QC".into()),
        })
        .collect();
    if case.tile_count() == 0 {
        let reason = if case.images.iter().any(|i| i.qc.passed) {
            "no tissue tile in the images that passed QC"
        } else {
            "no image passed QC"
        };
        rows.push(case_row(
            manifest,
            case,
            FailureStage::NoTiles,
            reason.into(),
        ));
    }
    rows
}

fn case_row(manifest: &Manifest, case: &Case, stage: FailureStage, reason: String) -> FailureRow {
    FailureRow {
        archive_id: manifest.archive_id.clone(),
        site: manifest.site.clone(),
        case_id: case.case_id.clone(),
        level: FailureLevel::Case,
        item: String::new(),
        stage,
        reason,
    }
}

/// Packs cases into jobs: a case that fits in a job is never split; a case
/// larger than a job fills job-sized parts; a case that starts in another
/// shard than the open job's last tile starts a job of its own.
struct JobBuilder<'a> {
    run_id: Uuid,
    model: &'a ModelRef,
    job_tiles: usize,
    jobs: Vec<Job>,
    open: Option<Job>,
}

impl JobBuilder<'_> {
    fn add_case(
        &mut self,
        archive_id: &str,
        case_id: &str,
        tiles: Vec<JobTile>,
        report: Option<Vec<f32>>,
    ) {
        let room = self
            .open
            .as_ref()
            .map_or(0, |j| self.job_tiles - j.tile_count());
        let open_shard = self
            .open
            .as_ref()
            .and_then(|j| j.cases.last()?.tiles.last())
            .map(|t| t.shard_key.as_str());
        let other_shard =
            open_shard.is_some_and(|s| Some(s) != tiles.first().map(|t| t.shard_key.as_str()));
        if other_shard || (tiles.len() > room && tiles.len() <= self.job_tiles) {
            self.close();
        }
        let mut part = 0;
        let mut rest = tiles.as_slice();
        let job_tiles = self.job_tiles;
        while !rest.is_empty() {
            let job = self.open_job(archive_id);
            let room = job_tiles - job.tile_count();
            let (now, later) = rest.split_at(room.min(rest.len()));
            job.cases.push(JobCase {
                case_id: case_id.to_string(),
                part,
                tiles: now.to_vec(),
                report: report.clone(),
            });
            part += 1;
            rest = later;
            if job.tile_count() >= job_tiles {
                self.close();
            }
        }
    }

    fn open_job(&mut self, archive_id: &str) -> &mut Job {
        let index = self.jobs.len() as u32;
        let (run_id, model) = (self.run_id, self.model);
        self.open.get_or_insert_with(|| Job {
            run_id,
            job_id: job_id(run_id, index),
            index,
            model: model.clone(),
            archive_id: archive_id.to_string(),
            cases: Vec::new(),
            traceparent: None,
        })
    }

    fn close(&mut self) {
        if let Some(job) = self.open.take() {
            self.jobs.push(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_testkit::fixtures::{
        TILE_BYTES, card, case, manifest, manifest_in_shards, model_ref,
    };
    use nodal_types::study::Study;
    use proptest::prelude::*;

    #[test]
    fn small_cases_are_not_split_and_big_ones_are() {
        let m = manifest(
            "a",
            vec![
                case("c1", 6, true),
                case("c2", 6, true),
                case("c3", 25, true),
            ],
        );
        let plan = plan_run(Uuid::from_u128(1), &[m], &card(), &model_ref(), 10).unwrap();
        let shape: Vec<Vec<(String, u32, usize)>> = plan
            .jobs
            .iter()
            .map(|j| {
                j.cases
                    .iter()
                    .map(|c| (c.case_id.clone(), c.part, c.tiles.len()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![("c1".into(), 0, 6)],
                vec![("c2".into(), 0, 6), ("c3".into(), 0, 4)],
                vec![("c3".into(), 1, 10)],
                vec![("c3".into(), 2, 10)],
                vec![("c3".into(), 3, 1)],
            ]
        );
    }

    #[test]
    fn exclusions_are_recorded_and_study_mismatch_refused() {
        let m = manifest(
            "a",
            vec![
                case("in", 2, true),
                case("out", 2, false),
                case("empty", 0, true),
            ],
        );
        let plan = plan_run(
            Uuid::from_u128(1),
            std::slice::from_ref(&m),
            &card(),
            &model_ref(),
            10,
        )
        .unwrap();
        let rows: Vec<(String, FailureStage)> = plan
            .left_out
            .iter()
            .map(|r| (r.case_id.clone(), r.stage))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("in".into(), FailureStage::Qc),
                ("out".into(), FailureStage::Eligibility),
                ("empty".into(), FailureStage::Qc),
                ("empty".into(), FailureStage::NoTiles),
            ]
        );
        let mut us = card();
        us.study = Study::Ultrasound;
        assert!(matches!(
            plan_run(
                Uuid::from_u128(1),
                std::slice::from_ref(&m),
                &us,
                &model_ref(),
                10
            ),
            Err(PlanError::StudyMismatch { .. })
        ));
        assert_eq!(
            plan_run(
                Uuid::from_u128(1),
                &[m.clone(), m],
                &card(),
                &model_ref(),
                10
            ),
            Err(PlanError::DuplicateArchive("a".into()))
        );
    }

    #[test]
    fn an_archive_of_another_codec_is_refused_by_name() {
        let mut m = manifest("cy-a.0001", vec![case("in", 2, true)]);
        m.tiling.codec.library = "jpeg-encoder".into();
        m.tiling.codec.version = "0.6".into();
        let err = plan_run(Uuid::from_u128(1), &[m], &card(), &model_ref(), 10).unwrap_err();
        assert!(matches!(err, PlanError::CodecMismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("archive cy-a.0001 was tiled with jpeg-encoder 0.6")
                && text.contains("was validated on libjpeg-turbo 3.1.0"),
            "{text}"
        );
    }

    #[test]
    fn a_job_does_not_cross_into_another_shard_between_cases() {
        // Shards of 20 tiles: c1 (6 tiles, and 3 of a failed image) and c2 (6 + 3)
        // share shard 0; c3 (6 + 3) does not fit and starts shard 1.
        let tile = TILE_BYTES as u64;
        let m = manifest_in_shards(
            "a",
            vec![
                case("c1", 6, true),
                case("c2", 6, true),
                case("c3", 6, true),
            ],
            20 * tile,
        );
        assert_eq!(m.shards.len(), 2);
        let plan = plan_run(Uuid::from_u128(1), &[m], &card(), &model_ref(), 64).unwrap();
        let shape: Vec<Vec<&str>> = plan
            .jobs
            .iter()
            .map(|j| j.cases.iter().map(|c| c.case_id.as_str()).collect())
            .collect();
        assert_eq!(shape, vec![vec!["c1", "c2"], vec!["c3"]]);
        for job in &plan.jobs {
            let tiles: Vec<&JobTile> = job.cases.iter().flat_map(|c| &c.tiles).collect();
            assert!(tiles.iter().all(|t| t.shard_key == tiles[0].shard_key));
            assert!(tiles.windows(2).all(|w| w[0].end() <= w[1].offset));
        }
        assert_eq!(plan.jobs[1].cases[0].tiles[0].offset, 0);
        assert!(
            plan.jobs[1].cases[0].tiles[0]
                .shard_key
                .ends_with("/shards/000001.bin")
        );
    }

    proptest! {
        #[test]
        fn every_tile_is_planned_once_within_job_size(
            sizes in prop::collection::vec(1usize..40, 1..30),
            job_tiles in 1usize..50,
        ) {
            let cases: Vec<Case> = sizes.iter().enumerate().map(|(i, n)| case(&format!("c{i}"), *n, true)).collect();
            let plan = plan_run(Uuid::from_u128(9), &[manifest("a", cases)], &card(), &model_ref(), job_tiles).unwrap();
            prop_assert_eq!(plan.tile_count(), sizes.iter().sum::<usize>());
            for (i, job) in plan.jobs.iter().enumerate() {
                prop_assert!(job.tile_count() <= job_tiles && job.tile_count() > 0);
                prop_assert_eq!(job.index as usize, i);
                prop_assert_eq!(job.job_id, job_id(Uuid::from_u128(9), i as u32));
            }
            for (i, n) in sizes.iter().enumerate() {
                let id = format!("c{i}");
                let planned: usize = plan.jobs.iter().flat_map(|j| &j.cases).filter(|c| c.case_id == id).map(|c| c.tiles.len()).sum();
                prop_assert_eq!(planned, *n);
                let parts = plan.jobs.iter().flat_map(|j| &j.cases).filter(|c| c.case_id == id).count();
                if *n <= job_tiles { prop_assert_eq!(parts, 1); }
            }
        }
    }
}
