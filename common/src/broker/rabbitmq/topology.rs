//! nodal's queues on RabbitMQ: durable quorum queues for jobs and results
//! that dead-letter (through the default exchange, routing key = the dead
//! queue's name) to a durable quorum dead-letter queue, with a delivery limit
//! against poison messages.

use super::errors::from_lapin;
use crate::broker::{BrokerError, QueueNames};
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};

/// Declare the three queues on `channel`. Declaring again with the same
/// arguments is harmless; a queue that exists with other arguments (another
/// type or delivery limit) is a permanent error naming it.
pub(super) async fn declare(
    channel: &Channel,
    names: &QueueNames,
    delivery_limit: u32,
) -> Result<(), BrokerError> {
    declare_one(channel, &names.dead, quorum()).await?;
    for queue in [&names.jobs, &names.results] {
        declare_one(channel, queue, work_queue(&names.dead, delivery_limit)).await?;
    }
    Ok(())
}

async fn declare_one(channel: &Channel, queue: &str, args: FieldTable) -> Result<(), BrokerError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    match channel.queue_declare(queue.into(), options, args).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut err = from_lapin("declare", queue, &e);
            if err.message.contains("PRECONDITION_FAILED") {
                err.message.push_str(
                    " (the queue exists with other arguments: delete it or choose other queue names)",
                );
            }
            Err(err)
        }
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args
}

fn work_queue(dead: &str, delivery_limit: u32) -> FieldTable {
    let mut args = quorum();
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(delivery_limit)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from("")),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from(dead)),
    );
    args
}
