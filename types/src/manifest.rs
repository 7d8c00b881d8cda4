//! The archive manifest: what `nodal submit` uploads beside the tiles, and
//! what the coordinator plans runs from.
//!
//! Stored at `archives/<archive_id>/manifest.json` ([`crate::layout::manifest_key`]);
//! the tiles lie in the archive's shards ([`crate::shard`]).

use crate::shard::TileLocation;
use crate::study::{Split, Study};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the manifest layout; bumped on any incompatible change.
/// Version 3 packs the tiles into shards; archives of version 2 (one
/// object per tile) are refused with a call to re-submit them.
pub const MANIFEST_SCHEMA_VERSION: u32 = 3;

/// One submitted site archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA_VERSION`] at the time of writing.
    pub schema_version: u32,
    /// Deterministic id: the same folder submitted twice gets the same id.
    pub archive_id: String,
    /// The study the archive belongs to.
    pub study: Study,
    /// The submitting centre.
    pub site: String,
    /// nodal version that wrote the manifest.
    pub nodal_version: String,
    /// How images were cut into tiles.
    pub tiling: TileSpec,
    /// The QC thresholds in force when the archive was submitted.
    pub qc_thresholds: QcThresholds,
    /// How the case table was read (absent in manifests written before
    /// nodal read xlsx and other encodings: those were UTF-8 `cases.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases_table: Option<CasesTable>,
    /// Every source file read, with its hash (cases.csv, images, reports).
    pub source_files: Vec<SourceFile>,
    /// The shard objects holding the tiles, by index
    /// ([`crate::layout::shard_key`]).
    pub shards: Vec<ShardRef>,
    /// Every case of `cases.csv`, eligible or not, in file order.
    pub cases: Vec<Case>,
}

impl Manifest {
    /// Parse a stored manifest, refusing another schema version and a tile
    /// index that points outside the archive's shards.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if version.schema_version != MANIFEST_SCHEMA_VERSION {
            return Err(ManifestError::OtherSchema {
                found: version.schema_version,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        manifest.check_tile_index()?;
        Ok(manifest)
    }

    /// Every tile lies inside a listed shard, and each shard's tile count
    /// is its tiles'.
    fn check_tile_index(&self) -> Result<(), ManifestError> {
        let mut counted = vec![0u32; self.shards.len()];
        for case in &self.cases {
            for tile in case.images.iter().flat_map(|i| &i.tiles) {
                let at = tile.at;
                let inside = self
                    .shards
                    .get(at.shard as usize)
                    .is_some_and(|s| at.end() <= s.bytes);
                if !inside {
                    return Err(ManifestError::Invalid(format!(
                        "case {:?}, tile {:?}: bytes {}..{} of shard {} lie outside the archive's {} shards",
                        case.case_id,
                        tile.name,
                        at.offset,
                        at.end(),
                        at.shard,
                        self.shards.len()
                    )));
                }
                counted[at.shard as usize] += 1;
            }
        }
        for (index, (shard, counted)) in self.shards.iter().zip(counted).enumerate() {
            if shard.tiles != counted {
                return Err(ManifestError::Invalid(format!(
                    "shard {index} lists {} tiles; the cases place {counted} in it",
                    shard.tiles
                )));
            }
        }
        Ok(())
    }

    /// Cases that are eligible and have at least one tile to run on.
    pub fn runnable_cases(&self) -> impl Iterator<Item = &Case> {
        self.cases
            .iter()
            .filter(|c| c.eligibility.is_eligible() && c.tile_count() > 0)
    }
}

/// How images were cut into tiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileSpec {
    /// Tile edge in pixels (tiles are square).
    pub size: u32,
    /// Grid tiling or whole-image resize.
    pub mode: TileMode,
    /// Encoding of the stored tiles.
    pub format: TileFormat,
    /// The JPEG codec and settings the tiles were encoded with; a model
    /// card names the codec its figures were validated on, and runs
    /// refuse archives whose codec differs.
    pub codec: TileCodec,
}

