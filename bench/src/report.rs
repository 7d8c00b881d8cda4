//! What `nodal bench` reports: one structure, printed as a table or as JSON
//! (`--json`). Every field is always present; a mode that was not run is
//! `null`.

use nodal_worker::throughput::{EndToEnd, MemoryUse, StageTotals, Throughput};
use serde::Serialize;
use std::fmt::Write;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// nodal's version.
    pub nodal_version: String,
    /// The machine and its load.
    pub machine: Machine,
    /// The model measured.
    pub model: ModelInfo,
    /// `cpu` or `cuda:<ordinal>`.
    pub device: String,
    /// The settings in force.
    pub settings: Settings,
    /// The tiles and jobs.
    pub workload: WorkloadInfo,
    /// Inference alone on ready batches (`c`).
    pub ceiling: Option<Rate>,
    /// Decode + normalise alone (`d`).
    pub decode: Option<Rate>,
    /// The best end to end can do, from `c` and `d`.
    pub limit: Option<Limit>,
    /// The worker over the in-process broker and the workload's store.
    pub embedded: Option<EndToEndReport>,
    /// The worker over RabbitMQ and S3.
    pub distributed: Option<EndToEndReport>,
    /// Embedded end to end at 1× and 4× the tiles: the worker's memory.
    pub memory: Option<MemoryCheck>,
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// 1, 5 and 15 minute load averages when the bench started.
    pub load_average_start: [f64; 3],
    /// The same when it ended.
    pub load_average_end: [f64; 3],
}

/// The model measured.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Card name.
    pub name: String,
    /// Card version.
    pub version: String,
    /// SHA-256 of the ONNX file.
    pub onnx_sha256: String,
}

/// Settings of the measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Tiles per inference batch.
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads for the ceiling and a single worker (0: its default, one per core).
    pub intra_op_threads: usize,
    /// Decode threads for the decode rate (the whole machine's).
    pub decode_threads: usize,
    /// Worker tasks in end-to-end runs (they share the cores).
    pub workers: usize,
    /// Decode threads of each worker.
    pub worker_decode_threads: usize,
    /// Intra-op threads of each worker's sessions.
    pub worker_intra_op_threads: usize,
    /// Jobs each worker holds at once.
    pub prefetch: u16,
    /// Tiles being fetched or decoded at once, per worker.
    pub fetch_concurrency: usize,
    /// Partial-batch deadline, milliseconds.
    pub batch_deadline_ms: u64,
    /// Cap on the CUDA arena, MiB (CUDA only).
    pub cuda_mem_limit_mib: Option<usize>,
    /// Interleaved rounds; the best of each figure is kept.
    pub rounds: usize,
    /// Seconds each ceiling and decode measurement runs.
    pub window_s: f64,
}

/// The tiles and jobs measured.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadInfo {
    /// `synthetic` (`nodal synth` images, submitted) or `archive`.
    pub source: String,
    /// The archive ids.
    pub archives: Vec<String>,
    /// Where the archive is.
    pub store: String,
    /// Timed tiles per end-to-end run.
    pub tiles: usize,
    /// Timed jobs per end-to-end run.
    pub jobs: usize,
    /// Distinct tiles in the archives (tiles are repeated to reach `tiles`).
    pub distinct_tiles: usize,
    /// Tiles in the ceiling and decode sample.
    pub sample_tiles: usize,
    /// Mean stored size of the sampled tiles, bytes.
    pub mean_tile_bytes: f64,
}

/// A rate measured over interleaved rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    /// The best round, tiles per second.
    pub tiles_per_s: f64,
    /// The best round, tiles per second of the process's CPU time.
    pub tiles_per_cpu_s: f64,
    /// Every round, tiles per second.
    pub rounds: Vec<f64>,
    /// Cores kept busy (CPU time over wall time) in the best round.
    pub cores_busy: f64,
    /// Threads it ran on (0: ONNX Runtime's default).
    pub threads: usize,
}

