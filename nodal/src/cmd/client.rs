//! The analyst's and operator's side of the API: `nodal status` and
//! `nodal results` (also `nodal run status` and `nodal run results`), and
//! the HTTP client `nodal run` and `nodal archives` share.

use crate::args::ClientArgs;
use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nodal_coordinator::run::{RESULT_FILES, RunState, RunStatus};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `nodal status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run; without it, every run is listed.
    pub run: Option<String>,
    /// Follow the run with a progress bar until it ends.
    #[arg(long)]
    pub watch: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The coordinator.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Options of `nodal results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The finished (or cancelled) run.
    pub run: String,
    /// Folder to write the result files into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// The coordinator.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A small client of the coordinator API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `args`.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let http = nodal_common::tls::http_client(&args.http_settings())
            .map_err(|e| anyhow::anyhow!("the coordinator client: {e}"))?;
        Ok(Self {
            http,
            base: args.coordinator.trim_end_matches('/').to_string(),
            token: args.token.token.clone(),
        })
    }

    /// Send `method path` (with `body` as JSON when given) with the token.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        request
            .send()
            .await
            .with_context(|| format!("cannot reach the coordinator at {}", self.base))
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// GET a JSON document; an error status becomes an error with the API's message.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.get(path).await?;
        let response = check(response, &format!("GET {path}")).await?;
        Ok(response.json().await?)
    }

    /// POST a JSON body and read the JSON answer; an error status becomes an
    /// error with the API's message.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_value(body)?;
        self.post_value(path, Some(&body)).await
    }

    /// POST to `path` with no body, for a JSON answer.
    pub async fn post_empty<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<T> {
        self.post_value(path, None).await
    }

    async fn post_value<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<T> {
        let response = self.send(reqwest::Method::POST, path, body).await?;
        Ok(check(response, &format!("POST {path}"))
            .await?
            .json()
            .await?)
    }

    /// GET raw bytes; `Ok(None)` on 404.
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Option<bytes::Bytes>> {
        let response = self.get(path).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(
            check(response, &format!("GET {path}"))
                .await?
                .bytes()
                .await?,
        ))
    }
}

/// `what` is the request (`GET /runs`), named in the error.
async fn check(response: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["error"].as_str().unwrap_or("no message").to_string();
    bail!("{what}: {status}: {message}")
}

/// Run `nodal status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let Some(run) = args.run else {
        return list_runs(&client, args.json).await;
    };
    if !args.watch {
        let s: RunStatus = client.get_json(&format!("/runs/{run}")).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            print_status(&s);
        }
        return Ok(());
    }
    watch(&client, &run).await
}

/// Print every run, newest first (a table, or JSON).
pub async fn list_runs(client: &ApiClient, json: bool) -> anyhow::Result<()> {
    let runs: Vec<RunStatus> = client.get_json("/runs").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<10}  {:>11}  {:<24}  created",
        "run", "state", "tiles", "model"
    );
    for r in runs {
        println!(
            "{:<36}  {:<10}  {:>11}  {:<24}  {}",
            r.run_id,
            r.state.name(),
            format!("{}/{}", r.tiles_done + r.tiles_failed, r.tiles_total),
            r.model,
            r.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(())
}

/// Follow `run` with a progress bar until it ends; an error if it failed.
pub async fn watch(client: &ApiClient, run: &str) -> anyhow::Result<()> {
    let path = format!("/runs/{run}");
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} tiles ({per_sec}, ETA {eta})",
        )?
        .progress_chars("=> "),
    );
    loop {
        let s: RunStatus = client.get_json(&path).await?;
        bar.set_length(s.tiles_total as u64);
        bar.set_position(s.tiles_done + s.tiles_failed);
        bar.set_message(format!("{} {}", &s.run_id.to_string()[..8], s.state.name()));
        if s.state.is_ended() {
            bar.finish();
            print_status(&s);
            if let RunState::Failed { reason } = s.state {
                bail!("run failed: {reason}");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Print a run's status as text.
pub fn print_status(s: &RunStatus) {
    println!("run        {}", s.run_id);
    println!("model      {}", s.model);
    println!("archives   {}", s.archives.join(", "));
    println!("state      {}", s.state.name());
    if let RunState::Failed { reason } = &s.state {
        println!("reason     {reason}");
    }
    println!(
        "jobs       {} done, {} failed, {} cancelled, {} in flight, {} total",
        s.jobs_done, s.jobs_failed, s.jobs_cancelled, s.jobs_in_flight, s.jobs_total
    );
    println!(
        "tiles      {} done, {} failed, {} total ({:.1} tiles/s)",
        s.tiles_done, s.tiles_failed, s.tiles_total, s.tiles_per_second
    );
    if let Some(eta) = s.eta_seconds {
        println!("eta        {eta:.0} s");
    }
}

/// Run `nodal results`: download a finished run's result files.
pub async fn results(args: ResultsArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let status: RunStatus = client.get_json(&format!("/runs/{}", args.run)).await?;
    if !status.state.has_results() {
        bail!(
            "run {} is {}; results exist once it has finished (or was cancelled)",
            args.run,
            status.state.name()
        );
    }
    let mut written = Vec::new();
    for name in RESULT_FILES {
        let Some(bytes) = client
            .get_bytes(&format!("/runs/{}/files/{name}", args.run))
            .await?
        else {
            continue;
        };
        let path = args.out.join(name);
        write_atomically(&path, &bytes).await?;
        written.push(path);
    }
    for p in &written {
        println!("{}", p.display());
    }
    Ok(())
}

/// Write a file through a temporary sibling and a rename.
pub async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("partial");
    tokio::fs::write(&tmp, bytes)
        .await
        .with_context(|| format!("writing {}", tmp.display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
