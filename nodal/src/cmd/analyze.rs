//! `nodal analyze`: cohort statistics from a predictions.csv.

use anyhow::Context;
use clap::Args;
use nodal_stats::options::parse_reference;
use nodal_stats::report::{ReportInput, render_report};
use nodal_stats::{
    AnalyzeOptions, Task, ThresholdChoice, ThresholdSource, analyze, read_predictions,
    write_results,
};
use std::path::{Path, PathBuf};

/// Options of `nodal analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The predictions.csv to analyse (one row per case).
    #[arg(long, value_name = "FILE")]
    pub predictions: PathBuf,
    /// The study task: binary (lymph-node metastasis) or multiclass (tumour origin).
    #[arg(long, value_name = "binary|multiclass")]
    pub task: Task,
    /// Folder to write metrics.json and report.html into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Binary task: operating threshold, `youden` or a score cut in [0, 1].
    #[arg(long, default_value = "youden", value_name = "youden|NUMBER")]
    pub threshold: ThresholdChoice,
    /// Binary task: use the `threshold` of this metrics.json (e.g. the
    /// development cohort's analysis), fixed before these cases are seen.
    #[arg(long, value_name = "FILE", conflicts_with = "threshold")]
    pub threshold_from: Option<PathBuf>,
    /// Binary task: covariate columns of the adjusted odds-ratio model, comma separated.
    #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
    pub covariates: Vec<String>,
    /// Binary task: reference level of a text covariate (repeatable); default the
    /// alphabetically first level.
    #[arg(long = "reference", value_parser = parse_reference, value_name = "COLUMN=LEVEL")]
    pub references: Vec<(String, String)>,
    /// Binary task: stage categories in order, comma separated; default the stage
    /// labels sorted as text.
    #[arg(long, value_delimiter = ',', value_name = "I,II,III,IVA,IVB")]
    pub stage_order: Option<Vec<String>>,
    /// Binary task: pT categories (`t_true`, `t_pred`) in order, comma separated;
    /// default AJCC 8: T1a,T1b,T2,T3a,T3b,T4a,T4b.
    #[arg(long, value_delimiter = ',', value_name = "T1a,…,T4b")]
    pub t_order: Option<Vec<String>>,
    /// Binary task: pN categories (`n_true`, `n_pred`) in order, comma separated;
    /// default AJCC 8: N0,N1a,N1b.
    #[arg(long, value_delimiter = ',', value_name = "N0,N1a,N1b")]
    pub n_order: Option<Vec<String>>,
    /// Bootstrap replicates for percentile intervals (patients resampled within sites); 0 = none.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Write metrics.json only, no report.html.
    #[arg(long)]
    pub no_report: bool,
    /// run.json to show model and data provenance from; default: run.json beside
    /// the predictions file, when present.
    #[arg(long, value_name = "FILE")]
    pub run_json: Option<PathBuf>,
    /// Title of the report.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
}

/// Run `nodal analyze`: read, compute, render, then write both files atomically.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let predictions = read_predictions(&args.predictions, args.task)?;
    let provenance = if args.no_report {
        None
    } else {
        read_run_json(&args)?
    };
    let (threshold, threshold_source) = match &args.threshold_from {
        Some(file) => (
            ThresholdChoice::Fixed(threshold_of(file)?),
            ThresholdSource::MetricsFile,
        ),
        None => (args.threshold, ThresholdSource::Given),
    };
    let options = AnalyzeOptions {
        threshold,
        threshold_source,
        covariates: args.covariates,
        references: args.references,
        stage_order: args.stage_order,
        t_order: args.t_order,
        n_order: args.n_order,
        bootstrap: args.bootstrap,
        seed: args.seed,
    };
    let metrics = analyze(&predictions, &options)?;
    let report = if args.no_report {
        None
    } else {
        let input = ReportInput {
            metrics: &metrics,
            predictions: &predictions,
            title: args.title.clone(),
            subset: None,
            flow: None,
            provenance,
        };
        Some(render_report(&input)?)
    };
    let written = write_results(&args.out, &metrics, report.as_deref())?;
    for warning in metrics.warnings() {
        eprintln!("warning: {warning}");
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The binary operating threshold a metrics.json records.
fn threshold_of(file: &Path) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--threshold-from: cannot read {}", file.display()))?;
    let metrics: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--threshold-from: {} is not JSON", file.display()))?;
    match metrics.get("threshold").and_then(serde_json::Value::as_f64) {
        Some(t) if (0.0..=1.0).contains(&t) => Ok(t),
        Some(t) => anyhow::bail!(
            "--threshold-from: {}: field \"threshold\" is {t}, outside [0, 1]",
            file.display()
        ),
        None => anyhow::bail!(
            "--threshold-from: {}: no numeric field \"threshold\" (a binary task's metrics.json has one)",
            file.display()
        ),
    }
}

/// The run.json named by `--run-json`, or the one beside the predictions.
fn read_run_json(args: &AnalyzeArgs) -> anyhow::Result<Option<serde_json::Value>> {
    let (path, required) = match &args.run_json {
        Some(path) => (path.clone(), true),
        None => (args.predictions.with_file_name("run.json"), false),
    };
    if !required && !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    Ok(Some(value))
}
