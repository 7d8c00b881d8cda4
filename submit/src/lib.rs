//! The site side of nodal (`nodal submit`): validate a site folder, apply eligibility and image QC,
//! tile, and upload the archive with its manifest (`docs/submission.md`).
//!
//! Stages: read the case table (`cases.csv` or `cases.xlsx`) → scan (hash
//! every file, check image headers, parse reports) → QC (decode every image,
//! measure) → eligibility → tile, pack into shards and upload (shards
//! first, the manifest last). Every file is read through [`site_folder`]'s one rule: nothing
//! outside the folder, only regular files. Any problem in the folder
//! stops the submission before anything is uploaded, with every problem
//! listed. The same folder with the same settings gets the same archive id;
//! a complete archive is not uploaded again, an interrupted one resumes.

pub mod archive_id;
pub mod assemble;
pub mod cases_table;
pub mod csv_schema;
pub mod decode;
pub mod dicom;
pub mod eligibility;
pub mod error;
pub mod inspect;
pub mod pixel_budget;
pub mod problem;
pub mod progress;
pub mod qc;
pub mod report;
pub mod scan;
pub mod site_folder;
pub mod summary;
pub mod table;
#[cfg(test)]
mod tests;
pub mod tiling;
pub mod upload;

pub use error::SubmitError;
pub use problem::Problem;
pub use progress::Progress;
pub use summary::Summary;

use nodal_common::store::SharedStore;
use nodal_types::NODAL_VERSION;
use nodal_types::layout::{manifest_key, shard_key, shards_prefix};
use nodal_types::manifest::{
    CasesTable, MANIFEST_SCHEMA_VERSION, Manifest, QcThresholds, SourceFile,
};
use nodal_types::study::Study;
use pixel_budget::PixelBudget;
use scan::Scan;
use site_folder::SiteFolder;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use table::TableOptions;
use upload::{TileJob, TilingPlan};

/// Default number of shard uploads in flight.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 8;

/// Default shard size, MiB ([`nodal_types::shard::DEFAULT_SHARD_BYTES`]).
pub const DEFAULT_SHARD_MIB: u64 = nodal_types::shard::DEFAULT_SHARD_BYTES >> 20;

/// What to submit, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitOptions {
    /// The study.
    pub study: Study,
    /// The site name.
    pub site: String,
    /// The site folder.
    pub dir: PathBuf,
    /// QC thresholds.
    pub thresholds: QcThresholds,
    /// Most shard uploads in flight.
    pub upload_concurrency: usize,
    /// The size at which a shard of tiles is closed.
    pub shard_bytes: u64,
    /// How to read the case table.
    pub table: TableOptions,
    /// Bytes that images decoded at once may take.
    pub decode_memory: u64,
}

impl SubmitOptions {
    /// Options with the study's default thresholds and concurrency.
    pub fn new(study: Study, site: &str, dir: impl Into<PathBuf>) -> Self {
        Self {
            study,
            site: site.to_owned(),
            dir: dir.into(),
            thresholds: qc::default_thresholds(study),
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            shard_bytes: nodal_types::shard::DEFAULT_SHARD_BYTES,
            table: TableOptions::default(),
            decode_memory: pixel_budget::DEFAULT_DECODE_MEMORY_MIB << 20,
        }
    }
}

/// The result of a successful submission.
#[derive(Debug, Clone)]
pub struct SubmitOutcome {
    /// The manifest as stored.
    pub manifest: Manifest,
    /// Counts and what was uploaded.
    pub summary: Summary,
    /// Files in the folder that `cases.csv` does not name (ignored).
    pub unlisted: Vec<String>,
}

