//! The embedded default broker: in-process queues with the semantics nodal
//! relies on from RabbitMQ — prefetch-bounded consumers, manual acks,
//! requeue (redelivered), reject to the dead-letter queue, a delivery limit
//! against poison messages, and unsettled deliveries coming back when their
//! consumer or acker goes away.
//!
//! It lives in one process's memory: it only makes sense when the
//! coordinator and the workers share that process (`nodal demo`), and they
//! must share one `MemoryBroker` value. Nothing survives a restart.

use super::{Acker, Broker, BrokerError, Delivery, Lease, QueueNames, Subscription};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// An in-process [`Broker`].
pub struct MemoryBroker {
    names: QueueNames,
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("queues", &self.names)
            .finish_non_exhaustive()
    }
}

struct Shared {
    dead: String,
    delivery_limit: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
    /// Leases held, by name.
    leases: HashSet<String>,
    consumers: HashMap<u64, Consumer>,
    next_id: u64,
}

struct Queue {
    ready: VecDeque<Message>,
    /// Woken on every change that may let a waiting consumer take a message.
    changed: Arc<Notify>,
}

struct Consumer {
    queue: String,
    /// Deliveries in hand, by tag (tags grow, so this is delivery order).
    unsettled: BTreeMap<u64, Message>,
}

