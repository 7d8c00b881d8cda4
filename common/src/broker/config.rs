//! Choosing and connecting a broker from one URL: the configuration type
//! and `connect_broker`.

use super::{BrokerError, MemoryBroker, QueueNames, RabbitBroker, RabbitConfig, SharedBroker};
use std::fmt;
use std::sync::Arc;

/// Returns after which a message is dead-lettered, unless configured.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 5;

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

    /// Use these queue names.
    pub fn set_queues(&mut self, names: QueueNames) {
        match self {
            Self::Memory { queues, .. } => *queues = names,
            Self::Rabbit(rabbit) => rabbit.queues = names,
        }
    }

    /// Dead-letter a message after this many returns.
    pub fn set_delivery_limit(&mut self, limit: u32) {
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
pub fn queue_names_problem(names: &QueueNames) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn a_malformed_amqp_url_is_a_clear_error() {
        let config = BrokerConfig::Rabbit(RabbitConfig::new("amqp://u:s3cr3tz@host:notaport/%2f"));
        let err = connect_broker(&config).await.unwrap_err();
        assert!(!err.transient);
        assert!(err.to_string().contains("bad AMQP URL"), "{err}");
        assert!(!err.to_string().contains("s3cr3tz"), "{err}");
    }
}