/// Submit one site folder to `store`: validate, QC, tile, upload. A folder
/// with problems is refused with all of them and nothing uploaded.
pub async fn submit_site(
    opts: &SubmitOptions,
    store: SharedStore,
    progress: &Progress,
) -> Result<SubmitOutcome, SubmitError> {
    check_options(opts)?;
    let folder = match SiteFolder::open(&opts.dir) {
        Ok(folder) => Arc::new(folder),
        Err(e) => {
            return Err(SubmitError::Invalid {
                dir: opts.dir.clone(),
                problems: vec![Problem::file(
                    &opts.dir.display().to_string(),
                    match e.kind() {
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                            "the site folder does not exist or is not a folder".to_owned()
                        }
                        _ => format!("the site folder cannot be opened: {e}"),
                    },
                )],
            });
        }
    };
    let budget = Arc::new(PixelBudget::new(opts.decode_memory));
    let (rows, table, scan, mut problems) = {
        let (opts, folder, progress) = (opts.clone(), Arc::clone(&folder), progress.clone());
        blocking("scan", move || read_and_scan(&opts, &folder, &progress)).await?
    };
    let spec = tiling::tile_spec(opts.study);
    let archive_id = archive_id::archive_id(
        opts.study,
        &opts.site,
        &spec,
        &opts.thresholds,
        &table,
        &scan.files,
    )
    .map_err(|e| SubmitError::Options(e.to_string()))?
    .to_string();
    if problems.is_empty()
        && let Some(outcome) = completed_earlier(&store, &archive_id, &scan).await?
    {
        return Ok(outcome);
    }
    let verdicts = {
        let (opts, progress) = (opts.clone(), progress.clone());
        let (folder, budget) = (Arc::clone(&folder), Arc::clone(&budget));
        let images: Vec<scan::ScannedImage> = scan.images.values().cloned().collect();
        let (verdicts, qc_problems) = blocking("qc", move || {
            let bar = progress.stage("qc", images.len() as u64, "images");
            let mut found = Vec::new();
            let refs: Vec<&scan::ScannedImage> = images.iter().collect();
            let verdicts = inspect::inspect(
                &folder,
                &budget,
                opts.study,
                &opts.thresholds,
                &refs,
                &mut found,
                &|| bar.inc(1),
            );
            bar.finish();
            (verdicts, found)
        })
        .await?;
        problems.extend(qc_problems);
        verdicts
    };
    let cases = if problems.is_empty() {
        assemble::cases(opts.study, &rows, &scan, &verdicts).unwrap_or_else(|p| {
            problems.extend(p);
            Vec::new()
        })
    } else {
        Vec::new()
    };
    if !problems.is_empty() {
        problems.sort();
        return Err(SubmitError::Invalid {
            dir: opts.dir.clone(),
            problems,
        });
    }
    let mut manifest = Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        archive_id: archive_id.clone(),
        study: opts.study,
        site: opts.site.clone(),
        nodal_version: NODAL_VERSION.to_owned(),
        tiling: spec,
        qc_thresholds: opts.thresholds.clone(),
        cases_table: Some(table),
        source_files: scan.files,
        shards: Vec::new(),
        cases,
    };
    let plan = TilingPlan {
        folder,
        budget,
        mode: manifest.tiling.mode,
        archive_id: manifest.archive_id.clone(),
        concurrency: opts.upload_concurrency,
        shard_bytes: opts.shard_bytes,
    };
    let stats = upload_archive(&plan, &store, &mut manifest, progress).await?;
    let summary = Summary {
        tile_bytes: stats.tile_bytes,
        uploaded: stats.uploaded,
        uploaded_bytes: stats.uploaded_bytes,
        skipped: stats.skipped,
        ..Summary::of(&manifest)
    };
    Ok(SubmitOutcome {
        manifest,
        summary,
        unlisted: scan.unlisted,
    })
}

fn check_options(opts: &SubmitOptions) -> Result<(), SubmitError> {
    let problem = nodal_types::archive_id::site_problem(&opts.site)
        .or_else(|| qc::threshold_problem(&opts.thresholds))
        .or_else(|| {
            (opts.upload_concurrency == 0)
                .then(|| "--upload-concurrency must be at least 1".to_owned())
        })
        .or_else(|| {
            (opts.decode_memory == 0).then(|| "--decode-memory-mib must be at least 1".to_owned())
        })
        .or_else(|| (opts.shard_bytes == 0).then(|| "--shard-mib must be more than 0".to_owned()));
    match problem {
        Some(p) => Err(SubmitError::Options(p)),
        None => Ok(()),
    }
}

