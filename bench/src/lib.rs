//! `nodal bench`: how fast the worker runs a model, against its limits.
//!
//! For a model and an archive (or synthetic tiles: `nodal synth` images
//! submitted as `nodal submit` does and planned as the coordinator plans
//! runs), it measures in interleaved rounds, keeping the best of each:
//!
//! - `ceiling`: `Model::run` on ready batches at the configured batch size
//!   and intra-op threads (`c`);
//! - `decode`: decode + normalise alone on the decode threads (`d`);
//! - `embedded`: the real worker over the in-process broker and the local
//!   store, from the jobs' publish to the last result;
//! - `distributed`: the same over RabbitMQ (queues unique to the run,
//!   deleted after) and S3 (an s3s-fs started here, or `--store s3://…`);
//! - `memory`: embedded at 1× and 4× the tiles, comparing peak RSS.
//!
//! and prints tiles/s, end to end over the limit (`1/(1/c+1/d)` on a CPU,
//! where decoding and inference share the cores; `min(c,d)` on a GPU), batch
//! fill, per-stage times and peak RSS, as a table or as JSON (`--json`).
//! The measurements themselves are `nodal_worker::throughput`'s.

mod report;
mod servers;
mod workload;

pub use report::BenchReport;

use anyhow::{Context, bail};
use nodal_common::broker::{
    Broker, DEFAULT_DELIVERY_LIMIT, MemoryBroker, QueueNames, RabbitConfig, SharedBroker,
};
use nodal_common::store::{S3Store, SharedStore};
use nodal_coordinator::run::engine::DEFAULT_JOB_TILES;
use nodal_testkit::{S3Server, UniqueQueues};
use nodal_types::layout::{card_key, manifest_key};
use nodal_worker::config::{DEFAULT_PIPELINES, share_threads};
use nodal_worker::throughput::{self, EndToEnd, Throughput};
use nodal_worker::{
    Device, Health, Model, Runtime, RuntimeConfig, WorkerConfig, WorkerDeps, WorkerMetrics,
};
use report::{
    EndToEndReport, Limit, Machine, MemoryCheck, ModelInfo, Rate, Settings, WorkloadInfo,
};
use servers::open_store_url;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use workload::{Prepared, Source};

/// Timed tiles per end-to-end run when the tiles are synthetic.
pub const DEFAULT_TILES: usize = 4096;
/// The local RabbitMQ of the development machines.
const LOCAL_RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// What `nodal bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inference alone on ready batches.
    Ceiling,
    /// Decode + normalise alone.
    Decode,
    /// The worker over the in-process broker and the local store.
    Embedded,
    /// The worker over RabbitMQ and S3.
    Distributed,
    /// Embedded at 1× and 4× the tiles: does the worker's memory stay flat?
    Memory,
}

impl FromStr for Mode {
    type Err = String;

    /// `ceiling`, `decode`, `embedded`, `distributed` or `memory`.
    fn from_str(name: &str) -> Result<Self, String> {
        Ok(match name {
            "ceiling" => Self::Ceiling,
            "decode" => Self::Decode,
            "embedded" => Self::Embedded,
            "distributed" => Self::Distributed,
            "memory" => Self::Memory,
            _ => {
                return Err(format!(
                    "unknown mode {name:?}: expected ceiling, decode, embedded, distributed or memory"
                ));
            }
        })
    }
}

/// Default measurement rounds (the best of each figure is kept).
pub const DEFAULT_ROUNDS: usize = 3;
/// Default seconds each ceiling and decode measurement runs.
pub const DEFAULT_WINDOW_SECS: f64 = 3.0;
/// Default seed of the synthetic archive.
pub const DEFAULT_SEED: u64 = 42;

