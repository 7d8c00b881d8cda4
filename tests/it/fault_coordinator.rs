//! More than one coordinator, and a coordinator restarted: real `nodal
//! coordinator` and `nodal worker` processes over RabbitMQ (queues unique
//! to each test) and an s3s-fs server, the synthetic cytology study at
//! scale 0.01 in jobs of 16 tiles, workers paced so that a run lasts long
//! enough to break in the middle.
//!
//! - two coordinators started together on the same store and queues: one
//!   leads, the other stands by (not ready); the leader is SIGKILLed
//!   mid-run and a third is started at once, so two race to resume the run:
//!   one takes over, resumes and finalises it, once;
//! - a coordinator restarted while the job queue still holds every job of
//!   a run publishes none of them again: the workers answer exactly the
//!   planned jobs, the queue is empty after the run, and a late copy of a
//!   job of the finished run is dropped unrun.
//!
//! Each run's predictions.csv is compared byte for byte with a clean run of
//! the same archives on the same cluster, and every submitted case must
//! appear exactly once in predictions.csv or failures.csv.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{Cluster, FAULT_JOB_TILES, PACE_MS, check_identical, paced_worker};
use bytes::Bytes;
use nodal_common::broker::{Broker, RabbitBroker};
use nodal_testkit::prom;
use nodal_types::study::Study;
use nodal_types::wire::{self, Job, JobCase, JobTile, Message};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Bound on any one run: proves "no hang", nothing more.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on seeing some progress before a fault.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on a standby coordinator taking over.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// A cluster with the shared cytology archives submitted, no processes.
async fn cluster(test: &str) -> Cluster {
    nodal_testkit::nodal_binary().unwrap();
    let mut c = Cluster::start(test).await.unwrap();
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    c
}

/// A gauge or counter from `/metrics` at `base` (0 when absent).
async fn sample(c: &Cluster, base: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = c.scrape(&format!("{base}/metrics")).await.unwrap();
    prom::sample(&text, name, labels).unwrap_or(0.0)
}

