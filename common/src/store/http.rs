//! An [`ObjectStore`] over the coordinator's object proxy (`/store/{key}`,
//! `/store?prefix=`; docs/api.md), so that a site submits with a bearer token
//! and no S3 credentials. Requests in flight are bounded, transient failures
//! (connection trouble, 408/429/5xx) are retried with the shared backoff,
//! and errors are sorted into the same kinds as every other store.

use super::key::{check_key, check_prefix};
use super::{
    ObjectMeta, ObjectStore, StoreError, StoreErrorKind, content_range_total, empty_range,
    ends_before, exact_range, range_end,
};
use crate::retry::{RetryPolicy, retry};
use crate::tls::HttpClientSettings;
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Where the coordinator is and how to authenticate. Its `Debug` hides the
/// token.
#[derive(Clone, PartialEq)]
pub struct HttpConfig {
    /// The coordinator's base URL (`http://host:port` or `https://…`, an
    /// optional path prefix allowed).
    pub url: String,
    /// Bearer token (a site or operator token).
    pub token: Option<String>,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt (doubling, jittered, at most 5 s).
    pub retry_initial_backoff: Duration,
    /// Limit for opening a connection.
    pub connect_timeout: Duration,
    /// Limit for one attempt of a request.
    pub request_timeout: Duration,
    /// A PEM file of CA certificates to trust for `https://`, in addition to
    /// the system's roots (or instead, with `ca_only`).
    pub ca_file: Option<PathBuf>,
    /// Trust only the certificates of `ca_file`.
    pub ca_only: bool,
}

impl HttpConfig {
    /// Defaults for `url`: 32 requests at once, 5 attempts, 5 s to connect,
    /// 300 s per attempt, no token.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            concurrency: super::s3::DEFAULT_CONCURRENCY,
            max_attempts: super::s3::DEFAULT_MAX_ATTEMPTS,
            retry_initial_backoff: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(super::s3::DEFAULT_CONNECT_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(super::s3::DEFAULT_OPERATION_TIMEOUT_SECS),
            ca_file: None,
            ca_only: false,
        }
    }

    /// The URL without user information or query, for logs and errors.
    pub fn describe(&self) -> String {
        match Url::parse(&self.url) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.set_query(None);
                url.as_str().trim_end_matches('/').to_owned()
            }
            Err(_) => "http://(invalid URL)".into(),
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &self.describe())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("ca_file", &self.ca_file)
            .field("ca_only", &self.ca_only)
            .finish()
    }
}

/// One listed object, as the proxy sends it.
#[derive(Deserialize)]
struct Listed {
    key: String,
    size: u64,
}

/// An error body of the coordinator API.
#[derive(Deserialize)]
struct ApiErrorBody {
    error: String,
    kind: Option<String>,
}

/// An [`ObjectStore`] reached through the coordinator's `/store` API.
pub struct HttpStore {
    client: reqwest::Client,
    base: Url,
    token: Option<String>,
    retry: RetryPolicy,
    permits: Semaphore,
    name: String,
}

impl fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStore")
            .field("store", &self.name)
            .finish()
    }
}

impl HttpStore {
    /// A store for `config`; a bad URL, setting or CA file is a permanent
    /// error naming it. Nothing is sent yet.
    pub fn connect(config: &HttpConfig) -> Result<Self, StoreError> {
        let name = config.describe();
        let bad = |message: String| {
            StoreError::new(StoreErrorKind::Permanent, "open", "", &name, message)
        };
        let mut base = Url::parse(&config.url)
            .map_err(|e| bad(format!("bad coordinator URL {:?}: {e}", config.url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad(format!(
                "bad coordinator URL {:?}: expected http://host:port or https://host:port",
                config.url
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad(
                "the coordinator URL must not have a query or fragment".into()
            ));
        }
        if config.concurrency == 0 || config.max_attempts == 0 {
            return Err(bad("concurrency and max attempts must be at least 1".into()));
        }
        if config.ca_only && config.ca_file.is_none() {
            return Err(bad("trusting only the CA file needs a CA file".into()));
        }
        if let Some(token) = &config.token
            && (token.is_empty() || token.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(bad(
                "the token is empty or holds spaces or control characters".into(),
            ));
        }
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let client = crate::tls::http_client(&HttpClientSettings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            ca_file: config.ca_file.clone(),
            ca_only: config.ca_only,
        })
        .map_err(bad)?;
        Ok(Self {
            client,
            base,
            token: config.token.clone(),
            retry: RetryPolicy {
                max_attempts: config.max_attempts,
                base_delay: config.retry_initial_backoff,
                max_delay: Duration::from_secs(5),
            },
            permits: Semaphore::new(config.concurrency),
            name,
        })
    }

    /// `<base>/store/<key segments, each percent-encoded>`.
    fn object_url(&self, key: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("store").extend(key.split('/'));
        }
        url
    }

    /// `<base>/store?prefix=<prefix>`.
    fn list_url(&self, prefix: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("store");
        }
        url.query_pairs_mut().append_pair("prefix", prefix);
        url
    }