/// What `nodal bench` measures, and how. Build with [`BenchConfig::new`].
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The model: `cytology-origin` or `ptc-ln` (built in; `name@version`
    /// works too), or a folder holding `card.json` and the ONNX file.
    pub model: String,
    /// Timed tiles per end-to-end run [`None`: 4096 synthetic tiles; with
    /// archives, every runnable tile].
    pub tiles: Option<usize>,
    /// Archives (ids in `store`) to measure instead of synthetic tiles.
    pub archive: Vec<String>,
    /// The store URL holding `archive`; an `s3://` store is also the
    /// distributed mode's store.
    pub store: Option<String>,
    /// What to measure.
    pub mode: Vec<Mode>,
    /// RabbitMQ URL for the distributed mode [`None`: the local broker as guest].
    pub broker: Option<String>,
    /// Tiles per job, as the coordinator plans them.
    pub job_tiles: usize,
    /// Interleaved rounds; the best of each figure is kept.
    pub rounds: usize,
    /// Seconds each ceiling and decode measurement runs.
    pub window_secs: f64,
    /// Synth scale of the synthetic archive [`None`: cytology 0.004, ultrasound 0.05].
    pub synth_scale: Option<f64>,
    /// Synth seed of the synthetic archive.
    pub seed: u64,
    /// Folder for the synthetic archive and the S3 server's data, kept
    /// [`None`: a temporary folder, removed after].
    pub work_dir: Option<PathBuf>,
    /// ONNX Runtime as the ceiling measurement uses it (all the intra-op
    /// threads); the pipelines share the threads out.
    pub runtime: RuntimeConfig,
    /// The settings every pipeline starts from (prefetch, batch size and
    /// deadline, fetch concurrency, decode threads: 0 for one per core).
    pub pipeline: WorkerConfig,
    /// Pipelines in the process for the end-to-end modes.
    pub pipelines: usize,
}

impl BenchConfig {
    /// The defaults, for `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            tiles: None,
            archive: Vec::new(),
            store: None,
            mode: vec![Mode::Ceiling, Mode::Decode, Mode::Embedded],
            broker: None,
            job_tiles: DEFAULT_JOB_TILES,
            rounds: DEFAULT_ROUNDS,
            window_secs: DEFAULT_WINDOW_SECS,
            synth_scale: None,
            seed: DEFAULT_SEED,
            work_dir: None,
            runtime: RuntimeConfig::default(),
            pipeline: WorkerConfig::new("bench"),
            pipelines: DEFAULT_PIPELINES,
        }
    }
}

/// Everything the rounds need.
struct Bench<'a> {
    args: &'a BenchConfig,
    prepared: Prepared,
    timed: throughput::Workload,
    runtime: Arc<Runtime>,
    worker_runtime: Arc<Runtime>,
    configs: Vec<WorkerConfig>,
    batch: usize,
    decode_threads: usize,
}

/// Measure what `args` asks for.
pub async fn measure(args: &BenchConfig) -> anyhow::Result<BenchReport> {
    args.check()?;
    let load_average_start = load_average();
    let work = WorkDir::new(args.work_dir.clone())?;
    let source = args.source(work.path()).await?;
    step("preparing the archive, the model and the jobs");
    let prepared = workload::prepare(&source, &args.model).await?;
    let tiles = args
        .tiles
        .or(args.archive.is_empty().then_some(DEFAULT_TILES));
    let timed = prepared.workload(tiles, args.job_tiles)?;
    let cores = cores();
    let workers = args.pipelines;
    let decode_threads = if args.pipeline.decode_threads == 0 {
        cores
    } else {
        args.pipeline.decode_threads
    };
    let runtime = Arc::new(Runtime::init(args.runtime.clone())?);
    let worker_intra = if workers == 1 {
        args.runtime.intra_threads
    } else {
        share_threads(args.runtime.intra_threads, workers)
    };
    let worker_runtime = if workers == 1 {
        runtime.clone()
    } else {
        Arc::new(Runtime::init(RuntimeConfig {
            intra_threads: worker_intra,
            ..args.runtime.clone()
        })?)
    };
    let batch = args
        .pipeline
        .batch_size
        .unwrap_or(prepared.card.preferred_batch);
    let worker_decode = (decode_threads / workers).max(1);
    let configs = (0..workers)
        .map(|i| args.worker_config(i, batch, worker_decode))
        .collect();
    let bench = Bench {
        args,
        prepared,
        timed,
        runtime,
        worker_runtime,
        configs,
        batch,
        decode_threads,
    };
    let distributed = if args.mode.contains(&Mode::Distributed) {
        step("starting the distributed setup (RabbitMQ queues, S3)");
        Some(Distributed::start(args, &bench.prepared).await?)
    } else {
        None
    };
    let measured = bench.rounds(distributed.as_ref()).await;
    if let Some(d) = distributed {
        d.stop().await;
    }
    let rounds = measured?;
    let memory = if args.mode.contains(&Mode::Memory) {
        Some(bench.memory_check(tiles).await?)
    } else {
        None
    };
    Ok(bench.report(
        rounds,
        memory,
        [load_average_start, load_average()],
        worker_intra,
        worker_decode,
    ))
}

