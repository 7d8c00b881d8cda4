//! What the API asks the engine: runs and their result files, archives,
//! models.

use super::*;

impl Engine {
    /// The ids of every complete archive in the store.
    pub async fn archive_ids(&self) -> Result<Vec<String>, EngineError> {
        catalog::archive_ids(self.inner.store.as_ref()).await
    }

    /// An archive's manifest.
    pub async fn manifest(&self, archive_id: &str) -> Result<Manifest, EngineError> {
        Ok(
            catalog::read_manifest(self.inner.store.as_ref(), archive_id)
                .await?
                .0,
        )
    }

    /// Every published model's card.
    pub async fn model_cards(&self) -> Result<Vec<ModelCard>, EngineError> {
        catalog::model_cards(self.inner.store.as_ref()).await
    }

    /// The status of a run, live or finished.
    pub async fn run_status(&self, run_id: Uuid) -> Result<RunStatus, EngineError> {
        if let Some(run) = self.runs().get(&run_id) {
            return Ok(run.status(Instant::now()));
        }
        self.finished_status(run_id).await
    }

    pub(super) async fn finished_status(&self, run_id: Uuid) -> Result<RunStatus, EngineError> {
        let bytes = match self.inner.store.get(&run_record_key(run_id)).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(EngineError::UnknownRun(run_id)),
            Err(e) => return Err(e.into()),
        };
        let p: RunProvenance =
            serde_json::from_slice(&bytes).map_err(|e| EngineError::BadManifest {
                key: run_record_key(run_id),
                message: format!("not a valid run record: {e}"),
            })?;
        let elapsed = (p.finished_at - p.created_at).num_milliseconds().max(1) as f64 / 1000.0;
        Ok(RunStatus {
            run_id,
            label: p.label,
            model: format!("{}@{}", p.model.name, p.model.version),
            archives: p.archives.into_iter().map(|a| a.archive_id).collect(),
            state: if p.cancelled.is_some() {
                RunState::Cancelled
            } else {
                RunState::Finished
            },
            jobs_total: p.counts.jobs,
            jobs_done: p.counts.jobs - p.counts.jobs_failed - p.counts.jobs_cancelled,
            jobs_failed: p.counts.jobs_failed,
            jobs_cancelled: p.counts.jobs_cancelled,
            jobs_in_flight: 0,
            tiles_total: p.counts.tiles_planned,
            tiles_done: p.counts.tiles_ok,
            tiles_failed: p.counts.tiles_failed as u64,
            tiles_per_second: p.counts.tiles_ok as f64 / elapsed,
            eta_seconds: None,
            created_at: p.created_at,
            finished_at: Some(p.finished_at),
        })
    }

    /// Every run this store knows, newest first.
    pub async fn list_runs(&self) -> Result<Vec<RunStatus>, EngineError> {
        let mut ids: Vec<Uuid> = self
            .inner
            .store
            .list(layout::RUNS)
            .await?
            .iter()
            .filter_map(|m| match layout::parse_run_key(&m.key) {
                Some(RunObject::Spec(id)) => Some(id),
                _ => None,
            })
            .collect();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.run_status(id).await {
                Ok(s) => out.push(s),
                Err(EngineError::UnknownRun(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    /// Wait until a run has ended (finished, failed or cancelled); returns
    /// its final status.
    pub async fn wait_finished(&self, run_id: Uuid) -> Result<RunStatus, EngineError> {
        let mut changed = self.inner.changed.subscribe();
        loop {
            let status = self.run_status(run_id).await?;
            if status.state.is_ended() {
                return Ok(status);
            }
            if changed.changed().await.is_err() {
                return Err(EngineError::NotFinished(run_id));
            }
        }
    }

    /// One of a finished (or cancelled) run's result files.
    pub async fn result_file(&self, run_id: Uuid, name: &str) -> Result<Bytes, EngineError> {
        if !crate::run::RESULT_FILES.contains(&name) {
            return Err(EngineError::UnknownFile {
                run_id,
                name: name.to_string(),
            });
        }
        let status = self.run_status(run_id).await?;
        if !status.state.has_results() {
            return Err(EngineError::NotFinished(run_id));
        }
        match self.inner.store.get(&run_file_key(run_id, name)).await {
            Ok(b) => Ok(b),
            Err(e) if e.is_not_found() => Err(EngineError::UnknownFile {
                run_id,
                name: name.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}
