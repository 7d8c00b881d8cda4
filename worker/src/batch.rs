//! What travels between the stages of a model's pipeline: decoded tiles on
//! their way into a batch, assembled batches on their way to the model, and
//! each tile's answer; plus the assembly itself (normalising tiles straight
//! into a reused batch buffer, one write per float).

use crate::preprocess::{self, RgbTile};
use nodal_types::model_card::ModelCard;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A decoded tile waiting for a batch.
#[derive(Debug)]
pub(crate) struct BatchTile {
    /// The decoded pixels, already checked to be the model's tile size.
    pub rgb: RgbTile,
    /// The case's encoded report, for models that take one.
    pub report: Option<Arc<[f32]>>,
    /// When the tile was handed to the batcher.
    pub enqueued: Instant,
    /// Where the tile's answer goes.
    pub reply: oneshot::Sender<TileInference>,
}

/// The model's answer for one tile.
#[derive(Debug)]
pub(crate) struct TileInference {
    /// One probability row per card output (card order), or why there is none.
    pub outcome: Result<Vec<Vec<f32>>, String>,
    /// The tile's share of its batch's inference time.
    pub share: Duration,
}

impl TileInference {
    /// A failure that happened before the batch ran.
    pub(crate) fn failed(reason: impl Into<String>) -> Self {
        Self {
            outcome: Err(reason.into()),
            share: Duration::ZERO,
        }
    }
}

/// An assembled batch: `n` tiles' normalised floats (`[n, 3, S, S]`), their
/// reports (`[n, F]`) when the model takes them, and where each answer goes.
#[derive(Debug)]
pub(crate) struct Batch {
    /// `n × 3 × S × S` floats, NCHW.
    pub images: Vec<f32>,
    /// `n × F` floats, for models with a report input.
    pub reports: Option<Vec<f32>>,
    /// One reply per tile, in batch order.
    pub replies: Vec<oneshot::Sender<TileInference>>,
    /// The span the batch runs in.
    pub span: tracing::Span,
}

/// Batch buffers handed back after inference, so the next batch writes into
/// memory that is already mapped.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<f32>>>,
}

/// Buffers kept for reuse: one being assembled, one waiting, one running.
const POOLED_BUFFERS: usize = 3;

impl BufferPool {
    /// A buffer of exactly `len` floats (contents unspecified).
    pub(crate) fn take(&self, len: usize) -> Vec<f32> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buffer = reused.unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        } else {
            buffer.truncate(len);
        }
        buffer
    }

    /// Give a buffer back for reuse.
    pub(crate) fn put(&self, buffer: Vec<f32>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < POOLED_BUFFERS {
            free.push(buffer);
        }
    }
}

/// Normalise `tiles` into one batch (in parallel on the current rayon pool).
/// A tile that cannot be normalised, or lacks the report the model needs, is
/// answered with a failure at once and left out of the batch.
pub(crate) fn assemble(
    tiles: Vec<BatchTile>,
    card: &ModelCard,
    buffers: &BufferPool,
    span: tracing::Span,
) -> Batch {
    let size = card.tile.size as usize;
    let plane = 3 * size * size;
    let width = card.report_width();
    let mut images = buffers.take(tiles.len() * plane);
    let normalised: Vec<Result<(), String>> = images
        .par_chunks_mut(plane)
        .zip(tiles.par_iter())
        .map(|(slot, tile)| {
            preprocess::normalise_into(&tile.rgb, card, slot)
                .map_err(|e| format!("cannot assemble the batch: {e}"))?;
            match (&tile.report, width) {
                (_, 0) => Ok(()),
                (Some(r), w) if r.len() == w => Ok(()),
                _ => Err(format!(
                    "the model takes a report of {width} values; the tile has none of that width"
                )),
            }
        })
        .collect();
    let mut reports = (width > 0).then(|| Vec::with_capacity(tiles.len() * width));
    let mut replies = Vec::with_capacity(tiles.len());
    let mut kept = 0;
    for (i, (tile, ok)) in tiles.into_iter().zip(normalised).enumerate() {
        if let Err(reason) = ok {
            let _ = tile.reply.send(TileInference::failed(reason));
            continue;
        }
        if kept != i {
            images.copy_within(i * plane..(i + 1) * plane, kept * plane);
        }
        if let (Some(reports), Some(r)) = (reports.as_mut(), tile.report.as_deref()) {
            reports.extend_from_slice(r);
        }
        replies.push(tile.reply);
        kept += 1;
    }
    images.truncate(kept * plane);
    Batch {
        images,
        reports,
        replies,
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_card(name: &str) -> ModelCard {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name)
            .join("card.json");
        serde_json::from_slice(&std::fs::read(path).expect("card.json")).expect("card parses")
    }

    fn tile(
        size: usize,
        value: u8,
        report: Option<Vec<f32>>,
    ) -> (BatchTile, oneshot::Receiver<TileInference>) {
        let (reply, answer) = oneshot::channel();
        let rgb = RgbTile {
            width: size,
            height: size,
            pixels: vec![value; size * size * 3],
        };
        let tile = BatchTile {
            rgb,
            report: report.map(Arc::from),
            enqueued: Instant::now(),
            reply,
        };
        (tile, answer)
    }

    #[test]
    fn unusable_tiles_are_answered_at_once_and_the_rest_close_up() {
        let card = shipped_card("cytology-origin");
        let plane = 3 * 224 * 224;
        let (a, _answer_a) = tile(224, 10, None);
        let (bad, mut answer_bad) = tile(100, 20, None);
        let (c, _answer_c) = tile(224, 30, None);
        let batch = assemble(
            vec![a, bad, c],
            &card,
            &BufferPool::default(),
            tracing::Span::none(),
        );
        assert_eq!(batch.replies.len(), 2);
        assert_eq!(batch.images.len(), 2 * plane);
        let n = &card.normalisation;
        let want = (30.0 / n.scale - n.mean[0]) / n.std[0];
        assert!(
            (batch.images[plane] - want).abs() < 1e-6,
            "the third tile moved into the second slot"
        );
        let answer = answer_bad.try_recv().expect("answered at once");
        assert!(answer.outcome.expect_err("a failure").contains("100x100"));
        assert!(batch.reports.is_none());
    }

    #[test]
    fn reports_are_laid_out_row_by_row_and_checked() {
        let card = shipped_card("ptc-ln");
        let width = card.report_width();
        let (a, _a) = tile(224, 1, Some(vec![1.0; width]));
        let (short, mut short_answer) = tile(224, 2, Some(vec![2.0; width - 1]));
        let (c, _c) = tile(224, 3, Some(vec![3.0; width]));
        let batch = assemble(
            vec![a, short, c],
            &card,
            &BufferPool::default(),
            tracing::Span::none(),
        );
        let reports = batch.reports.expect("a report input");
        assert_eq!(reports.len(), 2 * width);
        assert!(
            reports[..width].iter().all(|v| *v == 1.0)
                && reports[width..].iter().all(|v| *v == 3.0)
        );
        assert!(short_answer.try_recv().expect("answered").outcome.is_err());
    }

    #[test]
    fn buffers_are_reused_at_the_asked_length() {
        let pool = BufferPool::default();
        let a = pool.take(10);
        assert_eq!(a.len(), 10);
        let ptr = a.as_ptr();
        pool.put(a);
        let b = pool.take(6);
        assert_eq!((b.len(), b.as_ptr()), (6, ptr));
        pool.put(b);
        assert_eq!(pool.take(12).len(), 12);
    }
}