/// Read the case table, check its rows and scan every file they name.
fn read_and_scan(
    opts: &SubmitOptions,
    folder: &SiteFolder,
    progress: &Progress,
) -> (Vec<cases_table::CaseRow>, CasesTable, Scan, Vec<Problem>) {
    let mut problems = Vec::new();
    let Some((raw, table_file)) = table::read(folder, &opts.table, &mut problems) else {
        let unread = CasesTable {
            file: table::CASES_CSV.into(),
            encoding: None,
            delimiter: None,
            sheet: None,
        };
        return (Vec::new(), unread, Scan::default(), problems);
    };
    let rows = cases_table::check(opts.study, &raw, &mut problems);
    let files: usize = rows.iter().map(|r| r.files.len()).sum();
    let bar = progress.stage("scan", files as u64, "files");
    let scan = scan::scan(
        folder,
        tiling::min_image_side(opts.study),
        table_file,
        &rows,
        &mut problems,
        &|| bar.inc(1),
    );
    bar.finish();
    (rows, raw.record, scan, problems)
}

/// The outcome of an earlier complete submission of the same files: its
/// manifest is stored, of this schema version, describes exactly the
/// scanned files, and every shard it lists is stored with its size. `None`
/// when anything is missing (then the normal path uploads what lacks).
async fn completed_earlier(
    store: &SharedStore,
    archive_id: &str,
    scan: &Scan,
) -> Result<Option<SubmitOutcome>, SubmitError> {
    let key = manifest_key(archive_id);
    let bytes = match store.get(&key).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // An unreadable, older or foreign manifest is simply rewritten.
    let parsed = blocking("scan", move || Manifest::parse(&bytes).ok()).await?;
    let Some(manifest) =
        parsed.filter(|m| m.archive_id == archive_id && m.source_files == scan.files)
    else {
        return Ok(None);
    };
    let stored: HashMap<String, u64> = store
        .list(&shards_prefix(archive_id))
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let all_stored = manifest.shards.iter().enumerate().all(|(index, shard)| {
        stored.get(&shard_key(archive_id, index as u32)) == Some(&shard.bytes)
    });
    if !all_stored {
        return Ok(None);
    }
    let summary = Summary {
        tile_bytes: manifest.shards.iter().map(|s| s.bytes).sum(),
        already_complete: true,
        ..Summary::of(&manifest)
    };
    Ok(Some(SubmitOutcome {
        manifest,
        summary,
        unlisted: scan.unlisted.clone(),
    }))
}

/// Tile the kept images of eligible cases, pack them into shards, upload
/// what the store lacks, fill the manifest's tile lists and shard index,
/// and write the manifest last.
async fn upload_archive(
    plan: &TilingPlan,
    store: &SharedStore,
    manifest: &mut Manifest,
    progress: &Progress,
) -> Result<upload::UploadStats, SubmitError> {
    let files: HashMap<&str, &SourceFile> = manifest
        .source_files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut jobs = Vec::new();
    for (case_index, case) in manifest.cases.iter().enumerate() {
        if !case.eligibility.is_eligible() {
            continue;
        }
        for (image_index, image) in case.images.iter().enumerate() {
            if let (true, Some(file)) = (image.qc.passed, files.get(image.path.as_str())) {
                jobs.push(TileJob {
                    case_index,
                    image_index,
                    case_id: case.case_id.clone(),
                    file: (*file).clone(),
                    size: (image.width, image.height),
                });
            }
        }
    }
    let existing: HashMap<String, u64> = store
        .list(&shards_prefix(&manifest.archive_id))
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let tiling_bar = progress.stage("tiling", jobs.len() as u64, "images");
    let upload_bar = progress.stage("upload", 0, "objects");
    let (mut packed, mut stats) =
        upload::tile_and_upload(plan, jobs, store, &existing, tiling_bar, upload_bar.clone())
            .await?;
    for (case_index, case) in manifest.cases.iter_mut().enumerate() {
        for (image_index, image) in case.images.iter_mut().enumerate() {
            image.tiles = packed
                .tiles
                .remove(&(case_index, image_index))
                .unwrap_or_default();
        }
    }
    manifest.shards = packed.shards;
    let key = manifest_key(&manifest.archive_id);
    let to_encode = manifest.clone();
    let body = blocking("upload", move || serde_json::to_vec_pretty(&to_encode))
        .await?
        .map_err(|source| SubmitError::Manifest {
            key: key.clone(),
            source,
        })?;
    stats.uploaded += 1;
    stats.uploaded_bytes += body.len() as u64;
    upload_bar.inc_length(1);
    store.put(&key, body.into()).await?;
    upload_bar.inc(1);
    upload_bar.finish();
    Ok(stats)
}

/// Run CPU-bound `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    stage: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SubmitError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SubmitError::Task {
            stage,
            message: e.to_string(),
        })
}