/// A JPEG codec and its settings, as archives and model cards record them:
/// the same pixels through the same codec give the same tile, bit for bit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileCodec {
    /// Codec library, e.g. `libjpeg-turbo`.
    pub library: String,
    /// The library's version, e.g. `3.1.0`.
    pub version: String,
    /// Forward and inverse DCT method, e.g. `islow` (accurate integer).
    pub dct: String,
    /// Chroma upsampling on decode, e.g. `fancy` (libjpeg's triangle filter).
    pub upsampling: String,
    /// JPEG quality, 1–100.
    pub quality: u8,
    /// Chroma subsampling, e.g. `4:2:0`.
    pub subsampling: String,
}

impl std::fmt::Display for TileCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (DCT {}, upsampling {}, quality {}, {})",
            self.library, self.version, self.dct, self.upsampling, self.quality, self.subsampling
        )
    }
}

/// Why a stored manifest cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Written by a nodal of another manifest layout.
    #[error(
        "manifest schema version {found}; this nodal reads version {MANIFEST_SCHEMA_VERSION} (tiles packed in shards): re-submit the site with this nodal"
    )]
    OtherSchema {
        /// The version found.
        found: u32,
    },
    /// Not a manifest, or one whose tile index is inconsistent.
    #[error("not a valid manifest: {0}")]
    Invalid(String),
}

/// One shard object of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    /// Size of the object in bytes.
    pub bytes: u64,
    /// Number of tiles in it.
    pub tiles: u32,
}

/// How an image becomes tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TileMode {
    /// Non-overlapping grid of `size`×`size` tiles; background tiles skipped.
    Grid,
    /// The whole image resized to `size`×`size`: one tile per image.
    Whole,
}

/// Encoding of a stored tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TileFormat {
    /// Baseline JPEG.
    Jpeg,
    /// Lossless PNG.
    Png,
}

/// QC thresholds an image is judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcThresholds {
    /// Below this fraction of tissue/ink pixels an image is blank.
    pub min_coverage: f64,
    /// Below this variance of the Laplacian an image is out of focus.
    pub min_laplacian_var: f64,
    /// Above this fraction of artefact pixels an image is rejected.
    pub max_artefact_fraction: f64,
}

/// How the site's case table was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasesTable {
    /// `cases.csv` or `cases.xlsx`.
    pub file: String,
    /// For CSV: the text encoding it was decoded from (`UTF-8`, `gb18030`,
    /// `GBK`, `UTF-16LE`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// For CSV: the field delimiter (`,`, `;` or `tab`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// For xlsx: the sheet read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
}

/// A file of the site folder, as read at submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path relative to the site folder.
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// One patient/case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Case id, unique within the archive.
    pub case_id: String,
    /// Training or held-out case.
    pub split: Split,
    /// Ground truth: a class name (multi-class) or `0`/`1` (binary); `None` = unknown.
    pub label: Option<String>,
    /// Pathological stage, when the study records one.
    pub stage: Option<String>,
    /// Every other `cases.csv` field, as text, by column name (missing = absent).
    pub clinical: BTreeMap<String, String>,
    /// Human readers' calls by reader name (the column name without `reader_`).
    pub readers: BTreeMap<String, String>,
    /// Structured report features (ultrasound), by field name.
    pub report: Option<BTreeMap<String, ReportValue>>,
    /// Whether the case meets the study's criteria.
    pub eligibility: Eligibility,
    /// The case's images with their QC verdicts and tiles.
    pub images: Vec<ImageEntry>,
}

impl Case {
    /// Number of tiles over all images that passed QC.
    pub fn tile_count(&self) -> usize {
        self.images
            .iter()
            .filter(|i| i.qc.passed)
            .map(|i| i.tiles.len())
            .sum()
    }
}

/// A value of a structured report field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportValue {
    /// A measurement.
    Number(f64),
    /// A category level.
    Text(String),
}

/// The eligibility verdict of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Eligibility {
    /// The case meets every criterion.
    Eligible,
    /// The case fails `criterion` (e.g. `age_out_of_range`).
    Excluded {
        /// The first criterion the case failed.
        criterion: String,
    },
}

impl Eligibility {
    /// True when the case meets every criterion.
    pub fn is_eligible(&self) -> bool {
        matches!(self, Eligibility::Eligible)
    }
}

