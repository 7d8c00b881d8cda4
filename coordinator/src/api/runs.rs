//! `/runs`: create, cancel and follow runs, download their result files, and the
//! coordinator's `/metrics`.

use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use super::state::ApiState;
use crate::auth::Principal;
use crate::run::{RunRequest, RunStatus};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, TextEncoder};
use uuid::Uuid;

fn parse_run_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{id:?} is not a run id (a UUID)"),
        )
    })
}

/// The coordinator's Prometheus metrics (docs/operations.md).
#[utoipa::path(get, path = "/metrics", tag = "service", security(()),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 500, description = "The metrics could not be encoded", body = ErrorBody),
    ))]
pub(super) async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// Create a run of a model over archives (operator). Its jobs are planned
/// and published before the answer.
#[utoipa::path(post, path = "/runs", tag = "runs",
    request_body = RunRequest,
    responses(
        (status = 201, description = "The run, planned and running", body = RunStatus),
        (status = 400, description = "Not a run request (`bad_json`), or one that asks for nothing (`bad_request`)", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an operator token", body = ErrorBody),
        (status = 404, description = "An archive or the model is not in the store", body = ErrorBody),
        (status = 422, description = "An archive cannot be run by the model (`cannot_plan`, `bad_input`)", body = ErrorBody),
        (status = 500, description = "A stored run is unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store or broker is unavailable: retry", body = ErrorBody),
    ))]
pub(super) async fn create_run(
    State(state): State<ApiState>,
    who: Principal,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if !who.can_manage_runs() {
        return Err(ApiError::forbidden("create runs (operator tokens only)"));
    }
    let Json(request) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", e.body_text()))?;
    tracing::info!(caller = %who.name, archives = request.archives.len(), model = %request.model, "create run");
    let status = state.engine()?.create_run(request).await?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// Cancel a run (operator): its jobs not yet run are dropped, and it is
/// finalized from the results stored until then. Cancelling a cancelled
/// run again changes nothing.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "The run, cancelled", body = RunStatus),
        (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an operator token", body = ErrorBody),
        (status = 404, description = "No such run (`unknown_run`)", body = ErrorBody),
        (status = 409, description = "The run has ended already (`already_ended`)", body = ErrorBody),
        (status = 500, description = "A stored run is unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
pub(super) async fn cancel_run(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    if !who.can_manage_runs() {
        return Err(ApiError::forbidden("cancel runs (operator tokens only)"));
    }
    let run_id = parse_run_id(&id)?;
    tracing::info!(caller = %who.name, %run_id, "cancel run");
    Ok(Json(state.engine()?.cancel_run(run_id, &who.name).await?).into_response())
}

/// Every run this coordinator knows, newest first (analyst, operator).
#[utoipa::path(get, path = "/runs", tag = "runs",
    responses(
        (status = 200, description = "The runs", body = Vec<RunStatus>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A site token", body = ErrorBody),
        (status = 500, description = "A stored run is unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
pub(super) async fn list_runs(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<Response, ApiError> {
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read runs (analyst or operator tokens only)",
        ));
    }
    Ok(Json(state.engine()?.list_runs().await?).into_response())
}

/// A run's state and progress (analyst, operator).
#[utoipa::path(get, path = "/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "The run", body = RunStatus),
        (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A site token", body = ErrorBody),
        (status = 404, description = "No such run (`unknown_run`)", body = ErrorBody),
        (status = 500, description = "A stored run is unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
pub(super) async fn run_status(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read runs (analyst or operator tokens only)",
        ));
    }
    Ok(Json(state.engine()?.run_status(parse_run_id(&id)?).await?).into_response())
}

/// One result file of a finished or cancelled run (analyst, operator):
/// predictions.csv, failures.csv, metrics.json, report.html,
/// validation/metrics.json, validation/report.html or run.json
/// (docs/results-format.md).
#[utoipa::path(get, path = "/runs/{id}/files/{*name}", tag = "runs",
    params(
        ("id" = String, Path, description = "The run id (a UUID)"),
        ("name" = String, Path, description = "The file, e.g. `predictions.csv` or `validation/metrics.json`"),
    ),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/csv"),
            (serde_json::Value = "application/json"),
            (String = "text/html"),
        )),
        (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A site token", body = ErrorBody),
        (status = 404, description = "No such run (`unknown_run`) or file (`unknown_file`)", body = ErrorBody),
        (status = 409, description = "The run has no result files yet (`not_finished`)", body = ErrorBody),
        (status = 500, description = "A stored run is unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
pub(super) async fn run_file(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read results (analyst or operator tokens only)",
        ));
    }
    let bytes: Bytes = state
        .engine()?
        .result_file(parse_run_id(&id)?, &name)
        .await?;
    let content_type = match name.rsplit('.').next() {
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}
