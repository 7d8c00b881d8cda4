//! A real nodal cluster for end-to-end and fault tests: an s3s-fs server,
//! RabbitMQ queues unique to the test, synthetic archives submitted to S3,
//! and `nodal coordinator` / `nodal worker` processes started on demand.
//!
//! Dropping a cluster kills its processes first, then deletes its queues,
//! stops the S3 server and removes its folders, so a failed test leaves
//! nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, bail};
use nodal_common::store::{S3Store, SharedStore};
use nodal_coordinator::auth::{Role, new_token};
use nodal_coordinator::run::{RunState, RunStatus};
use nodal_submit::{Progress, SubmitOptions, submit_site};
use nodal_synth::SynthConfig;
use nodal_testkit::{NodalProcess, S3Server, UniqueQueues};
use nodal_types::manifest::Manifest;
use nodal_types::study::Study;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Key prefix of the cluster's objects in the test bucket.
pub const PREFIX: &str = "nodal";

/// Worker flags that make runs slow enough to break in the middle: two jobs
/// in hand, and a partial batch waits `batch_deadline_ms` for more tiles
/// (with small jobs every batch is partial, so each job spends that long in
/// the batcher). One decode thread and one inference thread each, so that a
/// coordinator and two workers share a 2-core machine without starving one
/// another.
pub fn paced_worker(batch_deadline_ms: &'static str) -> Vec<&'static str> {
    vec![
        "--prefetch",
        "2",
        "--batch-deadline-ms",
        batch_deadline_ms,
        "--decode-threads",
        "1",
        "--intra-op-threads",
        "1",
    ]
}

/// The usual pace of the fault tests' workers (see [`paced_worker`]).
pub const PACE_MS: &str = "250";

/// Tiles per job in the fault tests: small, so a run has many jobs.
pub const FAULT_JOB_TILES: usize = 16;

/// Tiles per job of the clean reference runs: large, so they are quick.
pub const CLEAN_JOB_TILES: usize = 256;

/// Synthetic study folders shared by the tests of one test binary, by
/// (studies, scale, seed): made once while some test holds them, removed
/// when the last holder drops them.
static SHARED_SYNTH: tokio::sync::Mutex<BTreeMap<String, Weak<TempDir>>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

/// The synthetic folders for `studies` at `scale` and `seed` (`<dir>/<study>/<site>`),
/// generated unless another test of this binary holds them already.
pub async fn shared_synth(
    studies: &[Study],
    scale: f64,
    seed: u64,
) -> anyhow::Result<Arc<TempDir>> {
    let key = format!("{studies:?}-{scale}-{seed}");
    let mut shared = SHARED_SYNTH.lock().await;
    if let Some(dir) = shared.get(&key).and_then(Weak::upgrade) {
        return Ok(dir);
    }
    let dir = Arc::new(tempfile::tempdir()?);
    let config = SynthConfig {
        out: dir.path().to_path_buf(),
        studies: studies.to_vec(),
        scale,
        seed,
        format: nodal_synth::ImageFormat::Jpeg,
    };
    tokio::task::spawn_blocking(move || nodal_synth::generate(&config)).await??;
    shared.insert(key, Arc::downgrade(&dir));
    Ok(dir)
}

/// A test cluster. Processes are killed and queues deleted when it drops.
pub struct Cluster {
    /// Scratch folder: synth output, logs, tokens file.
    pub dir: TempDir,
    /// The S3 server.
    pub s3: S3Server,
    /// The broker's URL.
    pub amqp: String,
    /// The test's queues.
    pub queues: UniqueQueues,
    /// A store handle on the cluster's bucket prefix.
    pub store: SharedStore,
    /// Tokens by role name: `operator`, `analyst`, `site-cy-a`, `site-us-a`.
    pub tokens: BTreeMap<String, String>,
    /// The coordinator process (the leader, where there are several), once
    /// started.
    pub coordinator: Option<NodalProcess>,
    /// The coordinator's base URL, once started.
    pub api: String,
    /// Other coordinator processes, standing by, with their base URLs.
    pub standby: Vec<(NodalProcess, String)>,
    /// Worker processes by name.
    pub workers: BTreeMap<String, NodalProcess>,
    /// Archives submitted, by study.
    pub archives: BTreeMap<Study, Vec<Manifest>>,
    /// The shard size archives are submitted with (the default 8 MiB unless
    /// a test wants an archive to span many shards).
    pub shard_bytes: u64,
    /// Synthetic folders shared with other tests, when used.
    synth: Option<Arc<TempDir>>,
    http: reqwest::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes go before the queues (and the S3 server) they use.
        self.workers.clear();
        self.coordinator = None;
        self.standby.clear();
    }
}

