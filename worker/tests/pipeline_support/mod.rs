//! What the pipeline tests share: a worker's real surroundings (a LocalStore
//! in a temporary folder, a MemoryBroker, ONNX Runtime, a metrics registry),
//! archives of generated JPEG tiles, jobs, and the expected outputs computed
//! with `Model::run` directly.

#![allow(dead_code)] // Each test file uses its own part of the support.

pub mod flaky;
pub mod models;
pub mod onnx;

use bytes::Bytes;
use models::TestModel;
use ndarray::{Array2, Array4, Axis};
use nodal_common::broker::{Broker, MemoryBroker, QueueNames};
use nodal_common::retry::RetryPolicy;
use nodal_common::store::{LocalStore, ObjectStore, SharedStore};
use nodal_types::layout::{card_key, manifest_key, shard_key};
use nodal_types::shard::crc32c;
use nodal_types::wire::{self, HandedBack, Job, JobCase, JobResult, JobTile, Message, ModelRef};
use nodal_worker::{
    Health, Model, Runtime, RuntimeConfig, WorkerConfig, WorkerDeps, WorkerError, WorkerMetrics,
    WorkerSummary,
};
use prometheus::Registry;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Long enough for anything that is coming to arrive.
pub const ARRIVES: Duration = Duration::from_secs(60);

/// A worker's real surroundings, fresh for each test.
pub struct Fixture {
    _dir: TempDir,
    /// The object store the test writes to.
    pub store: Arc<LocalStore>,
    /// The store the worker reads (the same, unless a test wraps it).
    pub worker_store: SharedStore,
    /// The broker (queues declared, delivery limit 5).
    pub broker: Arc<MemoryBroker>,
    /// ONNX Runtime (one intra-op thread).
    pub runtime: Arc<Runtime>,
    /// The registry the worker metrics live in.
    pub registry: Registry,
    /// The worker metrics.
    pub metrics: WorkerMetrics,
    /// Health shared by the workers.
    pub health: Health,
}

/// A worker started by a test.
pub struct Running {
    /// Cancel to shut the worker down.
    pub shutdown: CancellationToken,
    /// The worker's task.
    pub handle: JoinHandle<Result<WorkerSummary, WorkerError>>,
}

impl Running {
    /// Ask the worker to stop and wait for its summary.
    pub async fn stop(self) -> WorkerSummary {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("worker task")
            .expect("worker ends cleanly")
    }
}

/// A case of a test archive: its id, tiles, and report vector.
pub struct CaseSpec {
    /// Case id.
    pub case_id: String,
    /// Encoded tile files (named `<case>/<i>.jpg`), or `None` for a tile
    /// listed in the job but never stored.
    pub tiles: Vec<Option<Vec<u8>>>,
    /// The encoded report, for multimodal models.
    pub report: Option<Vec<f32>>,
}

impl CaseSpec {
    /// A case of `n` good tiles of `size` pixels, seeded from `seed`.
    pub fn good(case_id: &str, n: usize, size: u32, seed: u32) -> Self {
        let tiles = (0..n)
            .map(|i| Some(tile_jpeg(size, seed * 100 + i as u32)))
            .collect();
        Self {
            case_id: case_id.into(),
            tiles,
            report: None,
        }
    }

    /// The same case with a report vector.
    pub fn with_report(mut self, report: Vec<f32>) -> Self {
        self.report = Some(report);
        self
    }

    /// The tiles that are stored, in order.
    pub fn stored(&self) -> Vec<Vec<u8>> {
        self.tiles.iter().flatten().cloned().collect()
    }
}

