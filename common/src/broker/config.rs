//! Choosing and connecting a broker from one URL: the configuration type,
//! its command-line flags and `connect_broker`.

use super::{BrokerError, MemoryBroker, QueueNames, RabbitBroker, RabbitConfig, SharedBroker};
use std::fmt;
use std::sync::Arc;

/// Returns after which a message is dead-lettered, unless configured.
pub(crate) const DEFAULT_DELIVERY_LIMIT: u32 = 5;

/// Which broker to use, and how.
#[derive(Clone, PartialEq)]
pub enum BrokerConfig {
    /// The in-process broker (one process only: `nodal demo`).
    Memory {
        /// The queue names.
        queues: QueueNames,
        /// Returns after which a message is dead-lettered.
        delivery_limit: u32,
    },
    /// RabbitMQ.
    Rabbit(RabbitConfig),
}

impl BrokerConfig {
    /// Parse a broker URL: `memory://`, `amqp://user:password@host:port/vhost`
    /// or `amqps://…` (other settings at their defaults). Errors never
    /// repeat the URL, which may hold a password.
    pub fn from_url(url: &str) -> Result<Self, BrokerError> {
        if url == "memory://" {
            return Ok(Self::Memory {
                queues: QueueNames::default(),
                delivery_limit: DEFAULT_DELIVERY_LIMIT,
            });
        }
        if url.starts_with("amqp://") || url.starts_with("amqps://") {
            return Ok(Self::Rabbit(RabbitConfig::new(url)));
        }
        let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
        Err(BrokerError::permanent(
            "connect",
            "",
            format!(
                "bad broker URL with scheme {scheme:?}: expected memory:// or amqp://user:password@host:port/vhost (or amqps://)"
            ),
        ))
    }

    /// The queue names.
    pub fn queues(&self) -> &QueueNames {
        match self {
            Self::Memory { queues, .. } => queues,
            Self::Rabbit(rabbit) => &rabbit.queues,
        }
    }

    fn set_queues(&mut self, names: QueueNames) {
        match self {
            Self::Memory { queues, .. } => *queues = names,
            Self::Rabbit(rabbit) => rabbit.queues = names,
        }
    }

    fn set_delivery_limit(&mut self, limit: u32) {
        match self {
            Self::Memory { delivery_limit, .. } => *delivery_limit = limit,
            Self::Rabbit(rabbit) => rabbit.delivery_limit = limit,
        }
    }

    /// A short description for logs (never includes the password).
    pub fn describe(&self) -> String {
        match self {
            Self::Memory { .. } => "memory://".into(),
            Self::Rabbit(rabbit) => rabbit.describe(),
        }
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory {
                queues,
                delivery_limit,
            } => f
                .debug_struct("Memory")
                .field("queues", queues)
                .field("delivery_limit", delivery_limit)
                .finish(),
            Self::Rabbit(rabbit) => rabbit.fmt(f),
        }
    }
}

/// Why `names` cannot be used, if they cannot.
fn queue_names_problem(names: &QueueNames) -> Option<String> {
    for name in [&names.jobs, &names.results, &names.dead] {
        if name.is_empty() || name.len() > 255 {
            return Some(format!("queue name {name:?} must be 1 to 255 bytes"));
        }
        if name.starts_with("amq.") {
            return Some(format!(
                "queue name {name:?} must not start with \"amq.\" (reserved)"
            ));
        }
    }
    if names.jobs == names.results || names.jobs == names.dead || names.results == names.dead {
        return Some(format!("queue names must differ: {names:?}"));
    }
    None
}

/// Connect to the broker `config` names and declare its queues (declaring is
/// idempotent, so every process may do it). A `memory://` broker is new and
/// empty on every call: share the returned handle within the process.
pub async fn connect_broker(config: &BrokerConfig) -> Result<SharedBroker, BrokerError> {
    if let Some(problem) = queue_names_problem(config.queues()) {
        return Err(BrokerError::permanent("connect", "", problem));
    }
    let broker: SharedBroker = match config {
        BrokerConfig::Memory {
            queues,
            delivery_limit,
        } => Arc::new(MemoryBroker::new(queues.clone(), *delivery_limit)),
        BrokerConfig::Rabbit(rabbit) => Arc::new(RabbitBroker::connect(rabbit).await?),
    };
    broker.declare().await?;
    Ok(broker)
}

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
    fn parses_urls_and_hides_the_password() {
        assert!(matches!(
            BrokerConfig::from_url("memory://").unwrap(),
            BrokerConfig::Memory { .. }
        ));
        let config = BrokerConfig::from_url("amqp://nodal:hunter2@rabbit:5672/%2f").unwrap();
        let shown = format!("{config:?} {}", config.describe());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("amqp://nodal@rabbit:5672/%2f"), "{shown}");
        let err = BrokerConfig::from_url("redis://u:hunter2@x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("\"redis\""), "{err}");
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

    #[tokio::test]
    async fn a_malformed_amqp_url_is_a_clear_error() {
        let config = BrokerConfig::Rabbit(RabbitConfig::new("amqp://u:s3cr3tz@host:notaport/%2f"));
        let err = connect_broker(&config).await.unwrap_err();
        assert!(!err.transient);
        assert!(err.to_string().contains("bad AMQP URL"), "{err}");
        assert!(!err.to_string().contains("s3cr3tz"), "{err}");
    }
}
