//! The coordinator's HTTP API (JSON). Documented in docs/api.md.

use crate::auth::{Principal, Role, TokenStore};
use crate::models::ModelError;
use crate::run::RunRequest;
use crate::run::engine::{Engine, EngineError};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nodal_common::manifest::{Manifest, manifest_key};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// Who may call the API.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every request needs a bearer token from this store.
    Tokens(Arc<TokenStore>),
    /// No authentication: every caller is an operator. Only for local use.
    Open,
}

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The run engine.
    pub engine: Engine,
    /// Access control.
    pub access: Access,
    /// The process's metrics registry, served at /metrics.
    pub registry: Registry,
    /// The object proxy's settings (`/store`).
    pub proxy: crate::store_proxy::ProxyConfig,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let proxy = crate::store_proxy::routes(state.proxy);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(metrics))
        .route("/runs", get(list_runs).post(create_run))
        .route("/runs/{id}", get(run_status))
        .route("/runs/{id}/files/{*name}", get(run_file))
        .route("/models", get(list_models))
        .route("/archives", get(list_archives))
        .route("/archives/{id}", get(archive_summary))
        .merge(proxy)
        .with_state(state)
}

/// An API error: a status and a JSON body `{"error": ..., "kind": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    /// An error with `status`, a machine-readable `kind` and a message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn forbidden(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token may not {what}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({"error": self.message, "kind": self.kind})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let (status, kind) = match &e {
            EngineError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            EngineError::UnknownRun(_) => (StatusCode::NOT_FOUND, "unknown_run"),
            EngineError::UnknownFile { .. } => (StatusCode::NOT_FOUND, "unknown_file"),
            EngineError::UnknownArchive(_) => (StatusCode::NOT_FOUND, "unknown_archive"),
            EngineError::NotFinished(_) => (StatusCode::CONFLICT, "not_finished"),
            EngineError::Model(ModelError::Unknown(_)) => (StatusCode::NOT_FOUND, "unknown_model"),
            EngineError::Plan(_) => (StatusCode::UNPROCESSABLE_ENTITY, "cannot_plan"),
            EngineError::BadManifest { .. } | EngineError::Model(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "bad_input")
            }
            EngineError::Store(_) | EngineError::Broker(_) | EngineError::Finalize(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        };
        ApiError::new(status, kind, e.to_string())
    }
}

/// Authenticate a request from its `Authorization: Bearer` header.
pub fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let tokens = match &state.access {
        Access::Open => {
            return Ok(Principal {
                name: "anonymous".into(),
                role: Role::Operator,
            });
        }
        Access::Tokens(t) => t,
    };
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an `Authorization: Bearer <token>` header is required"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
    tokens
        .authenticate(token)
        .ok_or_else(|| unauthorized("the token is not valid"))
}

fn parse_run_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{id:?} is not a run id (a UUID)"),
        )
    })
}

async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

async fn create_run(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.can_create_runs() {
        return Err(ApiError::forbidden("create runs (operator tokens only)"));
    }
    let Json(request) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", e.body_text()))?;
    tracing::info!(caller = %who.name, archives = request.archives.len(), model = %request.model, "create run");
    let status = state.engine.create_run(request).await?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

async fn list_runs(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read runs (analyst or operator tokens only)",
        ));
    }
    Ok(Json(state.engine.list_runs().await?).into_response())
}

async fn run_status(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read runs (analyst or operator tokens only)",
        ));
    }
    Ok(Json(state.engine.run_status(parse_run_id(&id)?).await?).into_response())
}

async fn run_file(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.can_read_runs() {
        return Err(ApiError::forbidden(
            "read results (analyst or operator tokens only)",
        ));
    }
    let bytes: Bytes = state.engine.result_file(parse_run_id(&id)?, &name).await?;
    let content_type = match name.rsplit('.').next() {
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// A published model, as `GET /models` lists it.
#[derive(Debug, Serialize)]
struct ModelSummary {
    name: String,
    version: String,
    study: String,
    task: String,
    onnx_sha256: String,
}

async fn list_models(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
    let store = state.engine.store();
    let mut out = Vec::new();
    for meta in store.list("models/").await.map_err(EngineError::from)? {
        if !meta.key.ends_with("/card.json") {
            continue;
        }
        let bytes = store.get(&meta.key).await.map_err(EngineError::from)?;
        let card = crate::models::parse_card(&bytes, &meta.key).map_err(EngineError::from)?;
        out.push(ModelSummary {
            name: card.name,
            version: card.version,
            study: card.study.to_string(),
            task: card.task.to_string(),
            onnx_sha256: card.onnx_sha256,
        });
    }
    Ok(Json(out).into_response())
}

/// What `GET /archives/{id}` tells about an archive.
#[derive(Debug, Serialize)]
struct ArchiveSummary {
    archive_id: String,
    site: String,
    study: String,
    nodal_version: String,
    cases: usize,
    eligible: usize,
    images: usize,
    images_failed_qc: usize,
    tiles: usize,
}

impl ArchiveSummary {
    fn of(m: &Manifest) -> Self {
        Self {
            archive_id: m.archive_id.clone(),
            site: m.site.clone(),
            study: m.study.to_string(),
            nodal_version: m.nodal_version.clone(),
            cases: m.cases.len(),
            eligible: m
                .cases
                .iter()
                .filter(|c| c.eligibility.is_eligible())
                .count(),
            images: m.cases.iter().map(|c| c.images.len()).sum(),
            images_failed_qc: m
                .cases
                .iter()
                .flat_map(|c| &c.images)
                .filter(|i| !i.qc.passed)
                .count(),
            tiles: m.cases.iter().map(|c| c.tile_count()).sum(),
        }
    }
}

/// The site an archive id belongs to (`<site>.<hash>`).
fn site_of_archive(archive_id: &str) -> &str {
    archive_id
        .split_once('.')
        .map_or(archive_id, |(site, _)| site)
}

async fn list_archives(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.can_list_archives() {
        return Err(ApiError::forbidden(
            "list archives (site or operator tokens only)",
        ));
    }
    let ids: Vec<String> = state
        .engine
        .store()
        .list("archives/")
        .await
        .map_err(EngineError::from)?
        .into_iter()
        .filter_map(|m| {
            m.key
                .strip_prefix("archives/")?
                .strip_suffix("/manifest.json")
                .map(str::to_string)
        })
        .filter(|id| who.can_access_site(site_of_archive(id)))
        .collect();
    Ok(Json(ids).into_response())
}

async fn archive_summary(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.can_access_site(site_of_archive(&id)) {
        return Err(ApiError::forbidden("see another site's archives"));
    }
    let key = manifest_key(&id);
    let bytes = match state.engine.store().get(&key).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Err(EngineError::UnknownArchive(id).into()),
        Err(e) => return Err(EngineError::from(e).into()),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::from(EngineError::BadManifest {
            key,
            message: e.to_string(),
        })
    })?;
    Ok(Json(ArchiveSummary::of(&manifest)).into_response())
}
