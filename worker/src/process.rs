//! A worker process: its pipelines over one ONNX Runtime, one store and one
//! broker, and the `/metrics`, `/healthz`, `/readyz` and `/drain` endpoints on a bound
//! listener. On shutdown it stops taking jobs, lets the pipelines drain
//! within their grace period, then stops the endpoints.

use crate::{Health, Runtime, WorkerConfig, WorkerDeps, WorkerError, WorkerMetrics, WorkerSummary};
use nodal_common::broker::SharedBroker;
use nodal_common::store::SharedStore;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Run one pipeline per entry of `pipelines` until `shutdown` is cancelled
/// and the jobs in hand are settled; the summaries, one per pipeline.
pub async fn serve(
    pipelines: Vec<WorkerConfig>,
    runtime: Runtime,
    store: SharedStore,
    broker: SharedBroker,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<Vec<WorkerSummary>, WorkerError> {
    for config in &pipelines {
        config.validate()?;
    }
    let registry = prometheus::Registry::new();
    let metrics = WorkerMetrics::register(&registry)
        .map_err(|e| WorkerError::Config(format!("registering the metrics: {e}")))?;
    let health = Health::default();
    let drain = crate::http::Drain {
        shutdown: shutdown.clone(),
        drained: CancellationToken::new(),
    };
    let app = crate::http::router(registry, health.clone(), drain.clone());
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
    let outcomes = futures::future::join_all(
        pipelines
            .into_iter()
            .map(|config| crate::run_worker(config, deps.clone(), shutdown.clone())),
    )
    .await;
    drain.drained.cancel();
    stop_serving.cancel();
    if let Ok(Err(e)) = server.await {
        tracing::warn!(error = %e, "the endpoints server stopped with an error");
    }
    outcomes.into_iter().collect()
}
