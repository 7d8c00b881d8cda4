//! The worker's HTTP endpoints: `/metrics` (Prometheus text format),
//! `/healthz` (liveness), `/readyz` (readiness) and `/drain` (the pod's
//! preStop hook: drain as on SIGTERM, answer once the jobs in hand are
//! settled).

use crate::health::Health;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

/// What `GET /drain` cancels, and what tells it the drain is over.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    /// Cancelled by `GET /drain`: the workers' shutdown, as SIGTERM's.
    pub shutdown: CancellationToken,
    /// Cancelled by the process once every worker has settled its jobs.
    pub drained: CancellationToken,
}

#[derive(Clone)]
struct Endpoints {
    registry: Registry,
    health: Health,
    drain: Drain,
}

/// The router serving `/metrics` from `registry`, `/healthz` and `/readyz`
/// from `health`, and `/drain` through `drain`.
pub fn router(registry: Registry, health: Health, drain: Drain) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/drain", get(drain_workers))
        .with_state(Endpoints {
            registry,
            health,
            drain,
        })
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&endpoints.registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
            .into_response(),
    }
}

async fn healthz(State(endpoints): State<Endpoints>) -> (StatusCode, &'static str) {
    if endpoints.health.is_live() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a worker stopped on a fatal error\n",
        )
    }
}

async fn readyz(State(endpoints): State<Endpoints>) -> (StatusCode, &'static str) {
    if endpoints.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not consuming jobs\n")
    }
}

/// Start the drain and answer once it is over. A GET, because that is what
/// a Kubernetes `preStop` `httpGet` hook sends; the pod's SIGTERM then finds
/// nothing left to do, and the grace period bounds the wait as on SIGTERM.
async fn drain_workers(State(endpoints): State<Endpoints>) -> (StatusCode, &'static str) {
    tracing::info!("GET /drain: draining the workers (the pod's preStop hook)");
    endpoints.drain.shutdown.cancel();
    endpoints.drain.drained.cancelled().await;
    (StatusCode::OK, "drained\n")
}
