//! Cancelling a run: real `nodal coordinator` and `nodal worker` processes
//! over RabbitMQ (queues unique to each test) and an s3s-fs server, the
//! synthetic cytology study at scale 0.01 in jobs of 16 tiles.
//!
//! - cancelled mid-run from the command line (`nodal run cancel`): the run
//!   ends `cancelled`, every case is in predictions.csv or failures.csv
//!   (stage `cancelled`) exactly once, each predicted case's row equals the
//!   clean run's, and the jobs still queued are dropped by the worker unrun;
//! - cancelled, then the coordinator killed before it could write run.json,
//!   then restarted: it resumes the run as cancelled (not as running),
//!   finalizes it, and a worker started afterwards runs none of its jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{
    Cluster, FAULT_JOB_TILES, PACE_MS, PREFIX, assert_every_case_once, csv_rows, paced_worker,
};
use nodal_common::broker::RabbitBroker;
use nodal_coordinator::run::{RunState, RunStatus};
use nodal_types::layout::{cancelled_key, published_key, run_file_key, run_record_key};
use nodal_types::study::Study;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Bound on any one run: proves "no hang", nothing more.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on seeing some progress.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);

/// A cluster with the shared cytology archives submitted and a coordinator.
async fn cluster(test: &str) -> Cluster {
    nodal_testkit::nodal_binary().unwrap();
    let mut c = Cluster::start(test).await.unwrap();
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    c.start_coordinator(&[]).unwrap();
    c
}

/// The case rows of failures.csv with stage `cancelled`.
fn cancelled_cases(failures: &str) -> usize {
    csv_rows(failures)
        .iter()
        .filter(|r| r["level"] == "case" && r["stage"] == "cancelled")
        .count()
}

