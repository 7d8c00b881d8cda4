//! A model = its card + an ONNX Runtime session, checked against each other
//! at load time (hash, input and output names and shapes).

use crate::error::WorkerError;
use crate::runtime::Runtime;
use ndarray::{Array2, ArrayView2, ArrayView4, Axis};
use nodal_types::model_card::{Activation, InputKind, ModelCard, OutputRole};
use nodal_types::study::Task;
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use std::borrow::Cow;
use std::path::Path;

/// A loaded, verified model ready to run batches.
pub struct Model {
    card: ModelCard,
    session: Session,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.card.name)
            .field("version", &self.card.version)
            .finish()
    }
}

impl Model {
    /// Load from the bytes of `card.json` and of the ONNX file. Refuses ONNX
    /// bytes whose SHA-256 differs from the card's, and a graph whose inputs
    /// or outputs differ from the card.
    pub fn from_bytes(
        runtime: &Runtime,
        card_json: &[u8],
        onnx: &[u8],
    ) -> Result<Model, WorkerError> {
        let card: ModelCard =
            serde_json::from_slice(card_json).map_err(|source| WorkerError::Card {
                origin: "card.json".into(),
                source,
            })?;
        Self::from_card(runtime, card, onnx)
    }

    /// Load `DIR/card.json` and the ONNX file it names.
    pub fn from_dir(runtime: &Runtime, dir: &Path) -> Result<Model, WorkerError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| WorkerError::Io {
                path: path.to_owned(),
                source,
            })
        };
        let card_path = dir.join("card.json");
        let card: ModelCard =
            serde_json::from_slice(&read(&card_path)?).map_err(|source| WorkerError::Card {
                origin: card_path.display().to_string(),
                source,
            })?;
        let onnx = read(&dir.join(&card.onnx_file))?;
        Self::from_card(runtime, card, &onnx)
    }

    /// Load from a parsed card and the ONNX bytes.
    pub fn from_card(
        runtime: &Runtime,
        card: ModelCard,
        onnx: &[u8],
    ) -> Result<Model, WorkerError> {
        let actual = nodal_types::sha256_hex(onnx);
        if !actual.eq_ignore_ascii_case(card.onnx_sha256.trim()) {
            return Err(WorkerError::HashMismatch {
                model: card.name.clone(),
                expected: card.onnx_sha256.clone(),
                actual,
            });
        }
        check_card(&card)?;
        let session = runtime.session(onnx)?;
        check_graph(&card, &session)?;
        Ok(Model { card, session })
    }

    /// The model's card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// Run a batch: `images` is `[N, 3, S, S]` normalised per the card, `report`
    /// `[N, F]` for multimodal models (else `None`). Returns one `[N, width]`
    /// array per card output, in card order, as probabilities (a softmax is
    /// applied to outputs whose activation is `logits`).
    pub fn run(
        &mut self,
        images: ArrayView4<'_, f32>,
        report: Option<ArrayView2<'_, f32>>,
    ) -> Result<Vec<Array2<f32>>, WorkerError> {
        let n = images.len_of(Axis(0));
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(self.card.inputs.len());
        let images = images.as_standard_layout();
        let report = report.as_ref().map(|r| r.as_standard_layout());
        for spec in &self.card.inputs {
            let bad = |message: String| WorkerError::BadInput {
                model: self.card.name.clone(),
                input: spec.name.clone(),
                message,
            };
            let shape: Vec<usize> = match spec.kind {
                InputKind::Image => images.shape().to_vec(),
                InputKind::Report => match &report {
                    Some(r) => r.shape().to_vec(),
                    None => {
                        return Err(bad(
                            "the model needs the encoded report; none was given".into()
                        ));
                    }
                },
            };
            if !shape_fits(&spec.shape, &shape) || shape.first() != Some(&n) || n == 0 {
                return Err(bad(format!(
                    "expected shape {:?} with batch {n} >= 1, got {shape:?}",
                    spec.shape
                )));
            }
            let value = match (spec.kind, &report) {
                (InputKind::Image, _) => TensorRef::from_array_view(&images),
                (InputKind::Report, Some(r)) => TensorRef::from_array_view(r),
                (InputKind::Report, None) => return Err(bad("missing".into())),
            }
            .map_err(WorkerError::ort(format!("input {}", spec.name)))?;
            inputs.push((Cow::Owned(spec.name.clone()), value.into()));
        }
        if report.is_some() && self.card.input(InputKind::Report).is_none() {
            return Err(WorkerError::BadInput {
                model: self.card.name.clone(),
                input: "report".into(),
                message: "this model takes no report".into(),
            });
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(WorkerError::ort(format!("run {}", self.card.name)))?;
        let mut result = Vec::with_capacity(self.card.outputs.len());
        for spec in &self.card.outputs {
            let value = outputs
                .get(&spec.name)
                .ok_or_else(|| WorkerError::CardMismatch {
                    model: self.card.name.clone(),
                    message: format!("output {:?} missing from the run", spec.name),
                })?;
            let view = value
                .try_extract_array::<f32>()
                .map_err(WorkerError::ort(format!("output {}", spec.name)))?;
            let array = view
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|e| WorkerError::CardMismatch {
                    model: self.card.name.clone(),
                    message: format!("output {}: {e}", spec.name),
                })?
                .to_owned();
            if array.shape() != [n, spec.width] {
                return Err(WorkerError::CardMismatch {
                    model: self.card.name.clone(),
                    message: format!(
                        "output {} has shape {:?}, the card says [{n}, {}]",
                        spec.name,
                        array.shape(),
                        spec.width
                    ),
                });
            }
            result.push(match spec.activation {
                Activation::Probabilities => array,
                Activation::Logits => softmax_rows(array),
            });
        }
        Ok(result)
    }
}

