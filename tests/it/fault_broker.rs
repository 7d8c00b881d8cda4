//! Fault injection on the broker: real `nodal coordinator` and `nodal
//! worker` processes over RabbitMQ (queues and connection name unique to
//! each test) and an s3s-fs server, the synthetic cytology study at scale
//! 0.01 (100 cases, about 1,250 tiles) in jobs of 16 tiles, workers paced so
//! that a run lasts long enough to break in the middle.
//!
//! - every RabbitMQ connection of the test closed by the broker, twice in
//!   one run (`rabbitmqctl close_connection` on the test's own connection
//!   name, never on other tests'): workers reconnect; the coordinator loses
//!   its lease with its connections, stands by, takes the lease again and
//!   resumes the run from the store; the run completes;
//! - the RabbitMQ node itself SIGKILLed mid-run (a node of the test's own,
//!   on its own ports and data: the machine's broker is never touched) and
//!   restarted 5 s later on the same data: workers and coordinator
//!   reconnect, the durable queues come back with their messages, and the
//!   run completes;
//! - a worker partitioned from the broker for longer than its AMQP
//!   heartbeat (5 s here): a loopback relay between it and RabbitMQ stops
//!   every byte for 25 s without closing anything, as a blackholed route
//!   does; the broker declares the connection dead and hands the worker's
//!   jobs to the other worker, the partitioned worker reconnects once the
//!   link heals, and the run completes;
//! - poison messages (garbage bytes, an unknown envelope version, a result
//!   on the jobs queue, a job naming a missing archive, garbage on the
//!   results queue) go to the dead-letter queue, each counted under its
//!   reason in the worker's or the coordinator's metrics, while a run
//!   completes.
//!
//! Each run's predictions.csv is compared byte for byte with a clean run of
//! the same archives on the same cluster, and every submitted case must
//! appear exactly once in predictions.csv or failures.csv.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{Cluster, FAULT_JOB_TILES, PACE_MS, check_identical, paced_worker};
use bytes::Bytes;
use nodal_common::broker::{Broker, RabbitBroker};
use nodal_testkit::{Partition, RabbitNode, close_connections, prom};
use nodal_types::study::Study;
use nodal_types::wire::{
    self, Job, JobCase, JobResult, JobTile, Message, StageTimings, WIRE_VERSION,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Bound on any one run: proves "no hang", nothing more.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on seeing some progress before or after a fault.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);

/// A cluster on the machine's broker with the shared cytology archives
/// submitted, a coordinator and two paced workers.
async fn cluster(test: &str) -> Cluster {
    cluster_on(test, &nodal_testkit::amqp_url()).await
}

/// [`cluster`] on the broker at `amqp`.
async fn cluster_on(test: &str, amqp: &str) -> Cluster {
    let t = Instant::now();
    nodal_testkit::nodal_binary().unwrap();
    let mut c = Cluster::start_on(test, amqp).await.unwrap();
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-1", &paced_worker(PACE_MS)).unwrap();
    c.start_worker("worker-2", &paced_worker(PACE_MS)).unwrap();
    eprintln!("{test}: cluster up in {:.1} s", t.elapsed().as_secs_f64());
    c
}

