//! The models the pipeline tests run: the shipped models from `models/`, and
//! a small generated one for what the shipped models cannot show (a model
//! that fails at run time).

use super::onnx::{Dim, Graph};
use nodal_types::manifest::TileMode;
use nodal_types::model_card::{
    Activation, Aggregation, CARD_SCHEMA_VERSION, InputKind, ModelCard, Normalisation, OutputRole,
    OutputSpec, TensorSpec, TileSpecCard,
};
use nodal_types::study::{Study, Task};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A model as the store holds it: its card and ONNX bytes.
#[derive(Debug, Clone)]
pub struct TestModel {
    /// The card (its `onnx_sha256` is the hash of `onnx`).
    pub card: ModelCard,
    /// The ONNX file.
    pub onnx: Vec<u8>,
}

impl TestModel {
    /// A shipped model from `models/<name>/`.
    pub fn shipped(name: &str) -> Self {
        let dir = models_dir().join(name);
        let card: ModelCard =
            serde_json::from_slice(&std::fs::read(dir.join("card.json")).expect("card.json"))
                .expect("card parses");
        let onnx = std::fs::read(dir.join(&card.onnx_file)).expect("model.onnx");
        Self { card, onnx }
    }

    /// `card.json` as bytes.
    pub fn card_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.card).expect("card serialises")
    }

    /// Tile edge, pixels.
    pub fn tile_size(&self) -> u32 {
        self.card.tile.size
    }
}

/// The repository's `models/` folder.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A three-class classifier over the tiles' mean colour whose graph cannot
/// run a batch with an odd number of tiles (a reshape to two rows fails):
/// even batches work, odd ones are inference errors.
pub fn odd_batches_fail(size: u32) -> TestModel {
    let s = i64::from(size);
    let onnx = Graph::default()
        .input(
            "image",
            &[Dim::Batch, Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)],
        )
        .output("probs", &[Dim::Batch, Dim::Fixed(3)])
        .floats(
            "w",
            &[3, 3],
            &[1.5, -0.5, 0.2, -1.0, 0.8, 0.1, 0.3, 0.4, -1.2],
        )
        .floats("b", &[3], &[0.1, -0.1, 0.0])
        .int64s("two_rows", &[2, -1])
        .int64s("three_cols", &[-1, 3])
        .node("GlobalAveragePool", &["image"], &["pooled"], &[])
        .node("Flatten", &["pooled"], &["flat"], &[("axis", 1)])
        .node("MatMul", &["flat", "w"], &["mm"], &[])
        .node("Add", &["mm", "b"], &["logits"], &[])
        .node("Softmax", &["logits"], &["soft"], &[("axis", 1)])
        .node("Reshape", &["soft", "two_rows"], &["paired"], &[])
        .node("Reshape", &["paired", "three_cols"], &["probs"], &[])
        .model("odd-batches-fail");
    let card = ModelCard {
        schema_version: CARD_SCHEMA_VERSION,
        name: "odd-batches-fail".into(),
        version: "0.0.1".into(),
        study: Study::Cytology,
        task: Task::Multiclass,
        classes: vec!["a".into(), "b".into(), "c".into()],
        onnx_file: "model.onnx".into(),
        onnx_sha256: nodal_types::sha256_hex(&onnx),
        inputs: vec![TensorSpec {
            name: "image".into(),
            kind: InputKind::Image,
            shape: vec![-1, 3, s, s],
        }],
        outputs: vec![OutputSpec {
            name: "probs".into(),
            role: OutputRole::Score,
            activation: Activation::Probabilities,
            width: 3,
            labels: vec!["a".into(), "b".into(), "c".into()],
        }],
        tile: TileSpecCard {
            size,
            mode: TileMode::Grid,
            codec: nodal_codec::tile_codec(),
        },
        normalisation: Normalisation {
            scale: 255.0,
            mean: [0.5; 3],
            std: [0.25; 3],
        },
        report_features: vec![],
        aggregation: Aggregation::Mean,
        preferred_batch: 4,
        held_out: BTreeMap::new(),
        training: BTreeMap::new(),
    };
    TestModel { card, onnx }
}