/// Every round's figures.
#[derive(Debug, Default)]
struct Rounds {
    ceiling: Vec<Throughput>,
    decode: Vec<Throughput>,
    embedded: Vec<EndToEnd>,
    distributed: Vec<EndToEnd>,
    distributed_names: Option<(String, String)>,
}

impl Bench<'_> {
    async fn rounds(&self, distributed: Option<&Distributed>) -> anyhow::Result<Rounds> {
        let args = self.args;
        let window = Duration::from_secs_f64(args.window_secs);
        let mut model = if args.mode.contains(&Mode::Ceiling) {
            let (runtime, card, onnx) = (
                self.runtime.clone(),
                self.prepared.card.clone(),
                self.prepared.onnx.clone(),
            );
            Some(
                tokio::task::spawn_blocking(move || Model::from_card(&runtime, card, &onnx))
                    .await
                    .context("loading the model")??,
            )
        } else {
            None
        };
        let mut rounds = Rounds {
            distributed_names: distributed.map(|d| (d.broker_name.clone(), d.store_name.clone())),
            ..Rounds::default()
        };
        for round in 1..=args.rounds {
            let mut line = format!("round {round}/{}:", args.rounds);
            if args.mode.contains(&Mode::Decode) {
                let (sample, card) = (self.prepared.sample.clone(), self.prepared.card.clone());
                let threads = self.decode_threads;
                let d = tokio::task::spawn_blocking(move || {
                    throughput::decode_rate(&sample, &card, threads, window)
                })
                .await
                .context("the decode measurement")??;
                line.push_str(&format!(" d {:.1}", d.tiles_per_s()));
                rounds.decode.push(d);
            }
            if let Some(m) = model.take() {
                let (sample, report, batch) = (
                    self.prepared.sample.clone(),
                    self.prepared.report.clone(),
                    self.batch,
                );
                let (m, c) = tokio::task::spawn_blocking(move || {
                    let mut m = m;
                    let c = throughput::inference_ceiling(
                        &mut m,
                        &sample,
                        report.as_deref(),
                        batch,
                        window,
                    );
                    (m, c)
                })
                .await
                .context("the ceiling measurement")?;
                let c = c?;
                line.push_str(&format!(" c {:.1}", c.tiles_per_s()));
                rounds.ceiling.push(c);
                model = Some(m);
            }
            if args.mode.contains(&Mode::Embedded) {
                let e = self.embedded(&self.timed).await?;
                line.push_str(&format!(" embedded {:.1}", e.tiles_per_s()));
                rounds.embedded.push(e);
            }
            if let Some(d) = distributed {
                let deps = self.deps(d.store.clone(), d.broker.clone())?;
                let e = throughput::end_to_end(&deps, &self.configs, &self.timed).await?;
                line.push_str(&format!(" distributed {:.1}", e.tiles_per_s()));
                rounds.distributed.push(e);
            }
            step(&format!("{line} tiles/s"));
        }
        Ok(rounds)
    }

    fn deps(&self, store: SharedStore, broker: SharedBroker) -> anyhow::Result<WorkerDeps> {
        Ok(WorkerDeps {
            store,
            broker,
            runtime: self.worker_runtime.clone(),
            metrics: WorkerMetrics::register(&prometheus::Registry::new())?,
            health: Health::default(),
        })
    }

    /// One embedded run: a fresh in-process broker, the workload's store.
    async fn embedded(&self, workload: &throughput::Workload) -> anyhow::Result<EndToEnd> {
        let broker = Arc::new(MemoryBroker::new(QueueNames::default(), 5));
        broker.declare().await?;
        let deps = self.deps(self.prepared.store.clone(), broker)?;
        Ok(throughput::end_to_end(&deps, &self.configs, workload).await?)
    }

    async fn memory_check(&self, tiles: Option<usize>) -> anyhow::Result<MemoryCheck> {
        let tiles_1x = tiles.unwrap_or_else(|| self.timed.tile_count());
        let four = self
            .prepared
            .workload(Some(4 * tiles_1x), self.args.job_tiles)?;
        step(&format!("memory: embedded over {tiles_1x} tiles"));
        let run_1x = self.embedded(&self.timed).await?.memory;
        step(&format!("memory: embedded over {} tiles", 4 * tiles_1x));
        let run_4x = self.embedded(&four).await?.memory;
        Ok(MemoryCheck {
            tiles_1x,
            tiles_4x: 4 * tiles_1x,
            run_1x: run_1x.into(),
            run_4x: run_4x.into(),
            peak_ratio_4x_to_1x: run_4x.peak_bytes as f64 / run_1x.peak_bytes.max(1) as f64,
        })
    }

    fn report(
        &self,
        rounds: Rounds,
        memory: Option<MemoryCheck>,
        loads: [[f64; 3]; 2],
        worker_intra: usize,
        worker_decode: usize,
    ) -> BenchReport {
        let args = self.args;
        let ceiling = Rate::of(&rounds.ceiling, args.runtime.intra_threads);
        let decode = Rate::of(&rounds.decode, self.decode_threads);
        let limit = match (&ceiling, &decode) {
            (Some(c), Some(d)) => Some(match args.runtime.device {
                Device::Cpu => Limit {
                    tiles_per_s: throughput::shared_core_limit(c.tiles_per_s, d.tiles_per_s),
                    tiles_per_cpu_s: throughput::shared_core_limit(
                        c.tiles_per_cpu_s,
                        d.tiles_per_cpu_s,
                    ),
                    formula: "1/(1/c+1/d)".into(),
                },
                Device::Cuda { .. } => Limit {
                    tiles_per_s: c.tiles_per_s.min(d.tiles_per_s),
                    tiles_per_cpu_s: d.tiles_per_cpu_s,
                    formula: "min(c,d)".into(),
                },
            }),
            _ => None,
        };
        let p = &self.prepared;
        let workers = self.configs.len();
        let embedded = EndToEndReport::best_of(
            &rounds.embedded,
            "memory://".into(),
            p.store.describe(),
            workers,
            limit.as_ref(),
        );
        let distributed = rounds.distributed_names.and_then(|(broker, store)| {
            EndToEndReport::best_of(&rounds.distributed, broker, store, workers, limit.as_ref())
        });
        BenchReport {
            nodal_version: nodal_types::NODAL_VERSION.to_string(),
            machine: Machine {
                cores: cores(),
                load_average_start: loads[0],
                load_average_end: loads[1],
            },
            model: ModelInfo {
                name: p.card.name.clone(),
                version: p.card.version.clone(),
                onnx_sha256: p.card.onnx_sha256.clone(),
            },
            device: match args.runtime.device {
                Device::Cpu => "cpu".into(),
                Device::Cuda { device_id } => format!("cuda:{device_id}"),
            },
            settings: Settings {
                batch_size: self.batch,
                intra_op_threads: args.runtime.intra_threads,
                decode_threads: self.decode_threads,
                workers,
                worker_decode_threads: worker_decode,
                worker_intra_op_threads: worker_intra,
                prefetch: args.pipeline.prefetch,
                fetch_concurrency: args.pipeline.fetch_concurrency,
                batch_deadline_ms: args.pipeline.batch_deadline.as_millis() as u64,
                cuda_mem_limit_mib: args.runtime.cuda_mem_limit.map(|bytes| bytes >> 20),
                rounds: args.rounds,
                window_s: args.window_secs,
            },
            workload: WorkloadInfo {
                source: if args.archive.is_empty() {
                    "synthetic".into()
                } else {
                    "archive".into()
                },
                archives: p.manifests.iter().map(|m| m.archive_id.clone()).collect(),
                store: p.store.describe(),
                tiles: self.timed.tile_count(),
                jobs: self.timed.jobs.len(),
                distinct_tiles: p.distinct_tiles,
                sample_tiles: p.sample.len(),
                mean_tile_bytes: p.mean_tile_bytes(),
            },
            ceiling,
            decode,
            limit,
            embedded,
            distributed,
            memory,
        }
    }
}