/// Close every connection of the test's processes, as RabbitMQ does when
/// a network link drops; returns how many there were.
async fn close_all(c: &Cluster) -> usize {
    let name = c.queues.connection_name.clone();
    tokio::task::spawn_blocking(move || close_connections(&name))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_broker_connections_are_reopened_and_the_run_completes() {
    let started = Instant::now();
    let mut c = cluster("fault-broker-close").await;
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let mut closed = Vec::new();
    // The first break a quarter of the way in, the second once a few more
    // jobs are done over the reopened connections.
    let mut target = run.jobs_total / 4;
    for _ in 0..2 {
        let before = c
            .wait_jobs_done(run.run_id, target, PROGRESS_TIMEOUT)
            .await
            .unwrap();
        let closing = Instant::now();
        let n = close_all(&c).await;
        // One or more per process: the coordinator and both workers.
        assert!(
            n >= 3,
            "the coordinator's and both workers' connections were open ({n})"
        );
        closed.push((before.jobs_done, n, closing.elapsed().as_millis()));
        // The coordinator lost its lease with its connections: it stands
        // by until it takes the lease again and resumes the run.
        let after = c
            .wait_jobs_done(run.run_id, 0, PROGRESS_TIMEOUT)
            .await
            .unwrap();
        target = after.jobs_done + 4;
    }
    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "broker connections closed").await;
    for process in c.workers.values_mut().chain(c.coordinator.iter_mut()) {
        assert!(
            process.is_running(),
            "{} survived the lost connections",
            process.name
        );
    }
    eprintln!(
        "broker connections closed at (jobs done, connections, ms to close) {closed:?} of {} jobs; {:.1} s",
        run.jobs_total,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_node_killed_and_restarted_mid_run_changes_nothing() {
    let started = Instant::now();
    let mut node = RabbitNode::start().await.unwrap();
    eprintln!(
        "fault-broker-kill: RabbitMQ node up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let c = cluster_on("fault-broker-kill", &node.url()).await;
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let at_kill = c
        .wait_jobs_done(run.run_id, run.jobs_total / 3, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    node.kill().unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarting = Instant::now();
    node.restart().await.unwrap();
    let restart_s = restarting.elapsed().as_secs_f64();

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "RabbitMQ node SIGKILLed").await;
    eprintln!(
        "RabbitMQ node SIGKILLed at {}/{} jobs, down 5 s, back in {restart_s:.1} s; {:.1} s",
        at_kill.jobs_done,
        at_kill.jobs_total,
        started.elapsed().as_secs_f64()
    );
    drop(c);
}

/// The heartbeat the partitioned worker asks for, in seconds.
const HEARTBEAT_S: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_partitioned_past_its_heartbeat_changes_nothing() {
    let started = Instant::now();
    nodal_testkit::nodal_binary().unwrap();
    let amqp = nodal_testkit::amqp_url();
    let uri: lapin::uri::AMQPUri = amqp.parse().unwrap();
    let broker_addr = format!("{}:{}", uri.authority.host, uri.authority.port)
        .parse()
        .unwrap();
    let partition = Partition::start(broker_addr).await.unwrap();
    let user = &uri.authority.userinfo;
    let cut_off_url = format!(
        "amqp://{}:{}@{}/%2f?heartbeat={HEARTBEAT_S}",
        user.username,
        user.password,
        partition.addr()
    );
    let mut c = Cluster::start("fault-partition").await.unwrap();
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-1", &paced_worker(PACE_MS)).unwrap();
    let mut cut_off = paced_worker(PACE_MS);
    cut_off.extend(["--broker", cut_off_url.as_str()]);
    c.start_worker("worker-2", &cut_off).unwrap();
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let at_cut = c
        .wait_jobs_done(run.run_id, run.jobs_total / 4, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    partition.cut();
    let outage = Duration::from_secs(5 * HEARTBEAT_S);
    tokio::time::sleep(outage).await;
    partition.heal();

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "a worker partitioned").await;
    let worker = c.workers.get_mut("worker-2").unwrap();
    assert!(worker.is_running(), "the partitioned worker survived");
    assert!(
        worker.count_lines("no heartbeat received") >= 1,
        "the partition outlasted the heartbeat"
    );
    let reconnected = worker.wait_for_line("consuming again after reconnecting", PROGRESS_TIMEOUT);
    assert!(
        reconnected.is_ok(),
        "the partitioned worker reconnected once the link healed\n{}",
        c.logs()
    );
    eprintln!(
        "worker-2 partitioned {} s (heartbeat {HEARTBEAT_S} s) at {}/{} jobs, lost its connection to the missed heartbeat, reconnected after healing; {:.1} s",
        outage.as_secs(),
        at_cut.jobs_done,
        at_cut.jobs_total,
        started.elapsed().as_secs_f64()
    );
}

/// A job for an archive no one submitted, otherwise well formed.
async fn job_for_missing_archive(c: &Cluster) -> Job {
    let model = nodal_coordinator::models::resolve_model(c.store.as_ref(), STUDY.default_model())
        .await
        .unwrap();
    let archive_id = "cy-nowhere.00000000deadbeef".to_string();
    Job {
        run_id: Uuid::new_v4(),
        job_id: Uuid::new_v4(),
        index: 0,
        model: model.reference,
        archive_id: archive_id.clone(),
        cases: vec![JobCase {
            case_id: "cy-nowhere-00001".into(),
            part: 0,
            tiles: vec![JobTile {
                name: "cy-nowhere-00001/0-0-0.jpg".into(),
                shard_key: nodal_types::layout::shard_key(&archive_id, 0),
                offset: 0,
                length: 1000,
                crc32c: 0,
            }],
            report: None,
        }],
        traceparent: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_counted_while_a_run_completes() {
    let started = Instant::now();
    let mut c = cluster("fault-poison").await;
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let broker = RabbitBroker::connect(&c.queues.rabbit_config(5))
        .await
        .unwrap();
    let names = c.queues.names.clone();
    let mut unknown_version =
        wire::encode(&Message::Job(job_for_missing_archive(&c).await)).unwrap();
    unknown_version[4..6].copy_from_slice(&(WIRE_VERSION + 1).to_le_bytes());
    let stray_result = JobResult {
        run_id: run.run_id,
        job_id: Uuid::new_v4(),
        worker: "nobody".into(),
        cases: vec![],
        tile_failures: vec![],
        timings: StageTimings::default(),
    };
    let poison: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "jobs",
            "undecodable",
            b"\x00\xffnot a nodal message".to_vec(),
        ),
        ("jobs", "unknown_version", unknown_version),
        (
            "jobs",
            "wrong_kind",
            wire::encode(&Message::Result(stray_result)).unwrap(),
        ),
        (
            "jobs",
            "missing_archive",
            wire::encode(&Message::Job(job_for_missing_archive(&c).await)).unwrap(),
        ),
        ("results", "undecodable", b"NDL1 but nothing after".to_vec()),
    ];
    c.wait_jobs_done(run.run_id, run.jobs_total / 4, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    for (queue, _, body) in &poison {
        let queue = if *queue == "jobs" {
            &names.jobs
        } else {
            &names.results
        };
        broker
            .publish(queue, Bytes::from(body.clone()))
            .await
            .unwrap();
    }

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "poison messages").await;

    // Every poison message reaches the dead-letter queue, and nothing else.
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.depth(&names.dead).await.unwrap() < poison.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "{} of {} poison messages dead-lettered\n{}",
            broker.depth(&names.dead).await.unwrap(),
            poison.len(),
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut dead = Vec::new();
    let mut sub = broker.subscribe(&names.dead, 0).await.unwrap();
    while dead.len() < poison.len() {
        let delivery = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("dead letters arrive")
            .expect("the dead queue is open");
        dead.push(delivery.body.to_vec());
        delivery.acker.ack().await.unwrap();
    }
    drop(sub);
    let mut sent: Vec<Vec<u8>> = poison.iter().map(|(_, _, b)| b.clone()).collect();
    sent.sort();
    dead.sort();
    assert!(
        dead == sent,
        "the dead-letter queue holds exactly the poison"
    );
    assert_eq!(broker.depth(&names.dead).await.unwrap(), 0);

    // Counted under their reasons: the jobs' by the workers, the result's by
    // the coordinator.
    let mut worker_counts: BTreeMap<String, f64> = BTreeMap::new();
    let names_of_workers: Vec<String> = c.workers.keys().cloned().collect();
    for name in names_of_workers {
        let url = c.worker_metrics_url(&name).unwrap();
        let text = c.scrape(&url).await.unwrap();
        for reason in [
            "undecodable",
            "unknown_version",
            "wrong_kind",
            "missing_archive",
        ] {
            *worker_counts.entry(reason.into()).or_default() += prom::sample(
                &text,
                "nodal_worker_dead_lettered_total",
                &[("reason", reason)],
            )
            .unwrap_or(0.0);
        }
    }
    for (queue, reason, _) in &poison {
        if *queue == "jobs" {
            assert_eq!(
                worker_counts[*reason], 1.0,
                "workers count one {reason} dead letter: {worker_counts:?}"
            );
        }
    }
    let text = c.coordinator_metrics().await.unwrap();
    let coordinator_undecodable = prom::sample(
        &text,
        "nodal_coordinator_dead_lettered_total",
        &[("reason", "undecodable")],
    );
    assert_eq!(
        coordinator_undecodable,
        Some(1.0),
        "the coordinator counts the undecodable result"
    );
    eprintln!(
        "poison: {} messages dead-lettered; workers {worker_counts:?}, coordinator undecodable {coordinator_undecodable:?}; {:.1} s",
        poison.len(),
        started.elapsed().as_secs_f64()
    );
    drop(broker);
}
