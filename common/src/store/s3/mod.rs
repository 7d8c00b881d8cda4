//! The distributed object store: any S3-compatible service through
//! aws-sdk-s3, with bounded concurrency, SDK retries and timeouts, paged
//! listing and multipart upload of large bodies.

mod client;
mod error;
mod multipart;

use super::key::{check_key, check_prefix};
use super::{
    ObjectMeta, ObjectStore, StoreError, StoreErrorKind, content_range_total, empty_range,
    exact_range, range_end,
};
use crate::tls::CaCertificates;
use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use error::from_sdk;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// One mebibyte, in bytes.
pub const MIB: usize = 1024 * 1024;
/// Default most requests in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Default attempts per request.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default connect timeout, seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
/// Default limit for one request with its retries, seconds.
pub const DEFAULT_OPERATION_TIMEOUT_SECS: u64 = 300;
/// Default multipart threshold, MiB.
pub const DEFAULT_MULTIPART_THRESHOLD_MIB: usize = 16;
/// Default part size, MiB.
pub const DEFAULT_PART_SIZE_MIB: usize = 8;
/// S3's smallest part (all but the last).
const MIN_PART: usize = 5 * MIB;
/// S3's largest part.
const MAX_PART: usize = 5 * 1024 * MIB;

/// Where and how to reach an S3-compatible bucket. Its `Debug` hides the
/// secret key and session token.
#[derive(Clone, PartialEq)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Prefix of every key inside the bucket, without leading or trailing
    /// `/` (`""` for none).
    pub prefix: String,
    /// Endpoint URL (`http://…` or `https://…`); `None` for AWS S3 itself.
    pub endpoint: Option<String>,
    /// Region; `None` takes `AWS_REGION`/`AWS_DEFAULT_REGION`/the profile,
    /// else `us-east-1`.
    pub region: Option<String>,
    /// Access key id; with `secret_key`, static credentials. `None` uses the
    /// SDK's default credential chain.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<String>,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); `None` means on for a
    /// custom endpoint, off for AWS.
    pub path_style: Option<bool>,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request, the first included (SDK standard retry mode).
    pub max_attempts: u32,
    /// Delay scale of the SDK's jittered exponential backoff.
    pub retry_initial_backoff: Duration,
    /// Limit for opening a connection.
    pub connect_timeout: Duration,
    /// Limit for a whole request, its retries included.
    pub operation_timeout: Duration,
    /// Bodies larger than this are uploaded in parts.
    pub multipart_threshold: usize,
    /// Size of each part (at least 5 MiB).
    pub part_size: usize,
    /// A PEM file of CA certificates to trust for an `https://` endpoint,
    /// in addition to the system's roots (or instead, with `ca_only`).
    pub ca_file: Option<PathBuf>,
    /// Trust only the certificates of `ca_file`, not the system's roots.
    pub ca_only: bool,
}

impl S3Config {
    /// Defaults for `bucket` and `prefix`: 32 requests at once, 5 attempts,
    /// multipart above 16 MiB in 8 MiB parts.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: None,
            region: None,
            access_key: None,
            secret_key: None,
            session_token: None,
            path_style: None,
            concurrency: DEFAULT_CONCURRENCY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_initial_backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            operation_timeout: Duration::from_secs(DEFAULT_OPERATION_TIMEOUT_SECS),
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD_MIB * MIB,
            part_size: DEFAULT_PART_SIZE_MIB * MIB,
            ca_file: None,
            ca_only: false,
        }
    }

    /// Whether requests use path-style addressing.
    pub fn path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some())
    }

    /// `s3://bucket/prefix`, plus the endpoint when it is not AWS.
    pub fn describe(&self) -> String {
        let mut out = format!("s3://{}", self.bucket);
        if !self.prefix.is_empty() {
            out.push('/');
            out.push_str(&self.prefix);
        }
        if let Some(endpoint) = &self.endpoint {
            out.push_str(" at ");
            out.push_str(endpoint);
        }
        out
    }

    /// The first thing wrong with this configuration, if any.
    fn problem(&self) -> Option<String> {
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Some(format!(
                "bucket {:?} is not a valid bucket name (3-63 of a-z, 0-9, '-', '.')",
                self.bucket
            ));
        }
        if self.prefix.starts_with('/') || self.prefix.ends_with('/') {
            return Some(format!(
                "key prefix {:?} must not start or end with '/'",
                self.prefix
            ));
        }
        if !self.prefix.is_empty()
            && let Some(why) = super::key::key_problem(&self.prefix)
        {
            return Some(format!("key prefix {:?}: {why}", self.prefix));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Some(format!(
                "endpoint {endpoint:?} must start with http:// or https://"
            ));
        }
        if self.ca_only && self.ca_file.is_none() {
            return Some("trusting only the CA file (ca_only) needs a CA file".into());
        }
        if self.access_key.is_some() != self.secret_key.is_some() {
            return Some("an access key and a secret key must be given together".into());
        }
        if self.concurrency == 0 {
            return Some("concurrency must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return Some("max attempts must be at least 1".into());
        }
        if !(MIN_PART..=MAX_PART).contains(&self.part_size) {
            return Some(format!(
                "part size {} must be between 5 MiB and 5 GiB",
                self.part_size
            ));
        }
        None
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &hidden(&self.secret_key))
            .field("session_token", &hidden(&self.session_token))
            .field("path_style", &self.path_style())
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("ca_file", &self.ca_file)
            .field("ca_only", &self.ca_only)
            .finish()
    }
}

