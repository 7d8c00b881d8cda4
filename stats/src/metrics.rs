//! The metrics.json types, serialising to exactly the contract's JSON
//! (`null`, never NaN), plus the documented `calibration` and `bootstrap` blocks.

use crate::auc::AucInterval;
use crate::calibration::Calibration;
use crate::interval::{BootstrapInterval, Interval};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Version of the metrics.json layout.
pub const SCHEMA_VERSION: u32 = 1;

/// A JSON object whose keys keep the order given (sites sorted, classes and
/// readers in header order).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<T>(pub Vec<(String, T)>);

impl<T> OrderedMap<T> {
    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<T: Serialize> Serialize for OrderedMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The binary 2×2 table at the operating threshold.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Confusion {
    /// Positives called positive.
    pub tp: u64,
    /// Negatives called positive.
    pub fp: u64,
    /// Negatives called negative.
    pub tn: u64,
    /// Positives called negative.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// One site's binary results at the global threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SiteBinary {
    /// Labelled cases of the site.
    pub n: u64,
    /// Positive cases of the site.
    pub n_positive: u64,
    /// AUC with DeLong interval; `null` when the site has one class.
    pub auc: Option<AucInterval>,
    /// Sensitivity at the global threshold.
    pub sensitivity: Option<Interval>,
    /// Specificity at the global threshold.
    pub specificity: Option<Interval>,
}

/// Agreement of predicted with pathological category of one ordinal
/// component: the stage group, pT or pN.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageAgreement {
    /// Cases with both the pathological and the predicted category.
    pub n: u64,
    /// Share of those cases whose two categories are the same; `null` when there are none.
    pub accuracy: Option<f64>,
    /// Categories, in order.
    pub categories: Vec<String>,
    /// Linearly weighted kappa.
    pub kappa_linear: Option<f64>,
    /// Quadratically weighted kappa.
    pub kappa_quadratic: Option<f64>,
    /// Linearly weighted kappa with its 95 % interval (large-sample SE).
    pub kappa_linear_interval: Option<Interval>,
    /// Quadratically weighted kappa with its 95 % interval (large-sample SE).
    pub kappa_quadratic_interval: Option<Interval>,
    /// How the intervals are computed.
    pub interval_method: &'static str,
    /// Counts, rows = pathological category, columns = predicted, in `categories` order.
    pub matrix: Vec<Vec<u64>>,
}

/// One covariate term of the adjusted logistic model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OddsRatio {
    /// `column` (numeric) or `column=level` (dummy of a text column).
    pub term: String,
    /// `exp(beta)`; `null` when the fit failed.
    pub odds_ratio: Option<f64>,
    /// Wald 95 % lower bound.
    pub ci_low: Option<f64>,
    /// Wald 95 % upper bound.
    pub ci_high: Option<f64>,
    /// Two-sided Wald p-value.
    pub p_value: Option<f64>,
}

/// How the bootstrap intervals (the `bootstrap` members of intervals) were made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BootstrapInfo {
    /// Number of replicates.
    pub replicates: usize,
    /// Seed.
    pub seed: u64,
    /// What is resampled.
    pub resampling: &'static str,
    /// Interval type.
    pub interval: &'static str,
    /// Multi-class: the bootstrap interval of `macro_auc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_auc: Option<BootstrapInterval>,
}

