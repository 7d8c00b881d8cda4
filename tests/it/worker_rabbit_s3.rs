//! The worker against real servers: jobs on RabbitMQ (queues unique to the
//! test), tiles, manifest and model in an S3 server (s3s-fs), the shipped
//! cytology model. A synthetic site is submitted as `nodal submit` does and
//! planned as the coordinator plans runs; the worker answers every job once,
//! accounts for every tile, agrees with `Model::run` on the same S3 bytes,
//! and dead-letters a garbage message.
//! Needs RabbitMQ, `scripts/setup.sh s3` and `scripts/setup.sh ort`.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use ndarray::{Array4, Axis};
use nodal_common::broker::{Broker, RabbitBroker, SharedBroker};
use nodal_common::store::{S3Store, SharedStore};
use nodal_submit::{Progress, SubmitOptions, submit_site};
use nodal_synth::SynthConfig;
use nodal_testkit::{S3Server, UniqueQueues, repo_root};
use nodal_types::layout::card_key;
use nodal_types::study::Study;
use nodal_types::wire::{self, HandedBack, Job, JobResult, JobTile, Message, ModelRef};
use nodal_worker::{
    Health, Model, Runtime, RuntimeConfig, WorkerConfig, WorkerDeps, WorkerMetrics,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Jobs the test runs.
const JOBS: usize = 5;

/// Submit one synthetic cytology site to `store`; plan its jobs for `model`.
async fn planned_jobs(store: &SharedStore, reference: &ModelRef) -> Vec<Job> {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        out: dir.path().join("out"),
        studies: vec![Study::Cytology],
        scale: 0.004,
        seed: 7,
        format: nodal_synth::ImageFormat::Jpeg,
    };
    nodal_synth::generate(&config).unwrap();
    let site = dir.path().join("out/cytology/cy-a");
    let opts = SubmitOptions::new(Study::Cytology, "cy-a", site);
    let outcome = submit_site(&opts, store.clone(), &Progress::hidden())
        .await
        .unwrap();
    let card_bytes = store.get(&reference.card_key).await.unwrap();
    let card = serde_json::from_slice(&card_bytes).unwrap();
    let run_id = Uuid::new_v4();
    let plan = nodal_coordinator::plan::plan_run(run_id, &[outcome.manifest], &card, reference, 24)
        .unwrap();
    assert!(
        plan.jobs.len() >= JOBS,
        "the site gives at least {JOBS} jobs, got {}",
        plan.jobs.len()
    );
    plan.jobs.into_iter().take(JOBS).collect()
}

/// The first `n` results from the results queue (acked), failing after two minutes.
async fn take_results(broker: &dyn Broker, n: usize) -> Vec<JobResult> {
    let mut sub = broker.subscribe(&broker.queues().results, 0).await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let delivery = tokio::time::timeout(Duration::from_secs(120), sub.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} results arrived", out.len()))
            .unwrap();
        match wire::decode(&delivery.body).unwrap() {
            Message::Result(r) => out.push(r),
            Message::Job(j) | Message::HandedBack(HandedBack { job: j, .. }) => {
                panic!("a job on the results queue: {}", j.job_id)
            }
        }
        delivery.acker.ack().await.unwrap();
    }
    out
}

