//! A job's tiles through the worker: one ranged read per [`Range`] of a
//! shard, each tile cut from it and checked against its CRC-32C, then —
//! in a preparation slot — decoded on the CPU pool, handed to the model's
//! batcher, and its answer awaited. Every way a tile can end is a
//! [`TileDone`]: an output or a failure with its stage and a reason naming
//! the tile and the cause.

use crate::cpu_pool::CpuPool;
use crate::fetch;
use crate::metrics::WorkerMetrics;
use crate::pipeline::ModelPipeline;
use crate::preprocess::{self, RgbTile, TileError};
use crate::ranges::Range;
use bytes::Bytes;
use nodal_common::retry::RetryPolicy;
use nodal_common::store::{ObjectStore, StoreError, StoreErrorKind};
use nodal_types::shard::crc32c;
use nodal_types::wire::{FailureStage, Job, JobTile};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What every tile of a worker shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileStages<'a> {
    /// Where shards are read.
    pub store: &'a dyn ObjectStore,
    /// Retries of transient store errors.
    pub retry: RetryPolicy,
    /// Where tiles are decoded.
    pub pool: &'a CpuPool,
    /// Bounds the tiles being decoded or waiting for their batch, over all jobs.
    pub slots: &'a Semaphore,
    /// Stage timings.
    pub metrics: &'a WorkerMetrics,
}

/// Where a tile is in its job, its bytes, and the report it goes with.
#[derive(Debug, Clone)]
struct TileWork<'a> {
    /// Index of the case in the job.
    case: usize,
    /// Index of the tile in the case.
    index: usize,
    /// The tile as the job names it.
    tile: &'a JobTile,
    /// Its bytes, as read.
    bytes: Bytes,
    /// The case's report vector, for models that take one.
    report: Option<Arc<[f32]>>,
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
    /// Its share of its range's read.
    pub fetch: Duration,
    /// Decoding.
    pub decode: Duration,
    /// The tile's share of its batch's inference.
    pub infer: Duration,
}

impl TileStages<'_> {
    /// Read one range of `job`'s tiles and run each tile in it to its end;
    /// `reports[case]` is the report vector of the job's case `case`.
    pub(crate) async fn run_range(
        self,
        job: &Job,
        range: Range<'_>,
        reports: &[Option<Arc<[f32]>>],
        pipeline: &ModelPipeline,
    ) -> Vec<TileDone> {
        let started = Instant::now();
        let read = fetch::get_range(
            self.store,
            range.shard_key,
            range.offset,
            range.len(),
            self.retry,
        )
        .await;
        let took = started.elapsed();
        self.metrics.fetch_seconds.observe(took.as_secs_f64());
        let share = TileTimes {
            fetch: took / range.tiles.len().max(1) as u32,
            ..TileTimes::default()
        };
        // Stores answer exactly the bytes asked for; anything else is an
        // error here too, never a slice out of bounds.
        let read = read.and_then(|bytes| {
            if bytes.len() as u64 == range.len() {
                Ok(bytes)
            } else {
                Err(StoreError::new(
                    StoreErrorKind::Permanent,
                    "get_range",
                    range.shard_key,
                    &self.store.describe(),
                    format!(
                        "asked for bytes {}..{}, got {} bytes",
                        range.offset,
                        range.end,
                        bytes.len()
                    ),
                ))
            }
        });
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                let reason = fetch_reason(&e, self.retry);
                return range
                    .tiles
                    .iter()
                    .map(|&(case, index)| TileDone {
                        case,
                        index,
                        outcome: Err((
                            FailureStage::Fetch,
                            format!("{}: {reason}", job.cases[case].tiles[index].name),
                        )),
                        store_unavailable: e.is_transient(),
                        times: share,
                    })
                    .collect();
            }
        };
        let tiles = range.tiles.iter().map(|&(case, index)| {
            let tile = &job.cases[case].tiles[index];
            let start = (tile.offset - range.offset) as usize;
            let work = TileWork {
                case,
                index,
                tile,
                bytes: bytes.slice(start..start + tile.length as usize),
                report: reports[case].clone(),
            };
            self.run(work, share, pipeline)
        });
        futures::future::join_all(tiles).await
    }

    /// Run one read tile to its end.
    async fn run(self, work: TileWork<'_>, times: TileTimes, pipeline: &ModelPipeline) -> TileDone {
        let mut times = times;
        let outcome = self.outputs(&work, pipeline, &mut times).await;
        TileDone {
            case: work.case,
            index: work.index,
            outcome,
            store_unavailable: false,
            times,
        }
    }

    async fn outputs(
        self,
        work: &TileWork<'_>,
        pipeline: &ModelPipeline,
        times: &mut TileTimes,
    ) -> Result<Vec<Vec<f32>>, (FailureStage, String)> {
        let tile = work.tile;
        let name = tile.name.as_str();
        let read = crc32c(&work.bytes);
        if read != tile.crc32c {
            return Err((
                FailureStage::Fetch,
                format!(
                    "{name}: bytes {}..{} of {} fail their CRC-32C check (the manifest says {:08x}, read {read:08x}): the shard is damaged",
                    tile.offset,
                    tile.end(),
                    tile.shard_key,
                    tile.crc32c
                ),
            ));
        }
        let Ok(slot) = self.slots.acquire().await else {
            return Err((
                FailureStage::Fetch,
                format!("{name}: the worker is stopping"),
            ));
        };
        let size = pipeline.card().tile.size as usize;
        let bytes = work.bytes.clone();
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
                decoded.map_err(|e| (FailureStage::Decode, format!("{name}: {e}")))?
            }
            Err(e) => return Err((FailureStage::Decode, format!("{name}: {e}"))),
        };

        let answer = pipeline.submit(rgb, work.report.clone()).await;
        drop(slot);
        let answer = match answer {
            Ok(answer) => answer.await,
            Err(e) => return Err((FailureStage::Infer, format!("{name}: {e}"))),
        };
        match answer {
            Ok(inference) => {
                times.infer = inference.share;
                inference
                    .outcome
                    .map_err(|reason| (FailureStage::Infer, format!("{name}: {reason}")))
            }
            Err(_) => Err((
                FailureStage::Infer,
                format!("{name}: the model's inference thread stopped before answering"),
            )),
        }
    }
}

/// Why a tile could not be fetched, in words for `failures.csv`.
fn fetch_reason(e: &StoreError, retry: RetryPolicy) -> String {
    match e.kind {
        StoreErrorKind::NotFound => format!("shard not found: {e}"),
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
