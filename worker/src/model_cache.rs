//! Loaded models, one pipeline per ONNX sha256. A job's model is found in
//! the configured model folders or else read from the store (card at the
//! job's `card_key`, ONNX at the card's `onnx_key()`); the card must carry
//! the job's hash and the bytes must hash to it. Jobs asking for a model
//! that is loading wait for that load instead of starting another.

use crate::cpu_pool::CpuPool;
use crate::error::WorkerError;
use crate::fetch;
use crate::metrics::WorkerMetrics;
use crate::model::Model;
use crate::pipeline::{BatchSettings, ModelPipeline};
use crate::runtime::Runtime;
use bytes::Bytes;
use nodal_common::retry::RetryPolicy;
use nodal_common::store::SharedStore;
use nodal_types::model_card::ModelCard;
use nodal_types::wire::ModelRef;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_util::task::TaskTracker;

/// Where models come from and how their pipelines run.
#[derive(Debug, Clone)]
pub(crate) struct ModelSource {
    /// The object store holding `models/<name>/<version>/`.
    pub store: SharedStore,
    /// Folders searched first for `<name>/card.json`.
    pub dirs: Vec<PathBuf>,
    /// Retries of transient store errors.
    pub retry: RetryPolicy,
    /// ONNX Runtime.
    pub runtime: Arc<Runtime>,
    /// Batching of every pipeline.
    pub batching: BatchSettings,
    /// Where batches are assembled.
    pub pool: CpuPool,
    /// Metrics of every pipeline.
    pub metrics: WorkerMetrics,
}

type Slot = Arc<OnceCell<Arc<ModelPipeline>>>;

/// The loaded models of one worker.
#[derive(Debug)]
pub(crate) struct ModelCache {
    source: ModelSource,
    tasks: TaskTracker,
    slots: Mutex<HashMap<String, Slot>>,
}

impl ModelCache {
    /// An empty cache; batchers run on `tasks`.
    pub(crate) fn new(source: ModelSource, tasks: TaskTracker) -> Self {
        Self {
            source,
            tasks,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline of the job's model, loading it on first use (or again,
    /// when its inference thread has stopped).
    pub(crate) async fn get(&self, model: &ModelRef) -> Result<Arc<ModelPipeline>, WorkerError> {
        let sha = model.onnx_sha256.trim().to_ascii_lowercase();
        let slot = self.slot(&sha);
        if let Some(pipeline) = slot.get() {
            if pipeline.is_alive() {
                return Ok(pipeline.clone());
            }
            tracing::warn!(model = %model.name, "the model's inference thread stopped; loading it again");
            self.forget(&sha, &slot);
            return self.load_into(&self.slot(&sha), model).await;
        }
        self.load_into(&slot, model).await
    }

    /// Stop every pipeline, giving each inference thread at most `within`.
    pub(crate) async fn stop(self, within: Duration) {
        let slots: Vec<Slot> = self.lock().drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            let pipeline = Arc::try_unwrap(slot)
                .ok()
                .and_then(OnceCell::into_inner)
                .and_then(|p| Arc::try_unwrap(p).ok());
            // A pipeline still held elsewhere stops when its last holder lets go.
            if let Some(pipeline) = pipeline {
                pipeline.stop(within).await;
            }
        }
    }

    async fn load_into(
        &self,
        slot: &Slot,
        model: &ModelRef,
    ) -> Result<Arc<ModelPipeline>, WorkerError> {
        slot.get_or_try_init(|| self.load(model)).await.cloned()
    }

    fn slot(&self, sha: &str) -> Slot {
        self.lock().entry(sha.to_owned()).or_default().clone()
    }

    fn forget(&self, sha: &str, slot: &Slot) {
        let mut slots = self.lock();
        if slots.get(sha).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(sha);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[tracing::instrument(skip_all, fields(model = %model.name, version = %model.version))]
    async fn load(&self, model: &ModelRef) -> Result<Arc<ModelPipeline>, WorkerError> {
        let source = &self.source;
        let timer = source.metrics.model_load_seconds.start_timer();
        let (card, onnx, origin) = match self.read_local(model).await {
            Some(found) => found,
            None => self.read_store(model).await?,
        };
        let runtime = source.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || Model::from_card(&runtime, card, &onnx))
            .await
            .map_err(|e| {
                WorkerError::Config(format!("loading model {} stopped: {e}", model.name))
            })??;
        let pipeline = ModelPipeline::start(
            loaded,
            source.batching,
            source.pool.clone(),
            source.metrics.clone(),
            &self.tasks,
        )?;
        let seconds = timer.stop_and_record();
        tracing::info!(%origin, seconds, "model loaded");
        Ok(Arc::new(pipeline))
    }

    /// The model from the first configured folder holding it with the job's
    /// hash. Folders only save a download: anything unusable in them is
    /// skipped with a warning, and the store decides.
    async fn read_local(&self, model: &ModelRef) -> Option<(ModelCard, Bytes, String)> {
        for dir in &self.source.dirs {
            let folder = dir.join(&model.name);
            let Ok(bytes) = tokio::fs::read(folder.join("card.json")).await else {
                continue;
            };
            let card: ModelCard = match serde_json::from_slice(&bytes) {
                Ok(card) => card,
                Err(e) => {
                    tracing::warn!(folder = %folder.display(), error = %e, "skipping a model folder: its card does not parse");
                    continue;
                }
            };
            if !same_hash(&card.onnx_sha256, &model.onnx_sha256) {
                continue;
            }
            let onnx_path = folder.join(&card.onnx_file);
            match tokio::fs::read(&onnx_path).await {
                Ok(onnx) if same_hash(&nodal_types::sha256_hex(&onnx), &model.onnx_sha256) => {
                    return Some((card, Bytes::from(onnx), onnx_path.display().to_string()));
                }
                Ok(_) => {
                    tracing::warn!(path = %onnx_path.display(), "skipping a model file whose hash is not its card's")
                }
                Err(e) => {
                    tracing::warn!(path = %onnx_path.display(), error = %e, "skipping an unreadable model file")
                }
            }
        }
        None
    }

    /// The card at the job's `card_key` and the ONNX file it names.
    async fn read_store(
        &self,
        model: &ModelRef,
    ) -> Result<(ModelCard, Bytes, String), WorkerError> {
        let store = self.source.store.as_ref();
        let bytes = fetch::get(store, &model.card_key, self.source.retry).await?;
        let card: ModelCard =
            serde_json::from_slice(&bytes).map_err(|source| WorkerError::Card {
                origin: model.card_key.clone(),
                source,
            })?;
        if !same_hash(&card.onnx_sha256, &model.onnx_sha256) {
            return Err(WorkerError::ModelRefMismatch {
                model: model.name.clone(),
                card_key: model.card_key.clone(),
                expected: model.onnx_sha256.clone(),
                card: card.onnx_sha256.clone(),
            });
        }
        let key = card.onnx_key();
        let onnx = fetch::get(store, &key, self.source.retry).await?;
        let origin = format!("{}/{key}", store.describe());
        Ok((card, onnx, origin))
    }
}

fn same_hash(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}
