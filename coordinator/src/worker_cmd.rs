//! `nodal worker`: the inference service. Consumes jobs, runs the model,
//! publishes results; serves `/metrics`, `/healthz` and `/readyz`; on
//! SIGTERM or SIGINT stops taking jobs and drains within the grace period.

use anyhow::Context;
use clap::{Args, ValueEnum};
use nodal_common::broker::BrokerArgs;
use nodal_common::store::StoreArgs;
use nodal_worker::config::{DEFAULT_FETCH_CONCURRENCY, DEFAULT_PREFETCH};
use nodal_worker::{
    Device, Health, Runtime, RuntimeConfig, WorkerConfig, WorkerDeps, WorkerMetrics,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// The CUDA execution provider (a build with `--features cuda` and a GPU).
    Cuda,
}

impl DeviceArg {
    /// The runtime's device for this choice; `cuda_device` is the GPU ordinal.
    pub fn device(self, cuda_device: i32) -> Device {
        match self {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda {
                device_id: cuda_device,
            },
        }
    }
}

/// Options of `nodal worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where tiles, manifests and models are read.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where jobs come from and results go.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Jobs held unacknowledged at once (the broker prefetch; bounds the jobs in flight).
    #[arg(long, env = "NODAL_PREFETCH", default_value_t = DEFAULT_PREFETCH)]
    pub prefetch: u16,
    /// Tiles per inference batch [default: the model card's preferred batch].
    #[arg(long, env = "NODAL_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Milliseconds a partial batch waits for more tiles, from its first tile.
    #[arg(long, env = "NODAL_BATCH_DEADLINE_MS", default_value_t = 10)]
    pub batch_deadline_ms: u64,
    /// Tiles being fetched or decoded at once, over all jobs.
    #[arg(long, env = "NODAL_FETCH_CONCURRENCY", default_value_t = DEFAULT_FETCH_CONCURRENCY)]
    pub fetch_concurrency: usize,
    /// Threads decoding tiles (0: one per core), shared out among the pipelines.
    #[arg(long, env = "NODAL_DECODE_THREADS", default_value_t = 0)]
    pub decode_threads: usize,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default, one per
    /// core), shared out among the pipelines.
    #[arg(long, env = "NODAL_INTRA_OP_THREADS", default_value_t = 0)]
    pub intra_op_threads: usize,
    /// Independent pipelines (consumer, batcher, model runs) in this process.
    /// On CPU, one per core overlaps one pipeline's inference with another's
    /// decoding (docs/benchmarks.md); each holds up to --prefetch jobs.
    #[arg(long, env = "NODAL_WORKER_PIPELINES", default_value_t = 1)]
    pub pipelines: usize,
    /// Where inference runs.
    #[arg(long, env = "NODAL_DEVICE", value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// CUDA device ordinal (with --device cuda).
    #[arg(long, env = "NODAL_CUDA_DEVICE", default_value_t = 0)]
    pub cuda_device: i32,
    /// Cap on the CUDA memory arena, MiB (with --device cuda) [default: no cap].
    #[arg(long, env = "NODAL_CUDA_MEM_LIMIT_MIB")]
    pub cuda_mem_limit_mib: Option<usize>,
    /// Seconds the jobs in hand get to finish after SIGTERM; what is left goes
    /// back to the queue (keep it under the pod's terminationGracePeriodSeconds).
    #[arg(
        long,
        alias = "grace-period",
        env = "NODAL_GRACE_PERIOD_SECS",
        default_value_t = 25
    )]
    pub grace_period_secs: u64,
    /// Address of /metrics, /healthz and /readyz (port 0 picks a free port).
    #[arg(long, env = "NODAL_WORKER_LISTEN", default_value = "0.0.0.0:9101")]
    pub listen: SocketAddr,
    /// This worker's name in results and logs [default: <hostname>-<pid>].
    #[arg(long, env = "NODAL_WORKER_ID")]
    pub worker_id: Option<String>,
    /// The ONNX Runtime library [default: $ORT_DYLIB_PATH, else .cache/onnxruntime/libonnxruntime.so.1.31.1].
    #[arg(long, env = "NODAL_ORT_DYLIB")]
    pub ort_dylib: Option<PathBuf>,
    /// Folders of model folders (`<name>/card.json` + ONNX file) tried before
    /// the store; a model is taken from one only when its hash is the job's.
    #[arg(
        long = "models-dir",
        env = "NODAL_WORKER_MODELS_DIRS",
        value_delimiter = ','
    )]
    pub models_dirs: Vec<PathBuf>,
}