    /// Send one request (retrying transient failures) and return a response
    /// with a success status, or the error its status and body describe.
    async fn send(
        &self,
        op: &'static str,
        key: &str,
        method: Method,
        url: Url,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, StoreError> {
        self.send_with(op, key, method, url, body, None).await
    }

    /// [`HttpStore::send`], with a `Range` header when `range` is given.
    async fn send_with(
        &self,
        op: &'static str,
        key: &str,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        range: Option<&str>,
    ) -> Result<reqwest::Response, StoreError> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            StoreError::new(
                StoreErrorKind::Permanent,
                op,
                key,
                &self.name,
                "the store is closed",
            )
        })?;
        let attempt = || async {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone());
            }
            if let Some(range) = range {
                request = request.header(reqwest::header::RANGE, range);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.request_error(op, key, &e))?;
            if response.status().is_success() {
                Ok(response)
            } else {
                Err(self.status_error(op, key, response).await)
            }
        };
        retry(self.retry, StoreError::is_transient, attempt).await
    }

    /// The error a failed request (no response) stands for.
    fn request_error(&self, op: &'static str, key: &str, err: &reqwest::Error) -> StoreError {
        if let Some(problem) = crate::tls::certificate_problem(err) {
            return StoreError::new(
                StoreErrorKind::Permanent,
                op,
                key,
                &self.name,
                format!(
                    "TLS: the coordinator's certificate was refused: {problem} (trust its CA with --s3-ca-file)"
                ),
            );
        }
        let kind = if err.is_builder() {
            StoreErrorKind::Permanent
        } else {
            StoreErrorKind::Transient
        };
        StoreError::new(kind, op, key, &self.name, error_chain(err))
    }

    /// The error an unsuccessful response stands for, with the API's message.
    async fn status_error(
        &self,
        op: &'static str,
        key: &str,
        response: reqwest::Response,
    ) -> StoreError {
        let status = response.status();
        let kind = status_kind(status);
        let text = response.text().await.unwrap_or_default();
        let message = match serde_json::from_str::<ApiErrorBody>(&text) {
            Ok(body) => match body.kind {
                Some(kind) => format!("{} ({kind}, HTTP {})", body.error, status.as_u16()),
                None => format!("{} (HTTP {})", body.error, status.as_u16()),
            },
            Err(_) if text.trim().is_empty() => format!("HTTP {status}"),
            Err(_) => format!(
                "HTTP {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            ),
        };
        StoreError::new(kind, op, key, &self.name, message)
    }
}

/// The kind of an unsuccessful HTTP status.
fn status_kind(status: StatusCode) -> StoreErrorKind {
    match status.as_u16() {
        404 => StoreErrorKind::NotFound,
        401 | 403 => StoreErrorKind::Denied,
        408 | 429 | 500..=599 => StoreErrorKind::Transient,
        _ => StoreErrorKind::Permanent,
    }
}

