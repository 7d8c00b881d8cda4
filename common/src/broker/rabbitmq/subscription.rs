//! A RabbitMQ consumer that outlives its connection: when the channel or
//! connection dies it reconnects with the shared backoff and consumes again,
//! logging at warn. Deliveries from the dead channel can no longer be settled
//! (their acker returns an error); the broker redelivers them.

use super::Link;
use super::errors::from_lapin;
use crate::broker::{Acker, BrokerError, Delivery, Subscription};
use crate::retry::retry;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use std::sync::Arc;

/// A consuming channel.
struct Live {
    channel: Channel,
    consumer: Consumer,
}

/// A subscription to one RabbitMQ queue.
pub(super) struct RabbitSubscription {
    link: Arc<Link>,
    queue: String,
    prefetch: u16,
    live: Option<Live>,
}

impl RabbitSubscription {
    /// Start consuming `queue` (retrying transient failures a bounded number
    /// of times, so a missing queue or a dead broker is reported).
    pub(super) async fn open(
        link: Arc<Link>,
        queue: &str,
        prefetch: u16,
    ) -> Result<Self, BrokerError> {
        let live = retry(
            link.retry,
            |e: &BrokerError| e.transient,
            || consume(&link, queue, prefetch),
        )
        .await?;
        Ok(Self {
            link,
            queue: queue.to_owned(),
            prefetch,
            live: Some(live),
        })
    }

    /// Consume again after a lost channel, for as long as it takes; `None`
    /// when the failure is permanent (the queue was deleted, access revoked).
    async fn reconsume(&self) -> Option<Live> {
        let mut attempt = 1;
        loop {
            match consume(&self.link, &self.queue, self.prefetch).await {
                Ok(live) => {
                    tracing::warn!(queue = %self.queue, broker = %self.link.name, "consuming again after reconnecting");
                    return Some(live);
                }
                Err(e) if e.transient => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "broker unreachable; retrying");
                    tokio::time::sleep(self.link.retry.delay(attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "subscription closed for good");
                    return None;
                }
            }
        }
    }
}

async fn consume(link: &Link, queue: &str, prefetch: u16) -> Result<Live, BrokerError> {
    let channel = link.channel("subscribe", queue).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| from_lapin("subscribe", queue, &e))?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| from_lapin("subscribe", queue, &e))?;
    Ok(Live { channel, consumer })
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if self.live.is_none() {
                self.live = Some(self.reconsume().await?);
            }
            let Some(live) = self.live.as_mut() else {
                continue;
            };
            match live.consumer.next().await {
                Some(Ok(_)) if !live.channel.status().connected() => {
                    // Buffered before the channel died: it can no longer be
                    // acked, and the broker has taken it back already.
                    tracing::warn!(queue = %self.queue, "lost the consuming channel; reconnecting");
                }
                Some(Ok(delivery)) => {
                    return Some(Delivery {
                        body: Bytes::from(delivery.data),
                        redelivered: delivery.redelivered,
                        acker: Box::new(RabbitAcker {
                            inner: Some(delivery.acker),
                            queue: self.queue.clone(),
                        }),
                    });
                }
                Some(Err(e)) => {
                    let e = from_lapin("consume", &self.queue, &e);
                    tracing::warn!(error = %e, "lost the consuming channel; reconnecting");
                }
                None => {
                    tracing::warn!(queue = %self.queue, "the broker cancelled the consumer; reconnecting");
                }
            }
            self.live = None;
        }
    }
}

impl Drop for RabbitSubscription {
    /// Close the channel now, so that the broker takes back the deliveries
    /// not yet settled (cancelling the consumer alone would leave them held).
    fn drop(&mut self) {
        let Some(live) = self.live.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let Live { channel, consumer } = live;
                drop(consumer);
                // A channel that is already closed has nothing to give back.
                let _ = channel.close(200, "subscription dropped".into()).await;
            });
        }
    }
}

/// Settles one RabbitMQ delivery; requeues it when dropped unsettled.
struct RabbitAcker {
    inner: Option<lapin::Acker>,
    queue: String,
}

impl RabbitAcker {
    fn take(&mut self, op: &'static str) -> Result<lapin::Acker, BrokerError> {
        self.inner
            .take()
            .ok_or_else(|| BrokerError::permanent(op, &self.queue, "the delivery was settled"))
    }

    /// Map lapin's answer: `Ok(false)` means the channel died meanwhile.
    fn outcome(&self, op: &'static str, result: lapin::Result<bool>) -> Result<(), BrokerError> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(BrokerError::permanent(
                op,
                &self.queue,
                "the channel that delivered this message is closed; the broker will redeliver it",
            )),
            Err(e) => {
                let mut err = from_lapin(op, &self.queue, &e);
                // Retrying cannot help: the delivery belongs to a dead channel.
                err.transient = false;
                Err(err)
            }
        }
    }
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BrokerError> {
        let acker = self.take("ack")?;
        let result = acker.ack(BasicAckOptions::default()).await;
        self.outcome("ack", result)
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), BrokerError> {
        let acker = self.take("requeue")?;
        let options = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        let result = acker.nack(options).await;
        self.outcome("requeue", result)
    }

    async fn reject(mut self: Box<Self>) -> Result<(), BrokerError> {
        let acker = self.take("reject")?;
        let result = acker.reject(BasicRejectOptions { requeue: false }).await;
        self.outcome("reject", result)
    }
}

impl Drop for RabbitAcker {
    fn drop(&mut self) {
        let Some(acker) = self.inner.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let options = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                // A dead channel has returned the message already.
                let _ = acker.nack(options).await;
            });
        }
    }
}