impl Rate {
    /// The rate of `rounds` (none: `None`).
    pub fn of(rounds: &[Throughput], threads: usize) -> Option<Self> {
        let best = rounds
            .iter()
            .max_by(|a, b| a.tiles_per_s().total_cmp(&b.tiles_per_s()))?;
        Some(Self {
            tiles_per_s: best.tiles_per_s(),
            tiles_per_cpu_s: rounds
                .iter()
                .map(Throughput::tiles_per_cpu_s)
                .fold(0.0, f64::max),
            rounds: rounds.iter().map(Throughput::tiles_per_s).collect(),
            cores_busy: best.cores_busy(),
            threads,
        })
    }
}

/// The reference for end to end.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    /// Tiles per second.
    pub tiles_per_s: f64,
    /// Tiles per CPU-second, from `c` and `d` per CPU-second by the same
    /// formula (on a CPU: the CPU time a tile's decode and inference cost).
    pub tiles_per_cpu_s: f64,
    /// How it follows from `c` and `d`: `1/(1/c+1/d)` when decoding and
    /// inference share the CPU, `min(c,d)` when inference runs on a GPU.
    pub formula: String,
}

/// One end-to-end mode, from its best round.
#[derive(Debug, Clone, Serialize)]
pub struct EndToEndReport {
    /// The broker (no password).
    pub broker: String,
    /// The store.
    pub store: String,
    /// Worker tasks.
    pub workers: usize,
    /// The best round, tiles with an output per second.
    pub tiles_per_s: f64,
    /// Every round, tiles per second.
    pub rounds: Vec<f64>,
    /// `tiles_per_s` over the limit (when `c` and `d` were measured).
    pub ratio_to_limit: Option<f64>,
    /// The best round, tiles per second of the process's CPU time.
    pub tiles_per_cpu_s: f64,
    /// `tiles_per_cpu_s` over the limit's: the share of the CPU time spent
    /// on decode and inference proper (robust to other load on the machine).
    pub cpu_ratio_to_limit: Option<f64>,
    /// Cores kept busy (CPU time over wall time) in the best round.
    pub cores_busy: f64,
    /// Tiles with an output in the best round.
    pub tiles_ok: u64,
    /// Tiles recorded as failures in the best round (0 expected).
    pub tiles_failed: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Seconds from the first publish to the last result.
    pub elapsed_s: f64,
    /// Batches run.
    pub batches: u64,
    /// Mean tiles per batch.
    pub mean_batch_tiles: f64,
    /// Mean tiles per batch over the batch size.
    pub batch_fill: f64,
    /// Fraction of the wall time the inference threads were running a batch
    /// (summed over workers, so up to `workers`).
    pub infer_busy: f64,
    /// Ranged reads of tile shards in the best round (one per contiguous
    /// run of a job's tiles; retries not counted).
    pub shard_reads: u64,
    /// Tiles per ranged read.
    pub tiles_per_read: f64,
    /// Per-stage times.
    pub stages: Stages,
    /// The process's resident memory.
    pub memory: MemoryReport,
}

/// Per-stage times of one end-to-end run.
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    /// One ranged read of a shard, retries included.
    pub fetch: Stage,
    /// One tile's decode.
    pub decode: Stage,
    /// A decoded tile's wait for its batch to go.
    pub queue_wait: Stage,
    /// One batch through the model.
    pub infer: Stage,
    /// One result's publish with its confirm.
    pub publish: Stage,
}

/// One stage: observations, their total and mean.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Observations (tiles, batches or jobs).
    pub count: u64,
    /// Seconds in all.
    pub total_s: f64,
    /// Mean, milliseconds.
    pub mean_ms: f64,
}

impl From<StageTotals> for Stage {
    fn from(t: StageTotals) -> Self {
        Self {
            count: t.count,
            total_s: t.sum,
            mean_ms: t.mean() * 1e3,
        }
    }
}

