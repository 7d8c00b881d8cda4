//! The distributed broker: RabbitMQ through lapin and a deadpool connection
//! pool. Persistent, mandatory publishes confirmed by the broker; manual acks;
//! consumers that reconnect by themselves (see [`subscription`]).

mod connect;
mod errors;
mod lease;
mod subscription;
mod topology;

use super::{Broker, BrokerError, Lease, QueueNames, Subscription};
use crate::retry::{RetryPolicy, retry};
use async_trait::async_trait;
use bytes::Bytes;
use connect::{Manager, Pool};
use deadpool::Runtime;
use deadpool::managed::{PoolConfig, Timeouts};
use errors::{from_lapin, from_pool};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How to reach RabbitMQ and what to declare there. Its `Debug` hides the
/// password.
#[derive(Clone, PartialEq)]
pub struct RabbitConfig {
    /// `amqp://user:password@host:port/vhost` or `amqps://…`.
    pub url: String,
    /// The queue names.
    pub queues: QueueNames,
    /// A message that comes back unsettled more than this many times goes to
    /// the dead-letter queue (the queues' `x-delivery-limit`).
    pub delivery_limit: u32,
    /// Connection name shown in RabbitMQ's management UI and `rabbitmqctl`.
    pub connection_name: String,
    /// Backoff between reconnects, and attempts for a publish or a new
    /// subscription (consumers reconnect for as long as it takes).
    pub retry: RetryPolicy,
    /// A PEM file of CA certificates to trust for `amqps://`, in addition
    /// to the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl RabbitConfig {
    /// Defaults for `url`: nodal's queue names, delivery limit 5, connection
    /// name `nodal`, 10 attempts with backoff up to 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            queues: QueueNames::default(),
            delivery_limit: super::config::DEFAULT_DELIVERY_LIMIT,
            connection_name: "nodal".into(),
            retry: RetryPolicy {
                max_attempts: 10,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
            },
            ca_file: None,
        }
    }

    /// The URL without its password, e.g. `amqp://guest@127.0.0.1:5672/%2f`.
    pub fn describe(&self) -> String {
        match AMQPUri::from_str(&self.url) {
            Ok(uri) => describe_uri(&uri),
            Err(_) => "amqp://(invalid URL)".into(),
        }
    }
}

impl fmt::Debug for RabbitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitConfig")
            .field("url", &self.describe())
            .field("queues", &self.queues)
            .field("delivery_limit", &self.delivery_limit)
            .field("connection_name", &self.connection_name)
            .field("retry", &self.retry)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn describe_uri(uri: &AMQPUri) -> String {
    let scheme = if uri.scheme == lapin::uri::AMQPScheme::AMQPS {
        "amqps"
    } else {
        "amqp"
    };
    let vhost = uri.vhost.replace('%', "%25").replace('/', "%2f");
    format!(
        "{scheme}://{}@{}:{}/{vhost}",
        uri.authority.userinfo.username, uri.authority.host, uri.authority.port
    )
}

/// What the broker and its subscriptions share: the connection pool.
struct Link {
    pool: Pool,
    name: String,
    retry: RetryPolicy,
}

impl Link {
    /// A new channel on a live connection (the pool replaces dead ones).
    async fn channel(&self, op: &'static str, queue: &str) -> Result<Channel, BrokerError> {
        let connection = self.pool.get().await.map_err(|e| from_pool(op, queue, e))?;
        connection
            .create_channel()
            .await
            .map_err(|e| from_lapin(op, queue, &e))
    }
}

/// A [`Broker`] on RabbitMQ.
pub struct RabbitBroker {
    link: Arc<Link>,
    names: QueueNames,
    delivery_limit: u32,
    /// The confirm-mode channel publishes share while it lives.
    publisher: Mutex<Option<Channel>>,
}

impl fmt::Debug for RabbitBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitBroker")
            .field("url", &self.link.name)
            .field("queues", &self.names)
            .finish_non_exhaustive()
    }
}

