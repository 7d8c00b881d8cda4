//! The coordinator's HTTP API (JSON), documented in docs/api.md and
//! described at `/openapi.json` ([`openapi`]). Handlers take the caller as
//! a [`Principal`] (the [`auth`] extractor) and ask the engine; none reads
//! store keys itself.

mod auth;
mod catalog;
mod error;
mod extract;
mod openapi;
mod runs;
mod state;
pub mod store_proxy;

pub use catalog::{ArchiveSummary, ModelSummary};
pub use error::{ApiError, ErrorBody};
pub use state::{Access, ApiState};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use state::ProxyConfig;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The API's routes, `/openapi.json` among them.
pub fn router(state: ApiState) -> Router {
    let (router, spec) = documented(state.proxy).split_for_parts();
    let spec = Arc::new(openapi::finish(spec));
    router
        .route(
            "/openapi.json",
            get(move || async move { Json(spec.as_ref().clone()) }),
        )
        .with_state(state)
}

/// The API's description, as `/openapi.json` serves it (docs/openapi.json
/// holds a copy).
pub fn description() -> utoipa::openapi::OpenApi {
    openapi::finish(documented(ProxyConfig::default()).into_openapi())
}

/// Every documented route, with its description.
fn documented(proxy: ProxyConfig) -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(ready))
        .routes(routes!(runs::metrics))
        .routes(routes!(runs::list_runs, runs::create_run))
        .routes(routes!(runs::run_status))
        .routes(routes!(runs::cancel_run))
        .routes(routes!(runs::run_file))
        .routes(routes!(catalog::list_models))
        .routes(routes!(catalog::list_archives))
        .routes(routes!(catalog::archive_summary))
        .merge(store_proxy::routes(proxy))
}

/// Live: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "service", security(()),
    responses((status = 200, description = "The process serves HTTP", body = String, content_type = "text/plain")))]
async fn healthz() -> impl IntoResponse {
    "ok"
}

/// Ready while this coordinator leads; `503` while it stands by, so that a
/// load balancer sends requests to the leader only.
#[utoipa::path(get, path = "/readyz", tag = "service", security(()),
    responses(
        (status = 200, description = "This coordinator leads", body = String, content_type = "text/plain"),
        (status = 503, description = "Standing by: another coordinator leads (`standby`)", body = ErrorBody),
    ))]
async fn ready(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    state.engine().map(|_| "ready")
}
