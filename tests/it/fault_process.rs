//! Fault injection on the processes: real `nodal coordinator` and `nodal
//! worker` processes over RabbitMQ (queues unique to each test) and an
//! s3s-fs server, the synthetic cytology study at scale 0.01 (100 cases,
//! about 1,250 tiles) cut into jobs of 16 tiles, workers paced so that a run
//! lasts long enough to break in the middle.
//!
//! - a worker SIGKILLed with a batch half filled: its jobs come back and the
//!   other worker finishes them;
//! - the coordinator SIGKILLed mid-run and started again: the run resumes
//!   from the stored results;
//! - a worker SIGTERMed: it drains within its grace period (and, with no
//!   grace at all, hands its jobs back); nothing is answered twice.
//!
//! Each run's predictions.csv is compared byte for byte with a clean run of
//! the same archives on the same cluster, and every submitted case must
//! appear exactly once in predictions.csv or failures.csv.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{
    Cluster, FAULT_JOB_TILES, PACE_MS, check_identical, paced_worker, summary_field,
};
use nix::sys::signal::Signal;
use nodal_coordinator::run::RunState;
use nodal_testkit::prom;
use nodal_types::study::Study;
use std::time::{Duration, Instant};

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Bound on any one run: proves "no hang", nothing more.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on seeing some progress before a fault.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);

/// A cluster with the shared cytology archives submitted and a coordinator.
async fn cluster(test: &str) -> Cluster {
    let t = Instant::now();
    nodal_testkit::nodal_binary().unwrap();
    let mut c = Cluster::start(test).await.unwrap();
    eprintln!(
        "{test}: binary and S3 ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    eprintln!(
        "{test}: archives submitted at {:.1} s",
        t.elapsed().as_secs_f64()
    );
    c.start_coordinator(&[]).unwrap();
    eprintln!(
        "{test}: coordinator up at {:.1} s",
        t.elapsed().as_secs_f64()
    );
    c
}

