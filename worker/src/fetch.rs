//! Reading from the object store with the worker's retry policy: transient
//! errors are retried with jittered backoff (`common::retry`); a missing
//! object or a permanent error comes back at once.

use bytes::Bytes;
use nodal_common::retry::{RetryPolicy, retry};
use nodal_common::store::{ObjectMeta, ObjectStore, StoreError};

/// `store.get(key)`, retrying transient errors.
pub(crate) async fn get(
    store: &dyn ObjectStore,
    key: &str,
    policy: RetryPolicy,
) -> Result<Bytes, StoreError> {
    retry(policy, StoreError::is_transient, || store.get(key)).await
}

/// `store.get_range(key, offset, len)`, retrying transient errors.
pub(crate) async fn get_range(
    store: &dyn ObjectStore,
    key: &str,
    offset: u64,
    len: u64,
    policy: RetryPolicy,
) -> Result<Bytes, StoreError> {
    retry(policy, StoreError::is_transient, || {
        store.get_range(key, offset, len)
    })
    .await
}

/// `store.head(key)`, retrying transient errors.
pub(crate) async fn head(
    store: &dyn ObjectStore,
    key: &str,
    policy: RetryPolicy,
) -> Result<Option<ObjectMeta>, StoreError> {
    retry(policy, StoreError::is_transient, || store.head(key)).await
}
