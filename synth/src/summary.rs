//! What `nodal synth` made: written to `synth.json` and returned to callers.

use nodal_types::study::Study;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Layout tag of `synth.json`.
pub const SYNTH_SCHEMA: &str = "nodal.synth/1";

/// Contents of `OUT/synth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// [`SYNTH_SCHEMA`].
    pub schema: String,
    /// nodal version that wrote the archives.
    pub nodal_version: String,
    /// The seed every random stream derives from.
    pub seed: u64,
    /// Fraction of the full study size.
    pub scale: f64,
    /// One entry per study written.
    pub studies: BTreeMap<Study, StudySummary>,
}

/// What was written for one study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySummary {
    /// Per-site counts, by site name.
    pub sites: BTreeMap<String, SiteSummary>,
    /// The model the labels were drawn from (ultrasound only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_model: Option<LabelModel>,
}

/// Counts for one site folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteSummary {
    /// Rows of `cases.csv`.
    pub cases: usize,
    /// Image files written.
    pub images: usize,
    /// Cases with `split = train`.
    pub train: usize,
    /// Cases with `split = validation`.
    pub validation: usize,
    /// Cases planted as ineligible.
    pub ineligible: usize,
    /// Planted image defects by kind (`blank`, `blur`, `artefact`).
    pub defects: BTreeMap<String, usize>,
    /// Cases per recorded label value (empty label counted as `""`).
    pub labels: BTreeMap<String, usize>,
}

/// The logistic model `ln_metastasis` is drawn from:
/// `P(y = 1) = 1 / (1 + exp(-(intercept + Σ value · term)))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelModel {
    /// Always `logit`.
    pub link: String,
    /// The intercept.
    pub intercept: f64,
    /// The terms; their odds ratios are `exp(value)`.
    pub coefficients: Vec<Coefficient>,
}

/// One term of the label model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    /// Term name.
    pub term: String,
    /// Log-odds coefficient.
    pub value: f64,
    /// How the term is computed from the case's fields.
    pub definition: String,
}
