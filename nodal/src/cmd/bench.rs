//! `nodal bench`: how fast the worker runs a model, against its limits
//! (docs/benchmarks.md); the measurements are `nodal_bench`'s.

use crate::args::{PipelineArgs, RuntimeArgs};
use clap::Args;
use nodal_bench::{BenchConfig, DEFAULT_ROUNDS, DEFAULT_SEED, DEFAULT_WINDOW_SECS, Mode};
use nodal_coordinator::run::engine::DEFAULT_JOB_TILES;
use std::path::PathBuf;

/// Options of `nodal bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model: `cytology-origin` or `ptc-ln` (built in; `name@version`
    /// works too), or a folder holding `card.json` and the ONNX file.
    #[arg(long, default_value = "cytology-origin")]
    pub model: String,
    /// Timed tiles per end-to-end run [default: 4096 synthetic tiles; with
    /// --archive, every runnable tile]. Tiles are repeated or cut to this number.
    #[arg(long)]
    pub tiles: Option<usize>,
    /// Measure these archives (comma-separated ids, in --store) instead of
    /// synthetic tiles.
    #[arg(long, value_delimiter = ',')]
    pub archive: Vec<String>,
    /// The store holding --archive (`file://…` or `s3://bucket/prefix`); an
    /// `s3://` store is also the distributed mode's store (endpoint and
    /// credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION). Without one, distributed mode starts s3s-fs.
    #[arg(long)]
    pub store: Option<String>,
    /// What to measure (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_mode,
        default_value = "ceiling,decode,embedded"
    )]
    pub mode: Vec<Mode>,
    /// RabbitMQ for the distributed mode [default: the local broker as guest].
    #[arg(long, env = "NODAL_BENCH_BROKER", hide_env_values = true)]
    pub broker: Option<String>,
    /// Tiles per job, as the coordinator plans them.
    #[arg(long, default_value_t = DEFAULT_JOB_TILES)]
    pub job_tiles: usize,
    /// Interleaved rounds; the best of each figure is kept.
    #[arg(long, default_value_t = DEFAULT_ROUNDS)]
    pub rounds: usize,
    /// Seconds each ceiling and decode measurement runs.
    #[arg(long, default_value_t = DEFAULT_WINDOW_SECS)]
    pub window_secs: f64,
    /// Synth scale of the synthetic archive [default: cytology 0.004, ultrasound 0.05].
    #[arg(long)]
    pub synth_scale: Option<f64>,
    /// Synth seed of the synthetic archive.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Folder for the synthetic archive and the S3 server's data, kept (and
    /// reused) [default: a temporary folder, removed after].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// ONNX Runtime and the device (the intra-op threads are shared out
    /// among the pipelines of the end-to-end modes).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The pipelines of the end-to-end modes.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Run `nodal bench`: measure, then print the table or the JSON.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = nodal_bench::measure(&BenchConfig::from(&args)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn parse_mode(name: &str) -> Result<Mode, String> {
    name.parse()
}

impl From<&BenchArgs> for BenchConfig {
    fn from(args: &BenchArgs) -> Self {
        BenchConfig {
            tiles: args.tiles,
            archive: args.archive.clone(),
            store: args.store.clone(),
            mode: args.mode.clone(),
            broker: args.broker.clone(),
            job_tiles: args.job_tiles,
            rounds: args.rounds,
            window_secs: args.window_secs,
            synth_scale: args.synth_scale,
            seed: args.seed,
            work_dir: args.work_dir.clone(),
            runtime: args.runtime.config(1),
            pipeline: args.pipeline.worker_config("bench"),
            pipelines: args.pipeline.pipelines(),
            ..BenchConfig::new(args.model.clone())
        }
    }
}

#[cfg(test)]
#[path = "bench_tests.rs"]
mod tests;
