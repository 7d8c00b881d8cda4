//! One broker suite, run against every implementation: the in-process
//! MemoryBroker and RabbitBroker on a real RabbitMQ (queues unique to each
//! test, deleted afterwards). Then the RabbitMQ-only behaviour: surviving a
//! dropped connection, clear errors for a refused login or a queue declared
//! with other arguments.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use nodal_common::broker::{
    Broker, BrokerConfig, Delivery, MemoryBroker, QueueNames, RabbitBroker, SharedBroker,
    Subscription, connect_broker,
};
use nodal_testkit::{UniqueQueues, close_connections};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough for any delivery that is coming to arrive.
const ARRIVES: Duration = Duration::from_secs(10);
/// How long to watch for a delivery that must not come.
const QUIET: Duration = Duration::from_millis(400);
/// The delivery limit of every fixture.
const LIMIT: u32 = 2;

/// The next delivery within `wait`, or `None`.
async fn next_within(sub: &mut Box<dyn Subscription>, wait: Duration) -> Option<Delivery> {
    tokio::time::timeout(wait, sub.next()).await.ok().flatten()
}

/// The next delivery, which must come.
async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    next_within(sub, ARRIVES)
        .await
        .expect("a delivery within 10 s")
}

/// Wait until `queue` holds `want` ready messages (RabbitMQ's counts can
/// lag a moment behind acks).
async fn depth_becomes(broker: &dyn Broker, queue: &str, want: u64) {
    let started = Instant::now();
    loop {
        let depth = broker.depth(queue).await.unwrap();
        if depth == want {
            return;
        }
        assert!(
            started.elapsed() < ARRIVES,
            "depth of {queue} stays {depth}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(delivery: &Delivery) -> String {
    String::from_utf8_lossy(&delivery.body).into_owned()
}

/// The suite: each check takes a broker with declared, empty queues and a
/// delivery limit of [`LIMIT`].
mod suite {
    use super::*;

    pub async fn order_ack_and_depth(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        for i in 0..20 {
            broker
                .publish(&jobs, Bytes::from(format!("m{i:02}")))
                .await
                .unwrap();
        }
        depth_becomes(broker, &jobs, 20).await;
        let mut sub = broker.subscribe(&jobs, 5).await.unwrap();
        for i in 0..20 {
            let d = next(&mut sub).await;
            assert_eq!(text(&d), format!("m{i:02}"));
            assert!(!d.redelivered);
            d.acker.ack().await.unwrap();
        }
        assert!(
            next_within(&mut sub, QUIET).await.is_none(),
            "acked messages stay gone"
        );
        depth_becomes(broker, &jobs, 0).await;
    }

    pub async fn prefetch_bounds_deliveries_in_hand(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        for i in 0..10 {
            broker
                .publish(&jobs, Bytes::from(format!("m{i}")))
                .await
                .unwrap();
        }
        let mut sub = broker.subscribe(&jobs, 3).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(next(&mut sub).await);
        }
        assert!(
            next_within(&mut sub, QUIET).await.is_none(),
            "a 4th delivery beyond prefetch 3"
        );
        depth_becomes(broker, &jobs, 7).await;
        held.remove(0).acker.ack().await.unwrap();
        let fourth = next(&mut sub).await;
        assert_eq!(text(&fourth), "m3");
        assert!(
            next_within(&mut sub, QUIET).await.is_none(),
            "still bounded by 3"
        );
    }

    pub async fn requeue_comes_back_redelivered(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        broker
            .publish(&jobs, Bytes::from_static(b"again"))
            .await
            .unwrap();
        let mut sub = broker.subscribe(&jobs, 1).await.unwrap();
        let first = next(&mut sub).await;
        assert!(!first.redelivered);
        first.acker.requeue().await.unwrap();
        let second = next(&mut sub).await;
        assert_eq!(text(&second), "again");
        assert!(second.redelivered);
        second.acker.ack().await.unwrap();
        depth_becomes(broker, &jobs, 0).await;
        assert_eq!(broker.depth(&broker.queues().dead).await.unwrap(), 0);
    }

    pub async fn reject_dead_letters(broker: &dyn Broker) {
        let results = broker.queues().results.clone();
        let dead = broker.queues().dead.clone();
        broker
            .publish(&results, Bytes::from_static(b"undecodable"))
            .await
            .unwrap();
        broker
            .publish(&results, Bytes::from_static(b"fine"))
            .await
            .unwrap();
        let mut sub = broker.subscribe(&results, 2).await.unwrap();
        next(&mut sub).await.acker.reject().await.unwrap();
        let fine = next(&mut sub).await;
        assert_eq!(text(&fine), "fine");
        fine.acker.ack().await.unwrap();
        depth_becomes(broker, &dead, 1).await;
        let mut dead_sub = broker.subscribe(&dead, 1).await.unwrap();
        let d = next(&mut dead_sub).await;
        assert_eq!(text(&d), "undecodable");
        d.acker.ack().await.unwrap();
        assert!(next_within(&mut sub, QUIET).await.is_none());
    }

    /// A message requeued over and over is dead-lettered once it has come
    /// back more than the delivery limit: LIMIT + 1 deliveries in all.
    pub async fn delivery_limit_dead_letters_poison(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        let dead = broker.queues().dead.clone();
        broker
            .publish(&jobs, Bytes::from_static(b"poison"))
            .await
            .unwrap();
        let mut sub = broker.subscribe(&jobs, 1).await.unwrap();
        let mut deliveries = 0;
        while let Some(d) = next_within(&mut sub, Duration::from_secs(1)).await {
            assert_eq!(text(&d), "poison");
            assert_eq!(d.redelivered, deliveries > 0);
            deliveries += 1;
            d.acker.requeue().await.unwrap();
            assert!(deliveries <= 10, "never dead-lettered");
        }
        assert_eq!(deliveries, LIMIT + 1);
        depth_becomes(broker, &dead, 1).await;
        depth_becomes(broker, &jobs, 0).await;
    }

    /// Dropping a subscription gives back what it held, in order; the old
    /// deliveries can no longer be settled.
    pub async fn dropped_subscription_returns_unsettled(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        for i in 0..3 {
            broker
                .publish(&jobs, Bytes::from(format!("m{i}")))
                .await
                .unwrap();
        }
        let mut first = broker.subscribe(&jobs, 10).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(next(&mut first).await);
        }
        drop(first);
        let mut second = broker.subscribe(&jobs, 10).await.unwrap();
        for i in 0..3 {
            let d = next(&mut second).await;
            assert_eq!(text(&d), format!("m{i}"));
            assert!(d.redelivered);
            d.acker.ack().await.unwrap();
        }
        for stale in held {
            assert!(
                stale.acker.ack().await.is_err(),
                "ack through a closed subscription"
            );
        }
        assert!(
            next_within(&mut second, QUIET).await.is_none(),
            "stale acks put nothing back"
        );
        depth_becomes(broker, &jobs, 0).await;
    }

    pub async fn dropped_delivery_is_requeued(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        broker
            .publish(&jobs, Bytes::from_static(b"lost"))
            .await
            .unwrap();
        let mut sub = broker.subscribe(&jobs, 1).await.unwrap();
        drop(next(&mut sub).await);
        let again = next(&mut sub).await;
        assert_eq!(text(&again), "lost");
        assert!(again.redelivered);
        again.acker.ack().await.unwrap();
    }

    /// Two consumers of one queue share its messages: each message once.
    pub async fn subscribers_share_a_queue(broker: &dyn Broker, shared: SharedBroker) {
        let jobs = broker.queues().jobs.clone();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let mut sub = shared.subscribe(&jobs, 1).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(d) = next_within(&mut sub, Duration::from_secs(1)).await {
                    got.push(text(&d));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    d.acker.ack().await.unwrap();
                }
                got
            }));
        }
        for i in 0..30 {
            broker
                .publish(&jobs, Bytes::from(format!("m{i:02}")))
                .await
                .unwrap();
        }
        let mut all = Vec::new();
        for task in tasks {
            let got = task.await.unwrap();
            assert!(!got.is_empty(), "each consumer gets a share");
            all.extend(got);
        }
        let unique: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!(all.len(), 30, "no duplicates: {all:?}");
        assert_eq!(unique.len(), 30);
    }

    /// A burst of concurrent publishes is confirmed whole and consumed once.
    pub async fn a_thousand_confirmed_publishes(broker: &dyn Broker) {
        let jobs = broker.queues().jobs.clone();
        let started = Instant::now();
        futures::stream::iter(0..1000)
            .map(|i| broker.publish(&jobs, Bytes::from(format!("{i:04}"))))
            .buffer_unordered(64)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
        let published = started.elapsed();
        depth_becomes(broker, &jobs, 1000).await;
        let mut sub = broker.subscribe(&jobs, 100).await.unwrap();
        let mut seen = BTreeSet::new();
        while seen.len() < 1000 {
            let d = next(&mut sub).await;
            assert!(seen.insert(text(&d)), "delivered twice");
            d.acker.ack().await.unwrap();
        }
        eprintln!(
            "{}: 1000 confirmed publishes in {published:?}, consumed and acked by {:?}",
            broker.describe(),
            started.elapsed()
        );
        depth_becomes(broker, &jobs, 0).await;
    }

    pub async fn unknown_queues_are_errors(broker: &dyn Broker) {
        let err = broker
            .publish("nodal-test.no-such-queue", Bytes::from_static(b"x"))
            .await;
        let err = err.unwrap_err();
        assert!(!err.transient, "{err}");
        assert!(broker.depth("nodal-test.no-such-queue").await.is_err());
        assert!(
            broker
                .subscribe("nodal-test.no-such-queue", 1)
                .await
                .is_err()
        );
    }
}

