//! `nodal coordinator`: the service that plans runs, collects results and
//! serves the HTTP API.

use crate::api::{Access, ApiState, router};
use crate::auth::TokenStore;
use crate::metrics::CoordinatorMetrics;
use crate::run::engine::{Engine, EngineConfig};
use anyhow::Context;
use clap::Args;
use nodal_common::broker::BrokerArgs;
use nodal_common::store::StoreArgs;
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
    #[arg(long, env = "NODAL_JOB_TILES", default_value_t = 256)]
    pub job_tiles: usize,
    /// Seconds without any result (and an empty job queue) before a run's
    /// overdue jobs are published again.
    #[arg(long, env = "NODAL_STALL_TIMEOUT_SECS", default_value_t = 60)]
    pub stall_timeout_secs: u64,
    /// Publications of one job before it is given up on and its cases reported failed.
    #[arg(long, env = "NODAL_MAX_PUBLISHES", default_value_t = 4)]
    pub max_publishes: u32,
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
    #[arg(long, env = "NODAL_STORE_PROXY_MAX_BODY_MIB", default_value_t = crate::store_proxy::DEFAULT_MAX_BODY_MIB)]
    pub store_proxy_max_body_mib: usize,
    /// Serve the API without authentication (local experiments only).
    #[arg(long, env = "NODAL_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

/// Run `nodal coordinator` until SIGTERM/SIGINT.
pub async fn run(args: CoordinatorArgs) -> anyhow::Result<()> {
    let shutdown = crate::signals::shutdown_on_signals();
    serve(args, shutdown).await
}

/// Serve until `shutdown` is cancelled.
pub async fn serve(args: CoordinatorArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
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
        (Some(_), true) => {
            anyhow::bail!(
                "give either tokens (--tokens-file, NODAL_TOKENS) or --insecure-no-auth, not both"
            )
        }
        (None, false) => anyhow::bail!(
            "the API needs tokens: pass --tokens-file FILE (create it with `nodal token --tokens-file FILE …`) or the JSON in NODAL_TOKENS, or, for local experiments, --insecure-no-auth"
        ),
    };
    if args.store_proxy_max_body_mib == 0 {
        anyhow::bail!("--store-proxy-max-body-mib must be at least 1");
    }
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
    for card in crate::models::publish_shipped_models(store.as_ref())
        .await
        .context("publishing the built-in models")?
    {
        tracing::info!(model = %card.name, version = %card.version, "built-in model published");
    }
    if let Some(dir) = &args.models_dir {
        let cards = crate::models::publish_models(store.as_ref(), dir)
            .await
            .with_context(|| format!("publishing the models in {}", dir.display()))?;
        for card in cards {
            tracing::info!(model = %card.name, version = %card.version, "model published");
        }
    }
    let registry = prometheus::Registry::new();
    let metrics = CoordinatorMetrics::register(&registry)?;
    let config = EngineConfig {
        job_tiles: args.job_tiles,
        stall_timeout: Duration::from_secs(args.stall_timeout_secs),
        max_publishes: args.max_publishes,
        ..EngineConfig::default()
    };
    let engine = Engine::start(
        store,
        broker,
        config,
        metrics,
        Some(crate::stats_hook::stats_hook()),
        shutdown.clone(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "coordinator listening");
    println!("coordinator listening on http://{addr}");
    let app = router(ApiState {
        engine: engine.clone(),
        access,
        registry,
        proxy: crate::store_proxy::ProxyConfig {
            max_body: args.store_proxy_max_body_mib.saturating_mul(1024 * 1024),
        },
    });
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    engine.stopped().await;
    Ok(())
}
