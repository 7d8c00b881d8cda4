//! The `nodal` command line: one binary, one subcommand per role.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// nodal runs deep-learning models over multicentre medical-imaging archives
/// and turns the predictions into cohort statistics.
#[derive(Debug, Parser)]
#[command(name = "nodal", version)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "NODAL_LOG_JSON", global = true)]
    pub log_json: bool,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// nodal's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write deterministic synthetic study archives, laid out as sites submit them.
    Synth(crate::cmd::synth::SynthArgs),
    /// Validate, QC, tile and upload one site's archive.
    Submit(crate::cmd::submit::SubmitArgs),
    /// Recompute metrics.json (and report.html) from a predictions.csv.
    Analyze(crate::cmd::analyze::AnalyzeArgs),
    /// Run the coordinator service: plan runs, collect results, serve the API.
    Coordinator(crate::cmd::coordinator::CoordinatorArgs),
    /// Start, list and follow runs, and download their results.
    Run(crate::cmd::run::RunArgs),
    /// List the archives on the coordinator (with cases, eligible cases, tiles).
    Archives(crate::cmd::run::ArchivesArgs),
    /// Show a run's progress (or list runs).
    Status(crate::cmd::client::StatusArgs),
    /// Download a finished run's result files.
    Results(crate::cmd::client::ResultsArgs),
    /// Run everything on this machine: synth, submit, both models, statistics.
    Demo(crate::cmd::demo::DemoArgs),
    /// Bring a model: write its card from the ONNX file, check it as a
    /// worker would load and run it, publish it.
    Model(Box<crate::cmd::model::ModelArgs>),
    /// Mint an API token for the coordinator's tokens file.
    Token(crate::cmd::token::TokenArgs),
    /// Run the inference worker service: consume jobs, run the model, publish results.
    Worker(Box<crate::cmd::worker::WorkerArgs>),
    /// Measure the worker's throughput against its limits (ceiling, decode, end to end).
    Bench(Box<crate::cmd::bench::BenchArgs>),
}

/// Parse the command line, run the subcommand, and map errors to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Interactive commands keep the terminal for their progress bars and
    // tables; services log at info.
    let default_filter = match cli.command {
        Command::Demo(_)
        | Command::Synth(_)
        | Command::Submit(_)
        | Command::Run(_)
        | Command::Archives(_)
        | Command::Status(_)
        | Command::Results(_)
        | Command::Model(_)
        | Command::Bench(_) => "warn",
        _ => "info",
    };
    nodal_common::telemetry::init(cli.log_json, default_filter);
    let outcome = match cli.command {
        Command::Synth(args) => crate::cmd::synth::run(args),
        Command::Submit(args) => block_on(crate::cmd::submit::run(args)),
        Command::Analyze(args) => crate::cmd::analyze::run(args),
        Command::Coordinator(args) => block_on(crate::cmd::coordinator::run(args)),
        Command::Run(args) => block_on(crate::cmd::run::run(args)),
        Command::Archives(args) => block_on(crate::cmd::run::archives(args)),
        Command::Status(args) => block_on(crate::cmd::client::status(args)),
        Command::Results(args) => block_on(crate::cmd::client::results(args)),
        Command::Model(args) => block_on(crate::cmd::model::run(*args)),
        Command::Token(args) => crate::cmd::token::run(args),
        Command::Demo(args) => block_on(crate::cmd::demo::run(args)),
        Command::Worker(args) => block_on(crate::cmd::worker::run(*args)),
        Command::Bench(args) => block_on(crate::cmd::bench::run(*args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run an async subcommand on a multi-threaded tokio runtime.
fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(fut: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