impl Cluster {
    /// Start the S3 server and name the queues on the machine's broker.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        Self::start_on(test, &nodal_testkit::amqp_url()).await
    }

    /// Start the S3 server and name the queues on the broker at `amqp`.
    pub async fn start_on(test: &str, amqp: &str) -> anyhow::Result<Self> {
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
            amqp: amqp.to_string(),
            queues: UniqueQueues::new(amqp, &format!("nodal-test.{test}")),
            store,
            tokens,
            coordinator: None,
            api: String::new(),
            standby: Vec::new(),
            workers: BTreeMap::new(),
            archives: BTreeMap::new(),
            shard_bytes: nodal_types::shard::DEFAULT_SHARD_BYTES,
            synth: None,
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
            ("NODAL_BROKER".into(), self.amqp.clone()),
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
            // Plain log lines, so that tests can search them.
            ("NO_COLOR".into(), "1".into()),
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
            format: nodal_synth::ImageFormat::Jpeg,
        };
        tokio::task::spawn_blocking(move || nodal_synth::generate(&config)).await??;
        self.submit_folder(&out, &Study::ALL).await
    }

    /// Submit `studies` from synthetic folders shared with the other tests
    /// of this binary (see [`shared_synth`]).
    pub async fn submit_shared_synthetic(
        &mut self,
        studies: &[Study],
        scale: f64,
        seed: u64,
    ) -> anyhow::Result<()> {
        let synth = shared_synth(studies, scale, seed).await?;
        let out = synth.path().to_path_buf();
        self.synth = Some(synth);
        self.submit_folder(&out, studies).await
    }

    /// Submit every site folder of `studies` under `out` to S3.
    pub async fn submit_folder(&mut self, out: &Path, studies: &[Study]) -> anyhow::Result<()> {
        for &study in studies {
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
                let options = SubmitOptions {
                    shard_bytes: self.shard_bytes,
                    ..SubmitOptions::new(study, &name, &site)
                };
                let outcome = submit_site(&options, self.store.clone(), &Progress::hidden())
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

    /// Start (or restart) the coordinator and wait until it leads; extra
    /// flags are appended.
    pub fn start_coordinator(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let mut process = self.spawn_coordinator(extra)?;
        self.api = listening_url(&mut process)?;
        process.wait_for_line(LEADING, Duration::from_secs(60))?;
        self.coordinator = Some(process);
        Ok(())
    }

    /// Start `n` more coordinators at once on the same store and queues;
    /// they stand by until [`Cluster::find_leader`] says who leads.
    pub fn start_standby_coordinators(&mut self, n: usize, extra: &[&str]) -> anyhow::Result<()> {
        let mut started = Vec::new();
        for _ in 0..n {
            started.push(self.spawn_coordinator(extra)?);
        }
        for mut process in started {
            let url = listening_url(&mut process)?;
            self.standby.push((process, url));
        }
        Ok(())
    }

    /// Wait until exactly one running coordinator is ready (holds the lease)
    /// and make it [`Cluster::coordinator`]; the others stand by. Dead
    /// processes are dropped.
    pub async fn find_leader(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let mut all: Vec<(NodalProcess, String)> = self.standby.drain(..).collect();
        if let Some(p) = self.coordinator.take() {
            all.push((p, self.api.clone()));
        }
        all.retain_mut(|(p, _)| p.is_running());
        let deadline = Instant::now() + timeout;
        loop {
            let mut ready = Vec::new();
            for (i, (_, url)) in all.iter().enumerate() {
                let answer = self.http.get(format!("{url}/readyz")).send().await;
                if answer.is_ok_and(|r| r.status().is_success()) {
                    ready.push(i);
                }
            }
            if ready.len() > 1 {
                bail!("{} coordinators are ready at once", ready.len());
            }
            if let Some(&i) = ready.first() {
                let (leader, url) = all.remove(i);
                self.coordinator = Some(leader);
                self.api = url;
                self.standby = all;
                return Ok(());
            }
            if Instant::now() > deadline {
                self.standby = all;
                bail!(
                    "no coordinator took the lease in {timeout:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Spawn a coordinator process (not waiting for it).
    fn spawn_coordinator(&mut self, extra: &[&str]) -> anyhow::Result<NodalProcess> {
        let mut args: Vec<String> = ["coordinator", "--listen", "127.0.0.1:0", "--tokens-file"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(self.dir.path().join("tokens.json").display().to_string());
        if !extra.contains(&"--stall-timeout-secs") {
            args.extend(["--stall-timeout-secs".into(), "10".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let n = self.coordinator_starts();
        let name = format!("coordinator-{n}");
        args.extend(["--coordinator-id".into(), name.clone()]);
        NodalProcess::spawn(&name, self.dir.path(), &args, &self.env())
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
        self.create_run_with(study, 64).await
    }

    /// Create a run of every archive of `study` with `job_tiles` tiles per job.
    pub async fn create_run_with(
        &self,
        study: Study,
        job_tiles: usize,
    ) -> anyhow::Result<RunStatus> {
        let body = serde_json::json!({
            "archives": self.archive_ids(study),
            "model": study.default_model(),
            "job_tiles": job_tiles,
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
        let s = self.wait_ended(run_id, timeout).await?;
        match &s.state {
            RunState::Finished => Ok(s),
            RunState::Failed { reason } => bail!("run {run_id} failed: {reason}"),
            other => bail!("run {run_id} ended {}, not finished", other.name()),
        }
    }

    /// Run `study` over its archives with jobs of `job_tiles` tiles and
    /// wait (up to `timeout`) until the run has finished; its id.
    pub async fn finished_run(
        &self,
        study: Study,
        job_tiles: usize,
        timeout: Duration,
    ) -> anyhow::Result<uuid::Uuid> {
        let run = self.create_run_with(study, job_tiles).await?;
        Ok(self.wait_finished(run.run_id, timeout).await?.run_id)
    }

    /// Poll a run until at least `jobs` of its jobs are done, and return
    /// its status then. An error if the run settles first (the fault would
    /// come too late to test anything) or `timeout` passes.
    pub async fn wait_jobs_done(
        &self,
        run_id: uuid::Uuid,
        jobs: usize,
        timeout: Duration,
    ) -> anyhow::Result<RunStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.run_status(run_id).await {
                if s.state != RunState::Running {
                    bail!(
                        "run {run_id} is {:?} before {jobs} jobs were seen done: too fast to break in the middle ({s:?})",
                        s.state
                    );
                }
                if s.jobs_done >= jobs {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "run {run_id}: {jobs} jobs not done after {timeout:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A clean run of `study` (large jobs, nothing broken): its
    /// predictions.csv, the reference the faulted runs are compared with.
    pub async fn clean_predictions(
        &self,
        study: Study,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let created = self.create_run_with(study, CLEAN_JOB_TILES).await?;
        let done = self.wait_finished(created.run_id, timeout).await?;
        if done.jobs_failed != 0 || done.tiles_failed != 0 {
            bail!(
                "the clean run failed jobs or tiles: {done:?}\n{}",
                self.logs()
            );
        }
        self.result_file(done.run_id, "predictions.csv").await
    }

    /// A worker's `/metrics` URL (from the address it prints at start).
    pub fn worker_metrics_url(&mut self, name: &str) -> anyhow::Result<String> {
        let worker = self
            .workers
            .get_mut(name)
            .with_context(|| format!("no worker {name}"))?;
        let line = worker.wait_for_line("worker endpoints on ", Duration::from_secs(60))?;
        let base = line
            .split("worker endpoints on ")
            .nth(1)
            .context("endpoints line")?
            .trim();
        Ok(format!("{base}/metrics"))
    }

    /// Run `nodal ARGS…` against the coordinator with the operator's token
    /// (`NODAL_COORDINATOR`, `NODAL_TOKEN`); its exit success and output.
    pub fn cli(&self, name: &str, args: &[&str]) -> (bool, String) {
        self.cli_as("operator", name, args)
    }

    /// [`Cluster::cli`] with the token of `role` (a key of `tokens`).
    pub fn cli_as(&self, role: &str, name: &str, args: &[&str]) -> (bool, String) {
        let env = vec![
            ("NODAL_COORDINATOR".to_string(), self.api.clone()),
            ("NODAL_TOKEN".to_string(), self.tokens[role].clone()),
        ];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut p = NodalProcess::spawn(name, self.dir.path(), &args, &env).unwrap();
        let ok = p.wait_exit(Duration::from_secs(120)).unwrap().success();
        (ok, p.output())
    }

    /// [`Cluster::cli`] that must succeed; its output.
    pub fn cli_ok(&self, name: &str, args: &[&str]) -> String {
        let (ok, out) = self.cli(name, args);
        assert!(ok, "nodal {}: {out}\n{}", args.join(" "), self.logs());
        out
    }

    /// Sum of a worker counter over the cluster's workers (0 where absent).
    pub async fn workers_sum(&mut self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let names: Vec<String> = self.workers.keys().cloned().collect();
        let mut total = 0.0;
        for worker in names {
            let url = self.worker_metrics_url(&worker).unwrap();
            let text = self.scrape(&url).await.unwrap();
            total += nodal_testkit::prom::sample(&text, name, labels).unwrap_or(0.0);
        }
        total
    }

    /// Wait until `queue` holds `n` messages (a panic after `timeout`).
    pub async fn wait_queue_depth(
        &self,
        broker: &nodal_common::broker::RabbitBroker,
        queue: &str,
        n: u64,
        timeout: Duration,
    ) {
        use nodal_common::broker::Broker;
        let deadline = Instant::now() + timeout;
        loop {
            let depth = broker.depth(queue).await.unwrap();
            if depth == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{queue} holds {depth}, not {n}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll a run until it has ended — finished, failed or cancelled — and
    /// return its status (an error after `timeout`). Transient API errors
    /// (a coordinator being restarted) are retried.
    pub async fn wait_ended(
        &self,
        run_id: uuid::Uuid,
        timeout: Duration,
    ) -> anyhow::Result<RunStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.run_status(run_id).await
                && s.state.is_ended()
            {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!("run {run_id} not ended after {timeout:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The Prometheus text at `url`.
    pub async fn scrape(&self, url: &str) -> anyhow::Result<String> {
        let response = self.http.get(url).send().await?;
        if !response.status().is_success() {
            bail!("GET {url}: {}", response.status());
        }
        Ok(response.text().await?)
    }

    /// The coordinator's `/metrics`.
    pub async fn coordinator_metrics(&self) -> anyhow::Result<String> {
        self.scrape(&format!("{}/metrics", self.api)).await
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
        let standby = self.standby.iter().map(|(p, _)| p);
        for p in self
            .coordinator
            .iter()
            .chain(standby)
            .chain(self.workers.values())
        {
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
    nodal_testkit::repo_root()
        .join("models")
        .join(model)
        .join("card.json")
}

/// Read a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("parse json")
}

/// Assert that a faulted run's predictions.csv is byte-identical to the clean
/// run's; on a difference, show the first lines that differ.
pub fn assert_same_predictions(clean: &str, got: &str, what: &str) {
    if clean == got {
        return;
    }
    let clean_lines: Vec<&str> = clean.lines().collect();
    let got_lines: Vec<&str> = got.lines().collect();
    let mut shown = String::new();
    for i in 0..clean_lines.len().max(got_lines.len()) {
        let (a, b) = (clean_lines.get(i), got_lines.get(i));
        if a != b {
            shown.push_str(&format!("line {i}:\n  clean: {a:?}\n  {what}: {b:?}\n"));
            if shown.lines().count() > 15 {
                break;
            }
        }
    }
    panic!(
        "{what}: predictions.csv differs from the clean run's ({} vs {} lines)\n{shown}",
        clean_lines.len(),
        got_lines.len()
    );
}

/// A number from the `WorkerSummary { … }` a worker logs when it stops
/// (`jobs_answered`, `jobs_requeued`, `dead_lettered`, `tiles_ok`, `tiles_failed`).
pub fn summary_field(log: &str, field: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("worker stopped"))?;
    let rest = line.split(&format!("{field}: ")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// What a coordinator logs once it holds the lease and drives runs.
const LEADING: &str = "leading: driving runs";

/// A coordinator's base URL, from the line it prints once listening.
fn listening_url(process: &mut NodalProcess) -> anyhow::Result<String> {
    let line = process.wait_for_line("coordinator listening on ", Duration::from_secs(60))?;
    Ok(line
        .split("coordinator listening on ")
        .nth(1)
        .context("listening line")?
        .trim()
        .to_string())
}

/// A faulted run's files: the run settled with every job done and every
/// tile accounted for, every case of `study` is there exactly once, and
/// predictions.csv equals the clean run's.
pub async fn check_identical(c: &Cluster, study: Study, done: &RunStatus, clean: &str, what: &str) {
    assert_eq!(done.state, RunState::Finished);
    assert_eq!(done.jobs_failed, 0, "{what}: no job given up\n{}", c.logs());
    assert_eq!(
        (done.jobs_done, done.tiles_done, done.tiles_failed),
        (done.jobs_total, done.tiles_total as u64, 0),
        "{what}: every job and tile done\n{}",
        c.logs()
    );
    let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
    let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
    let (predicted, failed) = assert_every_case_once(&c.archives[&study], &predictions, &failures);
    assert_same_predictions(clean, &predictions, what);
    eprintln!(
        "{what}: {} jobs, {} tiles; cases expected {}, predicted {predicted}, failed {failed}",
        done.jobs_total,
        done.tiles_total,
        case_count(&c.archives[&study]),
    );
}

/// Cases submitted in `manifests`.
pub fn case_count(manifests: &[Manifest]) -> usize {
    manifests.iter().map(|m| m.cases.len()).sum()
}