/// The status `/readyz` at `base` answers.
async fn readiness(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_agree_one_leads_and_another_takes_over_a_run() {
    let started = Instant::now();
    let mut c = cluster("fault-two-coordinators").await;
    c.start_standby_coordinators(2, &[]).unwrap();
    c.find_leader(TAKEOVER_TIMEOUT).await.unwrap();
    c.start_worker("worker-1", &paced_worker(PACE_MS)).unwrap();
    c.start_worker("worker-2", &paced_worker(PACE_MS)).unwrap();
    let standby_url = c.standby[0].1.clone();
    assert_eq!(readiness(&standby_url).await, 503, "the other stands by");
    assert_eq!(
        sample(&c, &standby_url, "nodal_coordinator_leader", &[]).await,
        0.0
    );
    assert_eq!(
        sample(&c, &c.api, "nodal_coordinator_leader", &[]).await,
        1.0
    );
    let refused = reqwest::Client::new()
        .get(format!("{standby_url}/runs"))
        .bearer_auth(&c.tokens["analyst"])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        503,
        "a standby answers no API call"
    );

    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let at_kill = c
        .wait_jobs_done(run.run_id, run.jobs_total / 3, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    let first = c.coordinator.as_ref().unwrap().name.clone();
    c.coordinator.as_mut().unwrap().kill().unwrap();
    // A replacement starts at once: two coordinators race to resume.
    c.start_standby_coordinators(1, &[]).unwrap();
    let killed = Instant::now();
    c.find_leader(TAKEOVER_TIMEOUT).await.unwrap();
    let took_over = killed.elapsed();
    let leader = c.coordinator.as_mut().unwrap();
    assert_ne!(leader.name, first);
    let resumed = leader
        .wait_for_line("resuming run", Duration::from_secs(30))
        .unwrap();
    assert!(resumed.contains(&run.run_id.to_string()), "{resumed}");

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "two coordinators, leader killed").await;
    // Only the leader resumed and finalised anything.
    let leader_name = c.coordinator.as_ref().unwrap().name.clone();
    for (p, url) in &c.standby {
        assert_eq!(p.count_lines("resuming run"), 0, "{} stood by", p.name);
        assert_eq!(p.count_lines("run finished"), 0, "{} stood by", p.name);
        assert_eq!(readiness(url).await, 503, "{} stands by", p.name);
    }
    eprintln!(
        "two coordinators: {first} killed at {}/{} jobs; {leader_name} took over in {:.1} s; {:.1} s",
        at_kill.jobs_done,
        at_kill.jobs_total,
        took_over.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restarted_with_a_full_queue_publishes_nothing_twice() {
    let started = Instant::now();
    let mut c = cluster("fault-restart-full-queue").await;
    let broker = RabbitBroker::connect(&c.queues.rabbit_config(5))
        .await
        .unwrap();
    let jobs_queue = c.queues.names.jobs.clone();
    c.start_coordinator(&[]).unwrap();
    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let planned = run.jobs_total as u64;
    c.wait_queue_depth(&broker, &jobs_queue, planned, PROGRESS_TIMEOUT)
        .await;
    // Killed once the coordinator has recorded that it published them all.
    let marker = nodal_types::layout::published_key(run.run_id);
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    while c.store.head(&marker).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "{marker} written\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.coordinator.as_mut().unwrap().kill().unwrap();
    c.start_coordinator(&[]).unwrap();
    c.coordinator
        .as_mut()
        .unwrap()
        .wait_for_line("resuming run", Duration::from_secs(30))
        .unwrap();
    // A few supervision passes: nothing is published again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        broker.depth(&jobs_queue).await.unwrap(),
        planned,
        "the restarted coordinator published no job again\n{}",
        c.logs()
    );

    c.start_worker("worker-1", &paced_worker(PACE_MS)).unwrap();
    c.start_worker("worker-2", &paced_worker(PACE_MS)).unwrap();
    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    let answered = c
        .workers_sum("nodal_worker_jobs_total", &[("outcome", "answered")])
        .await;
    assert_eq!(answered, planned as f64, "answered jobs = planned jobs");
    assert_eq!(
        broker.depth(&jobs_queue).await.unwrap(),
        0,
        "no stale job left"
    );

    // A late copy of a job of the finished run is dropped, not run.
    let manifest = &c.archives[&STUDY][0];
    let case = manifest.runnable_cases().next().unwrap();
    let tile = JobTile::of(&manifest.archive_id, &case.images[0].tiles[0]);
    let model = nodal_coordinator::models::resolve_model(c.store.as_ref(), STUDY.default_model())
        .await
        .unwrap();
    let late = Job {
        run_id: run.run_id,
        job_id: Uuid::new_v4(),
        index: 0,
        model: model.reference,
        archive_id: manifest.archive_id.clone(),
        cases: vec![JobCase {
            case_id: case.case_id.clone(),
            part: 0,
            tiles: vec![tile],
            report: None,
        }],
        traceparent: None,
    };
    broker
        .publish(
            &jobs_queue,
            Bytes::from(wire::encode(&Message::Job(late)).unwrap()),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    while c
        .workers_sum("nodal_worker_jobs_total", &[("outcome", "run_finished")])
        .await
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the late job was dropped\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        c.workers_sum("nodal_worker_jobs_total", &[("outcome", "answered")])
            .await,
        answered,
        "the late job was not run"
    );
    c.wait_queue_depth(&broker, &jobs_queue, 0, PROGRESS_TIMEOUT)
        .await;

    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    check_identical(
        &c,
        STUDY,
        &done,
        &clean,
        "coordinator restarted with a full queue",
    )
    .await;
    eprintln!(
        "restart with a full queue: {planned} jobs planned, {answered} answered, queue empty after; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(broker);
}
