//! Shutdown: the worker stops taking jobs, lets those in hand finish within
//! the grace period, returns the rest to the queue, and returns in time;
//! every job ends answered exactly once or back in the queue.
//! Needs `scripts/setup.sh ort` (or ORT_DYLIB_PATH).

mod pipeline_support;

use nodal_types::wire::Job;
use pipeline_support::models::TestModel;
use pipeline_support::{CaseSpec, Fixture, config, job};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

const JOBS: u32 = 24;
const TILES: usize = 24;

async fn publish_jobs(fx: &Fixture) -> Vec<Job> {
    let model = TestModel::shipped("cytology-origin");
    let reference = fx.put_model(&model).await;
    let cases = fx
        .put_archive("cy-a.0001", &[CaseSpec::good("CY-1", TILES, 224, 1)])
        .await;
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let j = job(&reference, "cy-a.0001", cases.clone(), i);
        fx.publish(&j).await;
        jobs.push(j);
    }
    jobs
}

/// Job ids of every result in the results queue.
async fn drain_results(fx: &Fixture) -> Vec<Uuid> {
    let n = fx.depth("nodal.results").await as usize;
    fx.results(n).await.iter().map(|r| r.job_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_grace_period_unfinished_jobs_go_back_and_none_is_answered_twice() {
    let fx = Fixture::new().await;
    let jobs = publish_jobs(&fx).await;
    let mut settings = config(20);
    settings.grace_period = Duration::ZERO;
    settings.batch_size = Some(4);
    let worker = fx.start(settings.clone());
    let mut answered: Vec<Uuid> = fx.results(1).await.iter().map(|r| r.job_id).collect();

    let asked = Instant::now();
    let summary = worker.stop().await;
    let took = asked.elapsed();
    assert!(
        took < settings.grace_period + Duration::from_secs(3),
        "returned {took:?} after shutdown was asked"
    );
    assert!(
        summary.jobs_requeued >= 1,
        "jobs in hand past the grace period go back: {summary:?}"
    );
    answered.extend(drain_results(&fx).await);
    assert_eq!(answered.len() as u64, summary.jobs_answered);
    let waiting = fx.depth("nodal.jobs").await;
    assert_eq!(
        answered.len() as u64 + waiting,
        u64::from(JOBS),
        "every job is answered or back in the queue"
    );
    assert_eq!(
        fx.counter("nodal_worker_jobs_total", "requeued"),
        summary.jobs_requeued
    );

    // A second worker finishes the rest; no job is answered twice.
    let worker = fx.start(config(20));
    answered.extend(fx.results(waiting as usize).await.iter().map(|r| r.job_id));
    worker.stop().await;
    let distinct: BTreeSet<Uuid> = answered.iter().copied().collect();
    assert_eq!(answered.len(), distinct.len(), "a job was answered twice");
    assert_eq!(
        distinct,
        jobs.iter().map(|j| j.job_id).collect::<BTreeSet<_>>()
    );
    assert_eq!(fx.depth("nodal.results").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_grace_period_jobs_in_hand_are_finished() {
    let fx = Fixture::new().await;
    publish_jobs(&fx).await;
    let mut settings = config(20);
    settings.prefetch = 3;
    let worker = fx.start(settings);
    let mut answered: Vec<Uuid> = fx.results(1).await.iter().map(|r| r.job_id).collect();
    let summary = worker.stop().await;
    assert_eq!(summary.jobs_requeued, 0, "{summary:?}");
    answered.extend(drain_results(&fx).await);
    assert!(
        answered.len() >= 2,
        "jobs in hand at shutdown were answered: {summary:?}"
    );
    assert_eq!(
        answered.len() as u64 + fx.depth("nodal.jobs").await,
        u64::from(JOBS)
    );
    assert_eq!(fx.metrics.in_flight_jobs.get(), 0);
}
