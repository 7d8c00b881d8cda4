//! A real nodal cluster for end-to-end and fault tests: an s3s-fs server,
//! RabbitMQ queues unique to the test, synthetic archives submitted to S3,
//! and `nodal coordinator` / `nodal worker` processes started on demand.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, bail};
use nodal_common::manifest::Manifest;
use nodal_common::store::{S3Store, SharedStore};
use nodal_common::study::Study;
use nodal_coordinator::auth::{Role, new_token};
use nodal_coordinator::run::{RunState, RunStatus};
use nodal_coordinator::submit::{Progress, SubmitOptions, submit_site};
use nodal_synth::SynthConfig;
use nodal_tests::{NodalProcess, S3Server, TestQueues};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Key prefix of the cluster's objects in the test bucket.
pub const PREFIX: &str = "nodal";

/// A test cluster. Processes are killed and queues deleted when it drops.
pub struct Cluster {
    /// Scratch folder: synth output, logs, tokens file.
    pub dir: TempDir,
    /// The S3 server.
    pub s3: S3Server,
    /// The test's queues.
    pub queues: TestQueues,
    /// A store handle on the cluster's bucket prefix.
    pub store: SharedStore,
    /// Tokens by role name: `operator`, `analyst`, `site-cy-a`, `site-us-a`.
    pub tokens: BTreeMap<String, String>,
    /// The coordinator process, once started.
    pub coordinator: Option<NodalProcess>,
    /// The coordinator's base URL, once started.
    pub api: String,
    /// Worker processes by name.
    pub workers: BTreeMap<String, NodalProcess>,
    /// Archives submitted, by study.
    pub archives: BTreeMap<Study, Vec<Manifest>>,
    http: reqwest::Client,
}

