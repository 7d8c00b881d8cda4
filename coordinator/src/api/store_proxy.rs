//! The object proxy: `PUT/GET/HEAD/DELETE /store/{key}` and
//! `GET /store?prefix=`, the coordinator's own store seen through a bearer
//! token. Sites submit through it (`nodal submit --store
//! http://coordinator:8080 --token …`) and so need no S3 credentials; what a
//! token may touch is [`Principal::store_access`]. Bodies are limited to
//! [`ProxyConfig::max_body`]; keys follow the store's one key rule.

use super::error::ApiError;
use super::state::ApiState;
use crate::auth::{Principal, StoreOp};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nodal_common::store::{StoreError, StoreErrorKind, key_problem, prefix_problem};
use serde::{Deserialize, Serialize};

pub use super::state::{DEFAULT_MAX_BODY_MIB, ProxyConfig};

/// The proxy's routes, to merge into the API router.
pub fn routes(config: ProxyConfig) -> Router<ApiState> {
    Router::new()
        .route("/store", get(list))
        .route(
            "/store/{*key}",
            get(get_object)
                .head(head_object)
                .put(put_object)
                .delete(delete_object),
        )
        .layer(DefaultBodyLimit::max(config.max_body))
}

/// `?prefix=` of a listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
}

/// One listed object.
#[derive(Debug, Serialize)]
struct Listed {
    key: String,
    size: u64,
}

/// Check the key and the caller's right to `op` it.
fn admit(who: &Principal, op: StoreOp, key: &str) -> Result<(), ApiError> {
    let problem = if op == StoreOp::List {
        prefix_problem(key)
    } else {
        key_problem(key)
    };
    if let Some(why) = problem {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("{key:?} is not a valid key: {why}"),
        ));
    }
    if let Err(why) = who.store_access(op, key) {
        tracing::warn!(caller = %who.name, op = op.verb(), key, "store proxy: refused");
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", why));
    }
    tracing::debug!(caller = %who.name, op = op.verb(), key, "store proxy");
    Ok(())
}

/// The response for a failed store call: a missing object is `404`,
/// transient trouble `503` (clients retry), the coordinator's own
/// credentials refused `502`, anything else `422`.
fn store_error(e: StoreError) -> ApiError {
    let (status, kind) = match e.kind {
        StoreErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        StoreErrorKind::Transient => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        StoreErrorKind::Denied => (StatusCode::BAD_GATEWAY, "store_denied"),
        StoreErrorKind::Permanent => (StatusCode::UNPROCESSABLE_ENTITY, "store_refused"),
    };
    if status != StatusCode::NOT_FOUND {
        tracing::warn!(op = e.op, key = %e.key, error = %e.message, "store proxy: the store failed");
    }
    // The store's description (bucket, endpoint) stays inside.
    ApiError::new(status, kind, format!("{} {:?}: {}", e.op, e.key, e.message))
}

async fn list(
    State(state): State<ApiState>,
    who: Principal,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    admit(&who, StoreOp::List, &query.prefix)?;
    let listed: Vec<Listed> = state
        .store
        .list(&query.prefix)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|m| Listed {
            key: m.key,
            size: m.size,
        })
        .collect();
    Ok(Json(listed).into_response())
}

async fn get_object(
    State(state): State<ApiState>,
    who: Principal,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    admit(&who, StoreOp::Get, &key)?;
    let body = state.store.get(&key).await.map_err(store_error)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

async fn head_object(
    State(state): State<ApiState>,
    who: Principal,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    admit(&who, StoreOp::Head, &key)?;
    match state.store.head(&key).await.map_err(store_error)? {
        Some(meta) => Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, meta.size.to_string()),
            ],
        )
            .into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

async fn put_object(
    State(state): State<ApiState>,
    who: Principal,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admit(&who, StoreOp::Put, &key)?;
    let body = body.map_err(|e| {
        let status = e.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_request"
        };
        ApiError::new(
            status,
            kind,
            format!(
                "the body of {key:?} was not accepted: {} (the limit is --store-proxy-max-body-mib)",
                e.body_text()
            ),
        )
    })?;
    state.store.put(&key, body).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_object(
    State(state): State<ApiState>,
    who: Principal,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    admit(&who, StoreOp::Delete, &key)?;
    state.store.delete(&key).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
