//! The servers of the distributed measurement: an s3s-fs S3 server started
//! for the run (or an S3 store named by URL), and RabbitMQ queues unique to
//! the run, deleted afterwards.

use anyhow::{Context, bail};
use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use nodal_common::broker::{Broker, QueueNames, RabbitBroker, RabbitConfig, SharedBroker};
use nodal_common::store::{S3Config, S3Store, SharedStore, StoreConfig, open_store};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where `scripts/setup.sh s3` installs s3s-fs, relative to the repository root.
const S3S_FS: &str = ".cache/tools/bin/s3s-fs";
/// The bucket the started server gets.
const BUCKET: &str = "nodal-bench";
/// How long s3s-fs may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// An s3s-fs process serving a folder; killed when dropped.
#[derive(Debug)]
pub(crate) struct S3sFs {
    child: Child,
    config: S3Config,
}

impl S3sFs {
    /// Start s3s-fs on a free port over `dir`, with random credentials.
    pub(crate) async fn start(dir: &Path) -> anyhow::Result<Self> {
        let binary = locate_s3s_fs()?;
        std::fs::create_dir_all(dir.join(BUCKET))
            .with_context(|| format!("creating {}", dir.join(BUCKET).display()))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let (access, secret) = (random("AK"), random("sk-"));
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access, "--secret-key", &secret])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut config = S3Config::new(BUCKET, "bench");
        config.endpoint = Some(format!("http://127.0.0.1:{port}"));
        config.region = Some("us-east-1".into());
        config.access_key = Some(access);
        config.secret_key = Some(secret);
        let mut server = Self { child, config };
        server.wait_ready(port).await?;
        Ok(server)
    }

    /// A store on the server.
    pub(crate) async fn store(&self) -> anyhow::Result<SharedStore> {
        Ok(Arc::new(S3Store::connect(&self.config).await?))
    }

    async fn wait_ready(&mut self, port: u16) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().context("checking s3s-fs")? {
                bail!("s3s-fs exited at start ({status})");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("s3s-fs did not listen on port {port} within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s3s-fs under `.cache/tools/bin` of the working directory, of the
/// executable's folder, or of one of their ancestors.
fn locate_s3s_fs() -> anyhow::Result<PathBuf> {
    if let Ok(found) = nodal_common::locate::find_in_ancestors(Path::new(S3S_FS)) {
        return Ok(found);
    }
    bail!(
        "s3s-fs not found ({S3S_FS} in the working directory, the executable's folder or \
         their parents): run `scripts/setup.sh s3`, or pass --store s3://bucket/prefix with \
         AWS_ENDPOINT_URL and credentials in the environment"
    )
}

/// Open a store URL; for `s3://`, endpoint, region and credentials come from
/// the usual AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
pub(crate) async fn open_store_url(url: &str) -> anyhow::Result<SharedStore> {
    let mut config = StoreConfig::from_url(url)?;
    if let StoreConfig::S3(s3) = &mut config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        s3.endpoint = var("AWS_ENDPOINT_URL");
        s3.region = var("AWS_REGION");
        s3.access_key = var("AWS_ACCESS_KEY_ID");
        s3.secret_key = var("AWS_SECRET_ACCESS_KEY");
        s3.session_token = var("AWS_SESSION_TOKEN");
    }
    open_store(&config)
        .await
        .with_context(|| format!("opening the store {url}"))
}

/// RabbitMQ queues named for one bench run (`nodal-bench.<random>.jobs`, …).
#[derive(Debug)]
pub(crate) struct BenchQueues {
    url: String,
    names: QueueNames,
}

impl BenchQueues {
    /// Fresh queue names on the broker at `url`.
    pub(crate) fn new(url: &str) -> Self {
        let prefix = random("nodal-bench.");
        Self {
            url: url.to_owned(),
            names: QueueNames {
                jobs: format!("{prefix}.jobs"),
                results: format!("{prefix}.results"),
                dead: format!("{prefix}.dead"),
            },
        }
    }

    /// Connect and declare the queues.
    pub(crate) async fn connect(&self) -> anyhow::Result<SharedBroker> {
        let config = RabbitConfig {
            queues: self.names.clone(),
            connection_name: "nodal-bench".into(),
            ..RabbitConfig::new(&self.url)
        };
        let broker = RabbitBroker::connect(&config)
            .await
            .context("connecting to RabbitMQ (is it running? `scripts/setup.sh rabbitmq`)")?;
        broker.declare().await?;
        Ok(Arc::new(broker))
    }

    /// Delete the queues.
    pub(crate) async fn delete(self) -> anyhow::Result<()> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .context("connecting to RabbitMQ to delete the bench queues")?;
        let channel = connection.create_channel().await?;
        for queue in [&self.names.jobs, &self.names.results, &self.names.dead] {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .with_context(|| format!("deleting queue {queue}"))?;
        }
        let _ = connection.close(200, "bench done".into()).await;
        Ok(())
    }
}

/// `prefix` + 12 random hex digits.
fn random(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
