//! Fault injection: a real store whose reads of chosen keys fail with
//! transient errors, a given number of times or for good (an outage).

use async_trait::async_trait;
use bytes::Bytes;
use nodal_common::store::{ObjectMeta, ObjectStore, SharedStore, StoreError, StoreErrorKind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads of keys containing `pattern` fail `left` more times.
#[derive(Debug)]
struct Outage {
    pattern: String,
    left: u64,
}

/// A store that passes everything to `inner`, except reads hit by an outage.
#[derive(Debug)]
pub struct FlakyStore {
    inner: SharedStore,
    outage: Mutex<Option<Outage>>,
    failed: AtomicU64,
}

impl FlakyStore {
    /// Wrap a store; no outage yet.
    pub fn new(inner: SharedStore) -> Self {
        Self {
            inner,
            outage: Mutex::new(None),
            failed: AtomicU64::new(0),
        }
    }

    /// Fail the next `times` reads of keys containing `pattern` (`u64::MAX`: for good).
    pub fn break_reads(&self, pattern: &str, times: u64) {
        *self.outage.lock().expect("lock") = Some(Outage {
            pattern: pattern.into(),
            left: times,
        });
    }

    /// Reads failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    fn check(&self, op: &'static str, key: &str) -> Result<(), StoreError> {
        let mut outage = self.outage.lock().expect("lock");
        match outage.as_mut() {
            Some(o) if o.left > 0 && key.contains(&o.pattern) => {
                o.left -= 1;
                self.failed.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::new(
                    StoreErrorKind::Transient,
                    op,
                    key,
                    "flaky://",
                    "connection reset (injected outage)",
                ))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.check("get", key)?;
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.check("get_range", key)?;
        self.inner.get_range(key, offset, len).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.check("head", key)?;
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    fn describe(&self) -> String {
        format!("flaky {}", self.inner.describe())
    }
}
