//! Object storage behind one small trait: S3-compatible storage in
//! distributed mode, a local folder in the embedded default, and the
//! coordinator's object proxy for sites that hold a token, not S3 keys.

use async_trait::async_trait;
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

mod config;
mod http;
mod key;
mod local;
mod s3;

pub use config::{StoreConfig, open_store};
pub use http::{HttpConfig, HttpStore};
pub use key::{key_problem, prefix_problem};
pub use local::LocalStore;
pub use s3::{
    DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MULTIPART_THRESHOLD_MIB, DEFAULT_OPERATION_TIMEOUT_SECS, DEFAULT_PART_SIZE_MIB, MIB,
    S3Config, S3Store,
};

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the store root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// Whether a store error is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The object does not exist.
    NotFound,
    /// Credentials were refused or access denied.
    Denied,
    /// Network trouble, throttling, a server error: retry with backoff.
    Transient,
    /// Anything else that will not get better by retrying.
    Permanent,
}

/// An object-store failure, with the key it concerned and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{op} {key:?} in {store}: {message}")]
pub struct StoreError {
    /// Retry or not.
    pub kind: StoreErrorKind,
    /// The operation (`get`, `put`, `list`, …).
    pub op: &'static str,
    /// The key or prefix concerned.
    pub key: String,
    /// The store, as [`ObjectStore::describe`] names it.
    pub store: String,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    /// An error of `kind` from `op` on `key` in `store`.
    pub fn new(
        kind: StoreErrorKind,
        op: &'static str,
        key: &str,
        store: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            op,
            key: key.to_owned(),
            store: store.to_owned(),
            message: message.into(),
        }
    }

    /// True when retrying may help.
    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Transient
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }
}

/// The end (exclusive) of `len` bytes from `offset`, or a permanent
/// `get_range` error when it would pass `u64::MAX`.
pub(crate) fn range_end(key: &str, store: &str, offset: u64, len: u64) -> Result<u64, StoreError> {
    offset.checked_add(len).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Permanent,
            "get_range",
            key,
            store,
            format!("the range of {len} bytes from byte {offset} is past any object"),
        )
    })
}

/// The permanent `get_range` error for an object of `size` bytes read up to
/// byte `end` (exclusive) from `offset`.
pub(crate) fn ends_before(key: &str, store: &str, offset: u64, end: u64, size: u64) -> StoreError {
    StoreError::new(
        StoreErrorKind::Permanent,
        "get_range",
        key,
        store,
        format!(
            "the object ends before byte {end}: it has {size} bytes, the range is bytes {offset}..{end}"
        ),
    )
}

/// The body of a ranged read of bytes `offset..end`, which must hold
/// exactly that many bytes: a shorter one means the object ends before
/// `end` (of `total` bytes, when the server said), a longer one is an error.
pub(crate) fn exact_range(
    key: &str,
    store: &str,
    offset: u64,
    end: u64,
    body: Bytes,
    total: Option<u64>,
) -> Result<Bytes, StoreError> {
    let (got, len) = (body.len() as u64, end - offset);
    if got < len {
        let size = total.unwrap_or(offset + got);
        return Err(ends_before(key, store, offset, end, size));
    }
    if got > len {
        return Err(StoreError::new(
            StoreErrorKind::Permanent,
            "get_range",
            key,
            store,
            format!(
                "the server answered {got} bytes to the range bytes {offset}..{end} ({len} bytes)"
            ),
        ));
    }
    Ok(body)
}

/// The total size in a `Content-Range: bytes a-b/total` value.
pub(crate) fn content_range_total(value: &str) -> Option<u64> {
    value.rsplit_once('/')?.1.trim().parse().ok()
}

/// `get_range` of 0 bytes for a store that reads over the network: no read,
/// but the same answers as any other range, from the object's metadata.
pub(crate) async fn empty_range<S: ObjectStore + ?Sized>(
    store: &S,
    key: &str,
    offset: u64,
) -> Result<Bytes, StoreError> {
    let meta = store.head(key).await.map_err(|mut e| {
        e.op = "get_range";
        e
    })?;
    match meta {
        None => Err(StoreError::new(
            StoreErrorKind::NotFound,
            "get_range",
            key,
            &store.describe(),
            "no such object",
        )),
        Some(meta) if meta.size < offset => Err(ends_before(
            key,
            &store.describe(),
            offset,
            offset,
            meta.size,
        )),
        Some(_) => Ok(Bytes::new()),
    }
}

/// A flat key → bytes store. Keys use `/` separators and never start with `/`.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Write an object, replacing any existing one. Large bodies are uploaded
    /// in parts where the backend supports it; the object appears atomically.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;
    /// Read a whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;
    /// Read `len` bytes of an object from byte `offset`: exactly `len`
    /// bytes, or an error — `NotFound` when the object is missing,
    /// `Permanent` when it ends before `offset + len`. `len` 0 reads nothing.
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError>;
    /// Metadata of an object, `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;
    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// Remove an object; removing a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// A short description for errors and logs (never includes secrets).
    fn describe(&self) -> String;
}

/// A shared handle to any store.
pub type SharedStore = Arc<dyn ObjectStore>;
