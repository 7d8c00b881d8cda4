//! Intake: create a run (resolve the model, read the manifests, plan,
//! store the spec) and, at start, resume every run the store holds
//! unfinished.

use super::*;

impl Engine {
    /// Create a run: resolve the model, read the manifests, plan, store the
    /// spec, and hand the jobs to the supervisor for publication.
    #[instrument(skip_all, fields(model = %request.model))]
    pub async fn create_run(&self, request: RunRequest) -> Result<RunStatus, EngineError> {
        // Counted as one of the engine's tasks, so that stepping down waits
        // for it: its spec is then stored before the next leader lists the
        // runs. Refused once stepping down has begun.
        let _in_flight = self.inner.tasks.token();
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::SteppingDown);
        }
        if request.archives.is_empty() {
            return Err(EngineError::BadRequest(
                "`archives` must name at least one archive".into(),
            ));
        }
        let job_tiles = request.job_tiles.unwrap_or(self.inner.config.job_tiles);
        if !(1..=MAX_JOB_TILES).contains(&job_tiles) {
            return Err(EngineError::BadRequest(format!(
                "`job_tiles` must be between 1 and {MAX_JOB_TILES}, got {job_tiles}"
            )));
        }
        let model = models::resolve_model(self.inner.store.as_ref(), &request.model).await?;
        let spec = RunSpec {
            run_id: Uuid::new_v4(),
            label: request.label,
            archives: request.archives,
            model: model.reference,
            job_tiles,
            created_at: Utc::now(),
        };
        let live = self.load_run(spec.clone()).await?;
        let body = serde_json::to_vec_pretty(&spec)
            .map_err(|e| EngineError::Internal(format!("run spec: {e}")))?;
        self.inner
            .store
            .put(&spec_key(spec.run_id), Bytes::from(body))
            .await?;
        let status = live.status(Instant::now());
        info!(run_id = %spec.run_id, jobs = status.jobs_total, tiles = status.tiles_total, "run created");
        self.runs().insert(spec.run_id, live);
        self.inner.kick.notify_one();
        self.notify_changed();
        Ok(status)
    }

    /// Re-derive a run's plan from its spec and the store.
    pub(super) async fn load_run(&self, spec: RunSpec) -> Result<LiveRun, EngineError> {
        let store = self.inner.store.as_ref();
        let card_bytes = store.get(&spec.model.card_key).await?;
        let card = models::parse_card(&card_bytes, &spec.model.card_key)?;
        if card.onnx_sha256 != spec.model.onnx_sha256 {
            return Err(EngineError::BadRequest(format!(
                "model card {} changed since the run was created (sha256 {} ≠ {})",
                spec.model.card_key, card.onnx_sha256, spec.model.onnx_sha256
            )));
        }
        let mut manifests = Vec::with_capacity(spec.archives.len());
        for archive_id in &spec.archives {
            let (manifest, sha) = catalog::read_manifest(store, archive_id).await?;
            manifests.push((manifest, sha));
        }
        let only_manifests: Vec<Manifest> = manifests.iter().map(|(m, _)| m.clone()).collect();
        let plan = plan::plan_run(
            spec.run_id,
            &only_manifests,
            &card,
            &spec.model,
            spec.job_tiles,
        )?;
        Ok(LiveRun::new(
            spec,
            Arc::new(card),
            Arc::new(manifests),
            Arc::new(plan),
            Instant::now(),
        ))
    }

    /// Resume every run that has a spec but no run.json (a cancelled one is
    /// settled at once, and finalized as cancelled).
    pub(super) async fn resume_all(&self) -> Result<(), EngineError> {
        let keys = self.inner.store.list(layout::RUNS).await?;
        let mut specs = Vec::new();
        let mut finished = std::collections::HashSet::new();
        for meta in &keys {
            match layout::parse_run_key(&meta.key) {
                Some(RunObject::Spec(id)) => specs.push(id),
                Some(RunObject::Record(id)) => {
                    finished.insert(id);
                }
                None => {}
            }
        }
        for id in specs.into_iter().filter(|id| !finished.contains(id)) {
            let bytes = self.inner.store.get(&spec_key(id)).await?;
            let spec: RunSpec = match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    error!(run_id = %id, error = %e, "cannot resume run: its spec does not parse");
                    continue;
                }
            };
            let run_id = spec.run_id;
            let mut live = match self.load_run(spec).await {
                Ok(l) => l,
                // The store failing for now: the engine does not start, and
                // the lease is sought again, so the run is not skipped.
                Err(EngineError::Store(e)) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    error!(%run_id, error = %e, "cannot resume run");
                    continue;
                }
            };
            let mut stored = 0;
            for meta in self.inner.store.list(&layout::parts_prefix(run_id)).await? {
                if let Some(job_id) = parse_part_key(run_id, &meta.key) {
                    live.mark_stored(job_id);
                    stored += 1;
                }
            }
            let published = self.inner.store.head(&published_key(run_id)).await?;
            if published.is_some() {
                live.mark_all_published(Instant::now());
            }
            let cancelled = self.stored_cancellation(run_id).await?;
            let was_cancelled = cancelled.is_some();
            if let Some(c) = cancelled {
                live.cancel(c);
            }
            info!(%run_id, stored, jobs = live.jobs.len(), all_published = published.is_some(), cancelled = was_cancelled, "resuming run");
            self.runs().insert(run_id, live);
        }
        Ok(())
    }
}
