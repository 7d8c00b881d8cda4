//! The worker's store, counted: every request (each retry too) and the
//! bytes it moved, by operation, in `nodal_worker_store_requests_total` and
//! `nodal_worker_store_bytes_total`, so an operator sees requests per tile;
//! calls that failed in `nodal_worker_store_errors_total`.

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

    /// Count `outcome` of one `op` call: a request, its bytes, and an error if it failed.
    fn counted<T>(
        &self,
        op: &str,
        outcome: Result<T, StoreError>,
        bytes: impl Fn(&T) -> usize,
    ) -> Result<T, StoreError> {
        self.count(op, outcome.as_ref().map_or(0, &bytes));
        if outcome.is_err() {
            self.metrics.store_errors.with_label_values(&[op]).inc();
        }
        outcome
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let len = body.len();
        let put = self.inner.put(key, body).await;
        self.counted("put", put, |()| len)
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let got = self.inner.get(key).await;
        self.counted("get", got, Bytes::len)
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let got = self.inner.get_range(key, offset, len).await;
        self.counted("get_range", got, Bytes::len)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let head = self.inner.head(key).await;
        self.counted("head", head, |_| 0)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let listed = self.inner.list(prefix).await;
        self.counted("list", listed, |_| 0)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let deleted = self.inner.delete(key).await;
        self.counted("delete", deleted, |()| 0)
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
        let errors = |op: &str| metrics.store_errors.with_label_values(&[op]).get();
        assert_eq!(
            (errors("get"), errors("get_range"), errors("put")),
            (1, 0, 0)
        );
    }
}
