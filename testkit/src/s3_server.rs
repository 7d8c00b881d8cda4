//! A real S3 server for tests and `nodal bench`: s3s-fs (installed by `scripts/setup.sh s3`)
//! on 127.0.0.1 with a free port, a fresh temporary folder, random keys and
//! one bucket. It can be stopped and started again on the same port and
//! folder, to test outages.

use anyhow::{Context, bail};
use nodal_common::store::S3Config;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The bucket every [`S3Server`] creates.
const BUCKET: &str = "nodal-test";
/// What s3s-fs logs: start and stop, and how multipart uploads completed
/// (their ETag, `<md5>-<parts>`).
const LOG_FILTER: &str = "s3s_fs=info,s3s_fs::s3[complete_multipart_upload]=debug";
/// How long a start may take before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running s3s-fs process; killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    access_key: String,
    secret_key: String,
}

impl S3Server {
    /// Start a server with a fresh folder, random credentials and the bucket
    /// [`S3Server::bucket`]. Fails, naming the setup command, when s3s-fs
    /// is not installed.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = binary()?;
        let dir = tempfile::tempdir().context("creating the S3 server's folder")?;
        std::fs::create_dir_all(dir.path().join("data").join(BUCKET))
            .context("creating the bucket folder")?;
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            access_key: format!("AK{}", crate::unique_suffix().to_uppercase()),
            secret_key: format!("sk-{}-{}", crate::unique_suffix(), crate::unique_suffix()),
        };
        // A port picked free may be taken before s3s-fs binds it: try a few.
        let mut last_error = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.spawn(&binary).await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("s3s-fs did not start")))
    }

    /// Kill the server (its data stays for [`S3Server::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port and folder.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let binary = binary()?;
        self.spawn(&binary).await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The access key the server accepts.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key the server accepts.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Where the server keeps its objects (`<data>/<bucket>/<key>`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the server logged so far: start and stop, and a `multipart
    /// etag` line per completed multipart upload.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("s3s-fs.log")).unwrap_or_default()
    }

    /// A store configuration for this server under key prefix `prefix`,
    /// with its credentials and the store's default settings.
    pub fn plain_config(&self, prefix: &str) -> S3Config {
        let mut config = S3Config::new(BUCKET, prefix);
        config.endpoint = Some(self.endpoint());
        config.region = Some("us-east-1".into());
        config.access_key = Some(self.access_key.clone());
        config.secret_key = Some(self.secret_key.clone());
        config
    }

    /// [`S3Server::plain_config`] tuned for tests: quick retries (3
    /// attempts) and short timeouts, and multipart above 5 MiB in 5 MiB parts.
    pub fn config(&self, prefix: &str) -> S3Config {
        let mut config = self.plain_config(prefix);
        config.max_attempts = 3;
        config.retry_initial_backoff = Duration::from_millis(50);
        config.connect_timeout = Duration::from_secs(2);
        config.operation_timeout = Duration::from_secs(60);
        config.multipart_threshold = 5 * 1024 * 1024;
        config.part_size = 5 * 1024 * 1024;
        config
    }

    /// The `--store` URL for key prefix `prefix`, for tests that run the CLI.
    pub fn store_url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Environment variables pointing nodal's CLI at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    async fn spawn(&mut self, binary: &Path) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("s3s-fs.log"))
            .context("opening the S3 server's log")?;
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.access_key])
            .args(["--secret-key", &self.secret_key])
            .arg(self.data_dir())
            .env("RUST_LOG", LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("sharing the log file")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("checking s3s-fs")?
            {
                self.child = None;
                bail!(
                    "s3s-fs exited at start ({status}) on port {}: {}",
                    self.port,
                    self.log()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                self.stop();
                bail!(
                    "s3s-fs did not listen on port {} within {READY_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where `scripts/setup.sh s3` installs s3s-fs, relative to the checkout.
const S3S_FS: &str = ".cache/tools/bin/s3s-fs";

/// The installed s3s-fs (under the checkout's `.cache`, found from the
/// working directory or the executable), or an error naming the command
/// that installs it.
fn binary() -> anyhow::Result<PathBuf> {
    let beside = crate::repo_root().join(S3S_FS);
    if beside.is_file() {
        return Ok(beside);
    }
    nodal_common::locate::find_in_ancestors(Path::new(S3S_FS)).map_err(|tried| {
        anyhow::anyhow!(
            "s3s-fs is missing (tried {}): run `scripts/setup.sh s3` to install it",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the free port")?
        .port())
}
