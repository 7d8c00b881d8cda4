//! One loaded model's pipeline: a bounded channel of decoded tiles into its
//! batcher, which feeds the model's inference thread through a channel of
//! one batch. Every job using the model submits its tiles here, so batches
//! fill across jobs.

use crate::batch::{BatchTile, BufferPool, TileInference};
use crate::batcher::Batcher;
use crate::cpu_pool::CpuPool;
use crate::error::WorkerError;
use crate::inference;
use crate::metrics::WorkerMetrics;
use crate::model::Model;
use crate::preprocess::RgbTile;
use nodal_types::model_card::ModelCard;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

/// How a pipeline batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSettings {
    /// Tiles per batch; `None`: the card's preferred batch.
    pub batch_size: Option<usize>,
    /// Longest wait for a partial batch.
    pub deadline: Duration,
}

/// The pipeline of one loaded model.
#[derive(Debug)]
pub(crate) struct ModelPipeline {
    card: Arc<ModelCard>,
    tiles: mpsc::Sender<BatchTile>,
    alive: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The pipeline stopped: its inference thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the model's inference thread has stopped")]
pub(crate) struct PipelineStopped;

impl ModelPipeline {
    /// Start the batcher (on `tasks`) and the inference thread for `model`.
    pub(crate) fn start(
        model: Model,
        settings: BatchSettings,
        pool: CpuPool,
        metrics: WorkerMetrics,
        tasks: &TaskTracker,
    ) -> Result<Self, WorkerError> {
        let card = Arc::new(model.card().clone());
        let max_tiles = settings.batch_size.unwrap_or(card.preferred_batch).max(1);
        let buffers = Arc::new(BufferPool::default());
        let alive = Arc::new(AtomicBool::new(true));
        let (tiles_tx, tiles_rx) = mpsc::channel(2 * max_tiles);
        let (batches_tx, batches_rx) = mpsc::channel(1);
        let thread = inference::spawn(
            model,
            batches_rx,
            buffers.clone(),
            metrics.clone(),
            alive.clone(),
        )
        .map_err(|e| WorkerError::Config(format!("cannot start the inference thread: {e}")))?;
        let batcher = Batcher {
            max_tiles,
            deadline: settings.deadline,
            card: card.clone(),
            pool,
            buffers,
            metrics,
        };
        tasks.spawn(batcher.run(tiles_rx, batches_tx));
        Ok(Self {
            card,
            tiles: tiles_tx,
            alive,
            thread,
        })
    }

    /// The model's card.
    pub(crate) fn card(&self) -> &Arc<ModelCard> {
        &self.card
    }

    /// Whether the inference thread still runs.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Hand a decoded tile to the batcher (waiting while its queue is full);
    /// the receiver gets the tile's answer.
    pub(crate) async fn submit(
        &self,
        rgb: RgbTile,
        report: Option<Arc<[f32]>>,
    ) -> Result<oneshot::Receiver<TileInference>, PipelineStopped> {
        let (reply, answer) = oneshot::channel();
        let tile = BatchTile {
            rgb,
            report,
            enqueued: Instant::now(),
            reply,
        };
        self.tiles.send(tile).await.map_err(|_| PipelineStopped)?;
        Ok(answer)
    }

    /// Stop taking tiles and wait (at most `within`) for the inference thread
    /// to finish what it holds. Other holders of the pipeline keep the
    /// batcher open until they let go.
    pub(crate) async fn stop(self, within: Duration) {
        let Self {
            card,
            tiles,
            thread,
            ..
        } = self;
        drop(tiles);
        let joined =
            tokio::time::timeout(within, tokio::task::spawn_blocking(move || thread.join())).await;
        match joined {
            Ok(Ok(Ok(()))) => {}
            Ok(_) => tracing::warn!(model = %card.name, "the inference thread ended with a panic"),
            Err(_) => {
                tracing::warn!(model = %card.name, "the inference thread is still busy; leaving it to finish")
            }
        }
    }
}