/// The model's case mean for `tiles` read from the store, by `Model::run`.
async fn direct_mean(store: &SharedStore, runtime: &Runtime, tiles: &[JobTile]) -> Vec<f64> {
    let mut model = Model::from_dir(runtime, &repo_root().join("models/cytology-origin")).unwrap();
    let card = model.card().clone();
    let s = card.tile.size as usize;
    let mut batch = Array4::<f32>::zeros((tiles.len(), 3, s, s));
    for (i, tile) in tiles.iter().enumerate() {
        let bytes = store
            .get_range(&tile.shard_key, tile.offset, u64::from(tile.length))
            .await
            .unwrap();
        let mut slot = batch.index_axis_mut(Axis(0), i);
        nodal_worker::preprocess::preprocess_into(&bytes, &card, slot.as_slice_mut().unwrap())
            .unwrap();
    }
    let out = model.run(batch.view(), None).unwrap();
    out[0]
        .mean_axis(Axis(0))
        .unwrap()
        .iter()
        .map(|v| f64::from(*v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_answers_jobs_from_rabbitmq_with_tiles_from_s3() {
    let server = S3Server::start().await.unwrap();
    let store: SharedStore = Arc::new(S3Store::connect(&server.config("nodal")).await.unwrap());
    let card = nodal_coordinator::models::publish_model_dir(
        store.as_ref(),
        &repo_root().join("models/cytology-origin"),
    )
    .await
    .unwrap();
    let reference = ModelRef {
        name: card.name.clone(),
        version: card.version.clone(),
        card_key: card_key(&card.name, &card.version),
        onnx_sha256: card.onnx_sha256.clone(),
    };
    let jobs = planned_jobs(&store, &reference).await;

    let queues = UniqueQueues::for_test("worker");
    let broker: SharedBroker = Arc::new(
        RabbitBroker::connect(&queues.rabbit_config(5))
            .await
            .unwrap(),
    );
    broker.declare().await.unwrap();
    broker
        .publish(
            &queues.names.jobs,
            Bytes::from_static(b"not a nodal message"),
        )
        .await
        .unwrap();
    for job in &jobs {
        broker
            .publish(
                &queues.names.jobs,
                Bytes::from(wire::encode(&Message::Job(job.clone())).unwrap()),
            )
            .await
            .unwrap();
    }

    let runtime = Arc::new(
        Runtime::init(RuntimeConfig {
            intra_threads: 1,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let registry = prometheus::Registry::new();
    let deps = WorkerDeps {
        store: store.clone(),
        broker: broker.clone(),
        runtime: runtime.clone(),
        metrics: WorkerMetrics::register(&registry).unwrap(),
        health: Health::default(),
    };
    let mut config = WorkerConfig::new("rabbit-s3-worker");
    config.prefetch = 3;
    config.batch_size = Some(32);
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(nodal_worker::run_worker(config, deps, shutdown.clone()));
    let results = take_results(broker.as_ref(), JOBS).await;
    shutdown.cancel();
    let summary = worker.await.unwrap().unwrap();

    let by_job: BTreeMap<Uuid, &JobResult> = results.iter().map(|r| (r.job_id, r)).collect();
    assert_eq!(by_job.len(), JOBS, "each job answered once");
    assert_eq!(
        (
            summary.jobs_answered,
            summary.dead_lettered,
            summary.jobs_requeued
        ),
        (JOBS as u64, 1, 0)
    );
    for job in &jobs {
        let result = by_job[&job.job_id];
        assert_eq!(
            (result.run_id, result.worker.as_str()),
            (job.run_id, "rabbit-s3-worker")
        );
        assert_eq!(result.cases.len(), job.cases.len());
        for (partial, case) in result.cases.iter().zip(&job.cases) {
            assert_eq!(
                (&partial.archive_id, &partial.case_id),
                (&job.archive_id, &case.case_id)
            );
            let failed = result
                .tile_failures
                .iter()
                .filter(|f| f.case_id == case.case_id)
                .count() as u64;
            assert_eq!(
                partial.tiles_ok + failed,
                case.tiles.len() as u64,
                "every tile counted or listed"
            );
        }
        assert!(
            result.tile_failures.is_empty(),
            "submitted tiles all run: {:?}",
            result.tile_failures
        );
    }
    let first = &jobs[0].cases[0];
    let partial = &by_job[&jobs[0].job_id].cases[0];
    let want = direct_mean(&store, &runtime, &first.tiles).await;
    let got = partial.heads[0].mean(partial.tiles_ok);
    for (a, b) in got.iter().zip(&want) {
        assert!(
            (a - b).abs() < 1e-6,
            "worker {got:?} vs Model::run {want:?}"
        );
    }
    assert_eq!(
        broker.depth(&queues.names.dead).await.unwrap(),
        1,
        "the garbage message is dead-lettered"
    );
    assert_eq!(broker.depth(&queues.names.jobs).await.unwrap(), 0);
    drop(broker);
    queues.cleanup().await.unwrap();
}
