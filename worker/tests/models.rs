//! The shipped models through the real ONNX Runtime: hashes, shapes, the
//! recorded reference outputs, and the refusals (wrong hash, wrong input).
//! Needs `scripts/setup.sh ort` (or ORT_DYLIB_PATH).

use ndarray::{Array2, Array4, Axis};
use nodal_types::manifest::ReportValue;
use nodal_types::model_card::ModelCard;
use nodal_worker::preprocess::{self, TileError};
use nodal_worker::{Device, Model, Runtime, RuntimeConfig, WorkerError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn runtime() -> Runtime {
    Runtime::init(RuntimeConfig {
        intra_threads: 1,
        ..RuntimeConfig::default()
    })
    .expect("ONNX Runtime loads (run scripts/setup.sh ort)")
}

fn card(name: &str) -> (ModelCard, Vec<u8>) {
    let dir = models_dir().join(name);
    let card: ModelCard =
        serde_json::from_slice(&std::fs::read(dir.join("card.json")).expect("card.json"))
            .expect("card parses");
    let onnx = std::fs::read(dir.join(&card.onnx_file)).expect("onnx");
    (card, onnx)
}

fn reference(name: &str) -> serde_json::Value {
    let path = models_dir().join(name).join("reference/reference.json");
    serde_json::from_slice(&std::fs::read(path).expect("reference.json")).expect("json")
}

/// Reference tiles (PNG) through preprocess into one batch.
fn reference_batch(name: &str, card: &ModelCard, refs: &serde_json::Value) -> Array4<f32> {
    let inputs = refs["inputs"].as_array().expect("inputs");
    let s = card.tile.size as usize;
    let mut batch = Array4::<f32>::zeros((inputs.len(), 3, s, s));
    for (i, input) in inputs.iter().enumerate() {
        let file = input["image"].as_str().expect("image");
        let bytes =
            std::fs::read(models_dir().join(name).join("reference").join(file)).expect("png");
        let mut slot = batch.index_axis_mut(Axis(0), i);
        let out = slot.as_slice_mut().expect("contiguous slot");
        preprocess::preprocess_into(&bytes, card, out).expect("reference tile preprocesses");
    }
    batch
}

fn json_matrix(v: &serde_json::Value) -> Array2<f32> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).expect("matrix");
    let (n, m) = (rows.len(), rows[0].len());
    Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).expect("shape")
}

fn assert_close(got: &Array2<f32>, want: &Array2<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let diff = (got - want).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
    assert!(diff < 1e-4, "{what}: max abs diff {diff}");
}

