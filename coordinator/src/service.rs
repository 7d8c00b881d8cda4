//! The coordinator as a service: publish the models, start the engine over
//! a store and a broker, and serve the API on a bound listener until told
//! to stop.

use crate::api::store_proxy::ProxyConfig;
use crate::api::{Access, ApiState, router};
use crate::metrics::CoordinatorMetrics;
use crate::models::{ModelError, publish_models, publish_shipped_models};
use crate::run::engine::{Engine, EngineConfig, EngineError};
use nodal_common::broker::SharedBroker;
use nodal_common::store::SharedStore;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
    /// The HTTP server failed.
    #[error("serving the API: {0}")]
    Http(#[from] std::io::Error),
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
    let engine = Engine::start(store, broker, config.engine, metrics, shutdown.clone()).await?;
    let app = router(ApiState {
        engine: engine.clone(),
        access: config.access,
        registry,
        proxy: config.proxy,
    });
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    engine.stopped().await;
    Ok(())
}
