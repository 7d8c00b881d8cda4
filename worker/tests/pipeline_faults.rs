//! Store outages: a brief one is retried and leaves no trace; one that
//! outlasts the retries hands the job back to the queue, and it is answered
//! unchanged once the store is back; one past the job's transient deadline
//! becomes recorded tile failures (never a hang); one while the model loads
//! hands the job back too.
//! Needs `scripts/setup.sh ort` (or ORT_DYLIB_PATH).

mod pipeline_support;

use nodal_types::wire::FailureStage;
use nodal_worker::WorkerConfig;
use pipeline_support::flaky::FlakyStore;
use pipeline_support::models::TestModel;
use pipeline_support::{CaseSpec, Fixture, config, job};
use std::sync::Arc;
use std::time::Duration;

/// The shard of the second case of a test archive ([`Fixture::put_archive`]).
const CY_2_SHARD: &str = "/shards/000001.bin";

async fn flaky_fixture() -> (Fixture, Arc<FlakyStore>) {
    let mut fx = Fixture::new().await;
    let flaky = Arc::new(FlakyStore::new(fx.store.clone()));
    fx.worker_store = flaky.clone();
    (fx, flaky)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_outage_is_retried_and_leaves_no_trace() {
    let (fx, flaky) = flaky_fixture().await;
    let reference = fx.put_model(&TestModel::shipped("cytology-origin")).await;
    let cases = fx
        .put_archive("cy-a.0001", &[CaseSpec::good("CY-1", 3, 224, 1)])
        .await;
    flaky.break_reads("/shards/", 1);
    fx.publish(&job(&reference, "cy-a.0001", cases, 0)).await;
    let worker = fx.start(config(20));
    let result = fx.results(1).await.remove(0);
    worker.stop().await;
    assert_eq!(flaky.failed(), 1, "the outage happened");
    assert_eq!(result.cases[0].tiles_ok, 3);
    assert!(
        result.tile_failures.is_empty(),
        "{:?}",
        result.tile_failures
    );
}

/// The test workers' settings with a quick hand-back and `deadline`.
fn handing_back(deadline: Duration) -> WorkerConfig {
    let mut config = config(20);
    config.hand_back_pause = Duration::from_millis(50);
    config.transient_deadline = deadline;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_retries_hands_the_job_back_and_changes_nothing() {
    let (fx, flaky) = flaky_fixture().await;
    let reference = fx.put_model(&TestModel::shipped("cytology-origin")).await;
    let specs = [
        CaseSpec::good("CY-1", 2, 224, 1),
        CaseSpec::good("CY-2", 3, 224, 2),
    ];
    let cases = fx.put_archive("cy-a.0001", &specs).await;
    // CY-2's tiles are one ranged read; two attempts per read and
    // delivery: two failed reads are the first delivery's, and a third
    // fails the second's first attempt.
    flaky.break_reads(CY_2_SHARD, 3);
    let the_job = job(&reference, "cy-a.0001", cases, 0);
    fx.publish(&the_job).await;
    let worker = fx.start(handing_back(Duration::from_secs(60)));
    let result = fx.results(1).await.remove(0);
    let summary = worker.stop().await;
    assert_eq!(flaky.failed(), 3, "the outage happened");
    assert_eq!(result.job_id, the_job.job_id);
    assert_eq!((result.cases[0].tiles_ok, result.cases[1].tiles_ok), (2, 3));
    assert!(
        result.tile_failures.is_empty(),
        "{:?}",
        result.tile_failures
    );
    assert_eq!(
        (
            summary.jobs_handed_back,
            summary.jobs_answered,
            summary.dead_lettered
        ),
        (1, 1, 0)
    );
    assert_eq!(fx.counter("nodal_worker_jobs_total", "handed_back"), 1);
    assert_eq!(fx.depth("nodal.jobs").await, 0, "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_outage_becomes_recorded_tile_failures_at_the_deadline() {
    let (fx, flaky) = flaky_fixture().await;
    let reference = fx.put_model(&TestModel::shipped("cytology-origin")).await;
    let specs = [
        CaseSpec::good("CY-1", 2, 224, 1),
        CaseSpec::good("CY-2", 3, 224, 2),
    ];
    let cases = fx.put_archive("cy-a.0001", &specs).await;
    flaky.break_reads(CY_2_SHARD, u64::MAX);
    fx.publish(&job(&reference, "cy-a.0001", cases, 0)).await;
    let started = std::time::Instant::now();
    let worker = fx.start(handing_back(Duration::from_millis(400)));
    let result = fx.results(1).await.remove(0);
    let summary = worker.stop().await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "answered only once the deadline had passed"
    );
    assert!(summary.jobs_handed_back >= 1, "{summary:?}");
    assert_eq!((result.cases[0].tiles_ok, result.cases[1].tiles_ok), (2, 0));
    assert_eq!(result.tile_failures.len(), 3);
    for f in &result.tile_failures {
        assert_eq!((f.case_id.as_str(), f.stage), ("CY-2", FailureStage::Fetch));
        assert!(
            f.reason
                .starts_with(&format!("{}: store unavailable after 2 attempts", f.tile)),
            "{}",
            f.reason
        );
    }
    assert_eq!(
        flaky.failed(),
        2 * (summary.jobs_handed_back + 1),
        "two attempts per read and delivery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_while_loading_the_model_hands_the_job_back_until_the_store_is_back() {
    let (fx, flaky) = flaky_fixture().await;
    let reference = fx.put_model(&TestModel::shipped("cytology-origin")).await;
    let cases = fx
        .put_archive("cy-a.0001", &[CaseSpec::good("CY-1", 2, 224, 1)])
        .await;
    // Two attempts per delivery: the first delivery fails, the second loads.
    flaky.break_reads("card.json", 3);
    let the_job = job(&reference, "cy-a.0001", cases, 0);
    fx.publish(&the_job).await;
    let worker = fx.start(handing_back(Duration::from_secs(60)));
    let result = fx.results(1).await.remove(0);
    let summary = worker.stop().await;
    assert_eq!(result.job_id, the_job.job_id);
    assert_eq!(result.cases[0].tiles_ok, 2);
    assert_eq!(
        (
            summary.jobs_handed_back,
            summary.jobs_answered,
            summary.dead_lettered
        ),
        (1, 1, 0)
    );
    assert_eq!(fx.counter("nodal_worker_jobs_total", "handed_back"), 1);
    assert_eq!(fx.depth("nodal.dead").await, 0);
}