/// A broker with fresh queues; `finish` removes them.
struct Fixture {
    broker: SharedBroker,
    queues: Option<UniqueQueues>,
}

impl Fixture {
    async fn finish(self) {
        drop(self.broker);
        if let Some(queues) = self.queues {
            queues.cleanup().await.unwrap();
        }
    }
}

async fn memory(_test: &str) -> Fixture {
    let broker = MemoryBroker::new(QueueNames::default(), LIMIT);
    broker.declare().await.unwrap();
    Fixture {
        broker: Arc::new(broker),
        queues: None,
    }
}

async fn rabbitmq(test: &str) -> Fixture {
    let queues = UniqueQueues::for_test(test);
    let config = BrokerConfig::Rabbit(queues.rabbit_config(LIMIT));
    let broker = connect_broker(&config).await.unwrap();
    Fixture {
        broker,
        queues: Some(queues),
    }
}

/// One suite check as a test of the backend whose module it expands in.
macro_rules! check {
    ($backend:ident, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let fixture = super::$backend(stringify!($name)).await;
            suite::$name(&*fixture.broker).await;
            fixture.finish().await;
        }
    };
}

macro_rules! run_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            check!($backend, order_ack_and_depth);
            check!($backend, prefetch_bounds_deliveries_in_hand);
            check!($backend, requeue_comes_back_redelivered);
            check!($backend, reject_dead_letters);
            check!($backend, delivery_limit_dead_letters_poison);
            check!($backend, dropped_subscription_returns_unsettled);
            check!($backend, dropped_delivery_is_requeued);
            check!($backend, unknown_queues_are_errors);
            check!($backend, a_thousand_confirmed_publishes);

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subscribers_share_a_queue() {
                let fixture = super::$backend("share").await;
                suite::subscribers_share_a_queue(&*fixture.broker, fixture.broker.clone()).await;
                fixture.finish().await;
            }
        }
    };
}