/// An error and its causes on one line.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[async_trait]
impl ObjectStore for HttpStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        check_key("put", key, &self.name)?;
        let url = self.object_url(key);
        self.send("put", key, Method::PUT, url, Some(body))
            .await
            .map(drop)
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        check_key("get", key, &self.name)?;
        let url = self.object_url(key);
        let response = self.send("get", key, Method::GET, url, None).await?;
        response.bytes().await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Transient,
                "get",
                key,
                &self.name,
                format!("reading the body failed: {}", error_chain(&e)),
            )
        })
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        check_key("get_range", key, &self.name)?;
        let end = range_end(key, &self.name, offset, len)?;
        if len == 0 {
            // An HTTP byte range holds at least one byte.
            return empty_range(self, key, offset).await;
        }
        let range = format!("bytes={}-{}", offset, end - 1);
        let url = self.object_url(key);
        // A 416 (the range starts past the end) is an error status: Permanent.
        let response = self
            .send_with("get_range", key, Method::GET, url, None, Some(&range))
            .await?;
        let partial = response.status() == StatusCode::PARTIAL_CONTENT;
        let content_range = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Transient,
                "get_range",
                key,
                &self.name,
                format!("reading the body failed: {}", error_chain(&e)),
            )
        })?;
        let refused = |message: String| {
            StoreError::new(
                StoreErrorKind::Permanent,
                "get_range",
                key,
                &self.name,
                message,
            )
        };
        if !partial {
            // A server that ignores `Range` sends the whole object.
            let size = body.len() as u64;
            if size < end {
                return Err(ends_before(key, &self.name, offset, end, size));
            }
            return Ok(body.slice(offset as usize..end as usize));
        }
        let starts = content_range
            .as_deref()
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split_once('-'))
            .and_then(|(start, _)| start.trim().parse::<u64>().ok());
        if starts != Some(offset) {
            return Err(refused(format!(
                "the answer to {range} is not that range (Content-Range: {})",
                content_range.as_deref().unwrap_or("none")
            )));
        }
        let total = content_range.as_deref().and_then(content_range_total);
        exact_range(key, &self.name, offset, end, body, total)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        check_key("head", key, &self.name)?;
        let url = self.object_url(key);
        match self.send("head", key, Method::HEAD, url, None).await {
            Ok(response) => {
                let size = response
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok(Some(ObjectMeta {
                    key: key.to_owned(),
                    size,
                }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        check_prefix(prefix, &self.name)?;
        let url = self.list_url(prefix);
        let response = self.send("list", prefix, Method::GET, url, None).await?;
        let bytes = response.bytes().await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Transient,
                "list",
                prefix,
                &self.name,
                format!("reading the listing failed: {}", error_chain(&e)),
            )
        })?;
        let listed: Vec<Listed> = serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Permanent,
                "list",
                prefix,
                &self.name,
                format!("the listing is not valid JSON: {e}"),
            )
        })?;
        let mut out: Vec<ObjectMeta> = listed
            .into_iter()
            .filter(|o| o.key.starts_with(prefix))
            .map(|o| ObjectMeta {
                key: o.key,
                size: o.size,
            })
            .collect();
        out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key("delete", key, &self.name)?;
        let url = self.object_url(key);
        match self.send("delete", key, Method::DELETE, url, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_each_key_segment() {
        let store = HttpStore::connect(&HttpConfig::new("http://h:8080/api/")).unwrap();
        assert_eq!(
            store
                .object_url("archives/cy-a.01/tiles/case 1/ü+%.jpg")
                .as_str(),
            "http://h:8080/api/store/archives/cy-a.01/tiles/case%201/%C3%BC+%25.jpg"
        );
        assert_eq!(
            store.list_url("archives/cy-a.").as_str(),
            "http://h:8080/api/store?prefix=archives%2Fcy-a."
        );
        let store = HttpStore::connect(&HttpConfig::new("http://h:8080")).unwrap();
        assert_eq!(store.object_url("a/b").as_str(), "http://h:8080/store/a/b");
    }

    #[test]
    fn statuses_sort_into_kinds() {
        use StoreErrorKind::*;
        for (status, kind) in [
            (404, NotFound),
            (401, Denied),
            (403, Denied),
            (429, Transient),
            (503, Transient),
            (400, Permanent),
            (413, Permanent),
            (416, Permanent),
            (422, Permanent),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(status_kind(status), kind, "{status}");
        }
    }

    #[test]
    fn bad_settings_are_named_and_the_token_is_hidden() {
        for (url, says) in [
            ("http//nohost", "bad coordinator URL"),
            ("ftp://h/", "expected http://"),
            ("http://h/?x=1", "query"),
        ] {
            let err = HttpStore::connect(&HttpConfig::new(url)).unwrap_err();
            assert!(err.to_string().contains(says), "{url}: {err}");
        }
        let mut config = HttpConfig::new("https://user:pw@coordinator:8443/");
        config.token = Some("ndl_secret".into());
        let shown = format!("{config:?} {}", config.describe());
        assert!(
            !shown.contains("ndl_secret") && !shown.contains("pw"),
            "{shown}"
        );
        assert!(shown.contains("https://coordinator:8443"), "{shown}");
        config.token = Some("two words".into());
        assert!(HttpStore::connect(&config).is_err());
    }
}
