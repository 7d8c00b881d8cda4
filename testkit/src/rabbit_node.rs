//! A RabbitMQ node of the test's own, to kill: its own node name, free AMQP
//! and distribution ports on loopback, its own data, log and config files
//! in a temporary folder (`RABBITMQ_CONF_ENV_FILE` and
//! `RABBITMQ_CONFIG_FILE` point there, since /etc/rabbitmq pins port 5672),
//! so the machine's broker is never touched. [`RabbitNode::kill`] SIGKILLs
//! its Erlang VM, as a crash would; [`RabbitNode::restart`] starts it again
//! on the same data, so durable queues and confirmed messages come back.
//! Needs `rabbitmq-server` (`scripts/setup.sh rabbitmq`) and root, which
//! Debian's wrapper needs to run the node as the `rabbitmq` user.

use anyhow::{Context, bail};
use lapin::{Connection, ConnectionProperties};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a node may take to accept AMQP connections (~5–10 s here).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// A RabbitMQ node started by a test, killed when dropped.
#[derive(Debug)]
pub struct RabbitNode {
    dir: TempDir,
    name: String,
    amqp_port: u16,
    dist_port: u16,
    server: Option<Child>,
}

impl RabbitNode {
    /// Start a node on free ports and wait until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (amqp_port, dist_port) = (free_port()?, free_port()?);
        let name = format!("nodal-test-{}@localhost", crate::unique_suffix());
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{amqp_port}\nloopback_users = none\n"),
        )?;
        std::fs::write(
            dir.path().join("rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS=127.0.0.1\nexport ERL_FLAGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"\n",
        )?;
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")?;
        // Debian's wrapper runs the node as `rabbitmq`: it must own its files.
        let chown = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(dir.path())
            .status()
            .context("running chown")?;
        if !chown.success() {
            bail!(
                "chown rabbitmq {} failed ({chown}): a RabbitMQ node of a test's own needs root",
                dir.path().display()
            );
        }
        let mut node = Self {
            dir,
            name,
            amqp_port,
            dist_port,
            server: None,
        };
        node.restart().await?;
        Ok(node)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// SIGKILL the node's Erlang VM (no clean shutdown) and wait for it to go.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        for pid in descendants(server.id()) {
            // Gone already is fine: the node is down either way.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = server.kill();
        server.wait().context("waiting for rabbitmq-server")?;
        Ok(())
    }

    /// Start the node (again, on the same data) and wait until it accepts
    /// AMQP connections.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))?;
        let server = Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting rabbitmq-server (run `scripts/setup.sh rabbitmq`)")?;
        self.server = Some(server);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let connected = Connection::connect(&self.url(), ConnectionProperties::default()).await;
            if let Ok(connection) = connected {
                let _ = connection.close(200, "ready".into()).await;
                return Ok(());
            }
            if let Some(server) = self.server.as_mut()
                && let Some(status) = server.try_wait()?
            {
                bail!(
                    "rabbitmq-server exited ({status}) before accepting connections:\n{}",
                    tail(&self.dir.path().join("server.log"))
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "RabbitMQ node {} not accepting connections after {BOOT_TIMEOUT:?}:\n{}",
                    self.name,
                    tail(&self.dir.path().join("server.log"))
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A port free on loopback just now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Every process below `root` (the wrapper script, `su`, the Erlang VM and
/// its port programs), from /proc.
fn descendants(root: u32) -> Vec<i32> {
    let Ok(root) = i32::try_from(root) else {
        return Vec::new();
    };
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(20).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}
