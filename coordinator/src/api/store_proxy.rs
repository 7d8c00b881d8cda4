//! The object proxy: `PUT/GET/HEAD/DELETE /store/{key}` and
//! `GET /store?prefix=`, the coordinator's own store seen through a bearer
//! token. Sites submit through it (`nodal submit --store
//! http://coordinator:8080 --token …`) and so need no S3 credentials; what a
//! token may touch is [`Principal::store_access`]. Bodies are limited to
//! [`ProxyConfig::max_body`]; keys follow the store's one key rule.
//!
//! `GET /store/{key}` honours one byte range (`Range: bytes=a-b`, `bytes=a-`
//! or `bytes=-n`) with `206` and `Content-Range`; a malformed or
//! unsatisfiable range, and a request for several ranges, is `416
//! bad_range` (several ranges are refused, not answered whole).

use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use super::openapi::ObjectBytes;
use super::state::ApiState;
use crate::auth::{Principal, StoreOp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nodal_common::store::{StoreError, StoreErrorKind, key_problem, prefix_problem};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use super::state::{DEFAULT_MAX_BODY_MIB, ProxyConfig};

/// The proxy's routes, with their description, to merge into the API's.
pub(super) fn routes(config: ProxyConfig) -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_object, head_object, put_object, delete_object))
        .layer(DefaultBodyLimit::max(config.max_body))
}

/// `?prefix=` of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// List the keys that start with this (`archives/<site>.` for a site).
    #[serde(default)]
    prefix: String,
}

/// One listed object.
#[derive(Debug, Serialize, ToSchema)]
struct Listed {
    /// Its key.
    key: String,
    /// Its size in bytes.
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

/// The keys under a prefix the token may list, with their sizes.
#[utoipa::path(get, path = "/store", tag = "store",
    params(ListQuery),
    responses(
        (status = 200, description = "The objects, in key order", body = Vec<Listed>),
        (status = 400, description = "Not a valid prefix (`bad_key`), or an unknown query parameter", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A prefix outside what the token may list", body = ErrorBody),
        (status = 422, description = "The store refused the listing (`store_refused`)", body = ErrorBody),
        (status = 502, description = "The store refused the coordinator's credentials (`store_denied`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody),
    ))]
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

/// One byte range of a `Range` header, before the object's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// `bytes=start-last` (`last` inclusive), or `bytes=start-` to the end.
    From { start: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parse a `Range` header value holding one byte range.
    fn parse(value: &str) -> Result<Self, &'static str> {
        let number = |s: &str| {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<u64>().ok()
        };
        let Some((unit, spec)) = value.split_once('=') else {
            return Err("expected bytes=first-last");
        };
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return Err("only byte ranges (bytes=first-last) are served");
        }
        if spec.contains(',') {
            return Err("only one range per request is served");
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Err("expected bytes=first-last");
        };
        if first.trim().is_empty() {
            return number(last)
                .map(ByteRange::Suffix)
                .ok_or("expected bytes=-count");
        }
        let start = number(first).ok_or("expected bytes=first-last")?;
        let last = if last.trim().is_empty() {
            None
        } else {
            Some(number(last).ok_or("expected bytes=first-last")?)
        };
        if last.is_some_and(|last| last < start) {
            return Err("the range ends before it starts");
        }
        Ok(ByteRange::From { start, last })
    }

    /// The bytes `start..end` this range picks from an object of `total`
    /// bytes (an end past the object is cut to it, as HTTP has it), or
    /// `None` when it picks none.
    fn resolve(self, total: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::From { start, last } if start < total => {
                let last = last.map_or(total - 1, |last| last.min(total - 1));
                Some((start, last + 1))
            }
            ByteRange::From { .. } => None,
            ByteRange::Suffix(n) if n > 0 && total > 0 => Some((total.saturating_sub(n), total)),
            ByteRange::Suffix(_) => None,
        }
    }
}

