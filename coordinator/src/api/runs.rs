//! `/runs`: create, cancel and follow runs, download their result files, and the
//! coordinator's `/metrics`.

use super::error::ApiError;
use super::state::ApiState;
use crate::auth::Principal;
use crate::run::RunRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
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

pub(super) async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

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

pub(super) async fn cancel_run(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !who.can_manage_runs() {
        return Err(ApiError::forbidden("cancel runs (operator tokens only)"));
    }
    let run_id = parse_run_id(&id)?;
    tracing::info!(caller = %who.name, %run_id, "cancel run");
    Ok(Json(state.engine()?.cancel_run(run_id, &who.name).await?).into_response())
}

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

pub(super) async fn run_status(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read runs (analyst or operator tokens only)",
        ));
    }
    Ok(Json(state.engine()?.run_status(parse_run_id(&id)?).await?).into_response())
}

pub(super) async fn run_file(
    State(state): State<ApiState>,
    who: Principal,
    Path((id, name)): Path<(String, String)>,
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
