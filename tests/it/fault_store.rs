//! Fault injection on the object store: real `nodal coordinator` and `nodal
//! worker` processes over RabbitMQ (queues unique to each test) and an
//! s3s-fs server, the synthetic cytology study at scale 0.01 (100 cases,
//! about 1,250 tiles) in jobs of 16 tiles, workers paced so that a run lasts
//! long enough to break in the middle.
//!
//! - shards damaged while a run goes (in the last archive, whose jobs wait
//!   their turn in the queue: a case's tiles zeroed, a byte of a tile
//!   flipped, a shard deleted, a shard truncated): each damaged tile becomes
//!   a tile row in failures.csv with its reason (checksum, shard not found,
//!   shard ends before the range), a case is predicted from its other
//!   tiles, a case with no tile left becomes a case row; every case with no
//!   damaged tile is predicted exactly as in a clean run;
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
use nodal_types::layout::shard_key;
use nodal_types::manifest::{Manifest, TileRef};
use nodal_types::study::Study;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Shards of about 20 tiles, so that an archive spans many and jobs meet
/// shard boundaries (8 MiB would hold a whole test archive in one).
const SHARD_BYTES: u64 = 256 << 10;
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
    c.shard_bytes = SHARD_BYTES;
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

/// The planned tiles of a case (those of its images that passed QC).
fn planned_tiles(manifest: &Manifest, case_id: &str) -> Vec<TileRef> {
    manifest
        .cases
        .iter()
        .find(|c| c.case_id == case_id)
        .unwrap()
        .images
        .iter()
        .filter(|i| i.qc.passed)
        .flat_map(|i| i.tiles.iter().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_damaged_under_a_run_become_recorded_failures() {
    let started = Instant::now();
    let c = cluster("fault-store-shards", &[], &[]).await;
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    let clean_rows = rows_by_case(&clean);

    // In the last archive (its jobs wait their turn in the queue): the
    // tiles of one case zeroed, one byte of another case's tile flipped,
    // one shard deleted and another truncated to half.
    let last: &Manifest = c.archives[&STUDY].last().unwrap();
    let id = &last.archive_id;
    assert!(last.shards.len() >= 6, "{} shards", last.shards.len());
    let (deleted_shard, truncated_shard) = (1u32, 3u32);
    let predicted: Vec<(String, Vec<TileRef>)> = last
        .cases
        .iter()
        .filter(|case| clean_rows.contains_key(&case.case_id))
        .map(|case| (case.case_id.clone(), planned_tiles(last, &case.case_id)))
        .collect();
    let elsewhere = |tiles: &Vec<TileRef>| {
        tiles.len() >= 2
            && tiles
                .iter()
                .all(|t| ![deleted_shard, truncated_shard].contains(&t.at.shard))
    };
    let mut victims = predicted.iter().filter(|(_, t)| elsewhere(t));
    let zeroed = victims.next().expect("a case to zero");
    let flipped = victims.next().expect("a case to flip a byte of");
    for (case, tiles) in &predicted {
        assert_eq!(
            clean_rows[case]["n_tiles"],
            tiles.len().to_string(),
            "{case}: the clean run used every planned tile"
        );
    }

    let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
    let mut damaged: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for tile in zeroed.1.iter().chain(&flipped.1[..1]) {
        let shard = match damaged.entry(tile.at.shard) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let bytes = c.store.get(&shard_key(id, tile.at.shard)).await.unwrap();
                e.insert(bytes.to_vec())
            }
        };
        let bytes = &mut shard[tile.at.offset as usize..tile.at.end() as usize];
        if zeroed.1.contains(tile) {
            bytes.fill(0);
        } else {
            bytes[bytes.len() / 2] ^= 0x40;
        }
    }
    for (index, bytes) in damaged {
        c.store
            .put(&shard_key(id, index), Bytes::from(bytes))
            .await
            .unwrap();
    }
    c.store.delete(&shard_key(id, deleted_shard)).await.unwrap();
    let whole = c.store.get(&shard_key(id, truncated_shard)).await.unwrap();
    let kept = whole.len() / 2;
    c.store
        .put(&shard_key(id, truncated_shard), whole.slice(..kept))
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
    assert_eq!(done.jobs_failed, 0, "no job given up\n{}", c.logs());
    let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
    let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
    let (n_predicted, n_failed) =
        assert_every_case_once(&c.archives[&STUDY], &predictions, &failures);

    // A tile row for each damaged tile, with its reason: the planned tiles
    // of the deleted shard, the zeroed and flipped tiles (their checksums),
    // and of the truncated shard those read past its new end.
    let planned: Vec<&TileRef> = predicted.iter().flat_map(|(_, t)| t).collect();
    let rows = csv_rows(&failures);
    let tile_rows: BTreeMap<String, &BTreeMap<String, String>> = rows
        .iter()
        .filter(|r| r["level"] == "tile")
        .map(|r| (r["item"].clone(), r))
        .collect();
    assert!(
        tile_rows
            .values()
            .all(|r| r["stage"] == "fetch" && &r["archive_id"] == id)
    );
    let mut must_fail: BTreeSet<String> = zeroed.1.iter().map(|t| t.name.clone()).collect();
    must_fail.insert(flipped.1[0].name.clone());
    for name in &must_fail {
        assert!(
            tile_rows[name]["reason"].contains("fail their CRC-32C check"),
            "{name}: {:?}",
            tile_rows.get(name)
        );
    }
    for tile in planned.iter().filter(|t| t.at.shard == deleted_shard) {
        assert!(
            tile_rows[&tile.name]["reason"].contains("shard not found"),
            "{}: {:?}",
            tile.name,
            tile_rows.get(&tile.name)
        );
        must_fail.insert(tile.name.clone());
    }
    let in_truncated: Vec<&&TileRef> = planned
        .iter()
        .filter(|t| t.at.shard == truncated_shard)
        .collect();
    for tile in &in_truncated {
        match tile_rows.get(&tile.name) {
            Some(row) => assert!(
                row["reason"].contains("ends before"),
                "{}: {row:?}",
                tile.name
            ),
            None => assert!(
                tile.at.end() <= kept as u64,
                "{} lies past the cut and has no failure row",
                tile.name
            ),
        }
    }
    let past_the_cut: Vec<&String> = in_truncated
        .iter()
        .filter(|t| t.at.end() > kept as u64)
        .map(|t| &t.name)
        .collect();
    assert!(!past_the_cut.is_empty());
    for name in &past_the_cut {
        assert!(
            tile_rows.contains_key(*name),
            "{name} was read past the cut"
        );
    }
    let truncated_failed = in_truncated
        .iter()
        .filter(|t| tile_rows.contains_key(&t.name))
        .count();
    assert_eq!(
        tile_rows.len(),
        must_fail.len() + truncated_failed,
        "only damaged tiles failed: {:?}",
        tile_rows.keys().collect::<Vec<_>>()
    );
    assert_eq!(done.tiles_failed, tile_rows.len() as u64);

    // A case row for the case with every tile gone; every case with no
    // failed tile is predicted exactly as in the clean run.
    let case_row = rows
        .iter()
        .find(|r| r["level"] == "case" && r["case_id"] == zeroed.0)
        .expect("a case row for the case with every tile zeroed");
    assert_eq!(case_row["stage"], "fetch", "{case_row:?}");
    let got = rows_by_case(&predictions);
    assert!(!got.contains_key(&zeroed.0));
    assert_eq!(
        got[&flipped.0]["n_tiles"],
        (flipped.1.len() - 1).to_string(),
        "{} is predicted from its other tiles",
        flipped.0
    );
    let touched: BTreeSet<&str> = rows.iter().map(|r| r["case_id"].as_str()).collect();
    let clean_lines: BTreeMap<&str, &str> = lines_by_case(&clean);
    let got_lines: BTreeMap<&str, &str> = lines_by_case(&predictions);
    let mut untouched = 0;
    for (case, line) in &clean_lines {
        if !touched.contains(case) {
            untouched += 1;
            assert_eq!(
                got_lines.get(case),
                Some(line),
                "{case} is predicted as in the clean run"
            );
        }
    }
    eprintln!(
        "shards damaged under a run: {} zeroed tiles, 1 flipped byte, shard {deleted_shard} deleted, \
         shard {truncated_shard} cut to {kept} bytes ({truncated_failed} tiles read past it); \
         cases predicted {n_predicted}, failed {n_failed}, {untouched} exactly as in the clean run; {:.1} s",
        zeroed.1.len(),
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
/// clean run's. A worker's read retries (6 tries of 5 SDK attempts, all
/// jittered: at most 6 × 7.5 s + 7.75 s ≈ 53 s) may or may not ride out a
/// 10 s outage, so only an outage longer than any retry schedule
/// (`past_the_retries`) must have jobs handed back.
async fn an_s3_outage_changes_nothing(test: &str, outage: Duration, past_the_retries: bool) {
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
    let at_restart = c.run_status(run.run_id).await.unwrap();
    c.s3.restart().await.unwrap();
    let what = format!("S3 stopped for {} s", outage.as_secs());
    assert!(
        at_restart.jobs_done < at_restart.jobs_total,
        "{what}: the run was still going when S3 came back ({}/{} jobs done)",
        at_restart.jobs_done,
        at_restart.jobs_total
    );

    let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
    check_identical(&c, STUDY, &done, &clean, &what).await;
    let handed_back: usize = c
        .workers
        .values()
        .map(|w| w.count_lines("handing the job back"))
        .sum();
    assert!(
        handed_back > 0 || !past_the_retries,
        "{what}: the outage outlasts any retry schedule, so jobs were handed back\n{}",
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
    an_s3_outage_changes_nothing("fault-store-10s", Duration::from_secs(10), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopped_for_60_s_changes_no_prediction() {
    an_s3_outage_changes_nothing("fault-store-60s", Duration::from_secs(60), true).await;
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