run_suite!(memory);
run_suite!(rabbitmq);

mod rabbitmq_only {
    use super::*;

    /// `rabbitmqctl close_connection` on the test's connections: the
    /// subscription reconnects and keeps delivering, the deliveries of the
    /// dead channel can no longer be acked (they come again), and publishing
    /// works again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_a_closed_connection() {
        let queues = UniqueQueues::for_test("reconnect");
        let broker = RabbitBroker::connect(&queues.rabbit_config(LIMIT))
            .await
            .unwrap();
        broker.declare().await.unwrap();
        let jobs = queues.names.jobs.clone();
        for i in 0..3 {
            broker
                .publish(&jobs, Bytes::from(format!("m{i}")))
                .await
                .unwrap();
        }
        let mut sub = broker.subscribe(&jobs, 5).await.unwrap();
        let stale = next(&mut sub).await;
        assert_eq!(text(&stale), "m0");

        let closed = tokio::task::spawn_blocking({
            let name = queues.connection_name.clone();
            move || close_connections(&name)
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            closed >= 1,
            "no connection named {}",
            queues.connection_name
        );

        // Every message comes again on the new channel. A delivery handed
        // out just before the close was noticed cannot be acked; it comes
        // again too.
        let mut acked = BTreeSet::new();
        while acked.len() < 3 {
            let d = next(&mut sub).await;
            let body = text(&d);
            if d.acker.ack().await.is_ok() {
                acked.insert(body);
            }
        }
        assert_eq!(acked.into_iter().collect::<Vec<_>>(), ["m0", "m1", "m2"]);
        assert!(stale.acker.ack().await.is_err(), "ack on the dead channel");
        broker
            .publish(&jobs, Bytes::from_static(b"after"))
            .await
            .unwrap();
        let after = next(&mut sub).await;
        assert_eq!(text(&after), "after");
        after.acker.ack().await.unwrap();
        depth_becomes(&broker, &jobs, 0).await;
        drop(sub);
        queues.cleanup().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_login_is_permanent_and_hides_the_password() {
        let queues = UniqueQueues::for_test("login");
        let mut config = queues.rabbit_config(LIMIT);
        config.url = "amqp://guest:wr0ng-pa55@127.0.0.1:5672/%2f".into();
        let started = Instant::now();
        let err = RabbitBroker::connect(&config).await.unwrap_err();
        assert!(!err.transient, "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "not retried");
        assert!(!err.to_string().contains("wr0ng-pa55"), "{err}");
        assert!(err.to_string().contains("guest@127.0.0.1"), "{err}");
    }

    /// A queue left by an older deployment with other arguments (here a
    /// classic queue) is a clear, permanent error naming it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn declaring_over_a_queue_with_other_arguments_is_a_clear_error() {
        let queues = UniqueQueues::for_test("mismatch");
        let connection = lapin::Connection::connect(&nodal_testkit::amqp_url(), Default::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let options = lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(
                queues.names.jobs.as_str().into(),
                options,
                Default::default(),
            )
            .await
            .unwrap();
        let config = BrokerConfig::Rabbit(queues.rabbit_config(LIMIT));
        let err = connect_broker(&config).await.unwrap_err();
        assert!(!err.transient, "{err}");
        assert_eq!(err.queue, queues.names.jobs);
        assert!(err.to_string().contains("other arguments"), "{err}");
        queues.cleanup().await.unwrap();
    }
}
