//! The real public ultrasound files pydicom ships (installed at test time
//! by `scripts/setup.sh pyref`, never committed), read by nodal's DICOM
//! path and compared pixel for pixel with pydicom's own decoding: the
//! 30-frame JPEG baseline YBR_FULL_422 cine loop, and the native RGB image
//! rewritten by pydicom as planar RGB, YBR_FULL and MONOCHROME2. Palette
//! colour and non-ultrasound modalities are refused with the attribute
//! named; an image that may carry burned-in text with no ultrasound region
//! is excluded, not read.

use nodal_submit::dicom;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    nodal_common::locate::find_in_ancestors(Path::new(".cache/pyref-venv/bin/python"))
        .expect(".cache/pyref-venv (scripts/setup.sh pyref)")
}

/// Run `script` with pydicom; its standard output.
fn pydicom(script: &str, args: &[&Path]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pydicom script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes into argv[1]: each sample file used here, and the variants of
/// the RGB sample, each with `<name>.rgb`, pydicom's pixels of the frame
/// nodal reads (the middle one), as raw 8-bit RGB.
const PREPARE: &str = r#"
import os, sys, shutil
import numpy as np
import pydicom
from pydicom.pixels import convert_color_space
out = sys.argv[1]
src = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
def expected(path, name):
    ds = pydicom.dcmread(path)
    a = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        a = a[frames // 2]
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    open(os.path.join(out, name + ".rgb"), "wb").write(a.astype(np.uint8).tobytes())
for name in ["examples_ybr_color.dcm", "examples_rgb_color.dcm", "examples_palette.dcm", "CT_small.dcm"]:
    shutil.copy(os.path.join(src, name), os.path.join(out, name))
expected(os.path.join(out, "examples_ybr_color.dcm"), "examples_ybr_color.dcm")
j2k = pydicom.dcmread(os.path.join(src, "examples_jpeg2k.dcm"))
j2k.BurnedInAnnotation = "NO"
j2k.save_as(os.path.join(out, "jpeg2k.dcm"))
ds = pydicom.dcmread(os.path.join(src, "examples_rgb_color.dcm"))
rgb = ds.pixel_array
ds.BurnedInAnnotation = "NO"
def variant(name, pixels, pi, planar=None):
    v = ds.copy()
    v.PhotometricInterpretation = pi
    if planar is None:
        v.SamplesPerPixel = 1
        del v.PlanarConfiguration
    else:
        v.PlanarConfiguration = planar
    v.PixelData = pixels.tobytes()
    path = os.path.join(out, name)
    v.save_as(path)
    expected(path, name)
variant("rgb.dcm", rgb, "RGB", 0)
variant("rgb_planar.dcm", np.ascontiguousarray(rgb.transpose(2, 0, 1)), "RGB", 1)
variant("ybr_full.dcm", convert_color_space(rgb, "RGB", "YBR_FULL"), "YBR_FULL", 0)
variant("mono2.dcm", np.ascontiguousarray(rgb[..., 1]), "MONOCHROME2")
"#;

/// Mean and largest absolute difference of `ours` and `theirs` over the
/// pixels where `inside` holds; every other pixel of `ours` must be black.
fn compare(ours: &image::RgbImage, theirs: &[u8], inside: impl Fn(u32, u32) -> bool) -> (f64, u8) {
    assert_eq!(ours.as_raw().len(), theirs.len(), "same size");
    let (mut sum, mut n, mut max) = (0u64, 0u64, 0u8);
    for (x, y, px) in ours.enumerate_pixels() {
        let at = (y as usize * ours.width() as usize + x as usize) * 3;
        if inside(x, y) {
            for c in 0..3 {
                let d = px.0[c].abs_diff(theirs[at + c]);
                sum += u64::from(d);
                max = max.max(d);
                n += 1;
            }
        } else {
            assert_eq!(px.0, [0, 0, 0], "({x},{y}) outside the regions is masked");
        }
    }
    (sum as f64 / n.max(1) as f64, max)
}

#[test]
fn pydicom_ultrasound_samples_decode_as_pydicom_decodes_them() {
    let dir = tempfile::tempdir().unwrap();
    pydicom(PREPARE, &[dir.path()]);
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let expected = |name: &str| std::fs::read(dir.path().join(format!("{name}.rgb"))).unwrap();

    // The cine loop: JPEG baseline YBR_FULL_422, 30 frames, ultrasound
    // regions, Burned In Annotation absent → the middle frame, masked
    // outside the regions.
    let cine = read("examples_ybr_color.dcm");
    let head = dicom::header(&cine).unwrap();
    assert_eq!((head.info.frames, head.info.frame), (30, 15));
    assert_eq!(head.info.photometric_interpretation, "YBR_FULL_422");
    assert!(head.info.masked && !head.info.regions.is_empty());
    let (pixels, _) = dicom::decode_rgb(&cine).unwrap();
    let regions = head.info.regions.clone();
    let (mean, max) = compare(&pixels, &expected("examples_ybr_color.dcm"), |x, y| {
        regions.iter().any(|r| r.contains(x, y))
    });
    // Two JPEG decoders: equal up to IDCT and upsampling rounding.
    assert!(
        mean < 0.5 && max <= 24,
        "JPEG frame: mean {mean}, max {max}"
    );

    // Native pixels are lossless: exactly pydicom's, whatever the layout.
    for (name, tolerance) in [
        ("rgb.dcm", 0),
        ("rgb_planar.dcm", 0),
        ("ybr_full.dcm", 1),
        ("mono2.dcm", 0),
    ] {
        let (pixels, head) = dicom::decode_rgb(&read(name)).unwrap();
        assert!(!head.info.masked, "{name}: Burned In Annotation NO");
        let (_, max) = compare(&pixels, &expected(name), |_, _| true);
        assert!(max <= tolerance, "{name}: largest difference {max}");
    }

    // The sample as shipped has no Burned In Annotation and no region:
    // excluded unread, never tiled.
    let original = read("examples_rgb_color.dcm");
    assert!(dicom::header(&original).unwrap().info.unmaskable());
    let refused = dicom::decode_rgb(&original).unwrap_err().0;
    assert!(refused.contains("burned-in"), "{refused}");

    // A truncated or corrupted file is an error naming the defect, never a
    // panic nor a half-decoded frame.
    for (name, bytes) in [("cine", &cine), ("rgb", &read("rgb.dcm"))] {
        for cut in [131, 400, bytes.len() / 2, bytes.len() - 3] {
            match dicom::decode_rgb(&bytes[..cut]) {
                Err(e) => assert!(e.0.contains("DICOM"), "{name} cut at {cut}: {e}"),
                Ok(_) => panic!("{name} cut at {cut} of {} bytes was decoded", bytes.len()),
            }
        }
    }

    let palette = dicom::decode_rgb(&read("examples_palette.dcm"))
        .unwrap_err()
        .0;
    assert!(palette.contains("PALETTE COLOR"), "{palette}");
    // JPEG 2000 is not built in: refused, the transfer syntax named.
    let j2k = read("jpeg2k.dcm");
    let head = dicom::header(&j2k).unwrap();
    assert_eq!(head.info.transfer_syntax, "1.2.840.10008.1.2.4.90");
    let refused = dicom::decode_rgb(&j2k).unwrap_err().0;
    assert!(refused.contains("1.2.840.10008.1.2.4.90"), "{refused}");
    let ct = dicom::header(&read("CT_small.dcm")).unwrap_err().0;
    assert!(ct.contains("Modality (0008,0060) is CT"), "{ct}");
}

/// The samples as two cases of a synthetic ultrasound site, submitted to a
/// local store: the cine loop's masked middle frame judged by QC, the RGB
/// image (no region, Burned In Annotation absent) excluded with the reason
/// `burned_in_annotation`; the manifest records only the allowlisted
/// attributes, and no header value of the samples is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pydicom_samples_submitted_as_cases_are_masked_or_excluded() {
    use nodal_common::store::{LocalStore, SharedStore};
    use nodal_submit::{Progress, SubmitOptions, submit_site};
    use nodal_types::manifest::QcReason;
    use nodal_types::study::Study;

    let dir = tempfile::tempdir().unwrap();
    pydicom(PREPARE, &[dir.path()]);
    let synth = dir.path().join("synth");
    nodal_synth::generate(&nodal_synth::SynthConfig {
        out: synth.clone(),
        studies: vec![Study::Ultrasound],
        scale: 0.01,
        seed: 3,
        format: nodal_synth::ImageFormat::Jpeg,
    })
    .unwrap();
    let site = synth.join("ultrasound").join("us-a");
    let table = std::fs::read_to_string(site.join("cases.csv")).unwrap();
    let mut lines: Vec<String> = table.lines().map(str::to_owned).collect();
    let samples = ["examples_ybr_color.dcm", "examples_rgb_color.dcm"];
    let mut cases = Vec::new();
    for (line, sample) in lines.iter_mut().skip(1).zip(samples) {
        let case_id = line.split(',').next().unwrap().to_owned();
        let jpeg = format!("images/{case_id}.jpg");
        let dcm = format!("images/{case_id}.dcm");
        std::fs::remove_file(site.join(&jpeg)).unwrap();
        std::fs::copy(dir.path().join(sample), site.join(&dcm)).unwrap();
        *line = line.replace(&jpeg, &dcm);
        cases.push(case_id);
    }
    std::fs::write(site.join("cases.csv"), lines.join("\n") + "\n").unwrap();

    let store_dir = tempfile::tempdir().unwrap();
    let store: SharedStore = std::sync::Arc::new(LocalStore::open(store_dir.path()).await.unwrap());
    let options = SubmitOptions::new(Study::Ultrasound, "us-a", &site);
    let outcome = submit_site(&options, store.clone(), &Progress::hidden())
        .await
        .unwrap();
    let image = |case: &str| {
        outcome
            .manifest
            .cases
            .iter()
            .find(|c| c.case_id == case)
            .map(|c| c.images[0].clone())
            .unwrap()
    };
    let cine = image(&cases[0]);
    let info = cine.dicom.as_ref().unwrap();
    assert_eq!((info.frames, info.frame, info.masked), (30, 15, true));
    // Decoded and judged by the study's QC (this real, dark frame may fall
    // under the synthetic study's coverage threshold: then it is excluded
    // as blank, which is QC's call, not the reader's).
    assert!(
        cine.qc.laplacian_var > 0.0 && cine.qc.coverage > 0.0,
        "{:?}",
        cine.qc
    );
    assert_ne!(cine.qc.reason, Some(QcReason::BurnedInAnnotation));
    assert_eq!(cine.tiles.len(), usize::from(cine.qc.passed));
    let rgb = image(&cases[1]);
    assert_eq!(rgb.qc.reason, Some(QcReason::BurnedInAnnotation));
    assert!(rgb.tiles.is_empty());

    // Every string of the stored manifest is one nodal wrote, not a header
    // value of the samples (names, IDs, institution, dates, UIDs).
    let secrets = pydicom(
        r#"
import sys, pydicom
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for kw in ["PatientName", "PatientID", "PatientBirthDate", "InstitutionName",
               "StudyDate", "AccessionNumber", "SOPInstanceUID", "StudyInstanceUID",
               "SeriesInstanceUID", "ReferringPhysicianName", "StationName"]:
        v = str(ds.get(kw, "") or "").strip()
        if v:
            print(v)
"#,
        &samples
            .map(|s| dir.path().join(s))
            .iter()
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
    );
    let secrets: Vec<&str> = secrets.lines().collect();
    assert!(secrets.len() >= 6, "{secrets:?}");
    let key = format!("archives/{}/manifest.json", outcome.manifest.archive_id);
    let manifest: serde_json::Value =
        serde_json::from_slice(&store.get(&key).await.unwrap()).unwrap();
    let mut strings = Vec::new();
    collect_strings(&manifest, &mut strings);
    for secret in &secrets {
        assert!(
            !strings.iter().any(|s| s.contains(secret)),
            "{secret:?} is in the stored manifest"
        );
    }
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                collect_strings(v, out);
            }
        }
        _ => {}
    }
}