/// A counter from the coordinator's /metrics (0 when absent).
async fn coordinator_counter(c: &Cluster, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = c.coordinator_metrics().await.unwrap();
    prom::sample(&text, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing() {
    let started = Instant::now();
    let mut c = cluster("fault-kill-worker").await;
    // worker-1's partial batches wait 2 s: whenever it holds a job, that
    // job's tiles sit decoded in a half-filled batch.
    let mut slow = paced_worker("2000");
    slow.extend(["--grace-period-secs", "5"]);
    c.start_worker("worker-1", &slow).unwrap();
    c.start_worker("worker-2", &paced_worker(PACE_MS)).unwrap();
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    eprintln!("clean run done at {:.1} s", started.elapsed().as_secs_f64());

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let metrics = c.worker_metrics_url("worker-1").unwrap();
    let before = c.workers["worker-1"].count_lines("job answered");
    c.workers
        .get_mut("worker-1")
        .unwrap()
        .wait_for_lines("job answered", before + 2, PROGRESS_TIMEOUT)
        .unwrap();
    // It has just answered; wait for the jobs it takes next, then kill it
    // while their batch waits for its deadline.
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    loop {
        let text = c.scrape(&metrics).await.unwrap();
        if prom::sample(&text, "nodal_worker_in_flight_jobs", &[]).unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "worker-1 took no further job");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.workers.get_mut("worker-1").unwrap().kill().unwrap();
    let at_kill = c.run_status(run.run_id).await.unwrap();
    assert_eq!(at_kill.state, RunState::Running, "killed mid-run");
    eprintln!(
        "worker-1 SIGKILLed with jobs in hand at {}/{} jobs done",
        at_kill.jobs_done, at_kill.jobs_total
    );

    eprintln!("killed at {:.1} s", started.elapsed().as_secs_f64());
    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    eprintln!(
        "faulted run done at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    check_identical(&c, STUDY, &done, &clean, "worker SIGKILL").await;
    let survivor = c.workers["worker-2"].output();
    let redone = survivor
        .lines()
        .filter(|l| l.contains("job answered") && l.contains("redelivered=true"))
        .count();
    assert!(
        redone >= 1,
        "worker-2 answered the jobs worker-1 held when it died (redelivered)\n{}",
        c.logs()
    );
    let duplicates = coordinator_counter(
        &c,
        "nodal_coordinator_results_total",
        &[("outcome", "duplicate")],
    )
    .await;
    eprintln!(
        "worker SIGKILL: {redone} redelivered jobs answered by worker-2, {duplicates} duplicate results; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_run_resumes_it() {
    let started = Instant::now();
    let mut c = cluster("fault-kill-coordinator").await;
    c.start_worker("worker-1", &paced_worker(PACE_MS)).unwrap();
    c.start_worker("worker-2", &paced_worker(PACE_MS)).unwrap();
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let third = run.jobs_total / 3;
    let at_kill = c
        .wait_jobs_done(run.run_id, third, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    c.coordinator.as_mut().unwrap().kill().unwrap();
    // The workers go on answering while no coordinator listens: those
    // results wait in the results queue.
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.start_coordinator(&[]).unwrap();
    let resumed = c
        .coordinator
        .as_mut()
        .unwrap()
        .wait_for_line("resuming run", Duration::from_secs(30))
        .unwrap();
    assert!(
        resumed.contains(&run.run_id.to_string()),
        "the restarted coordinator resumes the run: {resumed}"
    );

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "coordinator SIGKILL").await;
    eprintln!(
        "coordinator SIGKILL at {}/{} jobs done; after restart: {resumed}; {:.1} s",
        at_kill.jobs_done,
        at_kill.jobs_total,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigtermed_drains_and_nothing_is_answered_twice() {
    let started = Instant::now();
    let mut c = cluster("fault-sigterm-worker").await;
    let grace = 10;
    let mut draining = paced_worker(PACE_MS);
    draining.extend(["--grace-period-secs", "10"]);
    c.start_worker("worker-1", &draining).unwrap();
    c.start_worker("worker-2", &paced_worker(PACE_MS)).unwrap();
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    // 1. A grace period long enough: the jobs in hand finish, none goes back.
    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    c.wait_jobs_done(run.run_id, run.jobs_total / 4, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    let worker = c.workers.get_mut("worker-1").unwrap();
    worker.signal(Signal::SIGTERM).unwrap();
    let signalled = Instant::now();
    let status = worker
        .wait_exit(Duration::from_secs(grace + 20))
        .expect("the worker exits after SIGTERM");
    let took = signalled.elapsed();
    let log = worker.output();
    assert!(
        status.success(),
        "clean exit after SIGTERM: {status}\n{log}"
    );
    assert!(
        took < Duration::from_secs(grace + 5),
        "drained within the {grace} s grace period (and a margin): {took:?}"
    );
    assert_eq!(
        summary_field(&log, "jobs_requeued"),
        Some(0),
        "with time enough, the jobs in hand finish\n{log}"
    );
    let answered = summary_field(&log, "jobs_answered").unwrap();
    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, "worker SIGTERM").await;
    let duplicates = coordinator_counter(
        &c,
        "nodal_coordinator_results_total",
        &[("outcome", "duplicate")],
    )
    .await;
    assert_eq!(duplicates, 0.0, "no job answered twice\n{}", c.logs());
    eprintln!(
        "worker SIGTERM (grace {grace} s): exited in {:.2} s, answered {answered} jobs, requeued 0",
        took.as_secs_f64()
    );

    // 2. No grace at all: the jobs in hand go back to the queue, unfinished,
    // and are answered once, by the other worker. A SIGTERM may land just
    // between two jobs; then try again (a few times at most).
    let mut requeued_total = 0;
    for attempt in 1..=4 {
        let name = format!("worker-nograce-{attempt}");
        let mut abrupt = paced_worker("1000");
        abrupt.extend(["--grace-period-secs", "0"]);
        c.start_worker(&name, &abrupt).unwrap();
        let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
        c.workers
            .get_mut(&name)
            .unwrap()
            .wait_for_lines("job answered", 1, PROGRESS_TIMEOUT)
            .unwrap();
        let worker = c.workers.get_mut(&name).unwrap();
        worker.signal(Signal::SIGTERM).unwrap();
        let status = worker.wait_exit(Duration::from_secs(20)).unwrap();
        let log = worker.output();
        assert!(
            status.success(),
            "clean exit after SIGTERM: {status}\n{log}"
        );
        let requeued = summary_field(&log, "jobs_requeued").unwrap();
        let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
        check_identical(&c, STUDY, &done, &clean, "worker SIGTERM, no grace").await;
        let duplicates = coordinator_counter(
            &c,
            "nodal_coordinator_results_total",
            &[("outcome", "duplicate")],
        )
        .await;
        assert_eq!(duplicates, 0.0, "no job answered twice\n{}", c.logs());
        eprintln!("worker SIGTERM (grace 0), attempt {attempt}: {requeued} jobs handed back");
        requeued_total += requeued;
        if requeued > 0 {
            assert!(
                log.contains("grace period over"),
                "the worker says it gave the jobs back\n{log}"
            );
            break;
        }
    }
    assert!(
        requeued_total > 0,
        "with no grace period, a SIGTERM mid-run hands jobs back"
    );
    eprintln!(
        "worker SIGTERM test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
