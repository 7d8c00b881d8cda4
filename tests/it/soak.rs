//! A small soak: several runs back to back on one cluster (real coordinator
//! and worker processes, RabbitMQ, s3s-fs; the synthetic cytology study at
//! scale 0.01 in jobs of 16 tiles), one of the two workers SIGKILLed at a
//! random point of each run and started again. Every run must account for
//! every case exactly once and give the clean run's predictions.csv, and the
//! resident memory of the coordinator and of the worker that stays up must
//! not grow run over run.
//!
//! The random points come from a seed printed at the start; set
//! `NODAL_SOAK_SEED` to replay one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{
    Cluster, FAULT_JOB_TILES, PACE_MS, assert_every_case_once, assert_same_predictions,
    paced_worker,
};
use nodal_testkit::rss_bytes;
use nodal_types::study::Study;
use std::time::{Duration, Instant};

const SCALE: f64 = 0.01;
const SEED: u64 = 42;
const STUDY: Study = Study::Cytology;
/// Runs after the clean one.
const RUNS: usize = 4;
/// Bound on any one run: proves "no hang", nothing more.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Allowed growth of resident memory from the first faulted run to the
/// last: generous, so that only a leak that grows with every run fails it.
const RSS_SLACK: f64 = 1.5;
const RSS_SLACK_BYTES: u64 = 48 << 20;

/// splitmix64: a tiny deterministic generator, enough to place faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_back_to_back_with_a_worker_killed_keep_counts_and_memory_flat() {
    let started = Instant::now();
    let seed = std::env::var("NODAL_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("soak seed {seed} (NODAL_SOAK_SEED={seed} replays it)");
    let mut rng = Rng(seed);

    nodal_testkit::nodal_binary().unwrap();
    let mut c = Cluster::start("soak").await.unwrap();
    c.submit_shared_synthetic(&[STUDY], SCALE, SEED)
        .await
        .unwrap();
    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-a", &paced_worker(PACE_MS)).unwrap();
    c.start_worker("worker-b-0", &paced_worker(PACE_MS))
        .unwrap();
    let clean = c.clean_predictions(STUDY, RUN_TIMEOUT).await.unwrap();
    let coordinator_pid = c.coordinator.as_ref().unwrap().pid();
    let worker_pid = c.workers["worker-a"].pid();
    eprintln!(
        "cluster up and clean run done in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut rss = Vec::new();
    for i in 0..RUNS {
        let run_started = Instant::now();
        let run = c.create_run_with(STUDY, FAULT_JOB_TILES).await.unwrap();
        let total = run.jobs_total as u64;
        let kill_at = rng.between(total / 10, total * 2 / 3) as usize;
        let pause = Duration::from_millis(rng.between(0, 1500));
        let at_kill = c
            .wait_jobs_done(run.run_id, kill_at, RUN_TIMEOUT)
            .await
            .unwrap();
        let victim = format!("worker-b-{i}");
        c.workers.get_mut(&victim).unwrap().kill().unwrap();
        tokio::time::sleep(pause).await;
        c.start_worker(&format!("worker-b-{}", i + 1), &paced_worker(PACE_MS))
            .unwrap();
        let done = c.wait_finished(run.run_id, RUN_TIMEOUT).await.unwrap();
        assert_eq!(
            (done.jobs_done, done.jobs_failed, done.tiles_failed),
            (done.jobs_total, 0, 0),
            "run {i}: every job done\n{}",
            c.logs()
        );
        assert_eq!(done.tiles_done, done.tiles_total as u64, "run {i}");
        let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
        let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
        let (predicted, failed) =
            assert_every_case_once(&c.archives[&STUDY], &predictions, &failures);
        assert_same_predictions(&clean, &predictions, &format!("soak run {i}"));
        // Let the processes settle before reading their memory.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = (
            rss_bytes(coordinator_pid).unwrap(),
            rss_bytes(worker_pid).unwrap(),
        );
        eprintln!(
            "run {i}: {victim} killed at {}/{} jobs done, restarted after {} ms; \
             cases {} expected, {predicted} predicted, {failed} failed; \
             RSS coordinator {:.1} MiB, worker-a {:.1} MiB; {:.1} s",
            at_kill.jobs_done,
            at_kill.jobs_total,
            pause.as_millis(),
            crate::cluster::case_count(&c.archives[&STUDY]),
            mib(now.0),
            mib(now.1),
            run_started.elapsed().as_secs_f64()
        );
        rss.push(now);
    }

    let (first, last) = (rss[0], rss[RUNS - 1]);
    for (what, a, b) in [
        ("coordinator", first.0, last.0),
        ("worker-a", first.1, last.1),
    ] {
        let bound = (a as f64 * RSS_SLACK) as u64 + RSS_SLACK_BYTES;
        assert!(
            b <= bound,
            "{what}: resident memory grew from {:.1} MiB after run 0 to {:.1} MiB after run {} (bound {:.1} MiB)",
            mib(a),
            mib(b),
            RUNS - 1,
            mib(bound)
        );
    }
    eprintln!(
        "soak: {RUNS} runs, seed {seed}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
