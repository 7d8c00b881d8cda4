//! Fault injection on the object store: real `nodal coordinator` and `nodal
//! worker` processes over RabbitMQ (queues unique to each test) and an
//! s3s-fs server, the synthetic cytology study at scale 0.01 (100 cases,
//! about 1,250 tiles) in jobs of 16 tiles, workers paced so that a run lasts
//! long enough to break in the middle.
//!
//! - tiles deleted, overwritten with garbage, or truncated while a run goes
//!   (in the last archive, whose jobs wait their turn in the queue): each
//!   becomes a tile row in failures.csv with its stage and reason, the case
//!   is predicted from its other tiles, a case with no tile left becomes a
//!   case row; every other case is predicted exactly as in a clean run;
//! - the S3 server stopped for 10 s and for 60 s mid-run — far longer than
//!   the workers' retries last: the jobs are handed back to the queue until
//!   the store is back, and the run completes exactly as a clean run does;
//! - the S3 server stopped with the workers' transient deadline at 0 (every
//!   outage is past it at once; that a handed-back job is recorded once its
//!   deadline passes is `worker/tests/pipeline_faults.rs`): what could not
//!   be read is recorded as tile failures naming the outage, and once the
//!   server is back the run completes with every case accounted for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{
    Cluster, FAULT_JOB_TILES, PACE_MS, assert_every_case_once, check_identical, csv_rows,
    paced_worker,
};
use bytes::Bytes;
use nodal_coordinator::run::RunState;
use nodal_types::manifest::Manifest;
use nodal_types::study::Study;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Bound on any one run: proves "no hang", nothing more.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Bound on seeing some progress before a fault.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);

/// A cluster with the shared cytology archives submitted, a coordinator and
/// two paced workers (with `worker` flags added).
async fn cluster(test: &str, coordinator: &[&str], worker: &[&str]) -> Cluster {
    let t = Instant::now();
    nodal_testkit::nodal_binary().unwrap();
    let mut c = Cluster::start(test).await.unwrap();
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    c.start_coordinator(coordinator).unwrap();
    let mut flags = paced_worker(PACE_MS);
    flags.extend(worker);
    c.start_worker("worker-1", &flags).unwrap();
    c.start_worker("worker-2", &flags).unwrap();
    eprintln!("{test}: cluster up in {:.1} s", t.elapsed().as_secs_f64());
    c
}

/// predictions.csv rows by case id.
fn rows_by_case(predictions: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    csv_rows(predictions)
        .into_iter()
        .map(|r| (r["case_id"].clone(), r))
        .collect()
}

