//! `nodal model card|check|publish`. `check DIR` loads a model folder as a
//! worker does (card, ONNX hash, graph against card), runs its JPEG
//! reference tiles when it has them and compares the outputs with the
//! recorded ones, else a synthetic batch, and prints each output's shape
//! and range and the time per batch. `publish DIR` loads it the same way,
//! then puts it into the store. `card` is [`super::model_card`].

use super::model_card::{self, CardArgs};
use crate::args::{RuntimeArgs, StoreArgs};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ndarray::{Array2, Array4, Axis};
use nodal_types::manifest::ReportValue;
use nodal_types::model_card::{Activation, ModelCard};
use nodal_worker::{Model, Runtime, model, preprocess};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest difference from a recorded reference output that passes.
pub const REFERENCE_TOLERANCE: f32 = 1e-4;

/// Options of `nodal model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModelCommand,
}

/// The `nodal model` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Write card.json for an ONNX file from its graph's inputs and outputs.
    Card(CardArgs),
    /// Load a model folder (card.json + ONNX file) as a worker would, run it,
    /// and check its reference outputs.
    Check(CheckArgs),
    /// Check a model folder as `check` loads it, then put it into the store
    /// (operator: S3 credentials, or the coordinator's proxy with an
    /// operator token).
    Publish(PublishArgs),
}

/// Options of `nodal model publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The model folder: card.json and the ONNX file it names.
    pub dir: PathBuf,
    /// The store to publish into.
    #[command(flatten)]
    pub store: StoreArgs,
    /// ONNX Runtime, to load the model as a worker would first.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Options of `nodal model check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The model folder: card.json, the ONNX file it names, and optionally
    /// reference/reference.json with JPEG reference tiles.
    pub dir: PathBuf,
    /// Batches to time (the first included).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub repeats: usize,
    /// ONNX Runtime and the device.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// A batch to run, and the outputs it must give when they were recorded.
struct Batch {
    images: Array4<f32>,
    reports: Option<Array2<f32>>,
    expected: Option<Vec<Array2<f32>>>,
    what: String,
}

/// Run `nodal model …`.
pub async fn run(args: ModelArgs) -> anyhow::Result<()> {
    match args.command {
        ModelCommand::Card(args) => {
            model_card::write_card(&args).map(|(_, report)| print!("{report}"))
        }
        ModelCommand::Check(args) => check(&args).map(|report| print!("{report}")),
        ModelCommand::Publish(args) => publish(&args).await.map(|report| print!("{report}")),
    }
}

/// Load the model as a worker would, then publish it; what to print. A
/// version already published with another card is refused: runs name
/// models by version, and a run's results must stay the model's.
pub async fn publish(args: &PublishArgs) -> anyhow::Result<String> {
    let runtime = Runtime::init(args.runtime.config(1)).context("loading ONNX Runtime")?;
    let model = Model::from_dir(&runtime, &args.dir)
        .with_context(|| format!("{}: the model does not load", args.dir.display()))?;
    let card = model.card();
    let store = args
        .store
        .open()
        .await
        .with_context(|| format!("opening the store {}", args.store.store))?;
    let key = nodal_types::layout::card_key(&card.name, &card.version);
    let card_path = args.dir.join("card.json");
    let ours = std::fs::read(&card_path)
        .with_context(|| format!("cannot read {}", card_path.display()))?;
    match store.get(&key).await {
        Ok(theirs) if theirs.as_ref() != ours.as_slice() => bail!(
            "{}@{} is already published with another card ({key}); give the model a new --version",
            card.name,
            card.version
        ),
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e).with_context(|| format!("reading {key}")),
    }
    let published = nodal_coordinator::models::publish_model_dir(store.as_ref(), &args.dir)
        .await
        .with_context(|| format!("publishing {}", args.dir.display()))?;
    Ok(format!(
        "published {}@{} to {} ({key}, sha256 {})\n",
        published.name,
        published.version,
        store.describe(),
        published.onnx_sha256
    ))
}