impl Cluster {
    /// Start the S3 server and name the queues.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let s3 = S3Server::start().await?;
        let store: SharedStore = Arc::new(S3Store::connect(&s3.config(PREFIX)).await?);
        let mut tokens = BTreeMap::new();
        let mut entries = Vec::new();
        for (name, role) in [
            ("operator", Role::Operator),
            ("analyst", Role::Analyst),
            (
                "site-cy-a",
                Role::Site {
                    site: "cy-a".into(),
                },
            ),
            (
                "site-us-a",
                Role::Site {
                    site: "us-a".into(),
                },
            ),
        ] {
            let (token, entry) = new_token(name, role);
            tokens.insert(name.to_string(), token);
            entries.push(entry);
        }
        std::fs::write(
            dir.path().join("tokens.json"),
            serde_json::to_vec(&entries)?,
        )?;
        Ok(Self {
            dir,
            s3,
            queues: TestQueues::new(test),
            store,
            tokens,
            coordinator: None,
            api: String::new(),
            workers: BTreeMap::new(),
            archives: BTreeMap::new(),
            http: reqwest::Client::new(),
        })
    }

    /// Environment shared by every nodal process of the cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .s3
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        env.extend([
            ("NODAL_STORE".into(), self.s3.store_url(PREFIX)),
            ("NODAL_BROKER".into(), nodal_tests::amqp_url()),
            (
                "NODAL_QUEUE_PREFIX".into(),
                self.queues.connection_name.clone(),
            ),
            (
                "NODAL_BROKER_CONNECTION_NAME".into(),
                self.queues.connection_name.clone(),
            ),
            ("NODAL_S3_MAX_ATTEMPTS".into(), "3".into()),
            ("NODAL_S3_CONNECT_TIMEOUT_SECS".into(), "2".into()),
        ]);
        env
    }

    /// Synthesise both studies at `scale` and submit every site to S3.
    pub async fn submit_synthetic(&mut self, scale: f64, seed: u64) -> anyhow::Result<()> {
        let out = self.dir.path().join("synth");
        let config = SynthConfig {
            out: out.clone(),
            studies: Study::ALL.to_vec(),
            scale,
            seed,
        };
        tokio::task::spawn_blocking(move || nodal_synth::generate(&config)).await??;
        for study in Study::ALL {
            let study_dir = out.join(study.as_str());
            let mut sites: Vec<PathBuf> = std::fs::read_dir(&study_dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("cases.csv").is_file())
                .collect();
            sites.sort();
            for site in sites {
                let name = site
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("site name")?
                    .to_string();
                let outcome = submit_site(
                    &SubmitOptions::new(study, &name, &site),
                    self.store.clone(),
                    &Progress::hidden(),
                )
                .await
                .with_context(|| format!("submitting {}", site.display()))?;
                self.archives
                    .entry(study)
                    .or_default()
                    .push(outcome.manifest);
            }
        }
        Ok(())
    }

    /// Archive ids of a study, in site order.
    pub fn archive_ids(&self, study: Study) -> Vec<String> {
        self.archives[&study]
            .iter()
            .map(|m| m.archive_id.clone())
            .collect()
    }

    /// Start (or restart) the coordinator; extra flags are appended.
    pub fn start_coordinator(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let mut args: Vec<String> = ["coordinator", "--listen", "127.0.0.1:0", "--tokens-file"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(self.dir.path().join("tokens.json").display().to_string());
        args.extend(["--stall-timeout-secs".into(), "10".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let n = self.coordinator_starts();
        let mut process = NodalProcess::spawn(
            &format!("coordinator-{n}"),
            self.dir.path(),
            &args,
            &self.env(),
        )?;
        let line = process.wait_for_line("coordinator listening on ", Duration::from_secs(60))?;
        self.api = line
            .split("coordinator listening on ")
            .nth(1)
            .context("listening line")?
            .trim()
            .to_string();
        self.coordinator = Some(process);
        Ok(())
    }

    fn coordinator_starts(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("coordinator-"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Start a worker process named `name`; extra flags are appended.
    pub fn start_worker(&mut self, name: &str, extra: &[&str]) -> anyhow::Result<()> {
        let mut args: Vec<String> = ["worker", "--listen", "127.0.0.1:0", "--worker-id", name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = NodalProcess::spawn(name, self.dir.path(), &args, &self.env())?;
        self.workers.insert(name.to_string(), process);
        Ok(())
    }

    /// An authenticated request builder.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        role: &str,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.api));
        match self.tokens.get(role) {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Create a run as the operator; returns its status.
    pub async fn create_run(&self, study: Study) -> anyhow::Result<RunStatus> {
        let body = serde_json::json!({
            "archives": self.archive_ids(study),
            "model": study.default_model(),
            "job_tiles": 64,
        });
        let response = self
            .request(reqwest::Method::POST, "/runs", "operator")
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /runs: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// A run's status as the analyst sees it.
    pub async fn run_status(&self, run_id: uuid::Uuid) -> anyhow::Result<RunStatus> {
        let response = self
            .request(reqwest::Method::GET, &format!("/runs/{run_id}"), "analyst")
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET /runs/{run_id}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Poll a run until it finishes (an error if it fails or times out).
    /// Transient API errors (a coordinator being restarted) are retried.
    pub async fn wait_finished(
        &self,
        run_id: uuid::Uuid,
        timeout: Duration,
    ) -> anyhow::Result<RunStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.run_status(run_id).await {
                match &s.state {
                    RunState::Finished => return Ok(s),
                    RunState::Failed { reason } => bail!("run {run_id} failed: {reason}"),
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "run {run_id} not finished after {timeout:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A result file of a finished run, as the analyst downloads it.
    pub async fn result_file(&self, run_id: uuid::Uuid, name: &str) -> anyhow::Result<String> {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/runs/{run_id}/files/{name}"),
                "analyst",
            )
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("GET {name}: {}", response.status());
        }
        Ok(response.text().await?)
    }

    /// Every process's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for p in self.coordinator.iter().chain(self.workers.values()) {
            let text = p.output();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("\n--- {} (last lines)\n", p.name));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// The synth output folder.
    pub fn synth_dir(&self) -> PathBuf {
        self.dir.path().join("synth")
    }
}

/// Parse a CSV text into rows of column → value.
pub fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("csv header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("csv row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Check that every submitted case of `manifests` appears exactly once:
/// in predictions.csv, or as a case row of failures.csv. Returns
/// (predicted, failed).
pub fn assert_every_case_once(
    manifests: &[Manifest],
    predictions: &str,
    failures: &str,
) -> (usize, usize) {
    let predicted: Vec<String> = csv_rows(predictions)
        .into_iter()
        .map(|r| r["case_id"].clone())
        .collect();
    let failed: Vec<String> = csv_rows(failures)
        .into_iter()
        .filter(|r| r["level"] == "case")
        .map(|r| r["case_id"].clone())
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for id in predicted.iter().chain(&failed) {
        *seen.entry(id).or_default() += 1;
    }
    let submitted: Vec<&str> = manifests
        .iter()
        .flat_map(|m| m.cases.iter().map(|c| c.case_id.as_str()))
        .collect();
    for id in &submitted {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "case {id} must appear exactly once in predictions.csv or failures.csv"
        );
    }
    assert_eq!(
        seen.len(),
        submitted.len(),
        "predictions/failures name cases that were not submitted"
    );
    (predicted.len(), failed.len())
}

/// The path of a shipped model's card.
pub fn card_path(model: &str) -> PathBuf {
    nodal_tests::repo_root()
        .join("models")
        .join(model)
        .join("card.json")
}

/// Read a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("parse json")
}