/// An [`ObjectStore`] over an S3-compatible bucket.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    permits: Arc<Semaphore>,
    concurrency: usize,
    multipart_threshold: usize,
    part_size: usize,
    name: String,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("store", &self.name)
            .finish()
    }
}

impl S3Store {
    /// A store for `config`; a bad configuration is a permanent error naming
    /// what is wrong. Nothing is sent to the server yet.
    pub async fn connect(config: &S3Config) -> Result<Self, StoreError> {
        let name = config.describe();
        if let Some(problem) = config.problem() {
            return Err(StoreError::new(
                StoreErrorKind::Permanent,
                "open",
                "",
                &name,
                problem,
            ));
        }
        let ca = match &config.ca_file {
            Some(path) => Some(CaCertificates::load(path).map_err(|e| {
                StoreError::new(StoreErrorKind::Permanent, "open", "", &name, e.to_string())
            })?),
            None => None,
        };
        Ok(Self {
            client: client::build(config, ca.as_ref())
                .await
                .map_err(|e| StoreError::new(StoreErrorKind::Permanent, "open", "", &name, e))?,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            permits: Arc::new(Semaphore::new(config.concurrency)),
            concurrency: config.concurrency,
            multipart_threshold: config.multipart_threshold,
            part_size: config.part_size,
            name,
        })
    }

    /// The bucket key of store key `key`.
    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// Wait for a free request slot.
    async fn permit(&self, op: &'static str, key: &str) -> Result<SemaphorePermit<'_>, StoreError> {
        self.permits.acquire().await.map_err(|_| {
            StoreError::new(
                StoreErrorKind::Permanent,
                op,
                key,
                &self.name,
                "the store is closed",
            )
        })
    }

    async fn put_single(&self, key: &str, full: String, body: Bytes) -> Result<(), StoreError> {
        let _permit = self.permit("put", key).await?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(full)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| from_sdk(e, "put", key, &self.name))?;
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        check_key("put", key, &self.name)?;
        let full = self.full_key(key);
        if body.len() > self.multipart_threshold {
            multipart::upload(self, key, full, body).await
        } else {
            self.put_single(key, full, body).await
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        check_key("get", key, &self.name)?;
        let _permit = self.permit("get", key).await?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| from_sdk(e, "get", key, &self.name))?;
        let body = out.body.collect().await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Transient,
                "get",
                key,
                &self.name,
                format!("reading the body failed: {e}"),
            )
        })?;
        Ok(body.into_bytes())
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        check_key("get_range", key, &self.name)?;
        let end = range_end(key, &self.name, offset, len)?;
        if len == 0 {
            // An HTTP byte range holds at least one byte.
            return empty_range(self, key, offset).await;
        }
        let range = format!("bytes={}-{}", offset, end - 1);
        let _permit = self.permit("get_range", key).await?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(&range)
            .send()
            .await
            .map_err(|e| {
                let unsatisfiable = match &e {
                    SdkError::ServiceError(ctx) => {
                        ctx.err().code() == Some("InvalidRange") || ctx.raw().status().as_u16() == 416
                    }
                    _ => false,
                };
                if unsatisfiable {
                    StoreError::new(
                        StoreErrorKind::Permanent,
                        "get_range",
                        key,
                        &self.name,
                        format!(
                            "the object ends before byte {end}: the range {range} of {key:?} is not satisfiable (InvalidRange, HTTP 416)"
                        ),
                    )
                } else {
                    from_sdk(e, "get_range", key, &self.name)
                }
            })?;
        let total = out.content_range().and_then(content_range_total);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Transient,
                    "get_range",
                    key,
                    &self.name,
                    format!("reading the body failed: {e}"),
                )
            })?
            .into_bytes();
        exact_range(key, &self.name, offset, end, body, total)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        check_key("head", key, &self.name)?;
        let _permit = self.permit("head", key).await?;
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
            })),
            Err(e) => {
                let err = from_sdk(e, "head", key, &self.name);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        check_prefix(prefix, &self.name)?;
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_owned()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _permit = self.permit("list", prefix).await?;
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full_prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| from_sdk(e, "list", prefix, &self.name))?
            };
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.get(strip..)) {
                    out.push(ObjectMeta {
                        key: key.to_owned(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key("delete", key, &self.name)?;
        let _permit = self.permit("delete", key).await?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = from_sdk(e, "delete", key, &self.name);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