/// `416 bad_range` for the `Range` header `value` of `key`, with
/// `Content-Range: bytes */total` when the object's size is known.
fn bad_range(key: &str, value: &str, why: &str, total: Option<u64>) -> Response {
    let message = match total {
        Some(total) => format!("range {value:?} of {key:?} ({total} bytes): {why}"),
        None => format!("range {value:?} of {key:?}: {why}"),
    };
    let mut response =
        ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "bad_range", message).into_response();
    if let Some(total) = total
        && let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}"))
    {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// An object's bytes, whole or one byte range of them.
#[utoipa::path(get, path = "/store/{*key}", tag = "store",
    params(
        ("key" = String, Path, description = "The object's key (docs/store-layout.md)"),
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=first-last`, `bytes=first-` or `bytes=-count`"),
    ),
    responses(
        (status = 200, description = "The object", body = ObjectBytes, content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", body = ObjectBytes, content_type = "application/octet-stream",
            headers(("Content-Range" = String, description = "`bytes first-last/size`"))),
        (status = 400, description = "Not a valid key (`bad_key`)", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A key outside what the token may touch", body = ErrorBody),
        (status = 404, description = "No such object (`not_found`)", body = ErrorBody),
        (status = 416, description = "A malformed or unsatisfiable range, or several (`bad_range`)", body = ErrorBody),
        (status = 422, description = "The store refused the request (`store_refused`)", body = ErrorBody),
        (status = 502, description = "The store refused the coordinator's credentials (`store_denied`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody),
    ))]
async fn get_object(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admit(&who, StoreOp::Get, &key)?;
    let mut ranges = headers.get_all(header::RANGE).iter();
    let Some(value) = ranges.next() else {
        let body = state.store.get(&key).await.map_err(store_error)?;
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response());
    };
    let shown = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if ranges.next().is_some() {
        return Ok(bad_range(
            &key,
            &shown,
            "only one Range header per request is served",
            None,
        ));
    }
    let range = match value.to_str().map_err(|_| "expected bytes=first-last") {
        Ok(text) => ByteRange::parse(text),
        Err(why) => Err(why),
    };
    let range = match range {
        Ok(range) => range,
        Err(why) => return Ok(bad_range(&key, &shown, why, None)),
    };
    let Some(meta) = state.store.head(&key).await.map_err(store_error)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("get {key:?}: no such object"),
        ));
    };
    let Some((start, end)) = range.resolve(meta.size) else {
        return Ok(bad_range(
            &key,
            &shown,
            "the range is past the end of the object",
            Some(meta.size),
        ));
    };
    let body = state
        .store
        .get_range(&key, start, end - start)
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::PARTIAL_CONTENT,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{}", end - 1, meta.size),
            ),
            (header::ACCEPT_RANGES, "bytes".to_string()),
        ],
        body,
    )
        .into_response())
}

/// Whether an object exists, and its size.
#[utoipa::path(head, path = "/store/{*key}", tag = "store",
    params(("key" = String, Path, description = "The object's key (docs/store-layout.md)")),
    responses(
        (status = 200, description = "The object exists", headers(("Content-Length" = u64, description = "Its size in bytes"))),
        (status = 400, description = "Not a valid key (`bad_key`)", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A key outside what the token may touch", body = ErrorBody),
        (status = 404, description = "No such object"),
        (status = 422, description = "The store refused the request (`store_refused`)", body = ErrorBody),
        (status = 502, description = "The store refused the coordinator's credentials (`store_denied`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody),
    ))]
async fn head_object(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(key): ApiPath<String>,
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

/// Store an object (replacing one under the same key).
#[utoipa::path(put, path = "/store/{*key}", tag = "store",
    params(("key" = String, Path, description = "The object's key (docs/store-layout.md)")),
    request_body(content = Option<ObjectBytes>, content_type = "application/octet-stream",
        description = "The object's bytes (none: an empty object)"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Not a valid key (`bad_key`)", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A key outside what the token may touch", body = ErrorBody),
        (status = 413, description = "The body is over --store-proxy-max-body-mib (`too_large`)", body = ErrorBody),
        (status = 422, description = "The store refused the request (`store_refused`)", body = ErrorBody),
        (status = 502, description = "The store refused the coordinator's credentials (`store_denied`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody),
    ))]
async fn put_object(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(key): ApiPath<String>,
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

/// Delete an object (a missing one is no error).
#[utoipa::path(delete, path = "/store/{*key}", tag = "store",
    params(("key" = String, Path, description = "The object's key (docs/store-layout.md)")),
    responses(
        (status = 204, description = "Deleted, or there was none"),
        (status = 400, description = "Not a valid key (`bad_key`)", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "A key outside what the token may touch", body = ErrorBody),
        (status = 404, description = "No such object (`not_found`)", body = ErrorBody),
        (status = 422, description = "The store refused the request (`store_refused`)", body = ErrorBody),
        (status = 502, description = "The store refused the coordinator's credentials (`store_denied`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody),
    ))]
async fn delete_object(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Response, ApiError> {
    admit(&who, StoreOp::Delete, &key)?;
    state.store.delete(&key).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_range_is_parsed_and_resolved() {
        let from = |start, last| ByteRange::From { start, last };
        for (value, want) in [
            ("bytes=0-9", from(0, Some(9))),
            ("bytes=5-", from(5, None)),
            ("bytes=-3", ByteRange::Suffix(3)),
            ("BYTES = 2 - 2", from(2, Some(2))),
        ] {
            assert_eq!(ByteRange::parse(value), Ok(want), "{value}");
        }
        for value in [
            "bytes=0-1,4-5",
            "bytes=9-3",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=-",
            "bytes=5",
            "items=0-1",
            "0-1",
            "bytes=99999999999999999999-",
        ] {
            assert!(ByteRange::parse(value).is_err(), "{value}");
        }
        assert_eq!(from(0, Some(9)).resolve(100), Some((0, 10)));
        assert_eq!(from(95, Some(200)).resolve(100), Some((95, 100)));
        assert_eq!(from(99, None).resolve(100), Some((99, 100)));
        assert_eq!(from(100, None).resolve(100), None);
        assert_eq!(from(0, None).resolve(0), None);
        assert_eq!(ByteRange::Suffix(3).resolve(100), Some((97, 100)));
        assert_eq!(ByteRange::Suffix(300).resolve(100), Some((0, 100)));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(ByteRange::Suffix(3).resolve(0), None);
    }

    #[test]
    fn a_bad_range_is_416_naming_it() {
        let response = bad_range("archives/x/y", "bytes=9-", "past the end", Some(4));
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */4");
    }
}
