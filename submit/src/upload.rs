//! Tiling and upload, overlapped: rayon threads (inside `spawn_blocking`)
//! decode kept images, cut and encode their tiles and hand them over a
//! bounded channel; the async side PUTs them with bounded concurrency,
//! skipping keys the store already holds with the same size.

use super::decode;
use super::error::SubmitError;
use super::pixel_budget::{PixelBudget, decode_cost};
use super::scan::read_verified;
use super::site_folder::SiteFolder;
use super::tiling::{self, CutTile};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::ProgressBar;
use nodal_common::store::SharedStore;
use nodal_types::manifest::{SourceFile, TileMode, TileRef};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Images whose encoded tiles may wait in the channel for upload.
const CHANNEL_IMAGES: usize = 16;

/// One kept image to tile.
#[derive(Debug, Clone)]
pub struct TileJob {
    /// Index of the case in the manifest.
    pub case_index: usize,
    /// Index of the image within its case.
    pub image_index: usize,
    /// The case id (a segment of the tile keys).
    pub case_id: String,
    /// The source file, with the hash the scan recorded.
    pub file: SourceFile,
    /// Its displayed width and height (for the memory it takes).
    pub size: (u32, u32),
}

/// What tiling and upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Bytes of all encoded tiles.
    pub tile_bytes: u64,
    /// Objects written.
    pub uploaded: usize,
    /// Bytes written.
    pub uploaded_bytes: u64,
    /// Tiles already in the store with the same size, not written again.
    pub skipped: usize,
}

/// Everything the tiling stage needs besides the jobs.
#[derive(Debug, Clone)]
pub struct TilingPlan {
    /// The site folder.
    pub folder: Arc<SiteFolder>,
    /// The bound on decoded pixels in memory.
    pub budget: Arc<PixelBudget>,
    /// Grid or whole image.
    pub mode: TileMode,
    /// The archive the tiles belong to.
    pub archive_id: String,
    /// Most PUTs in flight.
    pub concurrency: usize,
}

/// The tiles of one image, encoded.
struct TiledImage {
    case_index: usize,
    image_index: usize,
    objects: Vec<(TileRef, Bytes)>,
}

/// Tile every job and upload what the store lacks. `existing` maps keys
/// already stored under the archive's tile prefix to their sizes. Returns
/// the tile list of each (case, image) and the counts.
pub async fn tile_and_upload(
    plan: &TilingPlan,
    jobs: Vec<TileJob>,
    store: &SharedStore,
    existing: &HashMap<String, u64>,
    tiling_bar: ProgressBar,
    upload_bar: ProgressBar,
) -> Result<(HashMap<(usize, usize), Vec<TileRef>>, UploadStats), SubmitError> {
    let (tx, mut rx) = mpsc::channel::<Result<TiledImage, SubmitError>>(CHANNEL_IMAGES);
    let producer_plan = Arc::new(plan.clone());
    let producer = tokio::task::spawn_blocking(move || {
        // Stops at the first failure or when the receiver is gone.
        let _ = jobs.par_iter().try_for_each(|job| {
            let tiled = tile_one(&producer_plan, job);
            let failed = tiled.is_err();
            tiling_bar.inc(1);
            match tx.blocking_send(tiled) {
                Ok(()) if !failed => Ok(()),
                _ => Err(()),
            }
        });
        tiling_bar.finish();
    });
    let mut refs = HashMap::new();
    let mut stats = UploadStats::default();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            item = rx.recv(), if open && in_flight.len() < plan.concurrency => match item {
                None => open = false,
                Some(tiled) => {
                    let tiled = tiled?;
                    let mut tiles = Vec::with_capacity(tiled.objects.len());
                    for (tile, body) in tiled.objects {
                        let size = body.len() as u64;
                        stats.tile_bytes += size;
                        upload_bar.inc_length(1);
                        if existing.get(&tile.key) == Some(&size) {
                            stats.skipped += 1;
                            upload_bar.inc(1);
                        } else {
                            let store = store.clone();
                            let key = tile.key.clone();
                            in_flight.push(async move { store.put(&key, body).await.map(|()| size) });
                        }
                        tiles.push(tile);
                    }
                    refs.insert((tiled.case_index, tiled.image_index), tiles);
                }
            },
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                stats.uploaded_bytes += done?;
                stats.uploaded += 1;
                upload_bar.inc(1);
            }
        }
    }
    producer.await.map_err(|e| SubmitError::Task {
        stage: "tiling",
        message: e.to_string(),
    })?;
    Ok((refs, stats))
}

fn tile_one(plan: &TilingPlan, job: &TileJob) -> Result<TiledImage, SubmitError> {
    let source = |message: String| SubmitError::Source {
        path: job.file.path.clone(),
        message,
    };
    let _memory = plan.budget.reserve(decode_cost(job.size.0, job.size.1));
    let bytes = read_verified(&plan.folder, &job.file).map_err(source)?;
    let pixels = decode::decode_rgb(&bytes).map_err(|e| source(e.0))?;
    let objects = tiling::cut(plan.mode, &pixels)
        .into_iter()
        .map(|CutTile { x, y, pixels }| {
            let body = tiling::encode_jpeg(&pixels)
                .map_err(|e| source(format!("encoding the tile at ({x}, {y}): {e}")))?;
            let key = nodal_types::layout::tile_key(
                &plan.archive_id,
                &job.case_id,
                job.image_index,
                x,
                y,
            );
            Ok((TileRef { key, x, y }, Bytes::from(body)))
        })
        .collect::<Result<Vec<_>, SubmitError>>()?;
    Ok(TiledImage {
        case_index: job.case_index,
        image_index: job.image_index,
        objects,
    })
}