struct Message {
    body: Bytes,
    /// Times it came back unsettled (requeued or its consumer went away).
    returns: u32,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queues consistent (every
        // change is a single push or pop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Put a message that came back unsettled at the front of its queue, or
    /// in the dead-letter queue once it has come back too often.
    fn give_back(&self, state: &mut State, queue: &str, mut message: Message) {
        message.returns += 1;
        if message.returns > self.delivery_limit {
            message.returns = 0;
            push(state, &self.dead, message, false);
        } else {
            push(state, queue, message, true);
        }
    }
}

fn push(state: &mut State, queue: &str, message: Message, front: bool) {
    if let Some(q) = state.queues.get_mut(queue) {
        if front {
            q.ready.push_front(message);
        } else {
            q.ready.push_back(message);
        }
        q.changed.notify_waiters();
    }
}

fn not_declared(op: &'static str, queue: &str) -> BrokerError {
    BrokerError::permanent(op, queue, "no such queue (declare it first)")
}

impl MemoryBroker {
    /// A broker with the queues `names` (created by [`Broker::declare`]);
    /// a message that comes back unsettled more than `delivery_limit` times
    /// goes to the dead-letter queue.
    pub fn new(names: QueueNames, delivery_limit: u32) -> Self {
        let shared = Shared {
            dead: names.dead.clone(),
            delivery_limit,
            state: Mutex::new(State::default()),
        };
        Self {
            names,
            shared: Arc::new(shared),
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn declare(&self) -> Result<(), BrokerError> {
        let mut state = self.shared.lock();
        for name in [&self.names.jobs, &self.names.results, &self.names.dead] {
            state.queues.entry(name.clone()).or_insert_with(|| Queue {
                ready: VecDeque::new(),
                changed: Arc::new(Notify::new()),
            });
        }
        Ok(())
    }

    async fn publish(&self, queue: &str, body: Bytes) -> Result<(), BrokerError> {
        let mut state = self.shared.lock();
        if !state.queues.contains_key(queue) {
            return Err(not_declared("publish", queue));
        }
        push(&mut state, queue, Message { body, returns: 0 }, false);
        Ok(())
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        let mut state = self.shared.lock();
        let Some(q) = state.queues.get(queue) else {
            return Err(not_declared("subscribe", queue));
        };
        let changed = q.changed.clone();
        state.next_id += 1;
        let id = state.next_id;
        state.consumers.insert(
            id,
            Consumer {
                queue: queue.to_owned(),
                unsettled: BTreeMap::new(),
            },
        );
        Ok(Box::new(MemorySubscription {
            shared: self.shared.clone(),
            id,
            prefetch: if prefetch == 0 {
                usize::MAX
            } else {
                usize::from(prefetch)
            },
            changed,
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, BrokerError> {
        let state = self.shared.lock();
        match state.queues.get(queue) {
            Some(q) => Ok(q.ready.len() as u64),
            None => Err(not_declared("depth", queue)),
        }
    }

    async fn try_lease(&self) -> Result<Option<Box<dyn Lease>>, BrokerError> {
        let name = self.names.lease();
        if !self.shared.lock().leases.insert(name.clone()) {
            return Ok(None);
        }
        Ok(Some(Box::new(MemoryLease {
            shared: self.shared.clone(),
            name,
        })))
    }

    fn queues(&self) -> &QueueNames {
        &self.names
    }

    fn describe(&self) -> String {
        "memory://".into()
    }
}

/// A lease on an in-process broker: held until dropped.
struct MemoryLease {
    shared: Arc<Shared>,
    name: String,
}

#[async_trait]
impl Lease for MemoryLease {
    async fn check(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        self.shared.lock().leases.remove(&self.name);
    }
}

/// One consumer of an in-process queue. `prefetch` 0 means no bound.
struct MemorySubscription {
    shared: Arc<Shared>,
    id: u64,
    prefetch: usize,
    changed: Arc<Notify>,
}

impl MemorySubscription {
    /// Take the next message when the prefetch bound allows it.
    fn try_take(&self) -> Option<Delivery> {
        let mut state = self.shared.lock();
        let State {
            queues,
            consumers,
            next_id,
            ..
        } = &mut *state;
        let consumer = consumers.get_mut(&self.id)?;
        if consumer.unsettled.len() >= self.prefetch {
            return None;
        }
        let message = queues.get_mut(&consumer.queue)?.ready.pop_front()?;
        *next_id += 1;
        let tag = *next_id;
        let delivery = Delivery {
            body: message.body.clone(),
            redelivered: message.returns > 0,
            acker: Box::new(MemoryAcker {
                shared: self.shared.clone(),
                consumer: self.id,
                tag,
                settled: false,
            }),
        };
        consumer.unsettled.insert(tag, message);
        Some(delivery)
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(delivery) = self.try_take() {
                return Some(delivery);
            }
            changed.await;
        }
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(consumer) = state.consumers.remove(&self.id) {
            // Back to the front in their original order: last one first.
            for (_, message) in consumer.unsettled.into_iter().rev() {
                self.shared.give_back(&mut state, &consumer.queue, message);
            }
        }
    }
}

/// What to do with a settled message.
#[derive(Clone, Copy)]
enum Settle {
    Ack,
    Requeue,
    Reject,
}

struct MemoryAcker {
    shared: Arc<Shared>,
    consumer: u64,
    tag: u64,
    settled: bool,
}

impl MemoryAcker {
    fn settle(mut self, how: Settle) -> Result<(), BrokerError> {
        self.settled = true;
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let held = state
            .consumers
            .get_mut(&self.consumer)
            .and_then(|c| c.unsettled.remove(&self.tag).map(|m| (c.queue.clone(), m)));
        let Some((queue, message)) = held else {
            return Err(BrokerError::permanent(
                "settle",
                "",
                "the delivery's subscription was closed; the message went back to its queue",
            ));
        };
        match how {
            Settle::Ack => {}
            Settle::Requeue => shared.give_back(&mut state, &queue, message),
            Settle::Reject => push(&mut state, &shared.dead, message, false),
        }
        // A prefetch slot is free: wake the consumers of this queue.
        if let Some(q) = state.queues.get(&queue) {
            q.changed.notify_waiters();
        }
        Ok(())
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        (*self).settle(Settle::Ack)
    }

    async fn requeue(self: Box<Self>) -> Result<(), BrokerError> {
        (*self).settle(Settle::Requeue)
    }

    async fn reject(self: Box<Self>) -> Result<(), BrokerError> {
        (*self).settle(Settle::Reject)
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut state = self.shared.lock();
        let held = state
            .consumers
            .get_mut(&self.consumer)
            .and_then(|c| c.unsettled.remove(&self.tag).map(|m| (c.queue.clone(), m)));
        if let Some((queue, message)) = held {
            self.shared.give_back(&mut state, &queue, message);
        }
    }
}
