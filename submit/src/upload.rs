//! Tiling, packing and upload, overlapped: rayon threads (inside
//! `spawn_blocking`) decode kept images, cut and encode their tiles and hand
//! them over a bounded channel; the async side puts them back in manifest
//! order, packs them into shards ([`ShardPacker`]: a case's tiles together)
//! and PUTs each shard as it closes, with bounded concurrency, skipping
//! shards the store already holds with the same size. Shards are the same
//! bytes on every submission of the same files, so an interrupted
//! submission resumes where it stopped.

use super::decode;
use super::error::SubmitError;
use super::pixel_budget::{PixelBudget, decode_cost};
use super::scan::read_verified;
use super::site_folder::SiteFolder;
use super::tiling::{self, CutTile};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use indicatif::ProgressBar;
use nodal_common::store::{SharedStore, StoreError};
use nodal_types::layout::shard_key;
use nodal_types::manifest::{ShardRef, SourceFile, TileMode, TileRef, tile_name};
use nodal_types::shard::{PackedShard, ShardPacker};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Images whose encoded tiles may wait in the channel for packing.
const CHANNEL_IMAGES: usize = 16;

/// One kept image to tile.
#[derive(Debug, Clone)]
pub struct TileJob {
    /// Index of the case in the manifest.
    pub case_index: usize,
    /// Index of the image within its case.
    pub image_index: usize,
    /// The case id (a segment of the tile names).
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
    /// Shards already in the store with the same size, not written again.
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
    /// Most shard PUTs in flight.
    pub concurrency: usize,
    /// The size at which a shard is closed.
    pub shard_bytes: u64,
}

/// The archive's tiles as packed: each (case, image)'s tile list, and the shards.
#[derive(Debug, Default)]
pub struct Packed {
    /// Tiles by (case index, image index).
    pub tiles: HashMap<(usize, usize), Vec<TileRef>>,
    /// The shards, by index.
    pub shards: Vec<ShardRef>,
}

/// The tiles of one image, encoded.
struct TiledImage {
    /// Position of the image in the job list (manifest order).
    seq: usize,
    tiles: Vec<EncodedTile>,
}

/// One encoded tile.
struct EncodedTile {
    name: String,
    x: u32,
    y: u32,
    body: Vec<u8>,
}

/// Tile every job (sorted by case, then image), pack the tiles into shards
/// and upload what the store lacks. `existing` maps shard keys already
/// stored for the archive to their sizes.
pub async fn tile_and_upload(
    plan: &TilingPlan,
    jobs: Vec<TileJob>,
    store: &SharedStore,
    existing: &HashMap<String, u64>,
    tiling_bar: ProgressBar,
    upload_bar: ProgressBar,
) -> Result<(Packed, UploadStats), SubmitError> {
    let (tx, mut rx) = mpsc::channel::<Result<TiledImage, SubmitError>>(CHANNEL_IMAGES);
    let producer_plan = Arc::new(plan.clone());
    let ends_case: Vec<bool> = (0..jobs.len())
        .map(|i| {
            jobs.get(i + 1)
                .is_none_or(|next| next.case_index != jobs[i].case_index)
        })
        .collect();
    let places: Vec<(usize, usize)> = jobs.iter().map(|j| (j.case_index, j.image_index)).collect();
    let producer = tokio::task::spawn_blocking(move || {
        // Threads take images in order (so few wait for packing); stops at
        // the first failure or when the receiver is gone.
        let _ = jobs
            .iter()
            .enumerate()
            .par_bridge()
            .try_for_each(|(seq, job)| {
                let tiled = tile_one(&producer_plan, seq, job);
                let failed = tiled.is_err();
                tiling_bar.inc(1);
                match tx.blocking_send(tiled) {
                    Ok(()) if !failed => Ok(()),
                    _ => Err(()),
                }
            });
        tiling_bar.finish();
    });
    let mut packing = Packing {
        plan,
        store,
        existing,
        upload_bar: &upload_bar,
        packer: ShardPacker::new(plan.shard_bytes),
        packed: Packed::default(),
        stats: UploadStats::default(),
        in_flight: FuturesUnordered::new(),
    };
    let mut waiting: BTreeMap<usize, TiledImage> = BTreeMap::new();
    let mut case: Vec<TiledImage> = Vec::new();
    let mut next = 0;
    let mut open = true;
    while open || !packing.in_flight.is_empty() {
        tokio::select! {
            item = rx.recv(), if open && packing.in_flight.len() < plan.concurrency => match item {
                None => open = false,
                Some(tiled) => {
                    let tiled = tiled?;
                    waiting.insert(tiled.seq, tiled);
                    while let Some(image) = waiting.remove(&next) {
                        case.push(image);
                        if ends_case[next] {
                            packing.pack_case(std::mem::take(&mut case), &places);
                        }
                        next += 1;
                    }
                }
            },
            Some(done) = packing.in_flight.next(), if !packing.in_flight.is_empty() => {
                packing.uploaded(done?);
            }
        }
    }
    producer.await.map_err(|e| SubmitError::Task {
        stage: "tiling",
        message: e.to_string(),
    })?;
    if next != places.len() {
        return Err(SubmitError::Task {
            stage: "tiling",
            message: format!("{} of {} images were tiled", next, places.len()),
        });
    }
    let last = packing.packer.finish();
    packing.upload(last);
    while let Some(done) = packing.in_flight.next().await {
        packing.uploaded(done?);
    }
    Ok((packing.packed, packing.stats))
}

