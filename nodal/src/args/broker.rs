//! `BrokerArgs`: the flags (and environment variables) choosing the broker,
//! turned into the broker's [`BrokerConfig`].

use nodal_common::broker::{
    BrokerConfig, BrokerError, DEFAULT_DELIVERY_LIMIT, QueueNames, SharedBroker, connect_broker,
    queue_names_problem,
};
use std::fmt;

/// Command-line flags (and environment variables) choosing the broker. Its
/// `Debug` hides the password.
#[derive(clap::Args, Clone)]
pub struct BrokerArgs {
    /// Broker: `memory://` (in-process, only for one process such as `nodal
    /// demo`) or `amqp://user:password@host:5672/%2f` (or `amqps://`). Prefer
    /// the environment variable: a password on the command line is visible
    /// to other users of the machine.
    #[arg(
        long = "broker",
        env = "NODAL_BROKER",
        default_value = "memory://",
        hide_env_values = true
    )]
    pub broker: String,
    /// Prefix of the queue names: `<prefix>.jobs`, `<prefix>.results`,
    /// `<prefix>.dead`.
    #[arg(long, env = "NODAL_QUEUE_PREFIX", default_value = "nodal")]
    pub queue_prefix: String,
    /// Name of the jobs queue (overrides the prefix).
    #[arg(long, env = "NODAL_JOBS_QUEUE")]
    pub jobs_queue: Option<String>,
    /// Name of the results queue (overrides the prefix).
    #[arg(long, env = "NODAL_RESULTS_QUEUE")]
    pub results_queue: Option<String>,
    /// Name of the dead-letter queue (overrides the prefix).
    #[arg(long, env = "NODAL_DEAD_QUEUE")]
    pub dead_queue: Option<String>,
    /// A message that comes back unsettled more than this many times (a
    /// poison message crashing its consumers) goes to the dead-letter queue.
    #[arg(long, env = "NODAL_DELIVERY_LIMIT", default_value_t = DEFAULT_DELIVERY_LIMIT)]
    pub delivery_limit: u32,
    /// Connection name shown by RabbitMQ (management UI, rabbitmqctl).
    #[arg(long, env = "NODAL_BROKER_CONNECTION_NAME", default_value = "nodal")]
    pub broker_connection_name: String,
    /// PEM file of CA certificates to trust for an amqps:// broker, in
    /// addition to the system's roots.
    #[arg(long, env = "NODAL_AMQP_CA_FILE", value_name = "PEM")]
    pub amqp_ca_file: Option<std::path::PathBuf>,
}

impl BrokerArgs {
    /// The configuration these flags describe; a bad URL is an error naming
    /// what is wrong (without the URL, which may hold a password).
    pub fn into_config(&self) -> Result<BrokerConfig, BrokerError> {
        let mut config = BrokerConfig::from_url(&self.broker)?;
        let prefix = &self.queue_prefix;
        config.set_queues(QueueNames {
            jobs: self.jobs_queue.clone().unwrap_or(format!("{prefix}.jobs")),
            results: self
                .results_queue
                .clone()
                .unwrap_or(format!("{prefix}.results")),
            dead: self.dead_queue.clone().unwrap_or(format!("{prefix}.dead")),
        });
        config.set_delivery_limit(self.delivery_limit);
        match &mut config {
            BrokerConfig::Rabbit(rabbit) => {
                rabbit.connection_name = self.broker_connection_name.clone();
                rabbit.ca_file = self.amqp_ca_file.clone();
            }
            BrokerConfig::Memory { .. } if self.amqp_ca_file.is_some() => {
                return Err(BrokerError::permanent(
                    "connect",
                    "",
                    "--amqp-ca-file is only used with an amqps:// broker",
                ));
            }
            BrokerConfig::Memory { .. } => {}
        }
        if let Some(problem) = queue_names_problem(config.queues()) {
            return Err(BrokerError::permanent("connect", "", problem));
        }
        Ok(config)
    }

    /// Connect to the broker these flags describe and declare its queues.
    pub async fn connect(&self) -> Result<SharedBroker, BrokerError> {
        connect_broker(&self.into_config()?).await
    }
}

impl fmt::Debug for BrokerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.into_config() {
            Ok(config) => config.fmt(f),
            Err(_) => f.write_str("BrokerArgs(invalid)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        broker: BrokerArgs,
    }

    #[test]
    fn flags_name_the_queues() {
        let cli = Cli::try_parse_from([
            "nodal",
            "--broker",
            "amqps://u:pw-secret@mq.example:5671/prod",
            "--queue-prefix",
            "study1",
            "--dead-queue",
            "study1.poison",
            "--delivery-limit",
            "3",
        ])
        .unwrap();
        let BrokerConfig::Rabbit(rabbit) = cli.broker.into_config().unwrap() else {
            panic!("not rabbit");
        };
        assert_eq!(rabbit.queues.jobs, "study1.jobs");
        assert_eq!(rabbit.queues.results, "study1.results");
        assert_eq!(rabbit.queues.dead, "study1.poison");
        assert_eq!(rabbit.delivery_limit, 3);
        assert!(!format!("{:?}", cli.broker).contains("pw-secret"));
        assert_eq!(rabbit.describe(), "amqps://u@mq.example:5671/prod");
    }

    #[test]
    fn bad_queue_names_are_refused() {
        let cli = Cli::try_parse_from(["nodal", "--jobs-queue", "amq.jobs"]).unwrap();
        let err = cli.broker.into_config().unwrap_err();
        assert!(err.to_string().contains("amq.jobs"), "{err}");
        let cli = Cli::try_parse_from(["nodal", "--results-queue", "nodal.jobs"]).unwrap();
        assert!(cli.broker.into_config().is_err());
    }
}
