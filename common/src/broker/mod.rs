//! The message broker behind one small trait: RabbitMQ in distributed mode,
//! an in-process queue in the embedded default.
//!
//! Semantics both implementations keep: publishes are confirmed before
//! `publish` returns; deliveries are acked manually; a nacked delivery with
//! `requeue` comes back (with `redelivered` set); a rejected delivery goes to
//! the dead-letter queue; a delivery that is neither acked nor nacked when its
//! consumer goes away comes back.

use async_trait::async_trait;
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

mod config;
mod memory;
mod rabbitmq;

pub use config::{BrokerConfig, DEFAULT_DELIVERY_LIMIT, connect_broker, queue_names_problem};
pub use memory::MemoryBroker;
pub use rabbitmq::{RabbitBroker, RabbitConfig};

/// Names of the queues nodal uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    /// Jobs for workers.
    pub jobs: String,
    /// Results for the coordinator.
    pub results: String,
    /// Dead letters: messages that could not be handled.
    pub dead: String,
}

impl Default for QueueNames {
    fn default() -> Self {
        Self {
            jobs: "nodal.jobs".into(),
            results: "nodal.results".into(),
            dead: "nodal.dead".into(),
        }
    }
}

/// A broker failure.
#[derive(Debug, thiserror::Error)]
#[error("broker {op} on {queue:?}: {message}")]
pub struct BrokerError {
    /// The operation that failed.
    pub op: &'static str,
    /// The queue concerned.
    pub queue: String,
    /// What went wrong.
    pub message: String,
    /// True when retrying (after a reconnect) may help.
    pub transient: bool,
}

impl BrokerError {
    /// A failure that retrying (after a reconnect) may cure.
    pub fn transient(op: &'static str, queue: &str, message: impl Into<String>) -> Self {
        Self {
            op,
            queue: queue.to_owned(),
            message: message.into(),
            transient: true,
        }
    }

    /// A failure that retrying will not cure.
    pub fn permanent(op: &'static str, queue: &str, message: impl Into<String>) -> Self {
        Self {
            op,
            queue: queue.to_owned(),
            message: message.into(),
            transient: false,
        }
    }
}

/// Settles one delivery. Exactly one of the methods is called, once;
/// dropping it unsettled puts the message back as `requeue` would. Once the
/// subscription that delivered it is gone (dropped, or its connection lost),
/// settling fails: the message has gone back to the queue already.
#[async_trait]
pub trait Acker: Send + Sync {
    /// The message was handled: remove it.
    async fn ack(self: Box<Self>) -> Result<(), BrokerError>;
    /// The message was not handled: put it back for another consumer.
    async fn requeue(self: Box<Self>) -> Result<(), BrokerError>;
    /// The message can never be handled: send it to the dead-letter queue.
    async fn reject(self: Box<Self>) -> Result<(), BrokerError>;
}

/// One delivered message.
pub struct Delivery {
    /// The message body.
    pub body: Bytes,
    /// True when the message was delivered before and not acked.
    pub redelivered: bool,
    /// How this delivery is settled.
    pub acker: Box<dyn Acker>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("bytes", &self.body.len())
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// A stream of deliveries from one queue. Dropping it cancels the consumer;
/// unsettled deliveries then come back to the queue.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` once the subscription is closed for good.
    /// Reconnects after a dropped connection are handled inside.
    async fn next(&mut self) -> Option<Delivery>;
}

/// The coordinator lease on one set of queues: at most one process holds
/// it at a time, and the broker frees it when its holder's connection ends
/// (a crash, a lost link past the heartbeat). Dropping it gives it up.
#[async_trait]
pub trait Lease: Send + Sync {
    /// `Ok` while the lease is held; once an error comes back it is lost
    /// for good and another process may hold it.
    async fn check(&self) -> Result<(), BrokerError>;
}

/// A message broker.
#[async_trait]
pub trait Broker: Send + Sync + fmt::Debug {
    /// Make sure the queues (and dead-letter routing) exist.
    async fn declare(&self) -> Result<(), BrokerError>;
    /// Publish a persistent message and wait for the broker's confirm.
    async fn publish(&self, queue: &str, body: Bytes) -> Result<(), BrokerError>;
    /// Consume a queue with at most `prefetch` unacked deliveries in hand
    /// (0: no bound).
    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BrokerError>;
    /// Messages waiting in a queue (ready, not counting unacked).
    async fn depth(&self, queue: &str) -> Result<u64, BrokerError>;
    /// Take the coordinator lease on these queues if no other process holds
    /// it; `None` while one does.
    async fn try_lease(&self) -> Result<Option<Box<dyn Lease>>, BrokerError>;
    /// The queue names in use.
    fn queues(&self) -> &QueueNames;
    /// A short description for errors and logs (never includes secrets).
    fn describe(&self) -> String;
}

impl QueueNames {
    /// The name of the coordinator lease on these queues.
    pub fn lease(&self) -> String {
        format!("{}.lease", self.results)
    }
}

/// A shared handle to any broker.
pub type SharedBroker = Arc<dyn Broker>;
