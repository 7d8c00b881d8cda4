//! Model cards: the `card.json` that travels beside every `model.onnx` and
//! tells workers how to feed the model and coordinators how to read it.

use crate::manifest::{ReportValue, TileCodec, TileMode};
use crate::study::{Study, Task};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the card layout.
pub const CARD_SCHEMA_VERSION: u32 = 1;

/// Everything a worker and a coordinator need to know about a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// [`CARD_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Model name, e.g. `cytology-origin`.
    pub name: String,
    /// Model version (semver).
    pub version: String,
    /// The study whose archives the model reads.
    pub study: Study,
    /// Binary or multi-class.
    pub task: Task,
    /// Class names in output order. Binary models list `["negative", "positive"]`.
    pub classes: Vec<String>,
    /// The ONNX file name beside the card.
    pub onnx_file: String,
    /// Hex SHA-256 of the ONNX file; workers refuse a file that differs.
    pub onnx_sha256: String,
    /// Model inputs in the order the graph declares them.
    pub inputs: Vec<TensorSpec>,
    /// Model outputs the worker reads.
    pub outputs: Vec<OutputSpec>,
    /// How images are tiled for this model.
    pub tile: TileSpecCard,
    /// Pixel normalisation: `(pixel / scale - mean[c]) / std[c]`, RGB order, NCHW.
    pub normalisation: Normalisation,
    /// Encoding of the structured report into the `report` input (multimodal models).
    #[serde(default)]
    pub report_features: Vec<ReportFeature>,
    /// How tile outputs become a case score.
    pub aggregation: Aggregation,
    /// The batch size the model runs best at.
    pub preferred_batch: usize,
    /// Held-out metrics measured by the training script.
    #[serde(default)]
    pub held_out: BTreeMap<String, serde_json::Value>,
    /// Free-form training provenance (data, seed, epochs, versions).
    #[serde(default)]
    pub training: BTreeMap<String, serde_json::Value>,
}

/// A model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Graph input name.
    pub name: String,
    /// What the input carries.
    pub kind: InputKind,
    /// Shape with `-1` for the dynamic batch axis.
    pub shape: Vec<i64>,
}

/// What an input tensor carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// Normalised image tiles, `[N, 3, H, W]` float32.
    Image,
    /// The encoded report-feature vector, `[N, F]` float32.
    Report,
}

/// A model output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Graph output name.
    pub name: String,
    /// What the output means for nodal.
    pub role: OutputRole,
    /// Whether the values are already probabilities or logits to be soft-maxed.
    pub activation: Activation,
    /// Width of the output per sample.
    pub width: usize,
    /// Labels of the output's columns (classes or TNM categories).
    pub labels: Vec<String>,
}

/// The role of a model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputRole {
    /// The task's prediction: class probabilities, or the positive-class probability.
    Score,
    /// Primary-tumour category (AJCC 8 pT): the labels are
    /// [`crate::ajcc::PrimaryTumour`] spellings.
    #[serde(rename = "pt")]
    PrimaryTumour,
    /// Regional-node category (AJCC 8 pN): the labels are
    /// [`crate::ajcc::RegionalNodes`] spellings.
    #[serde(rename = "pn")]
    RegionalNodes,
}

/// What the raw output values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Already probabilities.
    Probabilities,
    /// Logits; the worker applies a softmax over the output width.
    Logits,
}

/// Tiling a model expects; must equal the archive's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileSpecCard {
    /// Tile edge in pixels.
    pub size: u32,
    /// Grid or whole-image.
    pub mode: TileMode,
    /// The JPEG codec the held-out figures were measured with; the
    /// archive's and the worker's must be the same.
    pub codec: TileCodec,
}

/// Pixel normalisation constants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Divide raw 0–255 values by this first.
    pub scale: f32,
    /// Per-channel mean (RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
}

/// How tile outputs are folded into one case score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Mean of tile probabilities.
    Mean,
    /// Maximum of tile probabilities (per column).
    Max,
}

/// One report field's encoding into the report vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ReportFeature {
    /// `(value - mean) / std`, one slot.
    Numeric {
        /// Report field name.
        name: String,
        /// Training mean.
        mean: f32,
        /// Training standard deviation.
        std: f32,
    },
    /// One-hot over `levels`, one slot per level.
    Categorical {
        /// Report field name.
        name: String,
        /// Known levels, in slot order.
        levels: Vec<String>,
    },
}

impl ReportFeature {
    /// Slots the feature takes in the report vector.
    pub fn width(&self) -> usize {
        match self {
            ReportFeature::Numeric { .. } => 1,
            ReportFeature::Categorical { levels, .. } => levels.len(),
        }
    }
}

/// Why a report could not be encoded for a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The report lacks a field the model needs.
    #[error("report field {0:?} is missing")]
    Missing(String),
    /// A numeric field holds text, or a categorical field a number.
    #[error("report field {field:?}: expected {expected}")]
    WrongType {
        /// Field name.
        field: String,
        /// What the card expects.
        expected: &'static str,
    },
    /// A categorical field holds a level the model was not trained on.
    #[error("report field {field:?}: unknown level {level:?}")]
    UnknownLevel {
        /// Field name.
        field: String,
        /// The level found.
        level: String,
    },
}

impl ModelCard {
    /// Object key of the ONNX file of this card's model in the store.
    pub fn onnx_key(&self) -> String {
        crate::layout::model_file_key(&self.name, &self.version, &self.onnx_file)
    }

    /// Width of the encoded report vector (0 for image-only models).
    pub fn report_width(&self) -> usize {
        self.report_features.iter().map(ReportFeature::width).sum()
    }

