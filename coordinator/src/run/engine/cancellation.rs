//! Cancellation: an operator stops a run. Its marker is stored first, so
//! that workers drop the run's jobs unrun and a coordinator that restarts
//! before the result files are written still finalizes it as cancelled.

use super::*;
use crate::run::Cancellation;

impl Engine {
    /// Cancel a running run on behalf of `by` (a token's name): jobs not yet
    /// answered are never run, the results stored so far are kept, and the
    /// run ends in state `cancelled` with every other case in failures.csv
    /// (stage `cancelled`). Cancelling a cancelled run again changes nothing.
    #[instrument(skip(self))]
    pub async fn cancel_run(&self, run_id: Uuid, by: &str) -> Result<RunStatus, EngineError> {
        let _in_flight = self.inner.tasks.token();
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::SteppingDown);
        }
        let live = self
            .runs()
            .get(&run_id)
            .map(|r| (r.state.clone(), r.cancelled.is_some()));
        match live {
            Some((_, true)) => return self.run_status(run_id).await,
            Some((RunState::Running, false)) => {}
            Some((state, false)) => return Err(ended(run_id, &state)),
            None => {
                let status = self.finished_status(run_id).await?;
                return match status.state {
                    RunState::Cancelled => Ok(status),
                    state => Err(ended(run_id, &state)),
                };
            }
        }
        let cancellation = Cancellation {
            cancelled_at: Utc::now(),
            by: by.to_string(),
        };
        let body = serde_json::to_vec_pretty(&cancellation)
            .map_err(|e| EngineError::Internal(format!("cancellation marker: {e}")))?;
        self.inner.fence.check().await?;
        let key = cancelled_key(run_id);
        retry(RetryPolicy::default(), StoreError::is_transient, || {
            self.inner.store.put(&key, Bytes::from(body.clone()))
        })
        .await?;
        {
            let mut runs = self.runs();
            let Some(run) = runs.get_mut(&run_id) else {
                return Err(EngineError::UnknownRun(run_id));
            };
            // It may have settled while the marker was written: then it
            // finishes as it is (workers drop its late copies either way).
            if run.state == RunState::Running && run.cancelled.is_none() {
                run.cancel(cancellation);
            }
        }
        info!(%run_id, by, "run cancelled");
        self.inner.kick.notify_one();
        self.notify_changed();
        self.run_status(run_id).await
    }

    /// The cancellation stored for a run being resumed, if any.
    pub(super) async fn stored_cancellation(
        &self,
        run_id: Uuid,
    ) -> Result<Option<Cancellation>, EngineError> {
        let key = cancelled_key(run_id);
        let bytes = match self.inner.store.get(&key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice(&bytes) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                // The marker's presence is what counts; an unreadable body
                // must not resurrect the run.
                error!(%run_id, key, error = %e, "the cancellation marker does not parse; the run stays cancelled");
                Ok(Some(Cancellation {
                    cancelled_at: Utc::now(),
                    by: format!("unknown ({key} does not parse)"),
                }))
            }
        }
    }
}

/// `409 already_ended`: a run that ended, or is writing its result files,
/// cannot be cancelled.
fn ended(run_id: Uuid, state: &RunState) -> EngineError {
    EngineError::Ended {
        run_id,
        state: state.name(),
    }
}