/// The planned tile keys of a case (those of its images that passed QC).
fn planned_tiles(manifest: &Manifest, case_id: &str) -> Vec<String> {
    manifest
        .cases
        .iter()
        .find(|c| c.case_id == case_id)
        .unwrap()
        .images
        .iter()
        .filter(|i| i.qc.passed)
        .flat_map(|i| i.tiles.iter().map(|t| t.key.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_deleted_or_corrupted_under_a_run_become_recorded_failures() {
    let started = Instant::now();
    let c = cluster("fault-store-tiles", &[], &[]).await;
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    let clean_rows = rows_by_case(&clean);

    // Four predicted cases of the last archive with at least three tiles.
    let last: &Manifest = c.archives[&STUDY].last().unwrap();
    let victims: Vec<(String, Vec<String>)> = last
        .cases
        .iter()
        .filter(|case| clean_rows.contains_key(&case.case_id))
        .map(|case| (case.case_id.clone(), planned_tiles(last, &case.case_id)))
        .filter(|(_, tiles)| tiles.len() >= 3)
        .take(4)
        .collect();
    assert_eq!(victims.len(), 4, "the last archive has four cases to break");
    for (case, tiles) in &victims {
        assert_eq!(
            clean_rows[case]["n_tiles"],
            tiles.len().to_string(),
            "{case}: the clean run used every planned tile"
        );
    }

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    // The run is under way; the last archive's jobs are still queued.
    let gone_case = &victims[0];
    let (deleted, garbage, truncated) = (&victims[1], &victims[2], &victims[3]);
    for key in &gone_case.1 {
        c.store.delete(key).await.unwrap();
    }
    c.store.delete(&deleted.1[0]).await.unwrap();
    c.store
        .put(
            &garbage.1[0],
            Bytes::from_static(b"these bytes are not an image"),
        )
        .await
        .unwrap();
    let whole = c.store.get(&truncated.1[0]).await.unwrap();
    c.store
        .put(&truncated.1[0], whole.slice(..whole.len() / 3))
        .await
        .unwrap();
    let at_break = c.run_status(run.run_id).await.unwrap();
    assert_eq!(at_break.state, RunState::Running);
    assert!(
        at_break.jobs_done < at_break.jobs_total / 2,
        "broken early in the run: {}/{} jobs done",
        at_break.jobs_done,
        at_break.jobs_total
    );

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    let broken_tiles = gone_case.1.len() + 3;
    assert_eq!(done.jobs_failed, 0, "no job given up\n{}", c.logs());
    assert_eq!(
        (done.tiles_done, done.tiles_failed),
        (
            (done.tiles_total - broken_tiles) as u64,
            broken_tiles as u64
        ),
        "only the broken tiles failed"
    );
    let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
    let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
    let (predicted, failed) = assert_every_case_once(&c.archives[&STUDY], &predictions, &failures);

    // failures.csv: a row per broken tile with its stage and reason, and a
    // case row for the case with no tile left.
    let rows = csv_rows(&failures);
    let runtime: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| r["level"] == "tile")
        .map(|r| (r["item"].clone(), r["stage"].clone()))
        .collect();
    let mut expected: BTreeSet<(String, String)> = gone_case
        .1
        .iter()
        .map(|k| (k.clone(), "fetch".to_string()))
        .collect();
    expected.insert((deleted.1[0].clone(), "fetch".into()));
    expected.insert((garbage.1[0].clone(), "decode".into()));
    expected.insert((truncated.1[0].clone(), "decode".into()));
    assert_eq!(runtime, expected, "a tile row for each broken tile");
    for r in rows.iter().filter(|r| r["level"] == "tile") {
        let want = if r["stage"] == "fetch" {
            "tile not found"
        } else {
            r["item"].as_str()
        };
        assert!(
            r["reason"].contains(want),
            "the reason of {} says why: {}",
            r["item"],
            r["reason"]
        );
    }
    let case_row = rows
        .iter()
        .find(|r| r["level"] == "case" && r["case_id"] == gone_case.0)
        .expect("a case row for the case with every tile gone");
    assert_eq!(case_row["stage"], "fetch", "{case_row:?}");

    // predictions.csv: the broken cases from their other tiles, the rest
    // exactly as in the clean run.
    let got = rows_by_case(&predictions);
    assert!(!got.contains_key(&gone_case.0));
    for (case, tiles) in [deleted, garbage, truncated] {
        assert_eq!(
            got[case]["n_tiles"],
            (tiles.len() - 1).to_string(),
            "{case} is predicted from its other tiles"
        );
    }
    let untouched: BTreeSet<&String> = victims.iter().map(|(c, _)| c).collect();
    let clean_lines: BTreeMap<&str, &str> = lines_by_case(&clean);
    let got_lines: BTreeMap<&str, &str> = lines_by_case(&predictions);
    for (case, line) in &clean_lines {
        if !untouched.contains(&case.to_string()) {
            assert_eq!(
                got_lines.get(case),
                Some(line),
                "{case} is predicted as in the clean run"
            );
        }
    }
    eprintln!(
        "tiles broken under a run: {} deleted (all of {}), 1 deleted, 1 garbage, 1 truncated; \
         cases expected {}, predicted {predicted} (clean {}), failed {failed}; {:.1} s",
        gone_case.1.len(),
        gone_case.0,
        crate::cluster::case_count(&c.archives[&STUDY]),
        clean_rows.len(),
        started.elapsed().as_secs_f64()
    );
}

/// predictions.csv lines by their first field (the case id).
fn lines_by_case(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .skip(1)
        .filter_map(|l| Some((l.split(',').next()?, l)))
        .collect()
}

/// Stop S3 for `outage` a quarter into a run: the predictions must be a
/// clean run's.
async fn an_s3_outage_changes_nothing(test: &str, outage: Duration) {
    let started = Instant::now();
    // The cluster's processes make 3 S3 attempts per request to keep the
    // other tests quick; the workers here make the default 5, as deployed.
    let mut c = cluster(
        test,
        &[],
        &["--s3-max-attempts", "5", "--hand-back-pause-ms", "1000"],
    )
    .await;
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let at_stop = c
        .wait_jobs_done(run.run_id, run.jobs_total / 4, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    c.s3.stop();
    tokio::time::sleep(outage).await;
    c.s3.restart().await.unwrap();

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    let what = format!("S3 stopped for {} s", outage.as_secs());
    check_identical(&c, STUDY, &done, &clean, &what).await;
    let handed_back: usize = c
        .workers
        .values()
        .map(|w| w.count_lines("handing the job back"))
        .sum();
    assert!(
        handed_back > 0,
        "{what}: the outage outlasted the retries and jobs were handed back\n{}",
        c.logs()
    );
    eprintln!(
        "{what} at {}/{} jobs done: {handed_back} hand-backs; {:.1} s",
        at_stop.jobs_done,
        at_stop.jobs_total,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopped_for_10_s_changes_no_prediction() {
    an_s3_outage_changes_nothing("fault-store-10s", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopped_for_60_s_changes_no_prediction() {
    an_s3_outage_changes_nothing("fault-store-60s", Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_past_the_transient_deadline_becomes_recorded_failures_not_a_hang() {
    let started = Instant::now();
    let mut c = cluster(
        "fault-store-outage",
        &["--stall-timeout-secs", "5", "--job-deadline-secs", "60"],
        &["--transient-deadline-secs", "0"],
    )
    .await;

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let at_stop = c
        .wait_jobs_done(run.run_id, run.jobs_total / 4, PROGRESS_TIMEOUT)
        .await
        .unwrap();
    c.s3.stop();
    let stopped = Instant::now();
    let outage = Duration::from_secs(20);
    // Watch the workers give up on tiles while the server is away.
    let mut first_failure = None;
    while stopped.elapsed() < outage {
        if first_failure.is_none()
            && c.workers.values().any(|w| {
                w.output()
                    .lines()
                    .any(|l| l.contains("job answered") && !l.contains("tiles_failed=0"))
            })
        {
            first_failure = Some(stopped.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.s3.restart().await.unwrap();

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
    let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
    let (predicted, failed) = assert_every_case_once(&c.archives[&STUDY], &predictions, &failures);
    assert_eq!(
        done.tiles_done + done.tiles_failed,
        done.tiles_total as u64,
        "every tile has an output or a recorded failure"
    );
    let rows = csv_rows(&failures);
    let outage_rows: Vec<_> = rows.iter().filter(|r| r["level"] == "tile").collect();
    assert!(
        !outage_rows.is_empty() && done.tiles_failed > 0,
        "a 20 s outage outlasts the transient deadline: tiles fail\n{}",
        c.logs()
    );
    for r in &outage_rows {
        assert!(
            r["stage"] == "fetch" && r["reason"].contains("store unavailable after"),
            "an outage failure says so: {r:?}"
        );
    }
    eprintln!(
        "S3 stopped {} s at {}/{} jobs done: first tile failure after {:?}; {} tiles failed; \
         cases expected {}, predicted {predicted}, failed {failed}; run finished {:.1} s after the stop; {:.1} s",
        outage.as_secs(),
        at_stop.jobs_done,
        at_stop.jobs_total,
        first_failure,
        done.tiles_failed,
        crate::cluster::case_count(&c.archives[&STUDY]),
        stopped.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