/// Load, run and check the model; the text to print, or an error naming
/// what is wrong (file, output, difference).
pub fn check(args: &CheckArgs) -> anyhow::Result<String> {
    let runtime = Runtime::init(args.runtime.config(1)).context("loading ONNX Runtime")?;
    let mut model = Model::from_dir(&runtime, &args.dir)
        .with_context(|| format!("{}: the model does not load", args.dir.display()))?;
    let card = model.card().clone();
    let batch = match reference_batch(&args.dir, &card)? {
        Some(batch) => batch,
        None => synthetic_batch(&card),
    };
    let mut times = Vec::with_capacity(args.repeats.max(1));
    let mut outputs = Vec::new();
    for _ in 0..args.repeats.max(1) {
        let started = Instant::now();
        outputs = model.run(
            batch.images.view(),
            batch.reports.as_ref().map(|r| r.view()),
        )?;
        times.push(started.elapsed());
    }
    let mut text = format!(
        "{} {}: loaded (sha256 {}), {}\n",
        card.name, card.version, card.onnx_sha256, batch.what
    );
    for (spec, out) in card.outputs.iter().zip(&outputs) {
        let (low, high) = out
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let after = match spec.activation {
            Activation::Logits => " (after softmax)",
            Activation::Probabilities => "",
        };
        text += &format!(
            "  output {:<12} {:?}  range {low:.4} … {high:.4}{after}\n",
            spec.name,
            out.shape()
        );
    }
    times.sort();
    text += &format!(
        "  batch of {}: median {:.2} ms over {} run(s)\n",
        batch.images.len_of(Axis(0)),
        ms(times[times.len() / 2]),
        times.len()
    );
    if let Some(expected) = &batch.expected {
        for ((spec, got), want) in card.outputs.iter().zip(&outputs).zip(expected) {
            if got.shape() != want.shape() {
                bail!(
                    "output {}: shape {:?}, the reference recorded {:?}",
                    spec.name,
                    got.shape(),
                    want.shape()
                );
            }
            let diff = (got - want).iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if diff.is_nan() || diff > REFERENCE_TOLERANCE {
                bail!(
                    "output {}: differs from reference/reference.json by {diff:e} (more than {REFERENCE_TOLERANCE:e})",
                    spec.name
                );
            }
            text += &format!(
                "  output {:<12} matches the reference within {diff:.1e}\n",
                spec.name
            );
        }
    }
    Ok(text)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The JPEG reference tiles of `DIR/reference/reference.json`, when there are any.
fn reference_batch(dir: &Path, card: &ModelCard) -> anyhow::Result<Option<Batch>> {
    let ref_dir = dir.join("reference");
    let path = ref_dir.join("reference.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))?;
    let Some(inputs) = doc["jpeg_inputs"].as_array().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let at = |what: String| format!("{}: {what}", path.display());
    let size = card.tile.size as usize;
    let mut images = Array4::<f32>::zeros((inputs.len(), 3, size, size));
    let width = card.report_width();
    let mut reports = (width > 0).then(|| Array2::<f32>::zeros((inputs.len(), width)));
    for (i, input) in inputs.iter().enumerate() {
        let file = input["jpeg"]
            .as_str()
            .with_context(|| at(format!("jpeg_inputs[{i}].jpeg is missing")))?;
        let tile = std::fs::read(ref_dir.join(file))
            .with_context(|| at(format!("jpeg_inputs[{i}]: cannot read {file}")))?;
        let mut slot = images.index_axis_mut(Axis(0), i);
        let out = slot.as_slice_mut().context("a contiguous image slot")?;
        preprocess::preprocess_into(&tile, card, out)
            .with_context(|| at(format!("jpeg_inputs[{i}]: {file}")))?;
        if let Some(reports) = reports.as_mut() {
            let report: BTreeMap<String, ReportValue> =
                serde_json::from_value(input["report"].clone())
                    .with_context(|| at(format!("jpeg_inputs[{i}].report")))?;
            let vector = card
                .encode_report(&report)
                .with_context(|| at(format!("jpeg_inputs[{i}].report")))?;
            reports
                .row_mut(i)
                .assign(&ndarray::ArrayView1::from(&vector));
        }
    }
    let mut expected = Vec::with_capacity(card.outputs.len());
    for spec in &card.outputs {
        let rows: Vec<Vec<f32>> =
            serde_json::from_value(doc["jpeg_outputs"][&spec.name].clone())
                .with_context(|| at(format!("jpeg_outputs.{} is not a matrix", spec.name)))?;
        let (n, m) = (rows.len(), rows.first().map_or(0, Vec::len));
        let values = Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect())
            .with_context(|| at(format!("jpeg_outputs.{} is ragged", spec.name)))?;
        expected.push(match spec.activation {
            Activation::Logits => model::softmax_rows(values),
            Activation::Probabilities => values,
        });
    }
    Ok(Some(Batch {
        images,
        reports,
        expected: Some(expected),
        what: format!("{} JPEG reference tile(s)", inputs.len()),
    }))
}

/// A batch of `preferred_batch` grey tiles (and zero report vectors).
fn synthetic_batch(card: &ModelCard) -> Batch {
    let n = card.preferred_batch.max(1);
    let size = card.tile.size as usize;
    let width = card.report_width();
    Batch {
        images: Array4::zeros((n, 3, size, size)),
        reports: (width > 0).then(|| Array2::zeros((n, width))),
        expected: None,
        what: format!("no reference tiles: a synthetic batch of {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(dir: &Path) -> CheckArgs {
        let cli = Cli::try_parse_from(
            ["nodal", "model", "check", "--repeats", "2"]
                .iter()
                .copied()
                .chain([dir.to_str().unwrap()]),
        )
        .unwrap();
        match cli.command {
            Command::Model(m) => match m.command {
                ModelCommand::Check(args) => args,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    fn shipped(name: &str) -> PathBuf {
        nodal_testkit::repo_root().join("models").join(name)
    }

    #[test]
    fn the_shipped_models_match_their_references() {
        for name in ["cytology-origin", "ptc-ln"] {
            let report = check(&args(&shipped(name))).unwrap();
            assert!(report.contains("JPEG reference tile(s)"), "{report}");
            let matched = report.matches("matches the reference").count();
            assert_eq!(matched, if name == "ptc-ln" { 3 } else { 1 }, "{report}");
        }
    }

    /// A copy of the ptc-ln folder with `edit` applied to its reference.json
    /// (None: without it).
    fn copy_with(edit: Option<&dyn Fn(&mut serde_json::Value)>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let from = shipped("ptc-ln");
        std::fs::create_dir(dir.path().join("reference")).unwrap();
        for file in ["card.json", "model.onnx"] {
            std::fs::copy(from.join(file), dir.path().join(file)).unwrap();
        }
        if let Some(edit) = edit {
            for entry in std::fs::read_dir(from.join("reference")).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(
                    entry.path(),
                    dir.path().join("reference").join(entry.file_name()),
                )
                .unwrap();
            }
            let path = dir.path().join("reference/reference.json");
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&mut doc);
            std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        }
        dir
    }

    #[test]
    fn a_wrong_reference_output_is_named_and_no_reference_runs_a_synthetic_batch() {
        let dir = copy_with(Some(&|doc| doc["jpeg_outputs"]["prob"][1][0] = 0.5.into()));
        let e = check(&args(dir.path())).unwrap_err().to_string();
        assert!(
            e.starts_with("output prob: differs from reference/reference.json by"),
            "{e}"
        );
        let dir = copy_with(None);
        let report = check(&args(dir.path())).unwrap();
        assert!(report.contains("a synthetic batch of 64"), "{report}");
        assert!(report.contains("output n_logits     [64, 3]"), "{report}");
    }

    #[test]
    fn an_onnx_file_that_is_not_the_cards_is_refused() {
        let dir = copy_with(None);
        std::fs::write(dir.path().join("model.onnx"), b"not the model").unwrap();
        let e = format!("{:#}", check(&args(dir.path())).unwrap_err());
        assert!(
            e.contains("the model does not load") && e.contains("sha256"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn publish_puts_the_model_in_the_store_once_and_refuses_another_card_of_its_version() {
        let dir = copy_with(None);
        let store = tempfile::tempdir().unwrap();
        let url = format!("file://{}", store.path().display());
        let publish_args = |dir: &Path| {
            let cli = Cli::try_parse_from([
                "nodal",
                "model",
                "publish",
                dir.to_str().unwrap(),
                "--store",
                &url,
            ])
            .unwrap();
            match cli.command {
                Command::Model(m) => match m.command {
                    ModelCommand::Publish(args) => args,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
        };
        let text = publish(&publish_args(dir.path())).await.unwrap();
        assert!(text.starts_with("published ptc-ln@2.0.0"), "{text}");
        let opened = publish_args(dir.path()).store.open().await.unwrap();
        let resolved = nodal_coordinator::models::resolve_model(opened.as_ref(), "ptc-ln@2.0.0")
            .await
            .unwrap();
        assert_eq!(resolved.card.name, "ptc-ln");
        // The same folder again: nothing changes.
        publish(&publish_args(dir.path())).await.unwrap();
        // Another card under the same version is refused.
        let path = dir.path().join("card.json");
        let mut card: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        card["aggregation"] = "max".into();
        std::fs::write(&path, serde_json::to_vec_pretty(&card).unwrap()).unwrap();
        let e = publish(&publish_args(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ptc-ln@2.0.0 is already published with another card"),
            "{e}"
        );
        // A folder whose ONNX file is not the card's is refused before the store.
        std::fs::write(dir.path().join("model.onnx"), b"not the model").unwrap();
        let e = format!(
            "{:#}",
            publish(&publish_args(dir.path())).await.unwrap_err()
        );
        assert!(e.contains("the model does not load"), "{e}");
    }
}
