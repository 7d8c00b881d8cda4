//! The statistics of a finished run: metrics.json and report.html for all
//! cases and for the validation split alone, computed by nodal-stats from
//! the run's predictions.csv exactly as `nodal analyze` would.

use crate::output::failures::{FailureLevel, FailureRow, FailureStage};
use crate::output::provenance::RunProvenance;
use nodal_stats::{
    AnalyzeOptions, Exclusion, ParticipantFlow, ReportInput, StatsError, ThresholdChoice,
    ThresholdSource,
};
use nodal_types::ajcc::{Category, StageGroup};
use nodal_types::manifest::Manifest;
use nodal_types::model_card::{ModelCard, OutputRole};
use nodal_types::study::{Split, Study, Task};
use std::collections::{BTreeMap, HashMap};

/// Clinical covariates of the adjusted odds-ratio model, per study (those
/// present in predictions.csv are used).
fn default_covariates(study: Study) -> &'static [&'static str] {
    match study {
        Study::Ultrasound => &["age", "sex", "max_diameter_mm", "multifocal", "hashimoto"],
        Study::Cytology => &[],
    }
}

/// What the statistics of a run are computed from.
#[derive(Debug)]
pub struct StatsInput<'a> {
    /// The model card (task, classes, stages).
    pub card: &'a ModelCard,
    /// The rendered predictions.csv.
    pub predictions_csv: &'a [u8],
    /// The rows of failures.csv.
    pub failures: &'a [FailureRow],
    /// The run's manifests (for the participant flow).
    pub manifests: &'a [(Manifest, String)],
    /// run.json as it will be written.
    pub provenance: &'a RunProvenance,
}

/// Why a run's statistics could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatisticsError {
    /// The statistics failed.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// predictions.csv could not be split.
    #[error("predictions.csv: {0}")]
    Csv(#[from] csv::Error),
}

/// metrics.json + report.html for all cases, and under `validation/` for the
/// validation split (when it has cases).
pub fn run_statistics(input: &StatsInput<'_>) -> Result<Vec<(String, Vec<u8>)>, StatisticsError> {
    let task = input.card.task;
    let header = csv_header(input.predictions_csv);
    let head_labels = |role| input.card.output(role).map(|o| o.labels.clone());
    let options = AnalyzeOptions {
        covariates: match task {
            Task::Binary => default_covariates(input.card.study)
                .iter()
                .filter(|c| header.iter().any(|h| h == *c))
                .map(|c| c.to_string())
                .collect(),
            Task::Multiclass => vec![],
        },
        // The predicted stage group is derived from pT and pN by the AJCC 8 table.
        stage_order: (input.card.output(OutputRole::PrimaryTumour).is_some()
            && input.card.output(OutputRole::RegionalNodes).is_some())
        .then(StageGroup::labels),
        t_order: head_labels(OutputRole::PrimaryTumour),
        n_order: head_labels(OutputRole::RegionalNodes),
        ..AnalyzeOptions::default()
    };
    let development = development_threshold(input.predictions_csv, input.card)?;
    let provenance = serde_json::to_value(input.provenance).ok();
    let mut files = Vec::new();
    let subsets: [(&str, &str, Option<Split>); 2] = [
        ("", "all cases", None),
        ("validation/", "validation split", Some(Split::Validation)),
    ];
    for (dir, name, split) in subsets {
        let csv = match split {
            None => input.predictions_csv.to_vec(),
            Some(split) => filter_split(input.predictions_csv, split.as_str())?,
        };
        let predictions = nodal_stats::parse_predictions("predictions.csv", csv.as_slice(), task)?;
        if split.is_some() && predictions.is_empty() {
            continue;
        }
        // The validation split is analysed at a threshold fixed before it.
        let options = match (split, development) {
            (Some(Split::Validation), Some((threshold, source))) => AnalyzeOptions {
                threshold: ThresholdChoice::Fixed(threshold),
                threshold_source: source,
                ..options.clone()
            },
            _ => options.clone(),
        };
        let metrics = nodal_stats::analyze(&predictions, &options)?;
        let report = nodal_stats::render_report(&ReportInput {
            metrics: &metrics,
            predictions: &predictions,
            title: Some(format!("{} — {}", input.card.name, input.card.study)),
            subset: Some(name.to_string()),
            flow: Some(participant_flow(
                input.manifests,
                input.failures,
                split,
                predictions.len() as u64,
            )),
            provenance: provenance.clone(),
        })?;
        files.push((
            format!("{dir}metrics.json"),
            metrics.to_json()?.into_bytes(),
        ));
        files.push((format!("{dir}report.html"), report.into_bytes()));
    }
    Ok(files)
}

