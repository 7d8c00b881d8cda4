//! The one place that sorts aws-sdk errors into [`StoreErrorKind`]s.

use crate::store::{StoreError, StoreErrorKind};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// A [`StoreError`] for `op` on `key` from an SDK error, with its kind:
/// missing objects are `NotFound`, refused credentials `Denied`, timeouts,
/// connection trouble, throttling and 5xx `Transient`, the rest `Permanent`.
pub(super) fn from_sdk<E>(
    err: SdkError<E, HttpResponse>,
    op: &'static str,
    key: &str,
    store: &str,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(problem) = crate::tls::certificate_problem(&err) {
        return StoreError::new(
            StoreErrorKind::Permanent,
            op,
            key,
            store,
            format!(
                "TLS: the server's certificate was refused: {problem} (trust its CA with --s3-ca-file)"
            ),
        );
    }
    let kind = match &err {
        SdkError::ConstructionFailure(_) => StoreErrorKind::Permanent,
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => StoreErrorKind::Transient,
        SdkError::DispatchFailure(failure) if failure.is_user() => StoreErrorKind::Permanent,
        SdkError::DispatchFailure(_) => StoreErrorKind::Transient,
        SdkError::ServiceError(ctx) => service_kind(ctx.err().code(), ctx.raw().status().as_u16()),
        _ => StoreErrorKind::Permanent,
    };
    StoreError::new(kind, op, key, store, describe(&err))
}

/// A one-line account: the S3 error code, message and status, or the chain
/// of causes for failures without a response.
fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(ctx) = err {
        let status = ctx.raw().status().as_u16();
        return match (ctx.err().code(), ctx.err().message()) {
            (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
            (Some(code), None) => format!("{code} (HTTP {status})"),
            _ => format!("error response (HTTP {status})"),
        };
    }
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The kind of an error response, from its S3 error code and HTTP status.
fn service_kind(code: Option<&str>, status: u16) -> StoreErrorKind {
    match code {
        // A missing bucket is a configuration error, not a missing object.
        Some("NoSuchBucket") => StoreErrorKind::Permanent,
        Some("NoSuchKey" | "NotFound" | "NoSuchUpload") => StoreErrorKind::NotFound,
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "AccountProblem"
            | "AllAccessDisabled",
        ) => StoreErrorKind::Denied,
        Some(
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestTimeout"
            | "RequestTimeTooSkewed"
            | "InternalError"
            | "ServiceUnavailable"
            | "OperationAborted",
        ) => StoreErrorKind::Transient,
        _ => match status {
            404 => StoreErrorKind::NotFound,
            401 | 403 => StoreErrorKind::Denied,
            408 | 429 | 500..=599 => StoreErrorKind::Transient,
            _ => StoreErrorKind::Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_codes_and_statuses() {
        use StoreErrorKind::*;
        let cases = [
            (Some("NoSuchKey"), 404, NotFound),
            (None, 404, NotFound),
            (Some("NoSuchBucket"), 404, Permanent),
            (Some("SignatureDoesNotMatch"), 403, Denied),
            (Some("InvalidAccessKeyId"), 403, Denied),
            (None, 403, Denied),
            (Some("SlowDown"), 503, Transient),
            (Some("InternalError"), 500, Transient),
            (None, 502, Transient),
            (None, 429, Transient),
            (Some("InvalidArgument"), 400, Permanent),
            (Some("EntityTooLarge"), 400, Permanent),
        ];
        for (code, status, want) in cases {
            assert_eq!(service_kind(code, status), want, "{code:?} {status}");
        }
    }
}
