//! Tile encoding for `nodal submit`: JPEG q90 4:2:0 against PNG on real
//! `nodal synth` tiles — bytes per tile (printed) and encode/decode time per
//! tile (the tile codec, libjpeg-turbo, for JPEG, with zune-jpeg — the
//! worker's decoder before the one-codec change — beside it; the png crate
//! through `image` for PNG).
//!
//! Run: `cargo bench -p nodal-coordinator --bench tile_encoding`.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use image::{ImageFormat, RgbImage};
use nodal_submit::{decode, qc, tiling};
use nodal_types::study::Study;
use std::hint::black_box;
use std::io::Cursor;
use std::path::Path;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;

/// Tiles per study taken from the synthetic archive.
const TILES: usize = 24;

/// Real tiles of `study` and the first source image's bytes: synth a few
/// cases and cut their images.
fn synth_tiles(study: Study, scale: f64, dir: &Path) -> (Vec<RgbImage>, Vec<u8>) {
    let out = dir.join(study.as_str());
    let config = nodal_synth::SynthConfig {
        out: out.clone(),
        studies: vec![study],
        scale,
        seed: 5,
        format: nodal_synth::ImageFormat::Jpeg,
    };
    if let Err(e) = nodal_synth::generate(&config) {
        panic!("synth failed: {e}");
    }
    let mode = tiling::tile_spec(study).mode;
    let mut files = Vec::new();
    let mut stack = vec![out];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "jpg") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut tiles = Vec::new();
    let mut first = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        if first.is_empty() {
            first = bytes.clone();
        }
        let Ok(img) = decode::decode_rgb(&bytes) else {
            continue;
        };
        tiles.extend(tiling::cut(mode, &img).into_iter().map(|t| t.pixels));
        if tiles.len() >= TILES {
            break;
        }
    }
    tiles.truncate(TILES);
    assert!(
        !tiles.is_empty(),
        "no tiles from the synthetic {study} archive"
    );
    (tiles, first)
}

fn png(tile: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    if let Err(e) = tile.write_to(&mut out, ImageFormat::Png) {
        panic!("png: {e}");
    }
    out.into_inner()
}

fn jpeg(tile: &RgbImage) -> Vec<u8> {
    tiling::encode_jpeg(tile).unwrap_or_else(|e| panic!("jpeg: {e}"))
}

fn zune_decode(bytes: &[u8]) -> Vec<u8> {
    JpegDecoder::new(ZCursor::new(bytes))
        .decode()
        .unwrap_or_else(|e| panic!("zune: {e}"))
}

fn png_decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Png)
        .unwrap_or_else(|e| panic!("png: {e}"))
        .into_rgb8()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for (study, scale) in [(Study::Cytology, 0.0004), (Study::Ultrasound, 0.00125)] {
        let (tiles, source) = synth_tiles(study, scale, dir.path());
        let jpegs: Vec<Vec<u8>> = tiles.iter().map(jpeg).collect();
        let pngs: Vec<Vec<u8>> = tiles.iter().map(png).collect();
        let mean = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>() / v.len();
        println!(
            "{study}: {} tiles of {}²: JPEG q90 4:2:0 {} bytes/tile, PNG {} bytes/tile",
            tiles.len(),
            tiling::TILE_SIZE,
            mean(&jpegs),
            mean(&pngs)
        );
        let n = tiles.len();
        let mut group = c.benchmark_group(format!("{study}_tile"));
        let mut i = 0;
        group.bench_function("encode_jpeg_q90", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(jpeg(&tiles[i]))
            })
        });
        group.bench_function("encode_png", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(png(&tiles[i]))
            })
        });
        group.bench_function("decode_jpeg_turbo", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(nodal_codec::decode_rgb(&jpegs[i]))
            })
        });
        group.bench_function("decode_jpeg_zune", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(zune_decode(&jpegs[i]))
            })
        });
        group.bench_function("decode_png", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(png_decode(&pngs[i]))
            })
        });
        group.finish();
        // What submit does per source image: decode + QC, then decode + tile + encode.
        let mut group = c.benchmark_group(format!("{study}_image"));
        let image = decode::decode_rgb(&source).unwrap_or_else(|e| panic!("decode: {e}"));
        let mode = tiling::tile_spec(study).mode;
        group.bench_function("decode", |b| {
            b.iter(|| black_box(decode::decode_rgb(&source)))
        });
        group.bench_function("qc_measure", |b| {
            b.iter(|| black_box(qc::measure(study, &image)))
        });
        group.bench_function("cut_and_encode", |b| {
            b.iter(|| {
                tiling::cut(mode, &image)
                    .iter()
                    .map(|t| jpeg(&t.pixels).len())
                    .sum::<usize>()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