    /// The input of the given kind, if the model has one.
    pub fn input(&self, kind: InputKind) -> Option<&TensorSpec> {
        self.inputs.iter().find(|i| i.kind == kind)
    }

    /// The output with the given role, if the model has one.
    pub fn output(&self, role: OutputRole) -> Option<&OutputSpec> {
        self.outputs.iter().find(|o| o.role == role)
    }

    /// Check the pT and pN heads: one label per column, each an AJCC 8
    /// category of its kind. The error names the output and the label.
    pub fn check_category_heads(&self) -> Result<(), String> {
        use crate::ajcc::{Category, PrimaryTumour, RegionalNodes};
        for o in &self.outputs {
            let parse: fn(&str) -> Result<(), crate::ajcc::UnknownCategory> = match o.role {
                OutputRole::Score => continue,
                OutputRole::PrimaryTumour => |l| PrimaryTumour::parse(l).map(drop),
                OutputRole::RegionalNodes => |l| RegionalNodes::parse(l).map(drop),
            };
            if o.labels.len() != o.width {
                return Err(format!(
                    "output {} has width {} but {} labels",
                    o.name,
                    o.width,
                    o.labels.len()
                ));
            }
            for label in &o.labels {
                parse(label).map_err(|e| format!("output {}: label {e}", o.name))?;
            }
        }
        Ok(())
    }

    /// Encode a structured report into the model's report vector.
    pub fn encode_report(
        &self,
        report: &BTreeMap<String, ReportValue>,
    ) -> Result<Vec<f32>, EncodeError> {
        let mut out = Vec::with_capacity(self.report_width());
        for feature in &self.report_features {
            match feature {
                ReportFeature::Numeric { name, mean, std } => match report.get(name) {
                    Some(ReportValue::Number(v)) => out.push((*v as f32 - mean) / std),
                    Some(ReportValue::Text(_)) => {
                        return Err(EncodeError::WrongType {
                            field: name.clone(),
                            expected: "a number",
                        });
                    }
                    None => return Err(EncodeError::Missing(name.clone())),
                },
                ReportFeature::Categorical { name, levels } => {
                    let level = match report.get(name) {
                        Some(ReportValue::Text(t)) => t.clone(),
                        Some(ReportValue::Number(n)) if n.fract() == 0.0 => format!("{n}"),
                        Some(ReportValue::Number(_)) => {
                            return Err(EncodeError::WrongType {
                                field: name.clone(),
                                expected: "a category",
                            });
                        }
                        None => return Err(EncodeError::Missing(name.clone())),
                    };
                    let Some(slot) = levels.iter().position(|l| *l == level) else {
                        return Err(EncodeError::UnknownLevel {
                            field: name.clone(),
                            level,
                        });
                    };
                    out.extend((0..levels.len()).map(|i| if i == slot { 1.0 } else { 0.0 }));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card_with(features: Vec<ReportFeature>) -> ModelCard {
        ModelCard {
            schema_version: CARD_SCHEMA_VERSION,
            name: "m".into(),
            version: "1".into(),
            study: Study::Ultrasound,
            task: Task::Binary,
            classes: vec!["negative".into(), "positive".into()],
            onnx_file: "model.onnx".into(),
            onnx_sha256: String::new(),
            inputs: vec![],
            outputs: vec![],
            tile: TileSpecCard {
                size: 224,
                mode: TileMode::Whole,
                codec: TileCodec {
                    library: "libjpeg-turbo".into(),
                    version: "3.1.0".into(),
                    dct: "islow".into(),
                    upsampling: "fancy".into(),
                    quality: 90,
                    subsampling: "4:2:0".into(),
                },
            },
            normalisation: Normalisation {
                scale: 255.0,
                mean: [0.5; 3],
                std: [0.25; 3],
            },
            report_features: features,
            aggregation: Aggregation::Mean,
            preferred_batch: 32,
            held_out: BTreeMap::new(),
            training: BTreeMap::new(),
        }
    }

    #[test]
    fn encodes_numeric_and_one_hot_in_card_order() {
        let card = card_with(vec![
            ReportFeature::Numeric {
                name: "d".into(),
                mean: 10.0,
                std: 2.0,
            },
            ReportFeature::Categorical {
                name: "margin".into(),
                levels: vec!["smooth".into(), "irregular".into()],
            },
            ReportFeature::Categorical {
                name: "tirads".into(),
                levels: vec!["4".into(), "5".into()],
            },
        ]);
        let report = BTreeMap::from([
            ("d".to_string(), ReportValue::Number(14.0)),
            ("margin".to_string(), ReportValue::Text("irregular".into())),
            ("tirads".to_string(), ReportValue::Number(5.0)),
        ]);
        assert_eq!(card.report_width(), 5);
        assert_eq!(
            card.encode_report(&report),
            Ok(vec![2.0, 0.0, 1.0, 0.0, 1.0])
        );
    }

    #[test]
    fn unknown_level_and_missing_field_are_named() {
        let card = card_with(vec![ReportFeature::Categorical {
            name: "margin".into(),
            levels: vec!["smooth".into()],
        }]);
        let bad = BTreeMap::from([("margin".to_string(), ReportValue::Text("wavy".into()))]);
        assert_eq!(
            card.encode_report(&bad),
            Err(EncodeError::UnknownLevel {
                field: "margin".into(),
                level: "wavy".into()
            })
        );
        assert_eq!(
            card.encode_report(&BTreeMap::new()),
            Err(EncodeError::Missing("margin".into()))
        );
    }
}