fn softmax(a: &Array2<f32>) -> Array2<f32> {
    let mut out = a.clone();
    for mut row in out.rows_mut() {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
}

#[test]
fn shipped_onnx_files_match_their_cards() {
    for name in ["cytology-origin", "ptc-ln"] {
        let (card, onnx) = card(name);
        assert_eq!(nodal_types::sha256_hex(&onnx), card.onnx_sha256, "{name}");
        assert!(
            onnx.len() < 5_000_000,
            "{name} stays small: {} bytes",
            onnx.len()
        );
        let auc = card
            .held_out
            .get("auc")
            .or_else(|| card.held_out.get("macro_auc"))
            .and_then(|v| v.as_f64());
        assert!(
            auc.is_some_and(|a| (0.75..0.97).contains(&a)),
            "{name}: held-out AUC {auc:?} is plausible"
        );
    }
}

#[test]
fn cytology_reference_tiles_give_the_recorded_probabilities() {
    let rt = runtime();
    let mut model = Model::from_dir(&rt, &models_dir().join("cytology-origin")).expect("loads");
    let refs = reference("cytology-origin");
    let batch = reference_batch("cytology-origin", model.card(), &refs);
    let out = model.run(batch.view(), None).expect("runs");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].shape(), [batch.len_of(Axis(0)), 8]);
    for row in out[0].rows() {
        assert!((row.sum() - 1.0).abs() < 1e-4 && row.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    assert_close(&out[0], &json_matrix(&refs["outputs"]["probs"]), "probs");
    // The same tiles one at a time give the same answer as the batch.
    let single = model
        .run(batch.slice(ndarray::s![1..2, .., .., ..]), None)
        .expect("runs");
    assert_close(
        &single[0],
        &out[0].slice(ndarray::s![1..2, ..]).to_owned(),
        "batch of one",
    );
}

#[test]
fn ptc_reference_cases_give_the_recorded_outputs() {
    let rt = runtime();
    let mut model = Model::from_dir(&rt, &models_dir().join("ptc-ln")).expect("loads");
    let refs = reference("ptc-ln");
    let card = model.card().clone();
    let batch = reference_batch("ptc-ln", &card, &refs);
    let inputs = refs["inputs"].as_array().expect("inputs");
    let mut reports = Array2::<f32>::zeros((inputs.len(), card.report_width()));
    for (i, input) in inputs.iter().enumerate() {
        let raw: BTreeMap<String, ReportValue> =
            serde_json::from_value(input["report"].clone()).expect("report");
        let encoded = card.encode_report(&raw).expect("encodes");
        let recorded: Vec<f32> =
            serde_json::from_value(input["report_vector"].clone()).expect("vector");
        for (a, b) in encoded.iter().zip(&recorded) {
            assert!(
                (a - b).abs() < 1e-5,
                "encode_report matches training: {encoded:?} vs {recorded:?}"
            );
        }
        reports
            .row_mut(i)
            .assign(&ndarray::ArrayView1::from(&encoded));
    }
    let out = model.run(batch.view(), Some(reports.view())).expect("runs");
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].shape(), [inputs.len(), 1]);
    assert_eq!(out[1].shape(), [inputs.len(), 7], "pT: T1a … T4b");
    assert_eq!(out[2].shape(), [inputs.len(), 3], "pN: N0, N1a, N1b");
    assert_close(&out[0], &json_matrix(&refs["outputs"]["prob"]), "prob");
    assert_close(
        &out[1],
        &softmax(&json_matrix(&refs["outputs"]["t_logits"])),
        "pT (softmax of logits)",
    );
    assert_close(
        &out[2],
        &softmax(&json_matrix(&refs["outputs"]["n_logits"])),
        "pN (softmax of logits)",
    );
}

/// The JPEG references (stored tiles written by the training pipeline):
/// the worker's decoder gives Pillow's pixels bit for bit, and the model's
/// outputs on them are the recorded ones within 1e-5.
fn jpeg_references_match(name: &str) {
    let rt = runtime();
    let mut model = Model::from_dir(&rt, &models_dir().join(name)).expect("loads");
    let card = model.card().clone();
    let refs = reference(name);
    let dir = models_dir().join(name).join("reference");
    let inputs = refs["jpeg_inputs"].as_array().expect("jpeg_inputs");
    assert!(inputs.len() >= 4, "{name}: at least four JPEG references");
    let s = card.tile.size as usize;
    let mut batch = Array4::<f32>::zeros((inputs.len(), 3, s, s));
    let mut reports = Array2::<f32>::zeros((inputs.len(), card.report_width()));
    for (i, input) in inputs.iter().enumerate() {
        let jpeg_file = input["jpeg"].as_str().expect("jpeg");
        let jpeg = std::fs::read(dir.join(jpeg_file)).expect("jpeg file");
        assert!(
            jpeg.starts_with(&[0xFF, 0xD8, 0xFF]),
            "{jpeg_file} is a JPEG"
        );
        let ours = preprocess::decode(&jpeg).expect("the worker decodes the stored tile");
        let png =
            std::fs::read(dir.join(input["decoded"].as_str().expect("decoded"))).expect("png");
        let pillow = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .expect("png decodes")
            .into_rgb8();
        assert_eq!(
            (ours.width as u32, ours.height as u32),
            pillow.dimensions(),
            "{name} {jpeg_file}: size"
        );
        let differing = ours
            .pixels
            .iter()
            .zip(pillow.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 0,
            "{name} {jpeg_file}: the worker's decode differs from Pillow's in {differing} bytes"
        );
        let mut slot = batch.index_axis_mut(Axis(0), i);
        preprocess::normalise_into(&ours, &card, slot.as_slice_mut().expect("contiguous"))
            .expect("normalises");
        if card.report_width() > 0 {
            let raw: BTreeMap<String, ReportValue> =
                serde_json::from_value(input["report"].clone()).expect("report");
            let encoded = card.encode_report(&raw).expect("encodes");
            reports
                .row_mut(i)
                .assign(&ndarray::ArrayView1::from(&encoded));
        }
    }
    let report = (card.report_width() > 0).then(|| reports.view());
    let out = model.run(batch.view(), report).expect("runs");
    for (spec, got) in card.outputs.iter().zip(&out) {
        let mut want = json_matrix(&refs["jpeg_outputs"][&spec.name]);
        if spec.activation == nodal_types::model_card::Activation::Logits {
            want = softmax(&want);
        }
        assert_eq!(got.shape(), want.shape(), "{name} {}: shape", spec.name);
        let diff = (got - &want).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
        assert!(diff <= 1e-5, "{name} {}: max abs diff {diff}", spec.name);
    }
}