/// metrics.json of the binary task.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BinaryMetrics {
    /// Layout version.
    pub schema_version: u32,
    /// Always `"binary"`.
    pub task: &'static str,
    /// Labelled cases.
    pub n: u64,
    /// Labelled positives.
    pub n_positive: u64,
    /// Labelled negatives.
    pub n_negative: u64,
    /// Cases without a label.
    pub n_unlabelled: u64,
    /// Prevalence (the metastasis rate) with Wilson interval.
    pub prevalence: Option<Interval>,
    /// AUC with DeLong interval.
    pub auc: Option<AucInterval>,
    /// Operating threshold (a case positive when `score >= threshold`).
    pub threshold: Option<f64>,
    /// `youden` or `fixed`.
    pub threshold_method: &'static str,
    /// Where the threshold came from: `own_youden` (these cases), `given`,
    /// `training_split`, `model_card` or `metrics_file`.
    pub threshold_source: &'static str,
    /// Youden's threshold of these cases themselves; with a fixed threshold
    /// it is secondary (optimistic on the cases it was chosen on).
    pub own_youden_threshold: Option<f64>,
    /// TP / (TP + FN).
    pub sensitivity: Option<Interval>,
    /// TN / (TN + FP).
    pub specificity: Option<Interval>,
    /// TP / (TP + FP).
    pub ppv: Option<Interval>,
    /// TN / (TN + FN).
    pub npv: Option<Interval>,
    /// (TP + TN) / n.
    pub accuracy: Option<Interval>,
    /// The 2×2 table.
    pub confusion: Option<Confusion>,
    /// Per-site results, sites sorted.
    pub per_site: OrderedMap<SiteBinary>,
    /// Stage-group agreement; `null` without `stage_true`/`stage_pred`.
    pub stage_agreement: Option<StageAgreement>,
    /// pT agreement; `null` without `t_true`/`t_pred`.
    pub t_agreement: Option<StageAgreement>,
    /// pN agreement; `null` without `n_true`/`n_pred`.
    pub n_agreement: Option<StageAgreement>,
    /// Adjusted odds ratios of the covariate terms (no intercept).
    pub odds_ratios: Vec<OddsRatio>,
    /// Calibration of the scores.
    pub calibration: Calibration,
    /// Bootstrap settings, when `--bootstrap N > 0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInfo>,
    /// Why values are `null`, and other notes.
    pub warnings: Vec<String>,
}

/// One class's one-vs-rest results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassMetrics {
    /// Labelled cases of this class.
    pub n: u64,
    /// One-vs-rest AUC with DeLong interval.
    pub auc: Option<AucInterval>,
    /// Sensitivity of the arg-max prediction.
    pub sensitivity: Option<Interval>,
    /// Specificity of the arg-max prediction.
    pub specificity: Option<Interval>,
}

/// The multi-class confusion matrix (rows truth, columns prediction).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfusionMatrix {
    /// Class names, in `classes` order.
    pub labels: Vec<String>,
    /// `counts[truth][prediction]`.
    pub counts: Vec<Vec<u64>>,
}

/// One site's multi-class result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SiteMulticlass {
    /// Labelled cases of the site.
    pub n: u64,
    /// Top-1 accuracy.
    pub top1_accuracy: Option<Interval>,
}

/// One human reader against the model on the cases the reader read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReaderMetrics {
    /// Labelled cases the reader read.
    pub n: u64,
    /// The reader's accuracy.
    pub accuracy: Option<Interval>,
    /// The model's top-1 accuracy on the same cases.
    pub model_accuracy: Option<Interval>,
    /// Exact two-sided McNemar p-value.
    pub mcnemar_p: Option<f64>,
}

/// metrics.json of the multi-class task.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MulticlassMetrics {
    /// Layout version.
    pub schema_version: u32,
    /// Always `"multiclass"`.
    pub task: &'static str,
    /// Labelled cases.
    pub n: u64,
    /// Cases without a label.
    pub n_unlabelled: u64,
    /// Class names, in header order.
    pub classes: Vec<String>,
    /// Top-1 accuracy (arg-max, first class on ties).
    pub top1_accuracy: Option<Interval>,
    /// Top-3 accuracy (scikit-learn's `top_k_accuracy_score`).
    pub top3_accuracy: Option<Interval>,
    /// Unweighted mean of the per-class AUCs.
    pub macro_auc: Option<f64>,
    /// Per-class one-vs-rest results, in class order.
    pub per_class: OrderedMap<ClassMetrics>,
    /// Confusion matrix.
    pub confusion_matrix: ConfusionMatrix,
    /// Per-site top-1 accuracy, sites sorted.
    pub per_site: OrderedMap<SiteMulticlass>,
    /// Reader comparison, readers in header order.
    pub readers: OrderedMap<ReaderMetrics>,
    /// One-vs-rest calibration per class.
    pub calibration: OrderedMap<Calibration>,
    /// Bootstrap settings, when `--bootstrap N > 0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInfo>,
    /// Why values are `null`, and other notes.
    pub warnings: Vec<String>,
}

/// metrics.json of either task.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Metrics {
    /// Binary task.
    Binary(Box<BinaryMetrics>),
    /// Multi-class task.
    Multiclass(Box<MulticlassMetrics>),
}

impl Metrics {
    /// The warnings of the analysis.
    pub fn warnings(&self) -> &[String] {
        match self {
            Metrics::Binary(m) => &m.warnings,
            Metrics::Multiclass(m) => &m.warnings,
        }
    }

    /// metrics.json's text (pretty-printed, newline-terminated).
    pub fn to_json(&self) -> Result<String, crate::StatsError> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }
}
