//! Whether a job's archive exists: its manifest must be in the store. Positive
//! answers are remembered (archives are never deleted under a running run);
//! negative ones are asked again, since a site may still be submitting.

use crate::error::WorkerError;
use crate::fetch;
use nodal_common::retry::RetryPolicy;
use nodal_common::store::SharedStore;
use nodal_types::layout::manifest_key;
use std::collections::HashSet;
use std::sync::Mutex;

/// Most archive ids remembered; the set starts afresh when full.
const REMEMBERED: usize = 4096;

/// Checks archives against the store, remembering those that exist.
#[derive(Debug)]
pub(crate) struct ArchiveCheck {
    store: SharedStore,
    retry: RetryPolicy,
    known: Mutex<HashSet<String>>,
}

impl ArchiveCheck {
    /// A check against `store`, retrying transient errors with `retry`.
    pub(crate) fn new(store: SharedStore, retry: RetryPolicy) -> Self {
        Self {
            store,
            retry,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// `Ok` when `archive_id` has a manifest; [`WorkerError::MissingArchive`]
    /// when it has none; a store error when the store cannot say.
    pub(crate) async fn ensure(&self, archive_id: &str) -> Result<(), WorkerError> {
        if self.lock().contains(archive_id) {
            return Ok(());
        }
        let key = manifest_key(archive_id);
        match fetch::head(self.store.as_ref(), &key, self.retry).await? {
            Some(_) => {
                let mut known = self.lock();
                if known.len() >= REMEMBERED {
                    known.clear();
                }
                known.insert(archive_id.to_owned());
                Ok(())
            }
            None => Err(WorkerError::MissingArchive {
                archive_id: archive_id.to_owned(),
                key,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use nodal_common::store::{LocalStore, ObjectStore};
    use std::sync::Arc;

    #[tokio::test]
    async fn missing_archives_are_named_and_present_ones_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LocalStore::open(dir.path()).await.expect("store"));
        let check = ArchiveCheck::new(store.clone(), RetryPolicy::default());
        let err = check.ensure("cy-a.0000").await.expect_err("missing");
        assert!(
            matches!(&err, WorkerError::MissingArchive { key, .. } if key == "archives/cy-a.0000/manifest.json"),
            "{err}"
        );
        store
            .put(&manifest_key("cy-a.0000"), Bytes::from_static(b"{}"))
            .await
            .expect("put");
        check.ensure("cy-a.0000").await.expect("present now");
        store
            .delete(&manifest_key("cy-a.0000"))
            .await
            .expect("delete");
        check.ensure("cy-a.0000").await.expect("remembered");
        let err = check.ensure("../bad").await.expect_err("invalid key");
        assert_eq!(err.kind(), crate::error::ErrorKind::Permanent, "{err}");
    }
}
