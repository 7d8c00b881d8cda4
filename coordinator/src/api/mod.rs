//! The coordinator's HTTP API (JSON), documented in docs/api.md. Handlers
//! take the caller as a [`Principal`] (the [`auth`] extractor) and ask the
//! engine; none reads store keys itself.

mod auth;
mod catalog;
mod error;
mod runs;
mod state;
pub mod store_proxy;

pub use catalog::{ArchiveSummary, ModelSummary};
pub use error::ApiError;
pub use state::{Access, ApiState};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let proxy = store_proxy::routes(state.proxy);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(runs::metrics))
        .route("/runs", get(runs::list_runs).post(runs::create_run))
        .route("/runs/{id}", get(runs::run_status))
        .route("/runs/{id}/cancel", post(runs::cancel_run))
        .route("/runs/{id}/files/{*name}", get(runs::run_file))
        .route("/models", get(catalog::list_models))
        .route("/archives", get(catalog::list_archives))
        .route("/archives/{id}", get(catalog::archive_summary))
        .merge(proxy)
        .with_state(state)
}

/// `/readyz`: ready while this coordinator leads; `503` while it stands by,
/// so that a load balancer sends requests to the leader only.
async fn ready(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    state.engine().map(|_| "ready")
}
