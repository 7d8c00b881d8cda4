//! Builders of small manifests, cards and model references for unit tests.

use nodal_types::manifest::*;
use nodal_types::model_card::*;
use nodal_types::shard::{ShardPacker, TileLocation};
use nodal_types::study::{Split, Study, Task};
use nodal_types::wire::{JobTile, ModelRef};
use std::collections::BTreeMap;

/// Bytes of every fixture tile in a shard.
pub const TILE_BYTES: usize = 100;

/// An image with `tiles` tiles that passed QC or failed it for blur (its
/// tiles are placed in shards by [`manifest`]).
pub fn image(tiles: usize, passed: bool) -> ImageEntry {
    ImageEntry {
        path: "images/x.jpg".into(),
        sha256: String::new(),
        width: 1024,
        height: 768,
        orientation: 1,
        qc: QcVerdict {
            passed,
            reason: (!passed).then_some(QcReason::Blur),
            coverage: 0.5,
            laplacian_var: 100.0,
            artefact_fraction: 0.0,
        },
        tiles: (0..tiles)
            .map(|i| TileRef {
                name: format!("t{i}"),
                x: 0,
                y: 0,
                at: TileLocation {
                    shard: 0,
                    offset: 0,
                    length: TILE_BYTES as u32,
                    crc32c: 0,
                },
            })
            .collect(),
        dicom: None,
    }
}

/// A case with one image of `tiles` tiles, eligible or not.
pub fn case(id: &str, tiles: usize, eligible: bool) -> Case {
    Case {
        case_id: id.into(),
        split: Split::Validation,
        label: Some("lung".into()),
        stage: None,
        clinical: BTreeMap::new(),
        readers: BTreeMap::new(),
        report: None,
        eligibility: if eligible {
            Eligibility::Eligible
        } else {
            Eligibility::Excluded {
                criterion: "unsupported_origin".into(),
            }
        },
        images: vec![image(tiles, true), image(3, false)],
    }
}

/// A cytology manifest of archive `id` holding `cases`, their tiles in
/// one shard.
pub fn manifest(id: &str, cases: Vec<Case>) -> Manifest {
    manifest_in_shards(id, cases, u64::MAX)
}

/// A cytology manifest of archive `id` holding `cases`, their tiles
/// ([`TILE_BYTES`] each) packed into shards of `shard_bytes` as `nodal
/// submit` packs them.
pub fn manifest_in_shards(id: &str, mut cases: Vec<Case>, shard_bytes: u64) -> Manifest {
    let mut packer = ShardPacker::new(shard_bytes);
    let mut shards = Vec::new();
    let mut keep = |closed: Option<nodal_types::shard::PackedShard>| {
        shards.extend(closed.map(|s| ShardRef {
            bytes: s.body.len() as u64,
            tiles: s.tiles,
        }));
    };
    let body = [0u8; TILE_BYTES];
    for case in &mut cases {
        let tiles: Vec<&mut TileRef> = case.images.iter_mut().flat_map(|i| &mut i.tiles).collect();
        keep(packer.start_case((tiles.len() * TILE_BYTES) as u64));
        for tile in tiles {
            let (at, closed) = packer.push(&body);
            keep(closed);
            tile.at = at;
        }
    }
    keep(packer.finish());
    Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        archive_id: id.into(),
        study: Study::Cytology,
        site: "cy-a".into(),
        nodal_version: "0".into(),
        tiling: TileSpec {
            size: 224,
            mode: TileMode::Grid,
            format: TileFormat::Jpeg,
            codec: nodal_codec::tile_codec(),
        },
        qc_thresholds: QcThresholds {
            min_coverage: 0.1,
            min_laplacian_var: 10.0,
            max_artefact_fraction: 0.1,
        },
        cases_table: None,
        source_files: vec![],
        shards,
        cases,
    }
}

/// The card of a small multi-class cytology model.
pub fn card() -> ModelCard {
    ModelCard {
        schema_version: CARD_SCHEMA_VERSION,
        name: "cytology-origin".into(),
        version: "1.0.0".into(),
        study: Study::Cytology,
        task: Task::Multiclass,
        classes: vec!["lung".into()],
        onnx_file: "model.onnx".into(),
        onnx_sha256: String::new(),
        inputs: vec![],
        outputs: vec![],
        tile: TileSpecCard {
            size: 224,
            mode: TileMode::Grid,
            codec: nodal_codec::tile_codec(),
        },
        normalisation: Normalisation {
            scale: 255.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        },
        report_features: vec![],
        aggregation: Aggregation::Mean,
        preferred_batch: 32,
        held_out: BTreeMap::new(),
        training: BTreeMap::new(),
    }
}

/// A reference to [`card`]'s model.
pub fn model_ref() -> ModelRef {
    ModelRef {
        name: "cytology-origin".into(),
        version: "1.0.0".into(),
        card_key: "models/cytology-origin/1.0.0/card.json".into(),
        onnx_sha256: String::new(),
    }
}

/// A job tile named `name`, at the start of shard `archives/a/shards/000000.bin`.
pub fn job_tile(name: &str) -> JobTile {
    JobTile {
        name: name.into(),
        shard_key: "archives/a/shards/000000.bin".into(),
        offset: 0,
        length: TILE_BYTES as u32,
        crc32c: 0,
    }
}