impl WorkerArgs {
    /// The worker settings these flags describe, for one pipeline.
    pub fn worker_config(&self) -> WorkerConfig {
        let id = self.worker_id.clone().unwrap_or_else(default_worker_id);
        let mut config = WorkerConfig::new(id);
        config.prefetch = self.prefetch;
        config.batch_size = self.batch_size;
        config.batch_deadline = Duration::from_millis(self.batch_deadline_ms);
        config.fetch_concurrency = self.fetch_concurrency;
        config.decode_threads = self.decode_threads;
        config.grace_period = Duration::from_secs(self.grace_period_secs);
        config.model_dirs = self.models_dirs.clone();
        config
    }

    /// The settings of each of `--pipelines` pipelines: ids `<id>-p<i>` and
    /// the decode threads shared out (one pipeline: [`Self::worker_config`]).
    pub fn pipeline_configs(&self) -> anyhow::Result<Vec<WorkerConfig>> {
        let n = self.pipelines;
        if n == 0 {
            anyhow::bail!("--pipelines must be at least 1");
        }
        let one = self.worker_config();
        if n == 1 {
            return Ok(vec![one]);
        }
        let decode = share_threads(self.decode_threads, n);
        Ok((0..n)
            .map(|i| {
                let mut config = one.clone();
                config.worker_id = format!("{}-p{i}", one.worker_id);
                config.decode_threads = decode;
                config
            })
            .collect())
    }

    /// The ONNX Runtime settings these flags describe.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            dylib: self.ort_dylib.clone(),
            device: self.device.device(self.cuda_device),
            intra_threads: if self.pipelines > 1 {
                share_threads(self.intra_op_threads, self.pipelines)
            } else {
                self.intra_op_threads
            },
            cuda_mem_limit: self
                .cuda_mem_limit_mib
                .map(|mib| mib.saturating_mul(1 << 20)),
        }
    }
}

/// `threads` (0: one per core) shared out among `n` pipelines, at least one each.
pub(crate) fn share_threads(threads: usize, n: usize) -> usize {
    let total = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |c| c.get())
    } else {
        threads
    };
    (total / n.max(1)).max(1)
}

/// `<hostname>-<pid>`.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Run `nodal worker` until SIGTERM/SIGINT.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = crate::signals::shutdown_on_signals();
    serve(args, shutdown).await
}