/// Resident memory over one end-to-end run, bytes.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Before the workers started.
    pub rss_before_bytes: u64,
    /// After the warm-up job (model loaded, pools started).
    pub rss_after_warmup_bytes: u64,
    /// At the last result.
    pub rss_end_bytes: u64,
    /// Peak (VmHWM) over the timed stretch.
    pub peak_rss_bytes: u64,
    /// Peak minus the size after the warm-up.
    pub growth_bytes: u64,
    /// Whether the peak could be reset after the warm-up (else it counts
    /// from the process's start).
    pub peak_reset: bool,
}

impl From<MemoryUse> for MemoryReport {
    fn from(m: MemoryUse) -> Self {
        Self {
            rss_before_bytes: m.before_bytes,
            rss_after_warmup_bytes: m.after_warmup_bytes,
            rss_end_bytes: m.end_bytes,
            peak_rss_bytes: m.peak_bytes,
            growth_bytes: m.growth_bytes(),
            peak_reset: m.peak_reset,
        }
    }
}

/// Embedded end to end at 1× and 4× the tiles, each in fresh workers.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryCheck {
    /// Tiles of the 1× run.
    pub tiles_1x: usize,
    /// Tiles of the 4× run.
    pub tiles_4x: usize,
    /// Memory over the 1× run.
    pub run_1x: MemoryReport,
    /// Memory over the 4× run.
    pub run_4x: MemoryReport,
    /// Peak of the 4× run over the peak of the 1× run.
    pub peak_ratio_4x_to_1x: f64,
}

