//! The inference thread: one dedicated OS thread owns a model's ONNX Runtime
//! session (`run` takes `&mut self`) and runs the batches it receives through
//! a bounded channel, answering every tile through its own oneshot.

use crate::batch::{Batch, BufferPool, TileInference};
use crate::metrics::WorkerMetrics;
use crate::model::Model;
use ndarray::{ArrayView2, ArrayView4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Clears the pipeline's `alive` flag when the thread ends, however it ends.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Start the thread; it runs until every sender of `batches` is gone.
pub(crate) fn spawn(
    model: Model,
    batches: mpsc::Receiver<Batch>,
    buffers: Arc<BufferPool>,
    metrics: WorkerMetrics,
    alive: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!("nodal-infer-{}", model.card().name);
    std::thread::Builder::new().name(name).spawn(move || {
        let _guard = AliveGuard(alive);
        run(model, batches, &buffers, &metrics);
    })
}

fn run(
    mut model: Model,
    mut batches: mpsc::Receiver<Batch>,
    buffers: &BufferPool,
    metrics: &WorkerMetrics,
) {
    while let Some(batch) = batches.blocking_recv() {
        let Batch {
            images,
            reports,
            replies,
            span,
        } = batch;
        let _entered = span.enter();
        if !replies.is_empty() {
            let started = Instant::now();
            let outcome = infer(&mut model, &images, reports.as_deref(), replies.len());
            let elapsed = started.elapsed();
            metrics.infer_seconds.observe(elapsed.as_secs_f64());
            let share = elapsed.div_f64(replies.len() as f64);
            answer(outcome, replies, share);
        }
        buffers.put(images);
    }
}

/// Run one batch: `n` tiles in `images`, their reports in `reports`.
fn infer(
    model: &mut Model,
    images: &[f32],
    reports: Option<&[f32]>,
    n: usize,
) -> Result<Vec<ndarray::Array2<f32>>, String> {
    let size = model.card().tile.size as usize;
    let view = ArrayView4::from_shape((n, 3, size, size), images)
        .map_err(|e| format!("batch of {n} tiles: {e}"))?;
    let reports = match reports {
        Some(r) => {
            let width = r.len() / n;
            Some(
                ArrayView2::from_shape((n, width), r)
                    .map_err(|e| format!("reports of {n} tiles: {e}"))?,
            )
        }
        None => None,
    };
    let heads = model
        .run(view, reports)
        .map_err(|e| format!("inference failed for the batch of {n} tiles: {e}"))?;
    match heads.iter().find(|h| h.nrows() != n) {
        Some(h) => Err(format!(
            "the model answered {} rows for a batch of {n} tiles",
            h.nrows()
        )),
        None => Ok(heads),
    }
}

/// Send every tile its rows, or the batch's error.
fn answer(
    outcome: Result<Vec<ndarray::Array2<f32>>, String>,
    replies: Vec<tokio::sync::oneshot::Sender<TileInference>>,
    share: Duration,
) {
    match outcome {
        Ok(heads) => {
            for (i, reply) in replies.into_iter().enumerate() {
                let rows = heads.iter().map(|h| h.row(i).to_vec()).collect();
                // A dropped receiver is a cancelled job: nothing to do.
                let _ = reply.send(TileInference {
                    outcome: Ok(rows),
                    share,
                });
            }
        }
        Err(reason) => {
            tracing::warn!(%reason, tiles = replies.len(), "batch failed");
            for reply in replies {
                let _ = reply.send(TileInference {
                    outcome: Err(reason.clone()),
                    share,
                });
            }
        }
    }
}
