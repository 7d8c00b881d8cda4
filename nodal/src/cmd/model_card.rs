//! `nodal model card`: write a complete card.json for an ONNX file (a
//! PyTorch model exported with `torch.onnx.export`, say) from its graph's
//! inputs and outputs as ONNX Runtime reads them, and refuse, naming the
//! input or output, what nodal cannot run: a fixed batch axis, an output
//! width that does not match the classes, an input it cannot feed. The
//! card is then loaded as a worker loads it, so one that passes here loads
//! on every worker.

use crate::args::RuntimeArgs;
use anyhow::{Context, bail};
use clap::Args;
use nodal_types::ajcc::{Category, PrimaryTumour, RegionalNodes};
use nodal_types::model_card::{
    Activation, Aggregation, CARD_SCHEMA_VERSION, InputKind, ModelCard, Normalisation, OutputRole,
    OutputSpec, ReportFeature, TensorSpec, TileSpecCard,
};
use nodal_types::study::{Study, Task};
use nodal_worker::model::{GraphOutlet, GraphSignature, graph_signature};
use nodal_worker::{Model, Runtime};
use std::path::{Path, PathBuf};

/// ImageNet's channel means, torchvision's convention and the default.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's channel standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Options of `nodal model card`.
#[derive(Debug, Args)]
pub struct CardArgs {
    /// The ONNX file, exported with a dynamic batch axis (dim 0 of every
    /// input and output).
    #[arg(long, value_name = "FILE")]
    pub onnx: PathBuf,
    /// The model's name (the store key's segment: letters, digits, `-`, `_`, `.`).
    #[arg(long)]
    pub name: String,
    /// The model's version.
    #[arg(long, default_value = "1.0.0")]
    pub version: String,
    /// The study whose archives it reads: cytology or ultrasound.
    #[arg(long)]
    pub study: Study,
    /// binary (one score output: the probability of `positive`) or
    /// multiclass (one column per class).
    #[arg(long)]
    pub task: Task,
    /// Class names in output order, comma-separated [default for binary:
    /// negative,positive].
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<String>,
    /// The graph output holding the scores [default: the first output not
    /// named by --head].
    #[arg(long, value_name = "NAME")]
    pub score_output: Option<String>,
    /// What the score output holds: probabilities (a softmax or sigmoid in
    /// the graph) or logits (nodal applies a softmax).
    #[arg(long, default_value = "probabilities", value_parser = parse_activation)]
    pub activation: Activation,
    /// An AJCC head: `NAME=pt` (7 logits, T1a…T4b) or `NAME=pn` (3 logits,
    /// N0, N1a, N1b). Repeatable.
    #[arg(long = "head", value_name = "NAME=pt|pn", value_parser = parse_head)]
    pub heads: Vec<(String, OutputRole)>,
    /// Per-channel mean, RGB, after dividing by --scale [default: ImageNet's].
    #[arg(long, value_delimiter = ',', value_name = "R,G,B")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation, RGB [default: ImageNet's].
    #[arg(long, value_delimiter = ',', value_name = "R,G,B")]
    pub std: Option<Vec<f32>>,
    /// Raw 0–255 pixels are divided by this first.
    #[arg(long, default_value_t = 255.0)]
    pub scale: f32,
    /// JSON file: the report features in input order, as a card's
    /// `report_features` (docs/models.md); needed when the graph has a
    /// report input.
    #[arg(long, value_name = "FILE")]
    pub report_schema: Option<PathBuf>,
    /// How tile outputs become a case's: mean or max.
    #[arg(long, default_value = "mean", value_parser = parse_aggregation)]
    pub aggregate: Aggregation,
    /// The batch size the model runs best at.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub preferred_batch: usize,
    /// The model folder to write card.json into (the ONNX file is copied
    /// there when it lies elsewhere) [default: the ONNX file's folder].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing card.json.
    #[arg(long)]
    pub force: bool,
    /// ONNX Runtime, to read the graph and load the model.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

fn parse_activation(s: &str) -> Result<Activation, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?}: expected probabilities or logits"))
}