/// The result files of an ended run, as (predictions.csv, failures.csv),
/// after checking that every case is there exactly once.
async fn checked_results(c: &Cluster, done: &RunStatus) -> (String, String) {
    assert_eq!(done.state, RunState::Cancelled, "{done:?}\n{}", c.logs());
    assert_eq!(
        done.jobs_done + done.jobs_failed + done.jobs_cancelled,
        done.jobs_total,
        "every job done, failed or cancelled: {done:?}"
    );
    let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
    let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
    assert_every_case_once(&c.archives[&STUDY], &predictions, &failures);
    let record: serde_json::Value =
        serde_json::from_str(&c.result_file(done.run_id, "run.json").await.unwrap()).unwrap();
    assert_eq!(record["cancelled"]["by"], "operator", "{record}");
    assert_eq!(
        record["counts"]["cases_cancelled"].as_u64(),
        Some(cancelled_cases(&failures) as u64)
    );
    (predictions, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_mid_run_keeps_its_results_and_accounts_for_every_case() {
    let mut c = cluster("cancel-mid-run").await;
    let broker = RabbitBroker::connect(&c.queues.rabbit_config(5))
        .await
        .unwrap();
    let jobs_queue = c.queues.names.jobs.clone();
    c.start_worker("worker-1", &paced_worker(PACE_MS)).unwrap();
    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let id = run.run_id.to_string();
    c.wait_jobs_done(run.run_id, 3, PROGRESS_TIMEOUT)
        .await
        .unwrap();

    let refused = c
        .request(
            reqwest::Method::POST,
            &format!("/runs/{id}/cancel"),
            "analyst",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "an analyst may not cancel");
    let out = c.cli_ok("run-cancel", &["run", "cancel", &id]);
    assert!(out.contains("cancelled"), "{out}");

    let done = c.wait_ended(run.run_id, RUN_TIMEOUT).await.unwrap();
    assert!(done.jobs_cancelled > 0, "cancelled mid-run: {done:?}");
    let (predictions, failures) = checked_results(&c, &done).await;
    let predicted = csv_rows(&predictions);
    assert!(!predicted.is_empty(), "results so far kept");
    assert!(cancelled_cases(&failures) > 0, "{failures}");
    let (ok, again) = c.cli("run-cancel-again", &["run", "cancel", &id]);
    assert!(
        ok && again.contains("cancelled"),
        "cancelling again changes nothing: {again}"
    );

    // The jobs still queued are dropped unrun: the worker answers no more.
    c.wait_queue_depth(&broker, &jobs_queue, 0, PROGRESS_TIMEOUT)
        .await;
    let dropped = c
        .workers_sum("nodal_worker_jobs_total", &[("outcome", "run_cancelled")])
        .await;
    let answered = c
        .workers_sum("nodal_worker_jobs_total", &[("outcome", "answered")])
        .await;
    assert!(dropped > 0.0, "queued jobs dropped\n{}", c.logs());
    assert!(
        answered <= (done.jobs_done + 2) as f64,
        "at most the two jobs in hand answered after the cancel: {answered} vs {done:?}"
    );

    // Each case predicted before the cancel is predicted as in a clean run.
    c.workers.clear();
    c.start_worker("worker-2", &[]).unwrap();
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    let clean: BTreeMap<String, BTreeMap<String, String>> = csv_rows(&clean)
        .into_iter()
        .map(|r| (r["case_id"].clone(), r))
        .collect();
    for row in &predicted {
        let want = &clean[&row["case_id"]];
        let differ: Vec<String> = row
            .iter()
            .filter(|(k, v)| want.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v} (clean: {:?})", want.get(k)))
            .collect();
        assert!(
            differ.is_empty(),
            "{}: predicted as in a clean run, but {differ:?}",
            row["case_id"]
        );
    }
    eprintln!(
        "cancel mid-run: {} of {} jobs cancelled, {} cases predicted, {} cancelled, {dropped} jobs dropped",
        done.jobs_cancelled,
        done.jobs_total,
        predicted.len(),
        cancelled_cases(&failures)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stays_cancelled_across_a_coordinator_restart() {
    let mut c = cluster("cancel-restart").await;
    let broker = RabbitBroker::connect(&c.queues.rabbit_config(5))
        .await
        .unwrap();
    let jobs_queue = c.queues.names.jobs.clone();
    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    while c
        .store
        .head(&published_key(run.run_id))
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "jobs published\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // run.json cannot be written (a folder holds its place), so the
    // coordinator stops between the cancel and the end of the run.
    let record =
        c.s3.data_dir()
            .join(c.s3.bucket())
            .join(PREFIX)
            .join(run_record_key(run.run_id));
    std::fs::create_dir_all(record.join("blocker")).unwrap();

    let cancelled = c
        .request(
            reqwest::Method::POST,
            &format!("/runs/{}/cancel", run.run_id),
            "operator",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancelled.status(),
        200,
        "{}",
        cancelled.text().await.unwrap()
    );
    assert!(
        c.store
            .head(&cancelled_key(run.run_id))
            .await
            .unwrap()
            .is_some()
    );
    let written = run_file_key(run.run_id, "failures.csv");
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    while c.store.head(&written).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "finalisation began\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.coordinator.as_mut().unwrap().kill().unwrap();
    std::fs::remove_dir_all(&record).unwrap();
    assert!(
        c.store
            .head(&run_record_key(run.run_id))
            .await
            .unwrap()
            .is_none(),
        "killed before run.json"
    );

    c.start_coordinator(&[]).unwrap();
    c.coordinator
        .as_mut()
        .unwrap()
        .wait_for_line("resuming run", Duration::from_secs(30))
        .unwrap();
    let done = c.wait_ended(run.run_id, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.jobs_cancelled, done.jobs_total, "{done:?}");
    let (predictions, failures) = checked_results(&c, &done).await;
    assert!(
        csv_rows(&predictions).is_empty(),
        "no worker ran: nothing predicted"
    );
    assert!(cancelled_cases(&failures) > 0);

    // Its jobs, still queued, are dropped by a worker started now.
    c.start_worker("worker-1", &[]).unwrap();
    c.wait_queue_depth(&broker, &jobs_queue, 0, PROGRESS_TIMEOUT)
        .await;
    assert_eq!(
        c.workers_sum("nodal_worker_jobs_total", &[("outcome", "run_cancelled")])
            .await,
        done.jobs_total as f64,
        "every queued job dropped unrun"
    );
    assert_eq!(
        c.workers_sum("nodal_worker_jobs_total", &[("outcome", "answered")])
            .await,
        0.0
    );
}