/// One source image of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// Path relative to the site folder.
    pub path: String,
    /// Hex SHA-256 of the image file.
    pub sha256: String,
    /// Width in pixels, as displayed (the EXIF orientation applied).
    pub width: u32,
    /// Height in pixels, as displayed.
    pub height: u32,
    /// The EXIF orientation tag applied before QC and tiling (1–8; 1: the
    /// pixels as stored). Tile positions are in the turned image.
    #[serde(default = "no_orientation")]
    pub orientation: u8,
    /// The QC verdict with the measured values.
    pub qc: QcVerdict,
    /// The tiles cut from the image (empty when QC failed).
    pub tiles: Vec<TileRef>,
    /// For a DICOM source, the allowlisted attributes of its header
    /// (`docs/archive-format.md`, "DICOM ultrasound"); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dicom: Option<DicomInfo>,
}

/// The only attributes of a DICOM header that leave the site: how the
/// image was read, never who or where it is from (the allowlist of
/// `docs/archive-format.md`, after DICOM PS3.15 Annex E).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DicomInfo {
    /// Number of Frames (1 for a single image).
    pub frames: u32,
    /// The 0-based frame read: the middle one, `frames / 2`.
    pub frame: u32,
    /// Transfer Syntax UID (a standard UID, never an instance UID).
    pub transfer_syntax: String,
    /// Photometric Interpretation as stored.
    pub photometric_interpretation: String,
    /// Pixel spacing (x, y) in mm, from the first ultrasound region or
    /// Pixel Spacing, when present.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// Burned In Annotation (0028,0301) as stated: `YES`, `NO`, or absent.
    pub burned_in_annotation: Option<String>,
    /// True when everything outside `regions` was blacked out before QC
    /// and tiling (always, unless Burned In Annotation is `NO`).
    pub masked: bool,
    /// The ultrasound regions (0018,6011), inclusive pixel rectangles.
    pub regions: Vec<Region>,
}

impl DicomInfo {
    /// True when the pixels may carry burned-in text and there is no
    /// ultrasound region to keep: the image is excluded
    /// ([`QcReason::BurnedInAnnotation`]).
    pub fn unmaskable(&self) -> bool {
        self.masked && self.regions.is_empty()
    }
}

/// An inclusive pixel rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Left column.
    pub x0: u32,
    /// Top row.
    pub y0: u32,
    /// Right column (inclusive).
    pub x1: u32,
    /// Bottom row (inclusive).
    pub y1: u32,
}

impl Region {
    /// True when pixel (`x`, `y`) lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        (self.x0..=self.x1).contains(&x) && (self.y0..=self.y1).contains(&y)
    }
}

fn no_orientation() -> u8 {
    1
}

/// Image QC verdict with the measured values it was based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcVerdict {
    /// True when the image is kept.
    pub passed: bool,
    /// Why the image was excluded, if it was.
    pub reason: Option<QcReason>,
    /// Fraction of tissue/ink pixels.
    pub coverage: f64,
    /// Variance of the Laplacian of the grey image (focus).
    pub laplacian_var: f64,
    /// Fraction of pixels classed as artefact.
    pub artefact_fraction: f64,
}

/// Why image QC excluded an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QcReason {
    /// Too little tissue or signal.
    Blank,
    /// Out of focus.
    Blur,
    /// Heavy artefacts (ink, bubbles, folds, debris).
    Artefact,
    /// A DICOM image that may carry burned-in patient text and has no
    /// ultrasound region outside which it could be masked.
    #[serde(rename = "burned_in_annotation")]
    BurnedInAnnotation,
}

impl QcReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [QcReason; 4] = [
        QcReason::Blank,
        QcReason::Blur,
        QcReason::Artefact,
        QcReason::BurnedInAnnotation,
    ];

    /// The lowercase name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            QcReason::Blank => "blank",
            QcReason::Blur => "blur",
            QcReason::Artefact => "artefact",
            QcReason::BurnedInAnnotation => "burned_in_annotation",
        }
    }
}

/// One stored tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileRef {
    /// The tile's name in results and logs ([`tile_name`]).
    pub name: String,
    /// Where its bytes lie in the archive's shards.
    pub at: TileLocation,
    /// Left edge in the source image, pixels.
    pub x: u32,
    /// Top edge in the source image, pixels.
    pub y: u32,
}

/// The name of a tile in results and logs: `<case_id>/<image_index>-<x>-<y>.jpg`,
/// `image_index` counting the case's images from 0 in case-table order.
/// Unique within an archive.
pub fn tile_name(case_id: &str, image_index: usize, x: u32, y: u32) -> String {
    format!("{case_id}/{image_index}-{x}-{y}.jpg")
}
