//! nodal-stats: the cohort statistics of both studies, computed from
//! predictions.csv, and the self-contained HTML report.
//!
//! ```no_run
//! use nodal_stats::{AnalyzeOptions, Task, analyze, read_predictions};
//! let predictions = read_predictions("predictions.csv".as_ref(), Task::Binary)?;
//! let metrics = analyze(&predictions, &AnalyzeOptions::default())?;
//! println!("{}", metrics.to_json()?);
//! # Ok::<(), nodal_stats::StatsError>(())
//! ```

pub mod auc;
pub mod binary;
pub mod bootstrap;
pub mod calibration;
pub mod covariates;
pub mod error;
pub mod interval;
pub mod kappa;
pub mod logistic;
pub mod mcnemar;
pub mod metrics;
pub mod multiclass;
pub mod options;
pub mod output;
pub mod predictions;
pub mod reader;
pub mod report;
pub mod threshold;

pub use error::{StatsError, Where};
pub use metrics::Metrics;
pub use options::{AnalyzeOptions, ThresholdChoice, ThresholdSource};
pub use output::write_results;
pub use predictions::{
    BinaryCase, BinaryPredictions, Component, MulticlassCase, MulticlassPredictions, OrdinalPair,
    Predictions, Task,
};
pub use reader::{parse_predictions, read_predictions};
pub use report::{Exclusion, ParticipantFlow, ReportInput, render_report};

/// Computes metrics.json's content for `predictions`.
///
/// Errors only when an option does not fit the data (an unknown covariate, a
/// reference level that does not occur, a stage, pT or pN category missing from its order).
pub fn analyze(predictions: &Predictions, options: &AnalyzeOptions) -> Result<Metrics, StatsError> {
    match predictions {
        Predictions::Binary(p) => {
            binary::analyze_binary(p, options).map(|m| Metrics::Binary(Box::new(m)))
        }
        Predictions::Multiclass(p) => {
            let binary_only = [
                ("--covariates", !options.covariates.is_empty()),
                ("--reference", !options.references.is_empty()),
                ("--stage-order", options.stage_order.is_some()),
                ("--t-order", options.t_order.is_some()),
                ("--n-order", options.n_order.is_some()),
                ("--threshold", options.threshold != ThresholdChoice::Youden),
            ];
            if let Some((option, _)) = binary_only.iter().find(|(_, given)| *given) {
                return Err(StatsError::BadOption {
                    option,
                    message: "applies to the binary task only".into(),
                });
            }
            Ok(Metrics::Multiclass(Box::new(
                multiclass::analyze_multiclass(p, options),
            )))
        }
    }
}
