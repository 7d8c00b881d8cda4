//! End-to-end worker throughput on the CPU against its two limits:
//! the inference ceiling `c` (Model::run on ready batches) and the decode
//! rate `d` (decode + normalise on every core). Fetch, decode and inference
//! overlap, but on a CPU decoding and inference share the cores, so the best
//! the pipeline can do is `1 / (1/c + 1/d)`; the target is ≥ 0.85 of that.
//!
//! `cargo bench -p nodal-worker --bench throughput` (needs `scripts/setup.sh ort`).
//! Settings (environment): NODAL_BENCH_MODEL (cytology-origin), NODAL_BENCH_JOBS (16),
//! NODAL_BENCH_JOB_TILES (256), NODAL_BENCH_TILES (distinct tiles, 512);
//! for the end-to-end run NODAL_BENCH_INTRA_THREADS (0: ONNX Runtime's
//! default) and NODAL_BENCH_DECODE_THREADS (0: one per core); NODAL_BENCH_ROUNDS
//! (3: the best of each figure over interleaved rounds is kept).

// A benchmark: a failure to set up is a failed run, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use ndarray::Array4;
use nodal_common::broker::{Broker, MemoryBroker, QueueNames};
use nodal_common::manifest::manifest_key;
use nodal_common::model_card::{ModelCard, card_key};
use nodal_common::store::{LocalStore, ObjectStore};
use nodal_common::wire::{self, Job, JobCase, Message, ModelRef};
use nodal_worker::preprocess;
use nodal_worker::{
    Health, Model, Runtime, RuntimeConfig, WorkerConfig, WorkerDeps, WorkerMetrics,
};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A textured JPEG tile (q90): noise over gradients, so decoding costs what
/// a real tile costs.
fn tile(size: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (state >> 24) as u8 / 3;
        let base = ((x * 3 + y * 2 + seed * 17) % 160) as u8;
        image::Rgb([
            base + noise,
            200 - base / 2 + noise / 2,
            ((x ^ y) % 90) as u8 + noise,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// Tiles per second decoding and normalising every tile on `threads` threads.
fn decode_rate(tiles: &[Vec<u8>], card: &ModelCard, threads: usize) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let plane = 3 * (card.tile.size as usize).pow(2);
    let run = || {
        pool.install(|| {
            tiles.par_iter().for_each_init(
                || vec![0f32; plane],
                |slot, bytes| preprocess::preprocess_into(bytes, card, slot).unwrap(),
            )
        })
    };
    run();
    let started = Instant::now();
    let rounds = 3;
    for _ in 0..rounds {
        run();
    }
    (rounds * tiles.len()) as f64 / started.elapsed().as_secs_f64()
}

/// Tiles per second of Model::run on ready batches of `batch` tiles.
fn inference_ceiling(model: &mut Model, tiles: &[Vec<u8>], batch: usize) -> f64 {
    let card = model.card().clone();
    let s = card.tile.size as usize;
    let mut input = Array4::<f32>::zeros((batch, 3, s, s));
    for (i, mut slot) in input.outer_iter_mut().enumerate() {
        preprocess::preprocess_into(&tiles[i % tiles.len()], &card, slot.as_slice_mut().unwrap())
            .unwrap();
    }
    let report = (card.report_width() > 0)
        .then(|| ndarray::Array2::<f32>::zeros((batch, card.report_width())));
    model
        .run(input.view(), report.as_ref().map(|r| r.view()))
        .unwrap();
    let started = Instant::now();
    let mut done = 0;
    while started.elapsed().as_secs_f64() < 3.0 {
        model
            .run(input.view(), report.as_ref().map(|r| r.view()))
            .unwrap();
        done += batch;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

struct Setup {
    store: Arc<LocalStore>,
    broker: Arc<MemoryBroker>,
    reference: ModelRef,
    keys: Vec<String>,
    report: Option<Vec<f32>>,
}

async fn setup(
    dir: &std::path::Path,
    card_json: &[u8],
    card: &ModelCard,
    onnx: &[u8],
    tiles: &[Vec<u8>],
) -> Setup {
    let store = Arc::new(LocalStore::open(dir).await.unwrap());
    store
        .put(&card.onnx_key(), Bytes::from(onnx.to_vec()))
        .await
        .unwrap();
    let key = card_key(&card.name, &card.version);
    store
        .put(&key, Bytes::from(card_json.to_vec()))
        .await
        .unwrap();
    store
        .put(&manifest_key("bench.0001"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let mut keys = Vec::new();
    for (i, t) in tiles.iter().enumerate() {
        let k = format!("archives/bench.0001/tiles/c{}/{i}.jpg", i / 64);
        store.put(&k, Bytes::from(t.clone())).await.unwrap();
        keys.push(k);
    }
    let broker = Arc::new(MemoryBroker::new(QueueNames::default(), 5));
    broker.declare().await.unwrap();
    let reference = ModelRef {
        name: card.name.clone(),
        version: card.version.clone(),
        card_key: key,
        onnx_sha256: card.onnx_sha256.clone(),
    };
    let report = (card.report_width() > 0).then(|| vec![0.0; card.report_width()]);
    Setup {
        store,
        broker,
        reference,
        keys,
        report,
    }
}

fn job(setup: &Setup, index: usize, tiles: usize) -> Job {
    let run_id = Uuid::from_u128(7);
    let keys: Vec<String> = (0..tiles)
        .map(|t| setup.keys[(index * tiles + t) % setup.keys.len()].clone())
        .collect();
    let cases = keys
        .chunks(32)
        .enumerate()
        .map(|(c, k)| JobCase {
            case_id: format!("c{c}"),
            part: 0,
            tiles: k.to_vec(),
            report: setup.report.clone(),
        })
        .collect();
    Job {
        run_id,
        job_id: Uuid::new_v5(&run_id, format!("{index}").as_bytes()),
        index: index as u32,
        model: setup.reference.clone(),
        archive_id: "bench.0001".into(),
        cases,
        traceparent: None,
    }
}

/// Wait for `n` results; returns the tiles they account for.
async fn take_results(broker: &MemoryBroker, n: usize) -> u64 {
    let mut sub = broker.subscribe(&broker.queues().results, 0).await.unwrap();
    let mut tiles = 0;
    for _ in 0..n {
        let d = sub.next().await.unwrap();
        if let Message::Result(r) = wire::decode(&d.body).unwrap() {
            assert!(r.tile_failures.is_empty(), "{:?}", r.tile_failures.first());
            tiles += r.cases.iter().map(|c| c.tiles_ok).sum::<u64>();
        }
        d.acker.ack().await.unwrap();
    }
    tiles
}

/// Tiles per second through the whole worker (LocalStore, MemoryBroker).
async fn end_to_end(
    setup: &Setup,
    runtime: Arc<Runtime>,
    config: WorkerConfig,
    jobs: usize,
    job_tiles: usize,
) -> f64 {
    let deps = WorkerDeps {
        store: setup.store.clone(),
        broker: setup.broker.clone(),
        runtime,
        metrics: WorkerMetrics::register(&prometheus::Registry::new()).unwrap(),
        health: Health::default(),
    };
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(nodal_worker::run_worker(config, deps, shutdown.clone()));
    let jobs_queue = setup.broker.queues().jobs.clone();
    let publish = |j: Job| {
        let broker = setup.broker.clone();
        let queue = jobs_queue.clone();
        async move {
            broker
                .publish(&queue, Bytes::from(wire::encode(&Message::Job(j)).unwrap()))
                .await
                .unwrap()
        }
    };
    publish(job(setup, 10_000, 64)).await; // warm-up: loads the model
    take_results(&setup.broker, 1).await;
    let started = Instant::now();
    for i in 0..jobs {
        publish(job(setup, i, job_tiles)).await;
    }
    let tiles = take_results(&setup.broker, jobs).await;
    let rate = tiles as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    worker.await.unwrap().unwrap();
    rate
}

fn main() {
    let name = std::env::var("NODAL_BENCH_MODEL").unwrap_or_else(|_| "cytology-origin".into());
    let jobs = setting("NODAL_BENCH_JOBS", 16);
    let job_tiles = setting("NODAL_BENCH_JOB_TILES", 256);
    let distinct = setting("NODAL_BENCH_TILES", 512);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(&name);
    let card_json = std::fs::read(dir.join("card.json")).unwrap();
    let card: ModelCard = serde_json::from_slice(&card_json).unwrap();
    let onnx = std::fs::read(dir.join(&card.onnx_file)).unwrap();
    let tiles: Vec<Vec<u8>> = (0..distinct as u32)
        .map(|i| tile(card.tile.size, i))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let runtime = Arc::new(Runtime::init(RuntimeConfig::default()).unwrap());
    let mut model = Model::from_card(&runtime, card.clone(), &onnx).unwrap();
    let intra = setting("NODAL_BENCH_INTRA_THREADS", 0);
    let decode_threads = setting("NODAL_BENCH_DECODE_THREADS", 0);
    let e2e_runtime = Arc::new(
        Runtime::init(RuntimeConfig {
            intra_threads: intra,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = rt.block_on(setup(tmp.path(), &card_json, &card, &onnx, &tiles));
    println!(
        "model {name}, {cores} cores, batch {}, {jobs} jobs x {job_tiles} tiles; end to end: intra-op threads {intra}, decode threads {decode_threads}",
        card.preferred_batch
    );
    // Other load on the machine only slows a measurement down: take the
    // best of each over interleaved rounds.
    let (mut c, mut d, mut e2e) = (0f64, 0f64, 0f64);
    for round in 1..=setting("NODAL_BENCH_ROUNDS", 3) {
        let round_d = decode_rate(&tiles, &card, cores);
        let round_c = inference_ceiling(&mut model, &tiles, card.preferred_batch);
        let mut config = WorkerConfig::new("bench");
        config.decode_threads = decode_threads;
        let round_e2e = rt.block_on(end_to_end(
            &setup,
            e2e_runtime.clone(),
            config,
            jobs,
            job_tiles,
        ));
        println!(
            "round {round}: d = {round_d:7.1}, c = {round_c:7.1}, end to end = {round_e2e:7.1} tiles/s"
        );
        (c, d, e2e) = (c.max(round_c), d.max(round_d), e2e.max(round_e2e));
    }
    let bound = 1.0 / (1.0 / c + 1.0 / d);
    println!("decode + normalise   d = {d:8.1} tiles/s");
    println!("inference ceiling    c = {c:8.1} tiles/s");
    println!("shared-core bound 1/(1/c+1/d) = {bound:8.1} tiles/s");
    println!(
        "end to end             = {e2e:8.1} tiles/s  ({:.2} of the bound; target >= 0.85)",
        e2e / bound
    );
}
