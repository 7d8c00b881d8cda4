//! The worker's store, counted: every request (each retry too) and the
//! bytes it moved, by operation, in `nodal_worker_store_requests_total` and
//! `nodal_worker_store_bytes_total`, so an operator sees requests per tile.

use crate::metrics::WorkerMetrics;
use async_trait::async_trait;
use bytes::Bytes;
use nodal_common::store::{ObjectMeta, ObjectStore, SharedStore, StoreError};
use std::sync::Arc;

/// A store whose requests are counted in the worker's metrics.
#[derive(Debug)]
pub(crate) struct MeteredStore {
    inner: SharedStore,
    metrics: WorkerMetrics,
}

impl MeteredStore {
    /// `inner`, counted in `metrics`.
    pub(crate) fn wrap(inner: SharedStore, metrics: WorkerMetrics) -> SharedStore {
        Arc::new(Self { inner, metrics })
    }

    fn count(&self, op: &str, bytes: usize) {
        self.metrics.store_requests.with_label_values(&[op]).inc();
        self.metrics
            .store_bytes
            .with_label_values(&[op])
            .inc_by(bytes as u64);
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.count("put", body.len());
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let got = self.inner.get(key).await;
        self.count("get", got.as_ref().map_or(0, Bytes::len));
        got
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let got = self.inner.get_range(key, offset, len).await;
        self.count("get_range", got.as_ref().map_or(0, Bytes::len));
        got
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.count("head", 0);
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.count("list", 0);
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.count("delete", 0);
        self.inner.delete(key).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_common::store::LocalStore;

    #[tokio::test]
    async fn requests_and_bytes_are_counted_by_operation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local: SharedStore = Arc::new(LocalStore::open(dir.path()).await.expect("store"));
        let metrics = WorkerMetrics::register(&prometheus::Registry::new()).expect("metrics");
        let store = MeteredStore::wrap(local, metrics.clone());
        store
            .put("a/b", Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(&store.get_range("a/b", 2, 3).await.unwrap()[..], b"234");
        assert_eq!(store.get("a/b").await.unwrap().len(), 10);
        assert!(store.get("a/missing").await.is_err());
        let requests = |op: &str| metrics.store_requests.with_label_values(&[op]).get();
        let bytes = |op: &str| metrics.store_bytes.with_label_values(&[op]).get();
        assert_eq!((requests("put"), bytes("put")), (1, 10));
        assert_eq!((requests("get_range"), bytes("get_range")), (1, 3));
        assert_eq!((requests("get"), bytes("get")), (2, 10));
    }
}