fn parse_aggregation(s: &str) -> Result<Aggregation, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?}: expected mean or max"))
}

fn parse_head(s: &str) -> Result<(String, OutputRole), String> {
    match s.split_once('=') {
        Some((name, "pt")) if !name.is_empty() => Ok((name.into(), OutputRole::PrimaryTumour)),
        Some((name, "pn")) if !name.is_empty() => Ok((name.into(), OutputRole::RegionalNodes)),
        _ => Err(format!("{s:?}: expected NAME=pt or NAME=pn")),
    }
}

/// Write the card; returns the model folder and what to print.
pub fn write_card(args: &CardArgs) -> anyhow::Result<(PathBuf, String)> {
    let onnx = std::fs::read(&args.onnx)
        .with_context(|| format!("cannot read {}", args.onnx.display()))?;
    let file_name = args
        .onnx
        .file_name()
        .and_then(|f| f.to_str())
        .with_context(|| format!("{}: not a file name", args.onnx.display()))?
        .to_string();
    let runtime = Runtime::init(args.runtime.config(1)).context("loading ONNX Runtime")?;
    let signature = graph_signature(&runtime, &onnx)
        .with_context(|| format!("{}: ONNX Runtime cannot load it", args.onnx.display()))?;
    let report_features = match &args.report_schema {
        Some(path) => read_report_schema(path)?,
        None => Vec::new(),
    };
    let card = build_card(args, &signature, report_features, &onnx, file_name.clone())
        .with_context(|| format!("{}", args.onnx.display()))?;
    // Loaded as a worker loads it: hash, card and graph against each other.
    Model::from_card(&runtime, card.clone(), &onnx)
        .with_context(|| format!("{}: the card does not load", args.onnx.display()))?;

    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => args
            .onnx
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let card_path = dir.join("card.json");
    if card_path.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", card_path.display());
    }
    let target = dir.join(&file_name);
    if !same_file(&args.onnx, &target) {
        std::fs::write(&target, &onnx)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    let mut json = serde_json::to_vec_pretty(&card)?;
    json.push(b'\n');
    std::fs::write(&card_path, json)
        .with_context(|| format!("cannot write {}", card_path.display()))?;
    let mut text = format!(
        "{}: {} {} ({} {}, sha256 {})\n",
        card_path.display(),
        card.name,
        card.version,
        card.study,
        card.task,
        card.onnx_sha256
    );
    for i in &card.inputs {
        text += &format!("  input  {:<12} {:?} {:?}\n", i.name, i.kind, i.shape);
    }
    for o in &card.outputs {
        text += &format!(
            "  output {:<12} {:?} width {} ({:?})\n",
            o.name, o.role, o.width, o.activation
        );
    }
    if args.mean.is_none() || args.std.is_none() {
        text += "  normalisation: ImageNet's mean and std (the default); pass --mean and --std if the model was trained otherwise\n";
    }
    Ok((dir, text))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The report features of a `--report-schema` file.
fn read_report_schema(path: &Path) -> anyhow::Result<Vec<ReportFeature>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: not a list of report features ({{\"kind\": \"numeric\", \"name\", \"mean\", \"std\"}} or {{\"kind\": \"categorical\", \"name\", \"levels\"}})",
            path.display()
        )
    })
}