#[test]
fn cytology_jpeg_references_decode_and_score_as_recorded() {
    jpeg_references_match("cytology-origin");
}

#[test]
fn ptc_jpeg_references_decode_and_score_as_recorded() {
    jpeg_references_match("ptc-ln");
}

#[test]
fn a_card_validated_on_another_codec_is_refused() {
    let rt = runtime();
    let (mut card_value, onnx) = card("cytology-origin");
    card_value.tile.codec.library = "zune-jpeg".into();
    card_value.tile.codec.version = "0.5".into();
    let err = Model::from_card(&rt, card_value, &onnx).expect_err("another codec");
    let text = err.to_string();
    assert!(
        matches!(err, WorkerError::CardMismatch { .. })
            && text.contains("tile.codec is zune-jpeg 0.5")
            && text.contains("decodes tiles with libjpeg-turbo 3.1.0"),
        "{text}"
    );
}

#[test]
fn wrong_hash_and_tampered_bytes_are_refused() {
    let rt = runtime();
    let (mut card_value, onnx) = card("cytology-origin");
    let mut tampered = onnx.clone();
    tampered.push(0);
    let err = Model::from_card(&rt, card_value.clone(), &tampered).expect_err("tampered bytes");
    assert!(
        matches!(err, WorkerError::HashMismatch { .. }) && err.to_string().contains("refusing"),
        "{err}"
    );
    card_value.onnx_sha256 = "0".repeat(64);
    let err = Model::from_card(&rt, card_value, &onnx).expect_err("wrong hash");
    assert!(err.to_string().contains(&"0".repeat(64)), "{err}");
}

#[test]
fn a_card_that_disagrees_with_the_graph_is_refused() {
    let rt = runtime();
    let (mut card_value, onnx) = card("cytology-origin");
    card_value.inputs[0].name = "pixels".into();
    let err = Model::from_card(&rt, card_value, &onnx).expect_err("renamed input");
    assert!(
        matches!(err, WorkerError::CardMismatch { .. }) && err.to_string().contains("pixels"),
        "{err}"
    );
}

#[test]
fn wrong_shapes_and_missing_report_are_clear_errors() {
    let rt = runtime();
    let mut cyto = Model::from_dir(&rt, &models_dir().join("cytology-origin")).expect("loads");
    let err = cyto
        .run(Array4::<f32>::zeros((2, 3, 100, 100)).view(), None)
        .expect_err("wrong size");
    assert!(
        matches!(&err, WorkerError::BadInput { input, .. } if input == "image")
            && err.to_string().contains("100"),
        "{err}"
    );
    let err = cyto
        .run(Array4::<f32>::zeros((0, 3, 224, 224)).view(), None)
        .expect_err("empty batch");
    assert!(matches!(err, WorkerError::BadInput { .. }), "{err}");
    let report = Array2::<f32>::zeros((1, 4));
    let err = cyto
        .run(
            Array4::<f32>::zeros((1, 3, 224, 224)).view(),
            Some(report.view()),
        )
        .expect_err("no report input");
    assert!(err.to_string().contains("no report"), "{err}");

    let mut ptc = Model::from_dir(&rt, &models_dir().join("ptc-ln")).expect("loads");
    let err = ptc
        .run(Array4::<f32>::zeros((1, 3, 224, 224)).view(), None)
        .expect_err("report missing");
    assert!(
        matches!(&err, WorkerError::BadInput { input, .. } if input == "report"),
        "{err}"
    );
    let short = Array2::<f32>::zeros((1, 3));
    let err = ptc
        .run(
            Array4::<f32>::zeros((1, 3, 224, 224)).view(),
            Some(short.view()),
        )
        .expect_err("short report");
    assert!(err.to_string().contains("report"), "{err}");
}