/// Row-wise softmax, numerically stable: what the worker applies to
/// outputs whose activation is `logits`.
pub fn softmax_rows(mut a: Array2<f32>) -> Array2<f32> {
    for mut row in a.rows_mut() {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    a
}

/// One input or output of an ONNX graph, as ONNX Runtime reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphOutlet {
    /// Its name in the graph.
    pub name: String,
    /// Its element type as ONNX Runtime names it (`Float32`, `Int64`, …),
    /// or `None` when it is not a tensor.
    pub element: Option<String>,
    /// True for a tensor of 32-bit floats, the only type nodal feeds and reads.
    pub float32: bool,
    /// Its shape, `-1` for a dynamic dimension (empty when not a tensor).
    pub shape: Vec<i64>,
}

impl GraphOutlet {
    fn of(outlet: &ort::value::Outlet) -> Self {
        let dtype = outlet.dtype();
        Self {
            name: outlet.name().to_string(),
            element: dtype.tensor_type().map(|t| format!("{t:?}")),
            float32: dtype.tensor_type() == Some(ort::value::TensorElementType::Float32),
            shape: dtype.tensor_shape().map(|s| s.to_vec()).unwrap_or_default(),
        }
    }
}

/// An ONNX graph's inputs and outputs, in graph order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSignature {
    /// The inputs.
    pub inputs: Vec<GraphOutlet>,
    /// The outputs.
    pub outputs: Vec<GraphOutlet>,
}

/// Load `onnx` in ONNX Runtime and read its inputs and outputs.
pub fn graph_signature(runtime: &Runtime, onnx: &[u8]) -> Result<GraphSignature, WorkerError> {
    let session = runtime.session(onnx)?;
    Ok(GraphSignature {
        inputs: session.inputs().iter().map(GraphOutlet::of).collect(),
        outputs: session.outputs().iter().map(GraphOutlet::of).collect(),
    })
}

/// Whether a concrete shape matches a card shape (`-1` = any size).
fn shape_fits(card: &[i64], actual: &[usize]) -> bool {
    card.len() == actual.len()
        && card
            .iter()
            .zip(actual)
            .all(|(&c, &a)| c < 0 || c as usize == a)
}