/// The card for a graph of `signature`, or an error naming the input or
/// output nodal cannot run.
pub fn build_card(
    args: &CardArgs,
    signature: &GraphSignature,
    report_features: Vec<ReportFeature>,
    onnx: &[u8],
    onnx_file: String,
) -> anyhow::Result<ModelCard> {
    let classes = match (args.task, args.classes.is_empty()) {
        (Task::Binary, true) => vec!["negative".to_string(), "positive".to_string()],
        (Task::Binary, false) if args.classes.len() != 2 => {
            bail!(
                "--classes: a binary model has two classes (negative, positive), got {}",
                args.classes.len()
            )
        }
        (Task::Multiclass, true) => bail!("--classes: a multiclass model needs its class names"),
        (Task::Multiclass, false) if args.classes.len() < 2 => {
            bail!("--classes: a multiclass model needs at least two classes")
        }
        _ => args.classes.clone(),
    };
    let tile = nodal_submit::tiling::tile_spec(args.study);
    let report_width: usize = report_features.iter().map(ReportFeature::width).sum();
    let mut inputs = Vec::new();
    for input in &signature.inputs {
        inputs.push(input_spec(
            input,
            args.study,
            tile.size,
            report_width,
            inputs.is_empty(),
        )?);
    }
    if !inputs.iter().any(|i| i.kind == InputKind::Image) {
        bail!("the graph has no image input");
    }
    if report_width > 0 && !inputs.iter().any(|i| i.kind == InputKind::Report) {
        bail!("--report-schema is given but the graph has no report input");
    }

    for (name, _) in &args.heads {
        if !signature.outputs.iter().any(|o| &o.name == name) {
            bail!("--head {name}: the graph has no output {name:?}");
        }
    }
    let score_name = match &args.score_output {
        Some(name) => name.clone(),
        None => signature
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .find(|n| !args.heads.iter().any(|(h, _)| h == n))
            .context("the graph has no output left for the scores (every one is a --head)")?,
    };
    let mut outputs = Vec::new();
    for output in &signature.outputs {
        let head = args.heads.iter().find(|(h, _)| *h == output.name);
        let (role, activation, labels) = match head {
            Some((_, role @ OutputRole::PrimaryTumour)) => {
                (*role, Activation::Logits, PrimaryTumour::labels())
            }
            Some((_, role @ OutputRole::RegionalNodes)) => {
                (*role, Activation::Logits, RegionalNodes::labels())
            }
            Some((_, OutputRole::Score)) | None if output.name == score_name => {
                let labels = match args.task {
                    Task::Binary => vec![classes[1].clone()],
                    Task::Multiclass => classes.clone(),
                };
                (OutputRole::Score, args.activation, labels)
            }
            _ => bail!(
                "output {}: neither the score output nor a --head; name its role (--score-output, --head {}=pt|pn) or export the model without it",
                output.name,
                output.name
            ),
        };
        let width = output_width(output)?;
        if width != labels.len() {
            let why = match (role, args.task) {
                (OutputRole::Score, Task::Binary) => format!(
                    "a binary model's score output is one probability, of {:?} (export probs[:, 1:] or a sigmoid)",
                    classes[1]
                ),
                (OutputRole::Score, Task::Multiclass) => {
                    format!("--classes names {} classes", classes.len())
                }
                _ => format!(
                    "a {role:?} head has one column per AJCC category ({})",
                    labels.join(", ")
                ),
            };
            bail!("output {}: width {width}, but {why}", output.name);
        }
        outputs.push(OutputSpec {
            name: output.name.clone(),
            role,
            activation,
            width,
            labels,
        });
    }
    if !outputs.iter().any(|o| o.role == OutputRole::Score) {
        bail!("--score-output {score_name}: the graph has no output {score_name:?}");
    }
    let triple = |given: &Option<Vec<f32>>, default: [f32; 3], flag: &str| match given {
        None => Ok(default),
        Some(v) => <[f32; 3]>::try_from(v.as_slice())
            .map_err(|_| anyhow::anyhow!("{flag}: three values (R,G,B), got {}", v.len())),
    };
    let std = triple(&args.std, IMAGENET_STD, "--std")?;
    if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        bail!("--std: every value must be positive, got {std:?}");
    }
    if !(args.scale.is_finite() && args.scale > 0.0) {
        bail!("--scale: must be positive, got {}", args.scale);
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !s.starts_with('.')
    };
    if !segment_ok(&args.name) {
        bail!(
            "--name {:?}: letters, digits, `-`, `_` and `.` only",
            args.name
        );
    }
    if !segment_ok(&args.version) {
        bail!(
            "--version {:?}: letters, digits, `-`, `_` and `.` only",
            args.version
        );
    }
    Ok(ModelCard {
        schema_version: CARD_SCHEMA_VERSION,
        name: args.name.clone(),
        version: args.version.clone(),
        study: args.study,
        task: args.task,
        classes,
        onnx_file,
        onnx_sha256: nodal_types::sha256_hex(onnx),
        inputs,
        outputs,
        tile: TileSpecCard {
            size: tile.size,
            mode: tile.mode,
            codec: nodal_codec::tile_codec(),
        },
        normalisation: Normalisation {
            scale: args.scale,
            mean: triple(&args.mean, IMAGENET_MEAN, "--mean")?,
            std,
        },
        report_features,
        aggregation: args.aggregate,
        preferred_batch: args.preferred_batch.max(1),
        held_out: Default::default(),
        training: Default::default(),
    })
}

