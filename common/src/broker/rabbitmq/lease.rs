//! The coordinator lease on RabbitMQ: an exclusive, auto-deleted queue
//! declared on a connection of its own. RabbitMQ lets one connection at a
//! time declare an exclusive queue (others get `RESOURCE_LOCKED`) and
//! deletes it when that connection ends — closed, crashed, or dead past
//! its heartbeat — so the lease passes to the next process that asks.

use super::connect::Manager;
use super::errors::from_lapin;
use crate::broker::{BrokerError, Lease};
use async_trait::async_trait;
use deadpool::managed::Manager as _;
use lapin::options::QueueDeclareOptions;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ErrorKind};

/// A held lease: the connection and channel that declared its queue.
pub(super) struct RabbitLease {
    name: String,
    channel: Channel,
    /// Kept open for as long as the lease is held; dropping it closes the
    /// connection, and RabbitMQ then deletes the queue.
    _connection: Connection,
}

impl RabbitLease {
    /// Declare the lease queue `name` exclusively on a new connection:
    /// `None` when another connection holds it.
    pub(super) async fn try_take(
        manager: &Manager,
        name: &str,
    ) -> Result<Option<Self>, BrokerError> {
        let op = "lease";
        let connection = manager
            .create()
            .await
            .map_err(|e| from_lapin(op, name, &e))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| from_lapin(op, name, &e))?;
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        match channel.queue_declare(name.into(), options, classic()).await {
            Ok(_) => Ok(Some(Self {
                name: name.to_owned(),
                channel,
                _connection: connection,
            })),
            Err(e) if is_locked(&e) => Ok(None),
            Err(e) => Err(from_lapin(op, name, &e)),
        }
    }
}

#[async_trait]
impl Lease for RabbitLease {
    async fn check(&self) -> Result<(), BrokerError> {
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        self.channel
            .queue_declare(self.name.as_str().into(), options, FieldTable::default())
            .await
            .map(drop)
            .map_err(|e| from_lapin("lease check", &self.name, &e))
    }
}

/// Exclusive queues are classic queues, whatever the broker's default type.
fn classic() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("classic".into()),
    );
    args
}

/// `RESOURCE_LOCKED`: another connection holds the exclusive queue.
fn is_locked(err: &lapin::Error) -> bool {
    matches!(err.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED)))
}
