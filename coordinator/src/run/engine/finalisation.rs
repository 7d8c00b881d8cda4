//! Finalisation: a run whose jobs are all settled gets its result files
//! (predictions, failures, statistics) and, last, run.json.

use super::*;
use crate::metrics::RUN_STATES;

impl Engine {
    pub(super) fn spawn_finalize(&self, run_id: Uuid) {
        {
            let mut runs = self.runs();
            let Some(run) = runs.get_mut(&run_id) else {
                return;
            };
            if run.state != RunState::Running {
                return;
            }
            run.state = RunState::Finalizing;
        }
        let engine = self.clone();
        self.inner
            .tasks
            .spawn(async move { engine.finalize(run_id).await });
    }

    #[instrument(skip(self))]
    pub(super) async fn finalize(&self, run_id: Uuid) {
        let timer = self.inner.metrics.finalize_seconds.start_timer();
        let snapshot = self.runs().get(&run_id).map(|r| {
            (
                r.spec.clone(),
                r.card.clone(),
                r.manifests.clone(),
                r.plan.clone(),
                r.jobs.clone(),
                r.republished,
                r.cancelled.clone(),
            )
        });
        let Some((spec, card, manifests, plan, jobs, republished, cancelled)) = snapshot else {
            return;
        };
        let settled = SettledRun {
            spec: &spec,
            card: &card,
            manifests: &manifests,
            plan: &plan,
            jobs: &jobs,
            republished,
            cancelled: cancelled.as_ref(),
        };
        let outcome = self.write_results(settled).await;
        let mut runs = self.runs();
        let Some(run) = runs.get_mut(&run_id) else {
            return;
        };
        match outcome {
            Ok(()) => {
                run.state = if run.cancelled.is_some() {
                    RunState::Cancelled
                } else {
                    RunState::Finished
                };
                run.finished_at = Some(Utc::now());
                timer.observe_duration();
                info!(%run_id, state = run.state.name(), "run's result files written");
            }
            Err(EngineError::Store(e) | EngineError::Fenced(FenceError::Store(e)))
                if e.is_transient() =>
            {
                warn!(%run_id, error = %e, "cannot write results yet; will retry");
                run.state = RunState::Running;
            }
            Err(EngineError::Fenced(e @ FenceError::Replaced { .. })) => {
                // Not the run's failure: the leader that replaced this
                // coordinator finalises it. This engine steps down.
                error!(%run_id, error = %e, "another coordinator leads; this one writes nothing and steps down");
                self.inner.shutdown.cancel();
            }
            Err(e) => {
                error!(%run_id, error = %e, "run failed");
                run.state = RunState::Failed {
                    reason: e.to_string(),
                };
            }
        }
        drop(runs);
        self.notify_changed();
        self.update_run_gauges();
    }

    /// Write predictions.csv, failures.csv, the statistics files, then run.json.
    pub(super) async fn write_results(&self, run: SettledRun<'_>) -> Result<(), EngineError> {
        let store = self.inner.store.as_ref();
        let outputs = finalize::collect(store, run).await?;
        let id = run.spec.run_id;
        let mut files = vec![
            (
                "predictions.csv".to_string(),
                outputs.predictions_csv.clone(),
            ),
            ("failures.csv".to_string(), outputs.failures_csv.clone()),
        ];
        let card = run.card.clone();
        let manifests = run.manifests.to_vec();
        let for_stats = outputs.clone();
        let stats = tokio::task::spawn_blocking(move || {
            statistics::run_statistics(&StatsInput {
                card: &card,
                predictions_csv: &for_stats.predictions_csv,
                failures: &for_stats.failures,
                manifests: &manifests,
                provenance: &for_stats.provenance,
            })
        })
        .await
        .map_err(|e| EngineError::Internal(format!("statistics task failed: {e}")))?;
        match stats {
            Ok(extra) => files.extend(extra),
            Err(e) => {
                warn!(run_id = %id, error = %e, "statistics could not be computed; result files written without them")
            }
        }
        self.inner.fence.check().await?;
        for (name, bytes) in files {
            store
                .put(&run_file_key(id, &name), Bytes::from(bytes))
                .await?;
        }
        let run_json = serde_json::to_vec_pretty(&outputs.provenance)
            .map_err(|e| EngineError::Internal(format!("run.json: {e}")))?;
        self.inner.fence.check().await?;
        store
            .put(&run_record_key(id), Bytes::from(run_json))
            .await?;
        Ok(())
    }

    pub(super) fn update_run_gauges(&self) {
        let runs = self.runs();
        let gauge = &self.inner.metrics.runs;
        for state in RUN_STATES {
            gauge.with_label_values(&[state]).set(0);
        }
        for run in runs.values() {
            gauge.with_label_values(&[run.state.name()]).inc();
        }
    }
}