impl EndToEndReport {
    /// The report of the best of `runs` (at least one).
    pub fn best_of(
        runs: &[EndToEnd],
        broker: String,
        store: String,
        workers: usize,
        limit: Option<&Limit>,
    ) -> Option<Self> {
        let best = runs
            .iter()
            .max_by(|a, b| a.tiles_per_s().total_cmp(&b.tiles_per_s()))?;
        let rate = best.tiles_per_s();
        let per_cpu = runs
            .iter()
            .map(|r| r.throughput.tiles_per_cpu_s())
            .fold(0.0, f64::max);
        let s = &best.stages;
        let elapsed = best.throughput.elapsed.as_secs_f64();
        let ratio = |value: f64, of: f64| (of > 0.0).then(|| value / of);
        Some(Self {
            broker,
            store,
            workers,
            tiles_per_s: rate,
            rounds: runs.iter().map(EndToEnd::tiles_per_s).collect(),
            ratio_to_limit: limit.and_then(|l| ratio(rate, l.tiles_per_s)),
            tiles_per_cpu_s: per_cpu,
            cpu_ratio_to_limit: limit.and_then(|l| ratio(per_cpu, l.tiles_per_cpu_s)),
            cores_busy: best.throughput.cores_busy(),
            tiles_ok: best.throughput.tiles,
            tiles_failed: best.tiles_failed,
            first_failure: best.first_failure.clone(),
            elapsed_s: elapsed,
            batches: s.batch_size.count,
            mean_batch_tiles: s.batch_size.mean(),
            batch_fill: s.batch_fill.mean(),
            infer_busy: s.infer.sum / elapsed.max(1e-9),
            shard_reads: s.fetch.count,
            tiles_per_read: best.throughput.tiles as f64 / s.fetch.count.max(1) as f64,
            stages: Stages {
                fetch: s.fetch.into(),
                decode: s.decode.into(),
                queue_wait: s.queue_wait.into(),
                infer: s.infer.into(),
                publish: s.publish.into(),
            },
            memory: best.memory.into(),
        })
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn load(l: [f64; 3]) -> String {
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

impl BenchReport {
    /// The report as a human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let w = &self.workload;
        let _ = writeln!(
            out,
            "nodal bench: {} {} on {}, {} cores (load {} at start, {} at end)",
            self.model.name,
            self.model.version,
            self.device,
            self.machine.cores,
            load(self.machine.load_average_start),
            load(self.machine.load_average_end)
        );
        let _ = writeln!(
            out,
            "workload: {} tiles in {} jobs ({}: {} distinct tiles, mean {:.1} KB, in {})",
            w.tiles,
            w.jobs,
            w.source,
            w.distinct_tiles,
            w.mean_tile_bytes / 1e3,
            w.store
        );
        let _ = writeln!(
            out,
            "settings: batch {}, intra-op threads {}, decode threads {}; {} worker(s) × ({} decode, {} intra-op); best of {} round(s)\n",
            s.batch_size,
            threads(s.intra_op_threads),
            s.decode_threads,
            s.workers,
            s.worker_decode_threads,
            threads(s.worker_intra_op_threads),
            s.rounds
        );
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>8} {:>9} {:>8} {:>7} {:>6} {:>6} {:>9}",
            "",
            "tiles/s",
            "of limit",
            "tiles/CPUs",
            "of limit",
            "cores",
            "fill",
            "infer",
            "peak RSS"
        );
        let rates = [
            ("decode + normalise (d)", &self.decode),
            ("inference ceiling (c)", &self.ceiling),
        ];
        for (name, r) in rates {
            if let Some(r) = r {
                let _ = writeln!(
                    out,
                    "{name:<28} {:>9.1} {:>8} {:>10.1} {:>8} {:>7.2}",
                    r.tiles_per_s, "", r.tiles_per_cpu_s, "", r.cores_busy
                );
            }
        }
        if let Some(l) = &self.limit {
            let _ = writeln!(
                out,
                "{:<28} {:>9.1} {:>8} {:>10.1}",
                format!("limit {}", l.formula),
                l.tiles_per_s,
                "",
                l.tiles_per_cpu_s
            );
        }
        let ratio = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}"));
        for (name, e) in self.end_to_end() {
            let _ = writeln!(
                out,
                "{:<28} {:>9.1} {:>8} {:>10.1} {:>8} {:>7.2} {:>6.2} {:>6.2} {:>9}",
                name,
                e.tiles_per_s,
                ratio(e.ratio_to_limit),
                e.tiles_per_cpu_s,
                ratio(e.cpu_ratio_to_limit),
                e.cores_busy,
                e.batch_fill,
                e.infer_busy,
                mib(e.memory.peak_rss_bytes)
            );
        }
        if self.embedded.is_some() || self.distributed.is_some() {
            let _ = writeln!(
                out,
                "\nstages (mean ms)             fetch/read decode/tile  wait/tile infer/batch publish/job  tiles/read"
            );
            for (name, e) in self.end_to_end() {
                let st = &e.stages;
                let _ = writeln!(
                    out,
                    "{:<28} {:>10.3} {:>11.3} {:>10.3} {:>11.2} {:>11.2} {:>11.1}",
                    name,
                    st.fetch.mean_ms,
                    st.decode.mean_ms,
                    st.queue_wait.mean_ms,
                    st.infer.mean_ms,
                    st.publish.mean_ms,
                    e.tiles_per_read
                );
            }
            for (name, e) in self.end_to_end() {
                if e.tiles_failed > 0 {
                    let _ = writeln!(
                        out,
                        "{name}: {} tile(s) failed, first: {}",
                        e.tiles_failed,
                        e.first_failure.as_deref().unwrap_or("?")
                    );
                }
            }
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "\nmemory (embedded): {} tiles peak {} (+{} over the warmed-up {}); {} tiles peak {} (+{}); 4×/1× peak {:.2}",
                m.tiles_1x,
                mib(m.run_1x.peak_rss_bytes),
                mib(m.run_1x.growth_bytes),
                mib(m.run_1x.rss_after_warmup_bytes),
                m.tiles_4x,
                mib(m.run_4x.peak_rss_bytes),
                mib(m.run_4x.growth_bytes),
                m.peak_ratio_4x_to_1x
            );
        }
        out
    }

    fn end_to_end(&self) -> impl Iterator<Item = (String, &EndToEndReport)> {
        [
            ("embedded", &self.embedded),
            ("distributed", &self.distributed),
        ]
        .into_iter()
        .filter_map(|(name, e)| {
            e.as_ref()
                .map(|e| (format!("{name} ({} worker(s))", e.workers), e))
        })
    }
}

fn threads(n: usize) -> String {
    if n == 0 {
        "ORT default".into()
    } else {
        n.to_string()
    }
}