/// The card must be consistent with itself before the graph is compared.
fn check_card(card: &ModelCard) -> Result<(), WorkerError> {
    let fail = |message: String| {
        Err(WorkerError::CardMismatch {
            model: card.name.clone(),
            message,
        })
    };
    let codec = nodal_codec::tile_codec();
    if card.tile.codec != codec {
        return fail(format!(
            "card.json tile.codec is {}, but this worker decodes tiles with {codec}: its scores would not be the ones the card's figures were validated on",
            card.tile.codec
        ));
    }
    let size = i64::from(card.tile.size);
    match card.input(InputKind::Image) {
        Some(i) if i.shape.len() == 4 && i.shape[1..] == [3, size, size] => {}
        Some(i) => {
            return fail(format!(
                "image input shape {:?} is not [-1, 3, {size}, {size}]",
                i.shape
            ));
        }
        None => return fail("the card has no image input".into()),
    }
    let width = card.report_width() as i64;
    match card.input(InputKind::Report) {
        Some(r) if r.shape.len() == 2 && r.shape[1] == width && width > 0 => {}
        Some(r) => {
            return fail(format!(
                "report input shape {:?} does not match the {width} report features",
                r.shape
            ));
        }
        None if width > 0 => {
            return fail("report_features are listed but there is no report input".into());
        }
        None => {}
    }
    let Some(score) = card.output(OutputRole::Score) else {
        return fail("the card has no score output".into());
    };
    if score.width == 1 && score.activation == Activation::Logits {
        return fail(format!(
            "score output {} is one logit: a softmax over one value is always 1; export the probability (a sigmoid in the graph) and say `probabilities`",
            score.name
        ));
    }
    let expected = match card.task {
        Task::Binary => 1,
        Task::Multiclass => card.classes.len(),
    };
    if score.width != expected || score.labels.len() != score.width {
        return fail(format!(
            "score output {} has width {} and {} labels, the task needs {expected}",
            score.name,
            score.width,
            score.labels.len()
        ));
    }
    card.check_category_heads().or_else(fail)
}

/// The graph's inputs and outputs must be the card's, with compatible shapes.
fn check_graph(card: &ModelCard, session: &Session) -> Result<(), WorkerError> {
    let fail = |message: String| {
        Err(WorkerError::CardMismatch {
            model: card.name.clone(),
            message,
        })
    };
    let graph_inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let card_inputs: Vec<&str> = card.inputs.iter().map(|i| i.name.as_str()).collect();
    if graph_inputs != card_inputs {
        return fail(format!(
            "graph inputs {graph_inputs:?} differ from the card's {card_inputs:?}"
        ));
    }
    for (outlet, spec) in session.inputs().iter().zip(&card.inputs) {
        let Some(shape) = outlet.dtype().tensor_shape() else {
            return fail(format!("graph input {} is not a tensor", spec.name));
        };
        let found = GraphOutlet::of(outlet);
        if !found.float32 {
            return fail(format!(
                "graph input {} holds {}, not 32-bit floats",
                spec.name,
                found.element.as_deref().unwrap_or("no tensor")
            ));
        }
        if shape.len() != spec.shape.len()
            || shape
                .iter()
                .zip(&spec.shape)
                // A dynamic graph axis takes any size the card fixes; an axis
                // the card leaves dynamic (the batch) must be dynamic in the graph.
                .any(|(&g, &c)| g >= 0 && (c < 0 || g != c))
        {
            return fail(format!(
                "graph input {} has shape {:?}, the card says {:?}",
                spec.name,
                &shape[..],
                spec.shape
            ));
        }
    }
    for spec in &card.outputs {
        let Some(outlet) = session.outputs().iter().find(|o| o.name() == spec.name) else {
            return fail(format!("graph has no output {:?}", spec.name));
        };
        let Some(shape) = outlet.dtype().tensor_shape() else {
            return fail(format!("graph output {} is not a tensor", spec.name));
        };
        let found = GraphOutlet::of(outlet);
        if !found.float32 {
            return fail(format!(
                "graph output {} holds {}, not 32-bit floats",
                spec.name,
                found.element.as_deref().unwrap_or("no tensor")
            ));
        }
        if shape.len() != 2 || shape[1] != spec.width as i64 {
            return fail(format!(
                "graph output {} has shape {:?}, the card says [-1, {}]",
                spec.name,
                &shape[..],
                spec.width
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order() {
        let p = softmax_rows(array![[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]);
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        assert!(p[[0, 2]] > p[[0, 1]] && p[[0, 1]] > p[[0, 0]]);
        assert!(p[[1, 0]] > 0.999);
    }

    #[test]
    fn dynamic_dims_fit_any_size() {
        assert!(shape_fits(&[-1, 3, 224, 224], &[5, 3, 224, 224]));
        assert!(!shape_fits(&[-1, 3, 224, 224], &[5, 3, 112, 224]));
        assert!(!shape_fits(&[-1, 28], &[5, 28, 1]));
    }
}