impl Fixture {
    /// Fresh store, broker, runtime and metrics.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            LocalStore::open(dir.path().join("store"))
                .await
                .expect("store"),
        );
        let broker = Arc::new(MemoryBroker::new(QueueNames::default(), 5));
        broker.declare().await.expect("declare");
        let runtime = Runtime::init(RuntimeConfig {
            intra_threads: 1,
            ..RuntimeConfig::default()
        })
        .expect("ONNX Runtime loads (run scripts/setup.sh ort)");
        let registry = Registry::new();
        let metrics = WorkerMetrics::register(&registry).expect("metrics register");
        Self {
            _dir: dir,
            worker_store: store.clone(),
            store,
            broker,
            runtime: Arc::new(runtime),
            registry,
            metrics,
            health: Health::default(),
        }
    }

    /// What `run_worker` needs.
    pub fn deps(&self) -> WorkerDeps {
        WorkerDeps {
            store: self.worker_store.clone(),
            broker: self.broker.clone(),
            runtime: self.runtime.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
        }
    }

    /// Put a model where the coordinator publishes models; returns the reference jobs carry.
    pub async fn put_model(&self, model: &TestModel) -> ModelRef {
        let card = &model.card;
        self.store
            .put(&card.onnx_key(), Bytes::from(model.onnx.clone()))
            .await
            .expect("put onnx");
        let key = card_key(&card.name, &card.version);
        self.store
            .put(&key, Bytes::from(model.card_json()))
            .await
            .expect("put card");
        ModelRef {
            name: card.name.clone(),
            version: card.version.clone(),
            card_key: key,
            onnx_sha256: card.onnx_sha256.clone(),
        }
    }

    /// Store an archive's manifest and its tiles, each case's end to end in
    /// a shard of its own (shard `i` for case `i`, so a test can break one
    /// case's reads); returns the job cases naming them. A tile that is
    /// `None` is named in shard 999, which is never stored.
    pub async fn put_archive(&self, archive_id: &str, cases: &[CaseSpec]) -> Vec<JobCase> {
        // The worker only checks that the manifest exists.
        let manifest = serde_json::json!({ "archive_id": archive_id });
        self.store
            .put(&manifest_key(archive_id), Bytes::from(manifest.to_string()))
            .await
            .expect("put manifest");
        let mut job_cases = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            let key = shard_key(archive_id, index as u32);
            let mut shard = Vec::new();
            let mut tiles = Vec::new();
            for (i, tile) in case.tiles.iter().enumerate() {
                let name = format!("{}/{i}.jpg", case.case_id);
                tiles.push(match tile {
                    Some(bytes) => {
                        let offset = shard.len() as u64;
                        shard.extend_from_slice(bytes);
                        JobTile {
                            name,
                            shard_key: key.clone(),
                            offset,
                            length: bytes.len() as u32,
                            crc32c: crc32c(bytes),
                        }
                    }
                    None => JobTile {
                        name,
                        shard_key: shard_key(archive_id, 999),
                        offset: 0,
                        length: 1000,
                        crc32c: 0,
                    },
                });
            }
            self.store
                .put(&key, Bytes::from(shard))
                .await
                .expect("put shard");
            job_cases.push(JobCase {
                case_id: case.case_id.clone(),
                part: 0,
                tiles,
                report: case.report.clone(),
            });
        }
        job_cases
    }

    /// Publish a job.
    pub async fn publish(&self, job: &Job) {
        let body = wire::encode(&Message::Job(job.clone())).expect("encodes");
        self.publish_raw(body).await;
    }

    /// Publish any bytes on the jobs queue.
    pub async fn publish_raw(&self, body: Vec<u8>) {
        self.broker
            .publish(&self.broker.queues().jobs, Bytes::from(body))
            .await
            .expect("publish");
    }

    /// Start a worker.
    pub fn start(&self, config: WorkerConfig) -> Running {
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(nodal_worker::run_worker(
            config,
            self.deps(),
            shutdown.clone(),
        ));
        Running { shutdown, handle }
    }

    /// Take `n` results from the results queue (acking them), in arrival order.
    pub async fn results(&self, n: usize) -> Vec<JobResult> {
        let mut sub = self
            .broker
            .subscribe(&self.broker.queues().results, 0)
            .await
            .expect("subscribe");
        let mut out = Vec::new();
        while out.len() < n {
            let delivery = tokio::time::timeout(ARRIVES, sub.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} results arrived", out.len()))
                .expect("results queue open");
            match wire::decode(&delivery.body).expect("a result decodes") {
                Message::Result(r) => out.push(r),
                Message::Job(j) | Message::HandedBack(HandedBack { job: j, .. }) => {
                    panic!("a job on the results queue: {}", j.job_id)
                }
            }
            delivery.acker.ack().await.expect("ack");
        }
        out
    }

    /// Ready messages in a queue.
    pub async fn depth(&self, queue: &str) -> u64 {
        self.broker.depth(queue).await.expect("depth")
    }

    /// Count and sum of a histogram.
    pub fn histogram(&self, name: &str) -> (u64, f64) {
        let family = self
            .registry
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
            .expect("histogram registered");
        let h = family.get_metric()[0].get_histogram();
        (h.get_sample_count(), h.get_sample_sum())
    }

    /// Value of a counter with one label (0 when never incremented).
    pub fn counter(&self, name: &str, label: &str) -> u64 {
        let Some(family) = self
            .registry
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
        else {
            return 0;
        };
        family
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == label))
            .map_or(0, |m| m.get_counter().get_value() as u64)
    }
}

