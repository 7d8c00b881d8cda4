//! The batcher: gathers decoded tiles from every job using one model into
//! batches of up to the batch size. A partial batch waits at most the batch
//! deadline from its first tile — longer only while the model is still busy
//! with the previous batch, since waiting is free then. Assembly runs on the
//! CPU pool while the model runs the batch before, and the channel to the
//! inference thread holds one batch: the next batch is ready when the model is.

use crate::batch::{Batch, BatchTile, BufferPool, TileInference, assemble};
use crate::cpu_pool::CpuPool;
use crate::metrics::WorkerMetrics;
use nodal_types::model_card::ModelCard;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the batcher needs besides its channels.
#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    /// Most tiles per batch (at least 1).
    pub max_tiles: usize,
    /// Longest wait for a partial batch, from its first tile.
    pub deadline: Duration,
    /// The model's card (tile size, normalisation, report width).
    pub card: Arc<ModelCard>,
    /// Where batches are assembled.
    pub pool: CpuPool,
    /// Reused batch buffers.
    pub buffers: Arc<BufferPool>,
    /// Batch size, fill and queue-wait metrics.
    pub metrics: WorkerMetrics,
}

impl Batcher {
    /// Run until every sender of `tiles` is gone and the last tiles are sent on.
    pub(crate) async fn run(
        self,
        mut tiles: mpsc::Receiver<BatchTile>,
        batches: mpsc::Sender<Batch>,
    ) {
        let max = self.max_tiles.max(1);
        let mut pending: Vec<BatchTile> = Vec::with_capacity(max);
        let mut open = true;
        loop {
            if pending.is_empty() {
                match tiles.recv().await {
                    Some(tile) => pending.push(tile),
                    None => return,
                }
            }
            let due = Instant::now() + self.deadline;
            while open && pending.len() < max {
                tokio::select! {
                    tile = tiles.recv() => match tile {
                        Some(tile) => pending.push(tile),
                        None => open = false,
                    },
                    () = tokio::time::sleep_until(due) => break,
                }
            }
            let permit = loop {
                if !open || pending.len() >= max {
                    break batches.reserve().await;
                }
                tokio::select! {
                    biased;
                    permit = batches.reserve() => break permit,
                    tile = tiles.recv() => match tile {
                        Some(tile) => pending.push(tile),
                        None => open = false,
                    },
                }
            };
            let mut taken = std::mem::replace(&mut pending, Vec::with_capacity(max));
            // Tiles of jobs that were abandoned (shutdown) need no inference.
            taken.retain(|tile| !tile.reply.is_closed());
            if taken.is_empty() {
                continue;
            }
            let Ok(permit) = permit else {
                for tile in taken {
                    let _ = tile
                        .reply
                        .send(TileInference::failed("the inference thread has stopped"));
                }
                continue;
            };
            self.observe(&taken, max);
            let span = tracing::info_span!("batch", model = %self.card.name, tiles = taken.len());
            let (card, buffers) = (self.card.clone(), self.buffers.clone());
            // A pool that is gone drops the tiles' replies: their jobs see the
            // inference stopped, and record it.
            if let Ok(batch) = self
                .pool
                .install(move || assemble(taken, &card, &buffers, span))
                .await
            {
                permit.send(batch);
            }
        }
    }

    fn observe(&self, tiles: &[BatchTile], max: usize) {
        let m = &self.metrics;
        m.batch_size.observe(tiles.len() as f64);
        m.batch_fill_ratio.observe(tiles.len() as f64 / max as f64);
        let now = std::time::Instant::now();
        for tile in tiles {
            m.queue_wait_seconds
                .observe(now.saturating_duration_since(tile.enqueued).as_secs_f64());
        }
    }
}