/// The card input for a graph input: the first is the image (`[batch, 3,
/// size, size]`), a second the report vector (`[batch, width]`).
fn input_spec(
    input: &GraphOutlet,
    study: Study,
    size: u32,
    report_width: usize,
    first: bool,
) -> anyhow::Result<TensorSpec> {
    let name = &input.name;
    if !input.float32 {
        bail!(
            "input {name}: holds {}, but nodal feeds 32-bit floats",
            input.element.as_deref().unwrap_or("no tensor")
        );
    }
    batch_axis("input", input)?;
    let size = i64::from(size);
    if first {
        let [_, channels, h, w] = input.shape[..] else {
            bail!(
                "input {name}: shape {:?}; the image input is [batch, 3, height, width]",
                input.shape
            );
        };
        if channels != 3 {
            bail!("input {name}: {channels} channels; nodal feeds RGB images (3 channels, NCHW)");
        }
        for (what, d) in [("height", h), ("width", w)] {
            if d >= 0 && d != size {
                bail!(
                    "input {name}: {what} {d}; nodal submit cuts {study} images into {size}×{size} tiles: export the model for {size}×{size} input (or a dynamic size)"
                );
            }
        }
        return Ok(TensorSpec {
            name: name.clone(),
            kind: InputKind::Image,
            shape: vec![-1, 3, size, size],
        });
    }
    if study != Study::Ultrasound {
        bail!("input {name}: a second input, but only ultrasound cases carry a structured report");
    }
    let [_, width] = input.shape[..] else {
        bail!(
            "input {name}: shape {:?}; a report input is [batch, features]",
            input.shape
        );
    };
    if report_width == 0 {
        bail!(
            "input {name}: a report input of width {width}; give --report-schema FILE with its features"
        );
    }
    if width >= 0 && width != report_width as i64 {
        bail!(
            "input {name}: width {width}, but the --report-schema features encode to {report_width}"
        );
    }
    Ok(TensorSpec {
        name: name.clone(),
        kind: InputKind::Report,
        shape: vec![-1, report_width as i64],
    })
}

/// An output's width: it must be `[batch, width]`, batch dynamic, width fixed.
fn output_width(output: &GraphOutlet) -> anyhow::Result<usize> {
    let name = &output.name;
    if !output.float32 {
        bail!(
            "output {name}: holds {}, but nodal reads 32-bit floats",
            output.element.as_deref().unwrap_or("no tensor")
        );
    }
    batch_axis("output", output)?;
    match output.shape[..] {
        [_, width] if width > 0 => Ok(width as usize),
        [_, _] => bail!("output {name}: its width is dynamic; export it with a fixed width"),
        _ => bail!(
            "output {name}: shape {:?}; nodal reads [batch, width] outputs",
            output.shape
        ),
    }
}