impl BenchConfig {
    /// Refuse settings that cannot be measured.
    fn check(&self) -> anyhow::Result<()> {
        if self.mode.is_empty() {
            bail!("--mode names nothing to measure");
        }
        for (name, value) in [
            ("--pipelines", self.pipelines),
            ("--rounds", self.rounds),
            ("--job-tiles", self.job_tiles),
            ("--tiles", self.tiles.unwrap_or(1)),
            ("--batch-size", self.pipeline.batch_size.unwrap_or(1)),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if !(self.window_secs.is_finite() && self.window_secs > 0.0) {
            bail!("--window-secs must be a positive number of seconds");
        }
        if !self.archive.is_empty() && self.store.is_none() {
            bail!("--archive needs --store, the store that holds it");
        }
        Ok(())
    }

    async fn source(&self, work: &Path) -> anyhow::Result<Source> {
        if self.archive.is_empty() {
            return Ok(Source::Synthetic {
                scale: self.synth_scale,
                seed: self.seed,
                dir: work.to_path_buf(),
            });
        }
        let url = self.store.as_deref().unwrap_or_default();
        Ok(Source::Archives {
            ids: self.archive.clone(),
            store: open_store_url(url).await?,
        })
    }

    fn worker_config(&self, index: usize, batch: usize, decode_threads: usize) -> WorkerConfig {
        let mut config = self.pipeline.clone();
        config.worker_id = format!("bench-{index}");
        config.batch_size = Some(batch);
        config.decode_threads = decode_threads;
        config
    }
}

/// RabbitMQ queues for the run and the S3 store the archive is copied to.
struct Distributed {
    broker: SharedBroker,
    queues: UniqueQueues,
    store: SharedStore,
    broker_name: String,
    store_name: String,
    /// The S3 server started for the run, if any (stopped when dropped).
    _server: Option<S3Server>,
}

impl Distributed {
    async fn start(args: &BenchConfig, prepared: &Prepared) -> anyhow::Result<Self> {
        let url = args.broker.as_deref().unwrap_or(LOCAL_RABBITMQ);
        let given = args.store.as_deref().filter(|u| u.starts_with("s3://"));
        let (store, server, store_name) = match given {
            Some(url) => (open_store_url(url).await?, None, url.to_string()),
            None => {
                let server = S3Server::start().await?;
                let store: SharedStore =
                    Arc::new(S3Store::connect(&server.plain_config("bench")).await?);
                let name = store.describe();
                (store, Some(server), name)
            }
        };
        let same_store = given.is_some() && !args.archive.is_empty();
        if !same_store {
            let mut keys: Vec<String> = prepared
                .manifests
                .iter()
                .map(|m| manifest_key(&m.archive_id))
                .collect();
            keys.push(prepared.card.onnx_key());
            keys.push(card_key(&prepared.card.name, &prepared.card.version));
            keys.extend(prepared.shards.iter().cloned());
            step(&format!("copying {} objects to {store_name}", keys.len()));
            workload::copy(&prepared.store, &store, &keys).await?;
        }
        let queues = UniqueQueues::new(url, "nodal-bench");
        let broker = queues.connect(DEFAULT_DELIVERY_LIMIT).await?;
        Ok(Self {
            broker,
            queues,
            store,
            broker_name: RabbitConfig::new(url).describe(),
            store_name,
            _server: server,
        })
    }

    /// Delete the queues (a failure is reported, not fatal).
    async fn stop(self) {
        drop(self.broker);
        if let Err(e) = self.queues.cleanup().await {
            eprintln!("warning: could not delete the bench queues: {e:#}");
        }
    }
}

/// The working folder: the one given (kept), or a temporary one (removed).
struct WorkDir {
    path: PathBuf,
    remove: bool,
}

impl WorkDir {
    fn new(given: Option<PathBuf>) -> anyhow::Result<Self> {
        let (path, remove) = match given {
            Some(path) => (path, false),
            None => (
                std::env::temp_dir().join(format!(
                    "nodal-bench-{}-{}",
                    std::process::id(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                )),
                true,
            ),
        };
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, remove })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn step(message: &str) {
    eprintln!("==> {message}");
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15 minute load averages (zeros where `/proc` has none).
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    [(); 3].map(|()| values.next().unwrap_or(0.0))
}
