//! RabbitMQ helpers for tests and `nodal bench`: the URL, queue names
//! unique to one test or bench run (so they run in parallel without
//! crosstalk) that are deleted afterwards, and closing a test's own
//! connections to simulate a network failure.

use anyhow::{Context, bail};
use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use nodal_common::broker::{Broker, QueueNames, RabbitBroker, RabbitConfig, SharedBroker};
use nodal_common::retry::RetryPolicy;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// `NODAL_TEST_AMQP_URL`, else the local broker as guest.
pub fn amqp_url() -> String {
    std::env::var("NODAL_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Queue names and a connection name unique to one test or bench run on
/// one broker. Call [`UniqueQueues::cleanup`] at the end; if the caller
/// fails first, dropping it deletes the queues anyway.
#[derive(Debug)]
pub struct UniqueQueues {
    /// The broker's URL.
    url: String,
    /// The queue names (`<label>.<random>.jobs`, …).
    pub names: QueueNames,
    /// The connection name to give the broker, for [`close_connections`].
    pub connection_name: String,
    cleaned: bool,
}

impl UniqueQueues {
    /// Fresh names for the test `test` (`nodal-test.<test>.<random>`) on
    /// [`amqp_url`].
    pub fn for_test(test: &str) -> Self {
        Self::new(&amqp_url(), &format!("nodal-test.{test}"))
    }

    /// Fresh names `<label>.<random>.…` on the broker at `url`.
    pub fn new(url: &str, label: &str) -> Self {
        let prefix = format!("{label}.{}", crate::unique_suffix());
        Self {
            url: url.to_owned(),
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
        let mut config = RabbitConfig::new(&self.url);
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

    /// Connect with these names and declare the queues.
    pub async fn connect(&self, delivery_limit: u32) -> anyhow::Result<SharedBroker> {
        let broker = RabbitBroker::connect(&self.rabbit_config(delivery_limit))
            .await
            .context("connecting to RabbitMQ (is it running? `scripts/setup.sh rabbitmq`)")?;
        broker.declare().await?;
        Ok(Arc::new(broker))
    }

    /// Delete the queues.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.cleaned = true;
        delete_queues(&self.url, &self.names).await
    }
}

impl Drop for UniqueQueues {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // Dropped without cleanup (the test failed): delete from a thread
        // with its own runtime, since Drop cannot await.
        let (url, names) = (self.url.clone(), self.names.clone());
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(delete_queues(&url, &names))
        })
        .join();
        if let Ok(Err(e)) = deleted {
            eprintln!("could not delete test queues: {e:#}");
        }
    }
}

async fn delete_queues(url: &str, names: &QueueNames) -> anyhow::Result<()> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ to delete test queues")?;
    let channel = connection.create_channel().await?;
    for queue in [&names.jobs, &names.results, &names.dead] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .with_context(|| format!("deleting queue {queue}"))?;
    }
    let _ = connection.close(200, "done".into()).await;
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
    let pids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| line.contains(&quoted))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect();
    // Closed together, as one lost link would drop them: one rabbitmqctl
    // after another takes seconds on a loaded machine.
    let closing = pids
        .iter()
        .map(|pid| {
            Command::new("rabbitmqctl")
                .args(["-q", "close_connection", pid, "closed by a nodal test"])
                .spawn()
                .context("running rabbitmqctl close_connection")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (pid, mut child) in pids.iter().zip(closing) {
        let status = child.wait().context("waiting for rabbitmqctl")?;
        if !status.success() {
            bail!("rabbitmqctl close_connection {pid} failed ({status})");
        }
    }
    Ok(pids.len())
}
