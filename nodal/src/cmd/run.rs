//! `nodal run start|list|cancel|status|results` and `nodal archives`: start,
//! list, cancel and follow runs, and list archives, from the command line, over the
//! coordinator's API (docs/api.md).

use super::client::{self, ApiClient, ResultsArgs, StatusArgs};
use crate::args::ClientArgs;
use anyhow::bail;
use clap::{Args, Subcommand};
use nodal_coordinator::api::{ArchiveSummary, ModelSummary};
use nodal_coordinator::run::{RunRequest, RunStatus};
use nodal_types::archive_id::ArchiveId;

/// Options of `nodal run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RunCommand,
}

/// The `nodal run` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Start a run of a model over archives; prints the run id.
    Start(StartArgs),
    /// List runs, newest first.
    List(ListArgs),
    /// Cancel a running run (operator): jobs not yet answered are dropped
    /// unrun, the results so far are kept, every other case is reported
    /// `cancelled` in failures.csv.
    Cancel(CancelArgs),
    /// Show a run's progress (the same as `nodal status`).
    Status(StatusArgs),
    /// Download a finished run's result files (the same as `nodal results`).
    Results(ResultsArgs),
}

/// Options of `nodal run start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The model: `name` (its highest published version) or `name@version`.
    #[arg(long)]
    pub model: String,
    /// Archive ids (`<site>.<16 hex>`), in the order their cases should appear.
    pub archives: Vec<String>,
    /// Every archive of this site of the model's study (repeatable).
    #[arg(long = "site", value_name = "SITE")]
    pub sites: Vec<String>,
    /// Every archive of the model's study the token can see.
    #[arg(long, conflicts_with_all = ["archives", "sites"])]
    pub all_archives: bool,
    /// Tiles per job (1–10000); default the coordinator's.
    #[arg(long, value_name = "N")]
    pub job_tiles: Option<usize>,
    /// Free text for people.
    #[arg(long)]
    pub label: Option<String>,
    /// Follow the run with a progress bar until it ends.
    #[arg(long)]
    pub watch: bool,
    /// The coordinator.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Options of `nodal run list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The coordinator.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Options of `nodal run cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run.
    pub run: String,
    /// The coordinator.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Options of `nodal archives`.
#[derive(Debug, Args)]
pub struct ArchivesArgs {
    /// Only this site's archives (repeatable).
    #[arg(long = "site", value_name = "SITE")]
    pub sites: Vec<String>,
    /// Print JSON (the archives' summaries) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The coordinator.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Run `nodal run …`.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    match args.command {
        RunCommand::Start(args) => start(args).await,
        RunCommand::List(args) => {
            client::list_runs(&ApiClient::new(&args.client)?, args.json).await
        }
        RunCommand::Cancel(args) => {
            let client = ApiClient::new(&args.client)?;
            let status: RunStatus = client
                .post_empty(&format!("/runs/{}/cancel", args.run))
                .await?;
            client::print_status(&status);
            Ok(())
        }
        RunCommand::Status(args) => client::status(args).await,
        RunCommand::Results(args) => client::results(args).await,
    }
}

async fn start(args: StartArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let mut archives = args.archives.clone();
    if args.all_archives || !args.sites.is_empty() {
        let study = model_study(&client, &args.model).await?;
        let found: Vec<String> = summaries(&client, &args.sites)
            .await?
            .into_iter()
            .filter(|a| a.study == study)
            .map(|a| a.archive_id)
            .collect();
        if found.is_empty() {
            bail!(
                "no archive of the {study} study {} (nodal archives lists what there is)",
                if args.sites.is_empty() {
                    "is visible to this token".to_string()
                } else {
                    format!("from site {}", args.sites.join(", "))
                }
            );
        }
        archives.extend(found);
    }
    if archives.is_empty() {
        bail!("name the archives, or give --site SITE or --all-archives");
    }
    let request = RunRequest {
        archives,
        model: args.model,
        job_tiles: args.job_tiles,
        label: args.label,
    };
    let created: RunStatus = client.post_json("/runs", &request).await?;
    let id = created.run_id.to_string();
    println!("{id}");
    if args.watch {
        client::watch(&client, &id).await?;
    }
    Ok(())
}

/// The study of `model` (`name` or `name@version`) as published.
async fn model_study(client: &ApiClient, model: &str) -> anyhow::Result<String> {
    let (name, version) = match model.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (model, None),
    };
    let models: Vec<ModelSummary> = client.get_json("/models").await?;
    models
        .into_iter()
        .find(|m| m.name == name && version.is_none_or(|v| v == m.version))
        .map(|m| m.study)
        .ok_or_else(|| anyhow::anyhow!("model {model} is not published on the coordinator"))
}

/// The summaries of the archives the token sees, of `sites` when given.
async fn summaries(client: &ApiClient, sites: &[String]) -> anyhow::Result<Vec<ArchiveSummary>> {
    let ids: Vec<String> = client.get_json("/archives").await?;
    let mut out = Vec::new();
    for id in ids {
        let site = ArchiveId::site_of(&id).unwrap_or(&id);
        if sites.is_empty() || sites.iter().any(|s| s == site) {
            out.push(client.get_json(&format!("/archives/{id}")).await?);
        }
    }
    Ok(out)
}

/// Run `nodal archives`.
pub async fn archives(args: ArchivesArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let list = summaries(&client, &args.sites).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "{:<24}  {:<10}  {:<10}  {:>7}  {:>8}  {:>8}",
        "archive", "site", "study", "cases", "eligible", "tiles"
    );
    for a in list {
        println!(
            "{:<24}  {:<10}  {:<10}  {:>7}  {:>8}  {:>8}",
            a.archive_id, a.site, a.study, a.cases, a.eligible, a.tiles
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn start_args(line: &[&str]) -> Result<StartArgs, clap::Error> {
        let cli = Cli::try_parse_from(["nodal", "run", "start"].iter().chain(line))?;
        match cli.command {
            Command::Run(RunArgs {
                command: RunCommand::Start(args),
            }) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn archives_are_named_or_chosen_by_site_or_all() {
        let args = start_args(&["--model", "ptc-ln", "--site", "us-a", "--site", "us-b"]).unwrap();
        assert_eq!(args.sites, ["us-a", "us-b"]);
        let args = start_args(&["--model", "ptc-ln@2.0.0", "us-a.0123456789abcdef"]).unwrap();
        assert_eq!(args.archives, ["us-a.0123456789abcdef"]);
        let e = start_args(&["--model", "m", "--all-archives", "us-a.0123456789abcdef"]);
        assert!(e.unwrap_err().to_string().contains("cannot be used with"));
        assert!(
            start_args(&["us-a.0123456789abcdef"]).is_err(),
            "--model is required"
        );
    }

    #[tokio::test]
    async fn a_run_of_nothing_is_refused_before_any_request() {
        // Nothing listens on port 9: the error must come before a request.
        let args =
            start_args(&["--model", "ptc-ln", "--coordinator", "http://127.0.0.1:9"]).unwrap();
        let e = start(args).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "name the archives, or give --site SITE or --all-archives"
        );
    }
}
