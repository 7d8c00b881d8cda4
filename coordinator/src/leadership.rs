//! One coordinator in charge. Coordinators on the same queues and store
//! share a lease held through the broker ([`Lease`]): the holder drives
//! every run; the others stand by (healthy, not ready, answering nothing
//! else) and take over when the holder's broker connection ends. A leader
//! checks its lease every [`LeaseConfig::check_interval`] and steps down the
//! moment a check fails or goes unanswered for [`LeaseConfig::check_timeout`]
//! — shorter than the broker's heartbeat, so a leader cut off from the
//! broker has stopped before the broker frees the lease for another.
//!
//! Behind the lease, a fencing epoch in the store ([`Fence`],
//! `coordinator/lease.json`): each new leader raises it, and a leader checks
//! it is still the epoch's holder before it writes a run's result files, so
//! a replaced leader that has not yet noticed never finalises.

use chrono::{DateTime, Utc};
use nodal_common::broker::{Broker, BrokerError, Lease};
use nodal_common::store::{SharedStore, StoreError};
use nodal_types::layout::LEASE_RECORD;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How the lease is sought and watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How often a standby coordinator asks for the lease.
    pub retry_interval: Duration,
    /// How often the leader checks that it still holds the lease.
    pub check_interval: Duration,
    /// A check unanswered for this long counts as the lease lost; keep it
    /// below the AMQP heartbeat timeout.
    pub check_timeout: Duration,
}

/// Default interval between a standby's requests for the lease.
pub const DEFAULT_LEASE_RETRY: Duration = Duration::from_secs(2);

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            retry_interval: DEFAULT_LEASE_RETRY,
            check_interval: Duration::from_secs(1),
            check_timeout: Duration::from_secs(5),
        }
    }
}

/// Wait until this process holds the lease; `None` if `shutdown` comes
/// first.
pub async fn acquire(
    broker: &dyn Broker,
    config: LeaseConfig,
    shutdown: &CancellationToken,
) -> Option<Box<dyn Lease>> {
    let mut announced = false;
    loop {
        // A broker cut off answers nothing: give each request the check's bound.
        let asked = tokio::select! {
            _ = shutdown.cancelled() => return None,
            asked = tokio::time::timeout(config.check_timeout, broker.try_lease()) => asked,
        };
        match asked {
            Ok(Ok(Some(lease))) => return Some(lease),
            Ok(Ok(None)) if !announced => {
                info!("another coordinator holds the lease; standing by");
                announced = true;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot ask for the coordinator lease; retrying"),
            Err(_) => warn!(
                timeout_s = config.check_timeout.as_secs_f64(),
                "no answer from the broker to a lease request; retrying"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(config.retry_interval) => {}
        }
    }
}

/// Resolve once `lease` is lost (a failed or unanswered check).
pub async fn lost(lease: &dyn Lease, config: LeaseConfig) -> BrokerError {
    loop {
        tokio::time::sleep(config.check_interval).await;
        match tokio::time::timeout(config.check_timeout, lease.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e,
            Err(_) => {
                return BrokerError::transient(
                    "lease check",
                    "",
                    format!("no answer from the broker in {:?}", config.check_timeout),
                );
            }
        }
    }
}

/// The fencing epoch as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRecord {
    epoch: u64,
    holder: String,
    taken_at: DateTime<Utc>,
}

/// Why a leader may not write.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// A later leader raised the epoch.
    #[error("coordinator {holder} took over at epoch {epoch} (this one holds {ours})")]
    Replaced {
        /// The current holder.
        holder: String,
        /// Its epoch.
        epoch: u64,
        /// This coordinator's epoch.
        ours: u64,
    },
    /// The lease record is not what a coordinator writes.
    #[error("{LEASE_RECORD}: not a lease record: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The fencing epoch this leader holds.
#[derive(Debug, Clone)]
pub struct Fence {
    store: SharedStore,
    epoch: u64,
}

impl Fence {
    /// Raise the stored epoch by one as `holder`, the new leader.
    pub async fn take(store: SharedStore, holder: &str) -> Result<Fence, FenceError> {
        let epoch = read(&store).await?.map_or(0, |r| r.epoch) + 1;
        let record = LeaseRecord {
            epoch,
            holder: holder.to_owned(),
            taken_at: Utc::now(),
        };
        let body = serde_json::to_vec_pretty(&record)
            .map_err(|e| FenceError::Corrupt(format!("cannot serialise: {e}")))?;
        store.put(LEASE_RECORD, body.into()).await?;
        info!(epoch, holder, "took the coordinator lease");
        Ok(Fence { store, epoch })
    }

    /// `Ok` while no later leader has raised the epoch.
    pub async fn check(&self) -> Result<(), FenceError> {
        match read(&self.store).await? {
            Some(r) if r.epoch != self.epoch => Err(FenceError::Replaced {
                holder: r.holder,
                epoch: r.epoch,
                ours: self.epoch,
            }),
            _ => Ok(()),
        }
    }
}

async fn read(store: &SharedStore) -> Result<Option<LeaseRecord>, FenceError> {
    match store.get(LEASE_RECORD).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| FenceError::Corrupt(e.to_string())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_common::broker::{MemoryBroker, QueueNames};
    use nodal_common::store::LocalStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn one_holder_at_a_time_and_dropping_frees_it() {
        let broker = MemoryBroker::new(QueueNames::default(), 5);
        let first = broker.try_lease().await.unwrap().expect("free at first");
        assert!(broker.try_lease().await.unwrap().is_none(), "held");
        first.check().await.unwrap();
        drop(first);
        assert!(broker.try_lease().await.unwrap().is_some(), "freed");
    }

    #[tokio::test]
    async fn a_replaced_leader_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(LocalStore::open(dir.path()).await.unwrap());
        let old = Fence::take(store.clone(), "a").await.unwrap();
        old.check().await.unwrap();
        let new = Fence::take(store.clone(), "b").await.unwrap();
        new.check().await.unwrap();
        let err = old.check().await.unwrap_err();
        assert!(
            matches!(&err, FenceError::Replaced { holder, epoch: 2, ours: 1 } if holder == "b"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_corrupt_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(LocalStore::open(dir.path()).await.unwrap());
        store.put(LEASE_RECORD, "garbage".into()).await.unwrap();
        let err = Fence::take(store, "a").await.unwrap_err();
        assert!(err.to_string().contains(LEASE_RECORD), "{err}");
    }
}