/// Serve until `shutdown` is cancelled and the jobs in hand are settled.
pub async fn serve(args: WorkerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let configs = args.pipeline_configs()?;
    for config in &configs {
        config.validate()?;
    }
    tracing::info!(worker_id = %configs[0].worker_id, pipelines = configs.len(), store = ?args.store, broker = ?args.broker, device = ?args.device, "starting worker");
    let runtime = Runtime::init(args.runtime_config())?;
    tracing::info!(library = %runtime.dylib().display(), "ONNX Runtime loaded");
    let store = args
        .store
        .open()
        .await
        .context("opening the object store")?;
    let broker = args
        .broker
        .connect()
        .await
        .context("connecting to the broker")?;
    let registry = prometheus::Registry::new();
    let metrics = WorkerMetrics::register(&registry)?;
    let health = Health::default();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "worker endpoints listening (/metrics, /healthz, /readyz)");
    println!("worker endpoints on http://{addr}");
    let app = nodal_worker::http::router(registry, health.clone());
    let stop_serving = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop_serving.clone().cancelled_owned())
            .into_future(),
    );
    let deps = WorkerDeps {
        store,
        broker,
        runtime: Arc::new(runtime),
        metrics,
        health,
    };
    let pipelines = configs
        .into_iter()
        .map(|config| nodal_worker::run_worker(config, deps.clone(), shutdown.clone()));
    let outcomes = futures::future::join_all(pipelines).await;
    stop_serving.cancel();
    if let Ok(Err(e)) = server.await {
        tracing::warn!(error = %e, "the endpoints server stopped with an error");
    }
    for outcome in outcomes {
        let summary = outcome?;
        tracing::info!(?summary, "worker done");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        worker: WorkerArgs,
    }

    #[test]
    fn flags_fill_the_worker_and_runtime_settings() {
        let cli = Cli::try_parse_from([
            "nodal",
            "--prefetch",
            "2",
            "--batch-size",
            "16",
            "--batch-deadline-ms",
            "7",
            "--grace-period",
            "9",
            "--device",
            "cuda",
            "--cuda-device",
            "1",
            "--cuda-mem-limit-mib",
            "512",
            "--worker-id",
            "w-7",
            "--models-dir",
            "a,b",
            "--listen",
            "127.0.0.1:0",
        ])
        .expect("parses");
        let config = cli.worker.worker_config();
        assert_eq!(
            (
                config.prefetch,
                config.batch_size,
                config.worker_id.as_str()
            ),
            (2, Some(16), "w-7")
        );
        assert_eq!(
            (config.batch_deadline, config.grace_period),
            (Duration::from_millis(7), Duration::from_secs(9))
        );
        assert_eq!(config.model_dirs, [PathBuf::from("a"), PathBuf::from("b")]);
        let runtime = cli.worker.runtime_config();
        assert_eq!(runtime.device, Device::Cuda { device_id: 1 });
        assert_eq!(runtime.cuda_mem_limit, Some(512 << 20));
        assert_eq!(cli.worker.listen.port(), 0);
    }

    #[test]
    fn pipelines_share_the_threads_out() {
        let parse =
            |flags: &[&str]| Cli::try_parse_from(["nodal"].iter().chain(flags)).expect("parses");
        let cli = parse(&[
            "--pipelines",
            "2",
            "--decode-threads",
            "4",
            "--intra-op-threads",
            "2",
            "--worker-id",
            "w",
        ]);
        let configs = cli.worker.pipeline_configs().expect("configs");
        let ids: Vec<&str> = configs.iter().map(|c| c.worker_id.as_str()).collect();
        assert_eq!(ids, ["w-p0", "w-p1"]);
        assert!(configs.iter().all(|c| c.decode_threads == 2));
        assert_eq!(cli.worker.runtime_config().intra_threads, 1);
        let one = parse(&["--worker-id", "w", "--decode-threads", "3"]);
        let configs = one.worker.pipeline_configs().expect("configs");
        assert_eq!(
            (
                configs.len(),
                configs[0].worker_id.as_str(),
                configs[0].decode_threads
            ),
            (1, "w", 3)
        );
        let err = parse(&["--pipelines", "0"])
            .worker
            .pipeline_configs()
            .unwrap_err();
        assert!(err.to_string().contains("--pipelines"), "{err}");
    }

    #[test]
    fn the_default_id_names_host_and_process() {
        let cli = Cli::try_parse_from(["nodal"]).expect("parses");
        let config = cli.worker.worker_config();
        assert!(
            config
                .worker_id
                .ends_with(&format!("-{}", std::process::id())),
            "{}",
            config.worker_id
        );
        assert_eq!(config.grace_period, Duration::from_secs(25));
        assert_eq!(cli.worker.device, DeviceArg::Cpu);
    }
}
