//! The API's errors: a status and a JSON body `{"error": ..., "kind": ...}`;
//! how engine errors map onto statuses.

use crate::models::ModelError;
use crate::run::engine::EngineError;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

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

    /// `403`: this token may not do `what`.
    pub fn forbidden(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token may not {what}"),
        )
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people: names the run, key, file or field.
    pub error: String,
    /// What went wrong, for programs: `bad_request`, `bad_json`,
    /// `bad_key`, `bad_range`, `too_large`, `unauthorized`, `forbidden`,
    /// `not_found`, `unknown_run`, `unknown_file`, `unknown_archive`,
    /// `unknown_model`, `not_finished`, `already_ended`, `cannot_plan`,
    /// `bad_input`, `store_refused`, `store_denied`, `unavailable`,
    /// `standby` or `internal`.
    pub kind: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            kind: self.kind.to_string(),
        };
        let mut response = (self.status, Json(body)).into_response();
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
            EngineError::Ended { .. } => (StatusCode::CONFLICT, "already_ended"),
            EngineError::Model(ModelError::Unknown(_)) => (StatusCode::NOT_FOUND, "unknown_model"),
            EngineError::Plan(_) => (StatusCode::UNPROCESSABLE_ENTITY, "cannot_plan"),
            EngineError::BadManifest { .. } | EngineError::Model(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "bad_input")
            }
            EngineError::Store(_)
            | EngineError::Broker(_)
            | EngineError::Finalize(_)
            | EngineError::Fenced(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            EngineError::SteppingDown => (StatusCode::SERVICE_UNAVAILABLE, "standby"),
            EngineError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_are_500_and_bad_requests_400() {
        let internal = ApiError::from(EngineError::Internal("run.json: boom".into()));
        assert_eq!(
            (internal.status, internal.kind),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        let bad = ApiError::from(EngineError::BadRequest("no archives".into()));
        assert_eq!(
            (bad.status, bad.kind),
            (StatusCode::BAD_REQUEST, "bad_request")
        );
        let response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "x").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
