//! `nodal coordinator`: the service that plans runs, collects results and
//! serves the HTTP API.

use crate::args::{BrokerArgs, StoreArgs};
use clap::Args;
use nodal_coordinator::CoordinatorConfig;
use nodal_coordinator::api::Access;
use nodal_coordinator::api::store_proxy::{DEFAULT_MAX_BODY_MIB, ProxyConfig};
use nodal_coordinator::auth::TokenStore;
use nodal_coordinator::leadership::LeaseConfig;
use nodal_coordinator::run::engine::{
    DEFAULT_JOB_DEADLINE, DEFAULT_JOB_TILES, DEFAULT_MAX_PUBLISHES, DEFAULT_STALL_TIMEOUT,
    EngineConfig,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Options of `nodal coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// Where archives, models and runs live.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The message broker.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Address the HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "NODAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A folder of extra model folders (each with card.json) to publish to the
    /// store at start; the built-in models are always published.
    #[arg(long, env = "NODAL_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Default tiles per job.
    #[arg(long, env = "NODAL_JOB_TILES", default_value_t = DEFAULT_JOB_TILES)]
    pub job_tiles: usize,
    /// Seconds without any result (and an empty job queue) before a run's
    /// overdue jobs are published again.
    #[arg(long, env = "NODAL_STALL_TIMEOUT_SECS", default_value_t = DEFAULT_STALL_TIMEOUT.as_secs())]
    pub stall_timeout_secs: u64,
    /// Publications of one job with no result (the first and the stall rule's).
    #[arg(long, env = "NODAL_MAX_PUBLISHES", default_value_t = DEFAULT_MAX_PUBLISHES)]
    pub max_publishes: u32,
    /// Seconds after a job's last publication with no result before it is
    /// given up on and its cases reported failed (keep it above the
    /// workers' --transient-deadline-secs).
    #[arg(long, env = "NODAL_JOB_DEADLINE_SECS", default_value_t = DEFAULT_JOB_DEADLINE.as_secs())]
    pub job_deadline_secs: u64,
    /// JSON file of API tokens (see docs/api.md); it or --tokens-json is
    /// required unless --insecure-no-auth.
    #[arg(long, env = "NODAL_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// The tokens JSON itself, instead of a file (e.g. from a Kubernetes
    /// secret); it holds only hashes of the tokens.
    #[arg(
        long,
        env = "NODAL_TOKENS",
        hide_env_values = true,
        value_name = "JSON"
    )]
    pub tokens_json: Option<String>,
    /// Largest body the object proxy (`PUT /store/{key}`) accepts, in MiB.
    #[arg(long, env = "NODAL_STORE_PROXY_MAX_BODY_MIB", default_value_t = DEFAULT_MAX_BODY_MIB)]
    pub store_proxy_max_body_mib: usize,
    /// This coordinator's name in the lease record and logs [default:
    /// <hostname>-<pid>].
    #[arg(long, env = "NODAL_COORDINATOR_ID")]
    pub coordinator_id: Option<String>,
    /// Serve the API without authentication (local experiments only).
    #[arg(long, env = "NODAL_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

impl TryFrom<&CoordinatorArgs> for CoordinatorConfig {
    type Error = anyhow::Error;

    fn try_from(args: &CoordinatorArgs) -> anyhow::Result<Self> {
        let tokens =
            TokenStore::from_sources(args.tokens_file.as_deref(), args.tokens_json.as_deref())?;
        let access = match (tokens, args.insecure_no_auth) {
            (Some(tokens), false) => {
                if tokens.is_empty() {
                    tracing::warn!("no API token is configured: every request will be refused");
                }
                Access::Tokens(Arc::new(tokens))
            }
            (None, true) => {
                tracing::warn!("the API is open: no token is required (--insecure-no-auth)");
                Access::Open
            }
            (Some(_), true) => anyhow::bail!(
                "give either tokens (--tokens-file, NODAL_TOKENS) or --insecure-no-auth, not both"
            ),
            (None, false) => anyhow::bail!(
                "the API needs tokens: pass --tokens-file FILE (create it with `nodal token --tokens-file FILE …`) or the JSON in NODAL_TOKENS, or, for local experiments, --insecure-no-auth"
            ),
        };
        if args.store_proxy_max_body_mib == 0 {
            anyhow::bail!("--store-proxy-max-body-mib must be at least 1");
        }
        Ok(CoordinatorConfig {
            access,
            engine: EngineConfig {
                job_tiles: args.job_tiles,
                stall_timeout: Duration::from_secs(args.stall_timeout_secs),
                max_publishes: args.max_publishes,
                job_deadline: Duration::from_secs(args.job_deadline_secs),
                ..EngineConfig::default()
            },
            proxy: ProxyConfig {
                max_body: args.store_proxy_max_body_mib.saturating_mul(1024 * 1024),
            },
            models_dir: args.models_dir.clone(),
            lease: LeaseConfig::default(),
            name: args
                .coordinator_id
                .clone()
                .unwrap_or_else(super::process_name),
        })
    }
}

/// Run `nodal coordinator` until SIGTERM/SIGINT.
pub async fn run(args: CoordinatorArgs) -> anyhow::Result<()> {
    let shutdown = crate::signals::shutdown_on_signals();
    serve(args, shutdown).await
}

/// Serve until `shutdown` is cancelled.
pub async fn serve(args: CoordinatorArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = CoordinatorConfig::try_from(&args)?;
    let (store, broker, listener) =
        super::service_io(&args.store, &args.broker, args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "coordinator listening");
    println!("coordinator listening on http://{addr}");
    nodal_coordinator::serve(config, store, broker, listener, shutdown).await?;
    Ok(())
}
