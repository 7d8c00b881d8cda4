//! The coordinator as a service: publish the models, serve the API on a
//! bound listener, and drive runs whenever this process holds the
//! coordinator lease (see [`crate::leadership`]) until told to stop.

use crate::api::store_proxy::ProxyConfig;
use crate::api::{Access, ApiState, router};
use crate::leadership::{self, Fence, FenceError, LeaseConfig};
use crate::metrics::CoordinatorMetrics;
use crate::models::{ModelError, publish_models, publish_shipped_models};
use crate::run::engine::{Engine, EngineConfig, EngineError};
use nodal_common::broker::SharedBroker;
use nodal_common::store::SharedStore;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Everything the coordinator service is configured with.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Who may call the API.
    pub access: Access,
    /// How runs are planned and supervised.
    pub engine: EngineConfig,
    /// The object proxy's settings.
    pub proxy: ProxyConfig,
    /// A folder of extra model folders to publish at start (the built-in
    /// models are always published).
    pub models_dir: Option<PathBuf>,
    /// How the coordinator lease is sought and watched.
    pub lease: LeaseConfig,
    /// This coordinator's name in the lease record and logs.
    pub name: String,
}

/// Why the coordinator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The built-in models could not be published.
    #[error("publishing the built-in models: {0}")]
    ShippedModels(#[source] ModelError),
    /// A model of the models folder could not be published.
    #[error("publishing the models in {dir}: {source}")]
    Models {
        /// The folder.
        dir: PathBuf,
        /// What went wrong.
        #[source]
        source: ModelError,
    },
    /// The metrics could not be registered.
    #[error("registering the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The engine could not start (the store could not be read).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The fencing epoch could not be raised on taking the lease.
    #[error("taking the coordinator lease: {0}")]
    Fence(#[from] FenceError),
    /// The HTTP server failed.
    #[error("serving the API: {0}")]
    Http(#[from] std::io::Error),
}

impl ServeError {
    /// True when waiting may cure it (the store or broker unreachable for
    /// now): the lease is given back and sought again.
    fn is_transient(&self) -> bool {
        match self {
            ServeError::Engine(EngineError::Store(e)) | ServeError::Fence(FenceError::Store(e)) => {
                e.is_transient()
            }
            ServeError::Engine(EngineError::Broker(e)) => e.transient,
            _ => false,
        }
    }
}

/// Run the coordinator on `listener` until `shutdown` is cancelled, then
/// let the engine settle what it holds.
pub async fn serve(
    config: CoordinatorConfig,
    store: SharedStore,
    broker: SharedBroker,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    for card in publish_shipped_models(store.as_ref())
        .await
        .map_err(ServeError::ShippedModels)?
    {
        tracing::info!(model = %card.name, version = %card.version, "built-in model published");
    }
    if let Some(dir) = &config.models_dir {
        let cards = publish_models(store.as_ref(), dir)
            .await
            .map_err(|source| ServeError::Models {
                dir: dir.clone(),
                source,
            })?;
        for card in cards {
            tracing::info!(model = %card.name, version = %card.version, "model published");
        }
    }
    let registry = prometheus::Registry::new();
    let metrics = CoordinatorMetrics::register(&registry)?;
    let (leading, engine) = watch::channel(None);
    let app = router(ApiState {
        engine,
        store: store.clone(),
        access: config.access.clone(),
        registry,
        proxy: config.proxy,
    });
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    let led = lead(&config, store, broker, metrics, &leading, &shutdown).await;
    // Stop serving whatever ended the leading (a failure or shutdown).
    shutdown.cancel();
    let served = server.await;
    led?;
    match served {
        Ok(result) => Ok(result?),
        Err(e) => Err(ServeError::Http(std::io::Error::other(e))),
    }
}

/// Take the lease, drive runs while it holds, stand by again when it is
/// lost; until `shutdown`. The engine is published on `leading` while it
/// runs.
async fn lead(
    config: &CoordinatorConfig,
    store: SharedStore,
    broker: SharedBroker,
    metrics: CoordinatorMetrics,
    leading: &watch::Sender<Option<Engine>>,
    shutdown: &CancellationToken,
) -> Result<(), ServeError> {
    while let Some(lease) = leadership::acquire(broker.as_ref(), config.lease, shutdown).await {
        let stop_engine = shutdown.child_token();
        let started = async {
            let fence = Fence::take(store.clone(), &config.name).await?;
            let engine = Engine::start(
                store.clone(),
                broker.clone(),
                config.engine.clone(),
                metrics.clone(),
                fence,
                stop_engine.clone(),
            )
            .await?;
            Ok::<_, ServeError>(engine)
        };
        let engine = match started.await {
            Ok(engine) => engine,
            Err(e) if e.is_transient() => {
                warn!(error = %e, "cannot take over the runs for now; giving the lease back and trying again");
                drop(lease);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(config.lease.retry_interval) => continue,
                }
            }
            Err(e) => return Err(e),
        };
        leading.send_replace(Some(engine.clone()));
        metrics.leader.set(1);
        info!(name = %config.name, "leading: driving runs");
        let lost = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            // The engine stepped down by itself: the store's fencing epoch
            // says another coordinator took over.
            _ = stop_engine.cancelled() => Some("fenced by a later leader".to_string()),
            e = leadership::lost(lease.as_ref(), config.lease) => Some(e.to_string()),
        };
        leading.send_replace(None);
        metrics.leader.set(0);
        stop_engine.cancel();
        engine.stopped().await;
        drop(lease);
        match lost {
            Some(why) => warn!(
                why,
                "lost the coordinator lease; stopped driving runs, standing by"
            ),
            None => break,
        }
    }
    Ok(())
}