/// The packing and upload side of [`tile_and_upload`].
struct Packing<'a> {
    plan: &'a TilingPlan,
    store: &'a SharedStore,
    existing: &'a HashMap<String, u64>,
    upload_bar: &'a ProgressBar,
    packer: ShardPacker,
    packed: Packed,
    stats: UploadStats,
    in_flight: FuturesUnordered<BoxFuture<'static, Result<u64, StoreError>>>,
}

impl Packing<'_> {
    /// Pack one case's images, in order, closing and uploading shards as they fill.
    fn pack_case(&mut self, images: Vec<TiledImage>, places: &[(usize, usize)]) {
        let bytes = images
            .iter()
            .flat_map(|i| &i.tiles)
            .map(|t| t.body.len() as u64)
            .sum();
        let closed = self.packer.start_case(bytes);
        self.upload(closed);
        for image in images {
            let mut refs = Vec::with_capacity(image.tiles.len());
            for tile in image.tiles {
                self.stats.tile_bytes += tile.body.len() as u64;
                let (at, closed) = self.packer.push(&tile.body);
                self.upload(closed);
                refs.push(TileRef {
                    name: tile.name,
                    x: tile.x,
                    y: tile.y,
                    at,
                });
            }
            self.packed.tiles.insert(places[image.seq], refs);
        }
    }

    /// Record a closed shard and PUT it unless the store holds it already.
    fn upload(&mut self, shard: Option<PackedShard>) {
        let Some(PackedShard { index, body, tiles }) = shard else {
            return;
        };
        let size = body.len() as u64;
        debug_assert_eq!(index as usize, self.packed.shards.len());
        self.packed.shards.push(ShardRef { bytes: size, tiles });
        let key = shard_key(&self.plan.archive_id, index);
        self.upload_bar.inc_length(1);
        if self.existing.get(&key) == Some(&size) {
            self.stats.skipped += 1;
            self.upload_bar.inc(1);
            return;
        }
        let store = self.store.clone();
        self.in_flight.push(Box::pin(async move {
            store.put(&key, Bytes::from(body)).await.map(|()| size)
        }));
    }

    /// Count a finished PUT.
    fn uploaded(&mut self, size: u64) {
        self.stats.uploaded_bytes += size;
        self.stats.uploaded += 1;
        self.upload_bar.inc(1);
    }
}

fn tile_one(plan: &TilingPlan, seq: usize, job: &TileJob) -> Result<TiledImage, SubmitError> {
    let source = |message: String| SubmitError::Source {
        path: job.file.path.clone(),
        message,
    };
    let _memory = plan.budget.reserve(decode_cost(job.size.0, job.size.1));
    let bytes = read_verified(&plan.folder, &job.file).map_err(source)?;
    let pixels = decode::decode_rgb(&bytes).map_err(|e| source(e.0))?;
    let tiles = tiling::cut(plan.mode, &pixels)
        .into_iter()
        .map(|CutTile { x, y, pixels }| {
            let body = tiling::encode_jpeg(&pixels)
                .map_err(|e| source(format!("encoding the tile at ({x}, {y}): {e}")))?;
            Ok(EncodedTile {
                name: tile_name(&job.case_id, job.image_index, x, y),
                x,
                y,
                body,
            })
        })
        .collect::<Result<Vec<_>, SubmitError>>()?;
    Ok(TiledImage { seq, tiles })
}