/// Settings for tests: quick retries, a deadline long enough that tiles of
/// jobs published together meet in a batch.
pub fn config(batch_deadline_ms: u64) -> WorkerConfig {
    let mut config = WorkerConfig::new("test-worker");
    config.batch_deadline = Duration::from_millis(batch_deadline_ms);
    config.decode_threads = 2;
    config.grace_period = Duration::from_secs(20);
    config.store_retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    config
}

/// A job of `cases` of `archive_id` for `model`.
pub fn job(model: &ModelRef, archive_id: &str, cases: Vec<JobCase>, index: u32) -> Job {
    let run_id = Uuid::from_u128(0x5eed);
    Job {
        run_id,
        job_id: Uuid::new_v5(&run_id, format!("job-{index}-{archive_id}").as_bytes()),
        index,
        model: model.clone(),
        archive_id: archive_id.into(),
        cases,
        traceparent: None,
    }
}

/// A JPEG tile of `size` pixels whose colours depend on `seed`.
pub fn tile_jpeg(size: u32, seed: u32) -> Vec<u8> {
    let (r0, g0, b0) = (
        (seed * 37 % 200) as f32,
        (seed * 91 % 200) as f32,
        (seed * 53 % 200) as f32,
    );
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        let t = (x + y) as f32 / (2 * size) as f32 * 50.0;
        image::Rgb([
            (r0 + t) as u8,
            (g0 + 30.0 - t / 2.0) as u8,
            (b0 + (x % 7) as f32) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("jpeg encodes");
    out
}

/// The model's outputs for `tiles` (with `report` for each tile when given),
/// from `Model::run` on one batch: one `[n, width]` array per card output.
pub fn model_outputs(
    model: &TestModel,
    runtime: &Runtime,
    tiles: &[Vec<u8>],
    report: Option<&[f32]>,
) -> Vec<Array2<f32>> {
    let mut loaded =
        Model::from_card(runtime, model.card.clone(), &model.onnx).expect("model loads");
    let s = model.tile_size() as usize;
    let mut batch = Array4::<f32>::zeros((tiles.len(), 3, s, s));
    for (i, bytes) in tiles.iter().enumerate() {
        let mut slot = batch.index_axis_mut(Axis(0), i);
        let out = slot.as_slice_mut().expect("contiguous");
        nodal_worker::preprocess::preprocess_into(bytes, &model.card, out)
            .expect("tile preprocesses");
    }
    let reports = report.map(|r| Array2::from_shape_fn((tiles.len(), r.len()), |(_, j)| r[j]));
    loaded
        .run(batch.view(), reports.as_ref().map(|r| r.view()))
        .expect("model runs")
}

/// Column means of each output over the tiles.
pub fn means(outputs: &[Array2<f32>]) -> Vec<Vec<f64>> {
    outputs
        .iter()
        .map(|o| {
            o.mean_axis(Axis(0))
                .expect("rows")
                .iter()
                .map(|v| f64::from(*v))
                .collect()
        })
        .collect()
}

/// Assert two lists of per-head means agree within `tol`.
pub fn assert_means_close(got: &[Vec<f64>], want: &[Vec<f64>], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: heads");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{what}: width");
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < tol, "{what}: {g:?} vs {w:?}");
        }
    }
}
