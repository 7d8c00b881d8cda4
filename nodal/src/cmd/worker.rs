//! `nodal worker`: the inference service. Consumes jobs, runs the model,
//! publishes results; serves `/metrics`, `/healthz` and `/readyz`; on
//! SIGTERM or SIGINT stops taking jobs and drains within the grace period.

use crate::args::{BrokerArgs, PipelineArgs, RuntimeArgs, StoreArgs};
use clap::Args;
use nodal_worker::config::{
    DEFAULT_GRACE_PERIOD, DEFAULT_HAND_BACK_PAUSE, DEFAULT_TRANSIENT_DEADLINE, pipeline_configs,
};
use nodal_worker::{Runtime, WorkerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Options of `nodal worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where tiles, manifests and models are read.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where jobs come from and results go.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// ONNX Runtime and the device.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Batching, decoding and jobs in flight.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Seconds the jobs in hand get to finish after SIGTERM; what is left goes
    /// back to the queue (keep it under the pod's terminationGracePeriodSeconds).
    #[arg(
        long,
        alias = "grace-period",
        env = "NODAL_GRACE_PERIOD_SECS",
        default_value_t = DEFAULT_GRACE_PERIOD.as_secs()
    )]
    pub grace_period_secs: u64,
    /// Seconds, from a job's first store outage, that it is handed back to
    /// the queue to be tried again; past them its unread tiles are recorded
    /// as failures (keep it under the coordinator's --job-deadline-secs).
    #[arg(long, env = "NODAL_TRANSIENT_DEADLINE_SECS", default_value_t = DEFAULT_TRANSIENT_DEADLINE.as_secs())]
    pub transient_deadline_secs: u64,
    /// Milliseconds to wait before handing a job back after a store outage.
    #[arg(long, env = "NODAL_HAND_BACK_PAUSE_MS", default_value_t = DEFAULT_HAND_BACK_PAUSE.as_millis() as u64)]
    pub hand_back_pause_ms: u64,
    /// Address of /metrics, /healthz, /readyz and /drain (port 0 picks a free port).
    #[arg(long, env = "NODAL_WORKER_LISTEN", default_value = "0.0.0.0:9101")]
    pub listen: SocketAddr,
    /// This worker's name in results and logs [default: <hostname>-<pid>].
    #[arg(long, env = "NODAL_WORKER_ID")]
    pub worker_id: Option<String>,
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
        let id = self.worker_id.clone().unwrap_or_else(super::process_name);
        let mut config = self.pipeline.worker_config(id);
        config.grace_period = Duration::from_secs(self.grace_period_secs);
        config.transient_deadline = Duration::from_secs(self.transient_deadline_secs);
        config.hand_back_pause = Duration::from_millis(self.hand_back_pause_ms);
        config.model_dirs = self.models_dirs.clone();
        config
    }

    /// The settings of each of `--pipelines` pipelines.
    pub fn pipeline_configs(&self) -> anyhow::Result<Vec<WorkerConfig>> {
        Ok(pipeline_configs(
            &self.worker_config(),
            self.pipeline.pipelines(),
        )?)
    }
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
    tracing::info!(worker_id = %configs[0].worker_id, pipelines = configs.len(), store = ?args.store, broker = ?args.broker, device = ?args.runtime.device, "starting worker");
    let runtime = Runtime::init(args.runtime.config(configs.len()))?;
    tracing::info!(library = %runtime.dylib().display(), "ONNX Runtime loaded");
    let (store, broker, listener) =
        super::service_io(&args.store, &args.broker, args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "worker endpoints listening (/metrics, /healthz, /readyz, /drain)");
    println!("worker endpoints on http://{addr}");
    for summary in nodal_worker::serve(configs, runtime, store, broker, listener, shutdown).await? {
        tracing::info!(?summary, "worker done");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::DeviceArg;
    use clap::Parser;
    use nodal_worker::Device;

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
        let runtime = cli.worker.runtime.config(1);
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
        assert_eq!(cli.worker.runtime.config(configs.len()).intra_threads, 1);
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
        let alias = parse(&["--workers", "3"]);
        assert_eq!(
            alias.worker.pipeline.pipelines(),
            3,
            "--workers is an alias"
        );
    }

    #[test]
    fn the_defaults_are_the_libraries() {
        let cli = Cli::try_parse_from(["nodal"]).expect("parses");
        let config = cli.worker.worker_config();
        assert!(
            config
                .worker_id
                .ends_with(&format!("-{}", std::process::id())),
            "{}",
            config.worker_id
        );
        let library = WorkerConfig::new(config.worker_id.clone());
        assert_eq!(config, library, "every default is the library's");
        assert_eq!(cli.worker.runtime.device, DeviceArg::Cpu);
        assert_eq!(cli.worker.pipeline.pipelines(), 1);
    }
}