/// Dim 0 must be dynamic: workers batch tiles.
fn batch_axis(what: &str, outlet: &GraphOutlet) -> anyhow::Result<()> {
    match outlet.shape.first() {
        Some(&d) if d < 0 => Ok(()),
        Some(&d) => bail!(
            "{what} {}: the batch axis is fixed at {d}; workers run batches of any size: export with dynamic_axes={{\"{}\": {{0: \"batch\"}}}}",
            outlet.name,
            outlet.name
        ),
        None => bail!("{what} {}: a scalar; nodal needs a batch axis", outlet.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::cmd::model::{ModelArgs, ModelCommand};
    use clap::Parser;

    /// Build an ONNX file with models/examples/export_like_torch.py (onnx.helper).
    fn exported(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
        let python =
            nodal_common::locate::find_in_ancestors(Path::new(".cache/pyref-venv/bin/python"))
                .expect(".cache/pyref-venv (scripts/setup.sh pyref)");
        let script = nodal_testkit::repo_root().join("models/examples/export_like_torch.py");
        let out = dir.join(name);
        let status = std::process::Command::new(python)
            .arg(script)
            .arg(&out)
            .args(flags)
            .status()
            .unwrap();
        assert!(status.success(), "export_like_torch.py {flags:?}");
        out
    }

    fn card_args(line: &[&str]) -> CardArgs {
        let cli = Cli::try_parse_from(["nodal", "model", "card"].iter().chain(line)).unwrap();
        match cli.command {
            Command::Model(m) => match *m {
                ModelArgs {
                    command: ModelCommand::Card(args),
                } => args,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    fn error_of(onnx: &Path, line: &[&str]) -> String {
        let mut full = vec!["--onnx", onnx.to_str().unwrap(), "--name", "m"];
        full.extend_from_slice(line);
        format!("{:#}", write_card(&card_args(&full)).unwrap_err())
    }

    const CYTOLOGY: [&str; 6] = [
        "--study",
        "cytology",
        "--task",
        "multiclass",
        "--classes",
        "lung,breast,thyroid,nasopharynx,oesophagus,stomach,colorectum,other",
    ];

    #[test]
    fn a_card_is_written_from_the_graph_and_loads_as_a_worker_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let onnx = exported(dir.path(), "origin.onnx", &["--classes", "8"]);
        let out = dir.path().join("model");
        let mut line = vec!["--onnx", onnx.to_str().unwrap(), "--name", "my-origin"];
        line.extend_from_slice(&CYTOLOGY);
        line.extend_from_slice(&["--out", out.to_str().unwrap(), "--aggregate", "max"]);
        let (written, report) = write_card(&card_args(&line)).unwrap();
        assert_eq!(written, out);
        assert!(report.contains("ImageNet"), "{report}");
        let card: ModelCard =
            serde_json::from_slice(&std::fs::read(out.join("card.json")).unwrap()).unwrap();
        let bytes = std::fs::read(out.join("origin.onnx")).unwrap();
        assert_eq!(card.onnx_sha256, nodal_types::sha256_hex(&bytes));
        assert_eq!(card.onnx_file, "origin.onnx");
        assert_eq!(
            (card.version.as_str(), card.study),
            ("1.0.0", Study::Cytology)
        );
        assert_eq!(card.inputs[0].shape, [-1, 3, 224, 224]);
        assert_eq!(card.inputs[0].name, "image");
        assert_eq!(card.outputs.len(), 1);
        assert_eq!(
            (card.outputs[0].name.as_str(), card.outputs[0].width),
            ("probs", 8)
        );
        assert_eq!(card.outputs[0].labels, card.classes);
        assert_eq!(card.aggregation, Aggregation::Max);
        assert_eq!(card.normalisation.mean, IMAGENET_MEAN);
        assert_eq!(card.tile.mode, nodal_types::manifest::TileMode::Grid);

        // `nodal model check` runs it on a synthetic batch.
        let check = Cli::try_parse_from([
            "nodal",
            "model",
            "check",
            "--repeats",
            "1",
            out.to_str().unwrap(),
        ])
        .unwrap();
        let Command::Model(m) = check.command else {
            panic!()
        };
        let ModelCommand::Check(args) = m.command else {
            panic!()
        };
        let text = crate::cmd::model::check(&args).unwrap();
        assert!(
            text.contains("output probs") && text.contains("[64, 8]"),
            "{text}"
        );

        // A second card over the first is refused without --force.
        let e = format!("{:#}", write_card(&card_args(&line)).unwrap_err());
        assert!(e.contains("card.json exists; pass --force"), "{e}");
    }

    #[test]
    fn a_multimodal_binary_model_takes_its_report_schema() {
        let dir = tempfile::tempdir().unwrap();
        let onnx = exported(
            dir.path(),
            "ptc.onnx",
            &["--classes", "1", "--report", "28"],
        );
        let schema = nodal_testkit::repo_root().join("models/ptc-ln/card.json");
        let card: serde_json::Value =
            serde_json::from_slice(&std::fs::read(schema).unwrap()).unwrap();
        let schema = dir.path().join("report-schema.json");
        std::fs::write(&schema, card["report_features"].to_string()).unwrap();
        let line = [
            "--onnx",
            onnx.to_str().unwrap(),
            "--name",
            "my-ptc",
            "--study",
            "ultrasound",
            "--task",
            "binary",
            "--report-schema",
            schema.to_str().unwrap(),
            "--mean",
            "0.5,0.5,0.5",
            "--std",
            "0.25,0.25,0.25",
        ];
        let (dir_out, report) = write_card(&card_args(&line)).unwrap();
        assert!(!report.contains("ImageNet"), "{report}");
        let card: ModelCard =
            serde_json::from_slice(&std::fs::read(dir_out.join("card.json")).unwrap()).unwrap();
        assert_eq!(card.inputs[1].kind, InputKind::Report);
        assert_eq!(card.inputs[1].shape, [-1, 28]);
        assert_eq!(card.classes, ["negative", "positive"]);
        assert_eq!(card.outputs[0].labels, ["positive"]);
        assert_eq!(card.normalisation.std, [0.25; 3]);

        // Without the schema, the report input is named.
        let e = error_of(&onnx, &["--study", "ultrasound", "--task", "binary"]);
        assert!(
            e.contains("input report: a report input of width 28; give --report-schema"),
            "{e}"
        );
    }

    #[test]
    fn what_nodal_cannot_run_is_refused_naming_the_input_or_output() {
        let dir = tempfile::tempdir().unwrap();
        let fixed = exported(
            dir.path(),
            "fixed.onnx",
            &["--classes", "8", "--static-batch", "1"],
        );
        let e = error_of(&fixed, &CYTOLOGY);
        assert!(
            e.contains("input image: the batch axis is fixed at 1") && e.contains("dynamic_axes"),
            "{e}"
        );
        let narrow = exported(dir.path(), "narrow.onnx", &["--classes", "5"]);
        let e = error_of(&narrow, &CYTOLOGY);
        assert!(
            e.contains("output probs: width 5, but --classes names 8 classes"),
            "{e}"
        );
        let tall = exported(
            dir.path(),
            "tall.onnx",
            &["--classes", "8", "--height", "256"],
        );
        let e = error_of(&tall, &CYTOLOGY);
        assert!(
            e.contains(
                "input image: height 256; nodal submit cuts cytology images into 224×224 tiles"
            ),
            "{e}"
        );
        let two = exported(dir.path(), "two.onnx", &["--classes", "2"]);
        let e = error_of(&two, &["--study", "ultrasound", "--task", "binary"]);
        assert!(
            e.contains(
                "output probs: width 2, but a binary model's score output is one probability"
            ),
            "{e}"
        );
        let logit = exported(dir.path(), "logit.onnx", &["--classes", "1", "--logits"]);
        let e = error_of(
            &logit,
            &[
                "--study",
                "ultrasound",
                "--task",
                "binary",
                "--activation",
                "logits",
            ],
        );
        assert!(e.contains("score output logits is one logit"), "{e}");
        let e = error_of(
            &narrow,
            &[
                "--study",
                "cytology",
                "--task",
                "multiclass",
                "--classes",
                "a,b,c,d,e",
                "--head",
                "nope=pt",
            ],
        );
        assert!(
            e.contains("--head nope: the graph has no output \"nope\""),
            "{e}"
        );
        assert!(card_args_error(&["--head", "probs=pq"]).contains("expected NAME=pt or NAME=pn"));
    }

    fn card_args_error(extra: &[&str]) -> String {
        let mut line = vec![
            "nodal", "model", "card", "--onnx", "x", "--name", "m", "--study", "cytology",
            "--task", "binary",
        ];
        line.extend_from_slice(extra);
        Cli::try_parse_from(line).unwrap_err().to_string()
    }
}
