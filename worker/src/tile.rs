//! One tile's way through the worker: wait for a preparation slot, fetch,
//! decode on the CPU pool, hand to the model's batcher, await the answer.
//! Every way it can end is a [`TileDone`]: an output or a failure with its
//! stage and a reason naming the key and the cause.

use crate::cpu_pool::CpuPool;
use crate::fetch;
use crate::metrics::WorkerMetrics;
use crate::pipeline::ModelPipeline;
use crate::preprocess::{self, RgbTile, TileError};
use nodal_common::retry::RetryPolicy;
use nodal_common::store::{ObjectStore, StoreError, StoreErrorKind};
use nodal_types::wire::FailureStage;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What every tile of a worker shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileStages<'a> {
    /// Where tiles are read.
    pub store: &'a dyn ObjectStore,
    /// Retries of transient store errors.
    pub retry: RetryPolicy,
    /// Where tiles are decoded.
    pub pool: &'a CpuPool,
    /// Bounds the tiles being fetched or decoded, over all jobs.
    pub slots: &'a Semaphore,
    /// Stage timings.
    pub metrics: &'a WorkerMetrics,
}

/// Where a tile is in its job, and which model and report it goes with.
#[derive(Debug, Clone)]
pub(crate) struct TileWork<'a> {
    /// Index of the case in the job.
    pub case: usize,
    /// Index of the tile in the case.
    pub index: usize,
    /// The tile's object key.
    pub key: &'a str,
    /// The case's report vector, for models that take one.
    pub report: Option<Arc<[f32]>>,
}

/// How a tile ended.
#[derive(Debug)]
pub(crate) struct TileDone {
    /// Index of the case in the job.
    pub case: usize,
    /// Index of the tile in the case.
    pub index: usize,
    /// One probability row per card output, or the failed stage and why.
    pub outcome: Result<Vec<Vec<f32>>, (FailureStage, String)>,
    /// The tile could not be read because the store was unavailable (a
    /// transient error that outlasted the retries), not because it is
    /// missing or broken.
    pub store_unavailable: bool,
    /// Time spent in each stage.
    pub times: TileTimes,
}

/// Time one tile spent in each stage.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TileTimes {
    /// Fetching.
    pub fetch: Duration,
    /// Decoding.
    pub decode: Duration,
    /// The tile's share of its batch's inference.
    pub infer: Duration,
}

impl TileStages<'_> {
    /// Run one tile to its end.
    pub(crate) async fn run(self, work: TileWork<'_>, pipeline: &ModelPipeline) -> TileDone {
        let mut times = TileTimes::default();
        let mut store_unavailable = false;
        let outcome = self
            .outputs(&work, pipeline, &mut times, &mut store_unavailable)
            .await;
        TileDone {
            case: work.case,
            index: work.index,
            outcome,
            store_unavailable,
            times,
        }
    }

    async fn outputs(
        self,
        work: &TileWork<'_>,
        pipeline: &ModelPipeline,
        times: &mut TileTimes,
        store_unavailable: &mut bool,
    ) -> Result<Vec<Vec<f32>>, (FailureStage, String)> {
        let key = work.key;
        let Ok(slot) = self.slots.acquire().await else {
            return Err((
                FailureStage::Fetch,
                format!("{key}: the worker is stopping"),
            ));
        };
        let started = Instant::now();
        let bytes = fetch::get(self.store, key, self.retry).await;
        times.fetch = started.elapsed();
        self.metrics
            .fetch_seconds
            .observe(times.fetch.as_secs_f64());
        let bytes = bytes.map_err(|e| {
            *store_unavailable = e.is_transient();
            (FailureStage::Fetch, fetch_reason(&e, self.retry))
        })?;

        let size = pipeline.card().tile.size as usize;
        let decoded = self
            .pool
            .run(move || {
                let started = Instant::now();
                (decode_sized(&bytes, size), started.elapsed())
            })
            .await;
        let rgb = match decoded {
            Ok((decoded, took)) => {
                times.decode = took;
                self.metrics.decode_seconds.observe(took.as_secs_f64());
                decoded.map_err(|e| (FailureStage::Decode, format!("{key}: {e}")))?
            }
            Err(e) => return Err((FailureStage::Decode, format!("{key}: {e}"))),
        };

        let answer = pipeline.submit(rgb, work.report.clone()).await;
        drop(slot);
        let answer = match answer {
            Ok(answer) => answer.await,
            Err(e) => return Err((FailureStage::Infer, format!("{key}: {e}"))),
        };
        match answer {
            Ok(inference) => {
                times.infer = inference.share;
                inference
                    .outcome
                    .map_err(|reason| (FailureStage::Infer, format!("{key}: {reason}")))
            }
            Err(_) => Err((
                FailureStage::Infer,
                format!("{key}: the model's inference thread stopped before answering"),
            )),
        }
    }
}

/// Why a tile could not be fetched, in words for `failures.csv`.
fn fetch_reason(e: &StoreError, retry: RetryPolicy) -> String {
    match e.kind {
        StoreErrorKind::NotFound => format!("tile not found: {e}"),
        StoreErrorKind::Transient => format!(
            "store unavailable after {} attempts: {e}",
            retry.max_attempts
        ),
        StoreErrorKind::Denied => format!("access denied: {e}"),
        StoreErrorKind::Permanent => e.to_string(),
    }
}

/// Decode a tile and check it is `size` × `size`.
fn decode_sized(bytes: &[u8], size: usize) -> Result<RgbTile, TileError> {
    let rgb = preprocess::decode(bytes)?;
    if rgb.width != size || rgb.height != size {
        return Err(TileError::WrongSize {
            width: rgb.width,
            height: rgb.height,
            expected: size,
        });
    }
    Ok(rgb)
}
