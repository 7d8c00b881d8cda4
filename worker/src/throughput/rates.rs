//! The two limits of the pipeline, each measured alone: decode + normalise
//! on a pool of threads, and `Model::run` on ready batches.

use super::ThroughputError;
use super::cpu::{Stopwatch, Throughput};
use crate::error::WorkerError;
use crate::model::Model;
use crate::preprocess;
use bytes::Bytes;
use ndarray::{Array2, Array4};
use nodal_types::model_card::ModelCard;
use rayon::prelude::*;
use std::time::Duration;

/// Decoding and normalising `tiles` (stored JPEG or PNG bytes) on `threads`
/// threads: one untimed pass, then passes over every tile until `window`
/// has passed.
pub fn decode_rate(
    tiles: &[Bytes],
    card: &ModelCard,
    threads: usize,
    window: Duration,
) -> Result<Throughput, ThroughputError> {
    if tiles.is_empty() {
        return Err(ThroughputError::Stalled("no tiles to decode".into()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("nodal-bench-decode-{i}"))
        .build()
        .map_err(|e| WorkerError::Config(format!("cannot start the decode pool: {e}")))?;
    let plane = 3 * (card.tile.size as usize).pow(2);
    let pass = || {
        pool.install(|| {
            tiles.par_iter().try_for_each_init(
                || vec![0f32; plane],
                |slot, bytes| preprocess::preprocess_into(bytes, card, slot),
            )
        })
    };
    pass().map_err(WorkerError::from)?;
    let watch = Stopwatch::start();
    let mut done = 0u64;
    while done == 0 || watch.elapsed() < window {
        pass().map_err(WorkerError::from)?;
        done += tiles.len() as u64;
    }
    Ok(watch.stop(done))
}

/// [`Model::run`] on one ready batch of `batch` tiles (decoded from
/// `tiles`, cycling), run again and again until `window` has passed after
/// one untimed run. `report` is the vector every tile gets for
/// a model with a report input (zeros when `None`).
pub fn inference_ceiling(
    model: &mut Model,
    tiles: &[Bytes],
    report: Option<&[f32]>,
    batch: usize,
    window: Duration,
) -> Result<Throughput, ThroughputError> {
    if tiles.is_empty() || batch == 0 {
        return Err(ThroughputError::Stalled(
            "no tiles, or a batch of 0, for the inference ceiling".into(),
        ));
    }
    let card = model.card().clone();
    let size = card.tile.size as usize;
    let mut images = Array4::<f32>::zeros((batch, 3, size, size));
    for (i, mut slot) in images.outer_iter_mut().enumerate() {
        let out = slot
            .as_slice_mut()
            .ok_or_else(|| ThroughputError::Stalled("the batch buffer is not contiguous".into()))?;
        preprocess::preprocess_into(&tiles[i % tiles.len()], &card, out)
            .map_err(WorkerError::from)?;
    }
    let width = card.report_width();
    let reports = (width > 0).then(|| {
        let row: Vec<f32> = report.map_or_else(|| vec![0.0; width], <[f32]>::to_vec);
        Array2::from_shape_fn((batch, width), |(_, j)| row.get(j).copied().unwrap_or(0.0))
    });
    let mut run = || model.run(images.view(), reports.as_ref().map(|r| r.view()));
    run()?;
    let watch = Stopwatch::start();
    let mut done = 0u64;
    while done == 0 || watch.elapsed() < window {
        run()?;
        done += batch as u64;
    }
    Ok(watch.stop(done))
}
