//! What `analyze` can be asked: threshold rule, covariates, stage, pT and
//! pN orders, bootstrap.

use crate::predictions::Component;
use nodal_types::ajcc::{Category, PrimaryTumour, RegionalNodes};
use std::str::FromStr;

/// How the binary operating threshold is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ThresholdChoice {
    /// Maximise Youden's index over the distinct scores.
    #[default]
    Youden,
    /// Use this score cut as is (a case positive when `score >= t`).
    Fixed(f64),
}

impl FromStr for ThresholdChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "youden" {
            return Ok(ThresholdChoice::Youden);
        }
        match s.parse::<f64>() {
            Ok(t) if (0.0..=1.0).contains(&t) => Ok(ThresholdChoice::Fixed(t)),
            _ => Err(format!(
                "\"{s}\" is neither \"youden\" nor a number in [0, 1]"
            )),
        }
    }
}

/// Where a fixed threshold came from, recorded in metrics.json as
/// `threshold_source` (a Youden threshold's source is `own_youden`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdSource {
    /// Given as a number (`--threshold 0.4`).
    #[default]
    Given,
    /// The Youden threshold of the run's training split, fixed before the
    /// validation split is analysed (STARD, TRIPOD+AI).
    TrainingSplit,
    /// The operating threshold the model card records (`held_out.threshold`).
    ModelCard,
    /// The `threshold` of another analysis's metrics.json (`--threshold-from`).
    MetricsFile,
}

impl ThresholdSource {
    /// Every source.
    pub const ALL: [ThresholdSource; 4] = [
        ThresholdSource::Given,
        ThresholdSource::TrainingSplit,
        ThresholdSource::ModelCard,
        ThresholdSource::MetricsFile,
    ];

    /// The name in metrics.json.
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdSource::Given => "given",
            ThresholdSource::TrainingSplit => "training_split",
            ThresholdSource::ModelCard => "model_card",
            ThresholdSource::MetricsFile => "metrics_file",
        }
    }

    /// What it means, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            ThresholdSource::Given => "given",
            ThresholdSource::TrainingSplit => {
                "Youden's on the run's training split, fixed before validation"
            }
            ThresholdSource::ModelCard => "the model card's, fixed before validation",
            ThresholdSource::MetricsFile => "taken from another analysis's metrics.json",
        }
    }
}

/// Options of an analysis; `Default` is the command line's defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyzeOptions {
    /// Binary task: threshold rule (default Youden).
    pub threshold: ThresholdChoice,
    /// Binary task: where a fixed threshold came from.
    pub threshold_source: ThresholdSource,
    /// Binary task: covariate columns of the adjusted odds-ratio model, in order.
    pub covariates: Vec<String>,
    /// Binary task: reference level per categorical covariate, as (column, level).
    pub references: Vec<(String, String)>,
    /// Binary task: stage categories in order; `None` = the labels sorted as text.
    pub stage_order: Option<Vec<String>>,
    /// Binary task: pT categories in order; `None` = AJCC 8 (T1a … T4b).
    pub t_order: Option<Vec<String>>,
    /// Binary task: pN categories in order; `None` = AJCC 8 (N0, N1a, N1b).
    pub n_order: Option<Vec<String>>,
    /// Bootstrap replicates (0 = none).
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl AnalyzeOptions {
    /// The category order of `component`: the one given, else AJCC 8's for
    /// pT and pN; `None` (stage group, not given) = the observed labels sorted as text.
    pub fn order(&self, component: Component) -> Option<Vec<String>> {
        match component {
            Component::Stage => self.stage_order.clone(),
            Component::PrimaryTumour => {
                Some(self.t_order.clone().unwrap_or_else(PrimaryTumour::labels))
            }
            Component::RegionalNodes => {
                Some(self.n_order.clone().unwrap_or_else(RegionalNodes::labels))
            }
        }
    }
}

/// Parses one `column=level` of `--reference`.
pub fn parse_reference(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((column, level)) if !column.trim().is_empty() => {
            Ok((column.trim().to_string(), level.trim().to_string()))
        }
        _ => Err(format!("\"{s}\" is not column=level")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_threshold_and_reference() {
        assert_eq!(
            "youden".parse::<ThresholdChoice>(),
            Ok(ThresholdChoice::Youden)
        );
        assert_eq!(
            "0.25".parse::<ThresholdChoice>(),
            Ok(ThresholdChoice::Fixed(0.25))
        );
        assert!("1.5".parse::<ThresholdChoice>().is_err());
        assert!("nan".parse::<ThresholdChoice>().is_err());
        assert_eq!(
            parse_reference("site=left"),
            Ok(("site".into(), "left".into()))
        );
        assert!(parse_reference("=x").is_err());
        assert!(parse_reference("nolevel").is_err());
    }
}
