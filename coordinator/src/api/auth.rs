//! Authentication as an extractor: a handler that takes a [`Principal`]
//! runs only for a request with a valid bearer token (or any request, when
//! the API is open), and every other gets `401` before the handler starts.

use super::error::ApiError;
use super::state::{Access, ApiState};
use crate::auth::{Principal, Role};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        authenticate(&state.access, &parts.headers)
    }
}

/// Authenticate a request from its `Authorization: Bearer` header.
fn authenticate(access: &Access, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let tokens = match access {
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
