//! RabbitMQ helpers for tests: the URL, queue names unique to one test (so
//! tests run in parallel without crosstalk) that are deleted afterwards, and
//! closing a test's own connections to simulate a network failure.

use anyhow::{Context, bail};
use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use nodal_common::broker::{QueueNames, RabbitConfig};
use nodal_common::retry::RetryPolicy;
use std::process::Command;
use std::time::Duration;

/// `NODAL_TEST_AMQP_URL`, else the local broker as guest.
pub fn amqp_url() -> String {
    std::env::var("NODAL_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Queue names and a connection name unique to one test. Call
/// [`TestQueues::cleanup`] at the end; if the test fails first, dropping it
/// deletes the queues anyway.
#[derive(Debug)]
pub struct TestQueues {
    /// The queue names (`nodal-test.<test>.<random>.jobs`, …).
    pub names: QueueNames,
    /// The connection name to give the broker, for [`close_connections`].
    pub connection_name: String,
    cleaned: bool,
}

impl TestQueues {
    /// Fresh names for the test `test`.
    pub fn new(test: &str) -> Self {
        let prefix = format!("nodal-test.{test}.{}", crate::unique_suffix());
        Self {
            names: QueueNames {
                jobs: format!("{prefix}.jobs"),
                results: format!("{prefix}.results"),
                dead: format!("{prefix}.dead"),
            },
            connection_name: prefix,
            cleaned: false,
        }
    }

    /// A broker configuration using these names, `delivery_limit`, and quick
    /// reconnects (50 ms doubling to 1 s, 20 attempts).
    pub fn rabbit_config(&self, delivery_limit: u32) -> RabbitConfig {
        let mut config = RabbitConfig::new(amqp_url());
        config.queues = self.names.clone();
        config.delivery_limit = delivery_limit;
        config.connection_name = self.connection_name.clone();
        config.retry = RetryPolicy {
            max_attempts: 20,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
        };
        config
    }

    /// Delete the queues.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.cleaned = true;
        delete_queues(&self.names).await
    }
}

impl Drop for TestQueues {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // Dropped without cleanup (the test failed): delete from a thread
        // with its own runtime, since Drop cannot await.
        let names = self.names.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(delete_queues(&names))
        })
        .join();
        if let Ok(Err(e)) = deleted {
            eprintln!("could not delete test queues: {e:#}");
        }
    }
}

async fn delete_queues(names: &QueueNames) -> anyhow::Result<()> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ to delete test queues")?;
    let channel = connection.create_channel().await?;
    for queue in [&names.jobs, &names.results, &names.dead] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .with_context(|| format!("deleting queue {queue}"))?;
    }
    let _ = connection.close(200, "test done".into()).await;
    Ok(())
}

/// Close every RabbitMQ connection named `connection_name` (as a network
/// failure would), through `rabbitmqctl`; returns how many were closed.
/// Needs `rabbitmqctl` and the rights to run it (root on the test machines).
pub fn close_connections(connection_name: &str) -> anyhow::Result<usize> {
    let listed = Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "--no-table-headers"])
        .args(["pid", "client_properties"])
        .output()
        .context("running rabbitmqctl (is RabbitMQ installed? run `scripts/setup.sh rabbitmq`)")?;
    if !listed.status.success() {
        bail!(
            "rabbitmqctl list_connections failed: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let quoted = format!("\"{connection_name}\"");
    let mut closed = 0;
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        if !line.contains(&quoted) {
            continue;
        }
        let Some(pid) = line.split_whitespace().next() else {
            continue;
        };
        let status = Command::new("rabbitmqctl")
            .args(["-q", "close_connection", pid, "closed by a nodal test"])
            .status()
            .context("running rabbitmqctl close_connection")?;
        if !status.success() {
            bail!("rabbitmqctl close_connection {pid} failed ({status})");
        }
        closed += 1;
    }
    Ok(closed)
}