/// The binary threshold the validation split is analysed at, fixed before
/// it: Youden's on the run's training split, else the model card's
/// `held_out.threshold`; `None` (the validation split then reports its own
/// Youden threshold, labelled so) when neither exists.
fn development_threshold(
    predictions_csv: &[u8],
    card: &ModelCard,
) -> Result<Option<(f64, ThresholdSource)>, StatisticsError> {
    if card.task != Task::Binary {
        return Ok(None);
    }
    let training = filter_split(predictions_csv, Split::Train.as_str())?;
    let has_rows = csv::Reader::from_reader(training.as_slice())
        .records()
        .next()
        .is_some();
    if has_rows {
        let training =
            nodal_stats::parse_predictions("predictions.csv", training.as_slice(), Task::Binary)?;
        if let Some(threshold) = nodal_stats::threshold::development_threshold(&training) {
            return Ok(Some((threshold, ThresholdSource::TrainingSplit)));
        }
    }
    Ok(card
        .held_out
        .get("threshold")
        .and_then(serde_json::Value::as_f64)
        .filter(|t| (0.0..=1.0).contains(t))
        .map(|t| (t, ThresholdSource::ModelCard)))
}

fn csv_header(csv: &[u8]) -> Vec<String> {
    csv::Reader::from_reader(csv)
        .headers()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The rows of a predictions.csv whose `split` is `split`, header kept.
fn filter_split(csv_bytes: &[u8], split: &str) -> Result<Vec<u8>, csv::Error> {
    let mut reader = csv::Reader::from_reader(csv_bytes);
    let headers = reader.headers()?.clone();
    let column = headers.iter().position(|h| h == "split");
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&headers)?;
    for record in reader.records() {
        let record = record?;
        if column.and_then(|c| record.get(c)) == Some(split) {
            writer.write_record(&record)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// The STARD flow of the run's cases (restricted to a split when given):
/// every eligibility criterion of the study with its count, then QC and
/// inference failures by reason.
pub fn participant_flow(
    manifests: &[(Manifest, String)],
    failures: &[FailureRow],
    split: Option<Split>,
    analysed: u64,
) -> ParticipantFlow {
    let in_subset: HashMap<(&str, &str), bool> = manifests
        .iter()
        .flat_map(|(m, _)| {
            m.cases.iter().map(move |c| {
                (
                    (m.archive_id.as_str(), c.case_id.as_str()),
                    split.is_none_or(|s| c.split == s),
                )
            })
        })
        .collect();
    let counted = |f: &&FailureRow| {
        f.level == FailureLevel::Case
            && in_subset.get(&(f.archive_id.as_str(), f.case_id.as_str())) == Some(&true)
    };
    let mut ineligible: BTreeMap<String, u64> = BTreeMap::new();
    let mut qc: BTreeMap<String, u64> = BTreeMap::new();
    let mut inference: BTreeMap<String, u64> = BTreeMap::new();
    for f in failures.iter().filter(counted) {
        let bucket = match f.stage {
            FailureStage::Eligibility => &mut ineligible,
            FailureStage::Qc | FailureStage::NoTiles => &mut qc,
            _ => &mut inference,
        };
        let reason = match f.stage {
            FailureStage::Eligibility | FailureStage::Qc | FailureStage::NoTiles => {
                f.reason.clone()
            }
            stage => format!("{}: {}", stage.as_str(), f.reason),
        };
        *bucket.entry(reason).or_default() += 1;
    }
    let list = |m: BTreeMap<String, u64>| {
        m.into_iter()
            .map(|(reason, n)| Exclusion { reason, n })
            .collect::<Vec<_>>()
    };
    // Every criterion of the protocol is a line, in the documented order, 0 or not.
    let criteria = manifests
        .first()
        .map(|(m, _)| m.study.eligibility_criteria())
        .unwrap_or_default();
    let mut excluded_ineligible: Vec<Exclusion> = criteria
        .iter()
        .map(|&c| Exclusion {
            reason: c.to_string(),
            n: ineligible.get(c).copied().unwrap_or(0),
        })
        .collect();
    excluded_ineligible.extend(
        ineligible
            .iter()
            .filter(|(reason, _)| !criteria.contains(&reason.as_str()))
            .map(|(reason, &n)| Exclusion {
                reason: reason.clone(),
                n,
            }),
    );
    let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    let submitted = in_subset.values().filter(|v| **v).count() as u64;
    let eligible = submitted - total(&ineligible);
    let passed_qc = eligible - total(&qc);
    ParticipantFlow {
        submitted,
        excluded_ineligible,
        eligible,
        excluded_qc: list(qc),
        passed_qc,
        failed_inference: list(inference),
        analysed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(threshold: Option<f64>) -> ModelCard {
        let mut card: ModelCard =
            serde_json::from_str(include_str!("../../models/ptc-ln/card.json")).expect("card");
        card.held_out.remove("threshold");
        if let Some(t) = threshold {
            card.held_out.insert("threshold".into(), t.into());
        }
        card
    }

    const CSV: &str = "case_id,site,split,label,score\n\
        t1,a,train,0,0.10\nt2,a,train,0,0.30\nt3,a,train,1,0.35\nt4,a,train,1,0.80\n\
        v1,b,validation,0,0.20\nv2,b,validation,1,0.33\nv3,b,validation,0,0.34\nv4,b,validation,1,0.90\n";

    #[test]
    fn the_flow_lists_every_criterion_of_the_study_in_order_with_zeros() {
        use nodal_testkit::fixtures;
        let cases = ["k1", "k2", "k3"].map(|id| fixtures::case(id, 1, id == "k1"));
        let manifest = fixtures::manifest("cy-a.1", cases.to_vec());
        let excluded = |case_id: &str, reason: &str| FailureRow {
            archive_id: "cy-a.1".into(),
            site: manifest.site.clone(),
            case_id: case_id.into(),
            level: FailureLevel::Case,
            item: String::new(),
            stage: FailureStage::Eligibility,
            reason: reason.into(),
        };
        let failures = [
            excluded("k2", "unsupported_origin"),
            excluded("k3", "a_criterion_of_an_older_nodal"),
        ];
        let flow = participant_flow(&[(manifest.clone(), String::new())], &failures, None, 1);
        let lines: Vec<(&str, u64)> = flow
            .excluded_ineligible
            .iter()
            .map(|e| (e.reason.as_str(), e.n))
            .collect();
        assert_eq!(
            lines,
            [
                ("no_confirmed_origin", 0),
                ("unsupported_origin", 1),
                ("a_criterion_of_an_older_nodal", 1)
            ]
        );
        assert_eq!((flow.submitted, flow.eligible), (3, 1));
    }

    #[test]
    fn the_validation_threshold_is_youdens_on_the_training_split() {
        let chosen = development_threshold(CSV.as_bytes(), &card(Some(0.9))).expect("parses");
        assert_eq!(chosen, Some((0.35, ThresholdSource::TrainingSplit)));
        // and not the validation split's own (0.90 there)
        let validation = filter_split(CSV.as_bytes(), "validation").expect("splits");
        let own = nodal_stats::parse_predictions("v", validation.as_slice(), Task::Binary)
            .expect("parses");
        assert_eq!(
            nodal_stats::threshold::development_threshold(&own),
            Some(0.9)
        );
    }

    #[test]
    fn without_training_cases_the_cards_threshold_is_used_else_none() {
        let validation_only = filter_split(CSV.as_bytes(), "validation").expect("splits");
        assert_eq!(
            development_threshold(&validation_only, &card(Some(0.42))).expect("parses"),
            Some((0.42, ThresholdSource::ModelCard))
        );
        assert_eq!(
            development_threshold(&validation_only, &card(None)).expect("parses"),
            None
        );
    }
}