impl RabbitBroker {
    /// Connect to `config.url` (retrying while the broker is unreachable, up
    /// to `config.retry.max_attempts`). A malformed URL or refused login is a
    /// permanent error; the password never appears in errors or logs.
    pub async fn connect(config: &RabbitConfig) -> Result<Self, BrokerError> {
        let uri = AMQPUri::from_str(&config.url).map_err(|e| {
            BrokerError::permanent(
                "connect",
                "",
                format!("bad AMQP URL (expected amqp://user:password@host:port/vhost): {e}"),
            )
        })?;
        let name = describe_uri(&uri);
        let ca_pem = match &config.ca_file {
            Some(path) => {
                let ca = crate::tls::CaCertificates::load(path)
                    .map_err(|e| BrokerError::permanent("connect", "", e.to_string()))?;
                if uri.scheme != lapin::uri::AMQPScheme::AMQPS {
                    return Err(BrokerError::permanent(
                        "connect",
                        "",
                        format!(
                            "{name}: a CA file ({}) is only used with amqps:// URLs",
                            path.display()
                        ),
                    ));
                }
                Some(String::from_utf8_lossy(ca.pem()).into_owned())
            }
            None => None,
        };
        let manager = Manager {
            url: config.url.clone(),
            connection_name: config.connection_name.clone(),
            ca_pem,
        };
        let pool = Pool::builder(manager)
            .config(PoolConfig {
                max_size: 2,
                timeouts: Timeouts {
                    wait: Some(Duration::from_secs(30)),
                    create: Some(Duration::from_secs(10)),
                    recycle: Some(Duration::from_secs(5)),
                },
                ..PoolConfig::default()
            })
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| BrokerError::permanent("connect", "", format!("{name}: {e}")))?;
        let link = Arc::new(Link {
            pool,
            name,
            retry: config.retry,
        });
        let probe = || async {
            link.pool
                .get()
                .await
                .map(drop)
                .map_err(|e| from_pool("connect", "", e))
        };
        retry(config.retry, |e: &BrokerError| e.transient, probe)
            .await
            .map_err(|mut e| {
                e.message = format!("{}: {}", link.name, e.message);
                e
            })?;
        Ok(Self {
            link,
            names: config.queues.clone(),
            delivery_limit: config.delivery_limit,
            publisher: Mutex::new(None),
        })
    }

    /// The publishing channel, opened (in confirm mode) when there is none or
    /// the last one died.
    async fn publisher(&self, queue: &str) -> Result<Channel, BrokerError> {
        let mut slot = self.publisher.lock().await;
        if let Some(channel) = slot.as_ref()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let channel = self.link.channel("publish", queue).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| from_lapin("publish", queue, &e))?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    async fn publish_once(&self, queue: &str, body: &[u8]) -> Result<(), BrokerError> {
        let channel = self.publisher(queue).await?;
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let persistent = BasicProperties::default().with_delivery_mode(2);
        let confirm = channel
            .basic_publish("".into(), queue.into(), options, body, persistent)
            .await
            .map_err(|e| from_lapin("publish", queue, &e))?
            .await
            .map_err(|e| from_lapin("publish", queue, &e))?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(BrokerError::permanent(
                "publish",
                queue,
                "unroutable: no such queue (declare it first)",
            )),
            Confirmation::Nack(_) => Err(BrokerError::transient(
                "publish",
                queue,
                "the broker refused the message (nack)",
            )),
            Confirmation::NotRequested => Err(BrokerError::permanent(
                "publish",
                queue,
                "the channel is not in confirm mode",
            )),
        }
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    async fn declare(&self) -> Result<(), BrokerError> {
        let declare_all = || async {
            let channel = self.link.channel("declare", "").await?;
            topology::declare(&channel, &self.names, self.delivery_limit).await
        };
        retry(self.link.retry, |e: &BrokerError| e.transient, declare_all).await
    }

    async fn publish(&self, queue: &str, body: Bytes) -> Result<(), BrokerError> {
        retry(
            self.link.retry,
            |e: &BrokerError| e.transient,
            || self.publish_once(queue, &body),
        )
        .await
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        let subscription =
            subscription::RabbitSubscription::open(self.link.clone(), queue, prefetch).await?;
        Ok(Box::new(subscription))
    }

    async fn depth(&self, queue: &str) -> Result<u64, BrokerError> {
        let passive = || async {
            let channel = self.link.channel("depth", queue).await?;
            let options = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let declared = channel
                .queue_declare(queue.into(), options, FieldTable::default())
                .await
                .map_err(|e| from_lapin("depth", queue, &e))?;
            Ok(u64::from(declared.message_count()))
        };
        retry(self.link.retry, |e: &BrokerError| e.transient, passive).await
    }

    async fn try_lease(&self) -> Result<Option<Box<dyn Lease>>, BrokerError> {
        let lease =
            lease::RabbitLease::try_take(self.link.pool.manager(), &self.names.lease()).await?;
        Ok(lease.map(|l| Box::new(l) as Box<dyn Lease>))
    }

    fn queues(&self) -> &QueueNames {
        &self.names
    }

    fn describe(&self) -> String {
        self.link.name.clone()
    }
}