#[test]
fn tile_errors_say_what_is_wrong() {
    let (card, _) = card("cytology-origin");
    let mut slot = vec![0.0f32; 3 * 224 * 224];
    let err =
        preprocess::preprocess_into(b"hello, not an image", &card, &mut slot).expect_err("text");
    assert!(matches!(err, TileError::NotAnImage { .. }), "{err}");

    let png =
        std::fs::read(models_dir().join("cytology-origin/reference/tile-0.png")).expect("png");
    let mut jpeg = Vec::new();
    image::load_from_memory(&png)
        .expect("decodes")
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .expect("encodes");
    preprocess::preprocess_into(&jpeg, &card, &mut slot).expect("a whole JPEG tile works");
    let err = preprocess::preprocess_into(&jpeg[..jpeg.len() / 2], &card, &mut slot)
        .expect_err("truncated");
    assert!(
        matches!(err, TileError::Corrupt { format: "JPEG", .. }),
        "{err}"
    );
    let err = preprocess::preprocess_into(&png[..png.len() / 2], &card, &mut slot)
        .expect_err("truncated png");
    assert!(
        matches!(err, TileError::Corrupt { format: "PNG", .. }),
        "{err}"
    );

    let small = image::RgbImage::new(100, 80);
    let mut small_png = Vec::new();
    small
        .write_to(
            &mut std::io::Cursor::new(&mut small_png),
            image::ImageFormat::Png,
        )
        .expect("encodes");
    let err = preprocess::preprocess_into(&small_png, &card, &mut slot).expect_err("wrong size");
    assert_eq!(
        err,
        TileError::WrongSize {
            width: 100,
            height: 80,
            expected: 224
        }
    );
    let err = preprocess::preprocess_into(&png, &card, &mut slot[..10]).expect_err("short slot");
    assert!(matches!(err, TileError::SlotSize { got: 10, .. }), "{err}");
}

#[test]
fn normalisation_follows_the_card() {
    let (card, _) = card("ptc-ln");
    let tile = preprocess::RgbTile {
        width: 224,
        height: 224,
        pixels: vec![255; 224 * 224 * 3],
    };
    let mut slot = vec![0.0f32; 3 * 224 * 224];
    preprocess::normalise_into(&tile, &card, &mut slot).expect("normalises");
    let n = &card.normalisation;
    for c in 0..3 {
        let want = (1.0 - n.mean[c]) / n.std[c];
        assert!(
            (slot[c * 224 * 224 + 17] - want).abs() < 1e-6,
            "channel {c}"
        );
    }
}

#[test]
fn cuda_without_the_feature_and_a_missing_library_are_clear_errors() {
    if !cfg!(feature = "cuda") {
        let err = Runtime::init(RuntimeConfig {
            device: Device::Cuda { device_id: 0 },
            ..RuntimeConfig::default()
        })
        .expect_err("no cuda in this build");
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
    if cfg!(feature = "cuda") {
        // Built with CUDA: without a usable GPU the session must fail loudly, never fall back to CPU.
        let rt = Runtime::init(RuntimeConfig {
            device: Device::Cuda { device_id: 0 },
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let loaded = Model::from_dir(&rt, &models_dir().join("ptc-ln"));
        if let Err(err) = loaded {
            assert!(
                matches!(
                    err,
                    WorkerError::Provider {
                        provider: "cuda",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
    let err =
        nodal_worker::runtime::locate_dylib(Some(Path::new("/nonexistent/libonnxruntime.so")))
            .expect_err("missing");
    assert!(
        err.to_string().contains("scripts/setup.sh ort")
            && err.to_string().contains("/nonexistent"),
        "{err}"
    );
}
