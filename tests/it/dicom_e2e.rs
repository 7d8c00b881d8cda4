//! DICOM ultrasound end to end: the ultrasound study synthesised twice
//! with one seed, as JPEG and as PACS-style DICOM (a three-frame cine loop,
//! fake patient identifiers in the header and burned into the banner);
//! every DICOM site submitted by the `nodal submit` process to s3s-fs, the
//! JPEG twin beside it; one run of each over RabbitMQ. The DICOM run's
//! scores equal the JPEG run's within JPEG tolerance (the middle frame was
//! read, the banner masked), and no identifier of any DICOM header is in
//! any stored object, result file or log line.

use crate::cluster::{Cluster, PREFIX, csv_rows};
use dicom_dictionary_std::tags;
use nodal_submit::decode::decode_rgb;
use nodal_synth::{ImageFormat, SynthConfig};
use nodal_testkit::NodalProcess;
use nodal_types::manifest::Manifest;
use nodal_types::study::Study;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Largest score difference allowed between a DICOM case and its JPEG
/// twin. The pixels inside the ultrasound region agree within JPEG
/// tolerance (checked below); the difference is the banner: masked in the
/// DICOM image with the patient's name, kept in the JPEG with the
/// scanner's labels and the exam date (docs/archive-format.md).
const SCORE_TOLERANCE: f64 = 0.05;
/// Largest mean absolute score difference over the cases.
const MEAN_SCORE_TOLERANCE: f64 = 0.01;

/// Every `.dcm` file under `dir`.
fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(dicom_files(&path));
        } else if path.extension().is_some_and(|e| e == "dcm") {
            out.push(path);
        }
    }
    out
}

/// The identifying values of every DICOM header under `dir`: patient's
/// name (as stored and as burned into the banner), ID, birth date,
/// institution, accession number and instance UIDs.
fn identifiers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for file in dicom_files(dir) {
        let obj = dicom_object::open_file(&file).unwrap();
        for tag in [
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::PATIENT_BIRTH_DATE,
            tags::INSTITUTION_NAME,
            tags::ACCESSION_NUMBER,
            tags::SOP_INSTANCE_UID,
            tags::STUDY_INSTANCE_UID,
        ] {
            let value = obj.element(tag).unwrap().to_str().unwrap();
            let value = value.trim_end_matches(['\0', ' ']).to_string();
            assert!(
                value.len() >= 8,
                "{} {tag}: distinctive enough to grep",
                file.display()
            );
            out.push(value.replace('^', " "));
            out.push(value);
        }
    }
    out
}

/// `nodal submit` of every site folder of `study_dir` as a process (its
/// logs kept); the stored manifests and the processes' output.
async fn submit_processes(c: &Cluster, study_dir: &Path) -> (Vec<Manifest>, String) {
    let mut sites: Vec<String> = std::fs::read_dir(study_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("cases.csv").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    sites.sort();
    let mut env: Vec<(String, String)> =
        c.s3.env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    env.push(("NODAL_STORE".into(), c.s3.store_url(PREFIX)));
    env.push(("RUST_LOG".into(), "debug".into()));
    env.push(("NO_COLOR".into(), "1".into()));
    let (mut manifests, mut logs) = (Vec::new(), String::new());
    for site in sites {
        let args: Vec<String> = [
            "submit",
            "--study",
            "ultrasound",
            "--site",
            &site,
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([study_dir.join(&site).display().to_string()])
        .collect();
        let mut p =
            NodalProcess::spawn(&format!("submit-{site}"), c.dir.path(), &args, &env).unwrap();
        let ok = p.wait_exit(Duration::from_secs(180)).unwrap().success();
        let output = p.output();
        assert!(ok, "nodal submit {site}:\n{output}");
        logs.push_str(&output);
        let keys = c.store.list(&format!("archives/{site}.")).await.unwrap();
        let manifest_key = keys
            .iter()
            .map(|m| m.key.clone())
            .find(|k| k.ends_with("/manifest.json"))
            .unwrap();
        let bytes = c.store.get(&manifest_key).await.unwrap();
        manifests.push(serde_json::from_slice(&bytes).unwrap());
    }
    (manifests, logs)
}

/// Scores by case id.
fn scores(predictions: &str) -> BTreeMap<String, f64> {
    csv_rows(predictions)
        .into_iter()
        .map(|row| (row["case_id"].clone(), row["score"].parse().unwrap()))
        .collect()
}

/// Every file under `dir`, read whole.
fn all_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dicom_ultrasound_scores_as_its_jpeg_twin_and_no_identifier_leaves_the_site() {
    let mut c = Cluster::start("dicom-e2e").await.unwrap();
    let mut outs = BTreeMap::new();
    for (name, format) in [("jpeg", ImageFormat::Jpeg), ("dicom", ImageFormat::Dicom)] {
        let out = c.dir.path().join(format!("synth-{name}"));
        let config = SynthConfig {
            out: out.clone(),
            studies: vec![Study::Ultrasound],
            scale: 0.02,
            seed: 42,
            format,
        };
        tokio::task::spawn_blocking(move || nodal_synth::generate(&config))
            .await
            .unwrap()
            .unwrap();
        outs.insert(name, out.join("ultrasound"));
    }
    let secrets = identifiers(&outs["dicom"]);
    assert!(secrets.len() > 100, "{} identifiers", secrets.len());

    let (dicom_manifests, submit_logs) = submit_processes(&c, &outs["dicom"]).await;
    c.submit_folder(outs["jpeg"].parent().unwrap(), &[Study::Ultrasound])
        .await
        .unwrap();
    let jpeg_manifests = c.archives[&Study::Ultrasound].clone();

    // The manifests: the middle of three frames read, the banner masked,
    // the same QC verdicts as the JPEG twin's.
    let mut images = 0;
    for (dicom, jpeg) in dicom_manifests.iter().zip(&jpeg_manifests) {
        for (d, j) in dicom.cases.iter().zip(&jpeg.cases) {
            assert_eq!(d.case_id, j.case_id);
            for (di, ji) in d.images.iter().zip(&j.images) {
                let info = di.dicom.as_ref().expect("a DICOM image records its header");
                assert_eq!((info.frames, info.frame), (3, 1), "{}", di.path);
                assert!(info.masked && info.regions.len() == 1, "{info:?}");
                assert!(info.pixel_spacing_mm.is_some(), "{info:?}");
                assert_eq!(di.qc.reason, ji.qc.reason, "{}: same QC verdict", d.case_id);
                assert_eq!(di.tiles.len(), ji.tiles.len());
                images += 1;
            }
        }
    }
    assert!(images > 50, "{images} images compared");
    same_pixels_inside_the_region(&outs["dicom"], &outs["jpeg"], &dicom_manifests);

    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-1", &[]).unwrap();
    let jpeg_run = c
        .finished_run(Study::Ultrasound, 64, RUN_TIMEOUT)
        .await
        .unwrap();
    c.archives.insert(Study::Ultrasound, dicom_manifests);
    let dicom_run = c
        .finished_run(Study::Ultrasound, 64, RUN_TIMEOUT)
        .await
        .unwrap();

    let jpeg_scores = scores(&c.result_file(jpeg_run, "predictions.csv").await.unwrap());
    let dicom_scores = scores(&c.result_file(dicom_run, "predictions.csv").await.unwrap());
    assert_eq!(
        jpeg_scores.keys().collect::<Vec<_>>(),
        dicom_scores.keys().collect::<Vec<_>>(),
        "the same cases are predicted"
    );
    let mean = jpeg_scores
        .iter()
        .map(|(case, s)| (s - dicom_scores[case]).abs())
        .sum::<f64>()
        / jpeg_scores.len() as f64;
    assert!(mean <= MEAN_SCORE_TOLERANCE, "mean score difference {mean}");
    let worst = jpeg_scores
        .iter()
        .map(|(case, s)| (case, (s - dicom_scores[case]).abs()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    eprintln!("DICOM vs JPEG score difference: mean {mean:.5}, largest {worst:?}");
    assert!(
        worst.1 <= SCORE_TOLERANCE,
        "DICOM and JPEG scores differ by {} for {}",
        worst.1,
        worst.0
    );

    // No identifier anywhere: every stored object, every result file,
    // every process's output.
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let mut stored = Vec::new();
    all_files(&c.s3.data_dir(), &mut stored);
    assert!(stored.len() > 8, "{} stored objects", stored.len());
    haystacks.extend(
        stored
            .into_iter()
            .map(|(p, b)| (p.display().to_string(), b)),
    );
    for name in [
        "predictions.csv",
        "failures.csv",
        "metrics.json",
        "report.html",
        "run.json",
    ] {
        let text = c.result_file(dicom_run, name).await.unwrap();
        haystacks.push((name.into(), text.into_bytes()));
    }
    let mut logs = submit_logs;
    for p in c.coordinator.iter().chain(c.workers.values()) {
        logs.push_str(&p.output());
    }
    logs.push_str(&c.s3.log());
    assert!(logs.lines().count() > 20, "the logs are kept");
    haystacks.push(("logs".into(), logs.into_bytes()));
    let finder = aho_corasick::AhoCorasick::new(&secrets).unwrap();
    let source = std::fs::read(&dicom_files(&outs["dicom"])[0]).unwrap();
    assert!(
        finder.find(&source).is_some(),
        "the search finds them where they are"
    );
    for (what, bytes) in &haystacks {
        if let Some(found) = finder.find(bytes) {
            panic!("{:?} found in {what}", secrets[found.pattern().as_usize()]);
        }
    }
}

/// Every DICOM image's read frame equals its JPEG twin inside the
/// ultrasound region within JPEG tolerance (two decoders), and is black
/// outside it.
fn same_pixels_inside_the_region(dicom_dir: &Path, jpeg_dir: &Path, manifests: &[Manifest]) {
    let (mut sum, mut n, mut max) = (0u64, 0u64, 0u8);
    for manifest in manifests {
        for case in &manifest.cases {
            for image in &case.images {
                let info = image.dicom.as_ref().unwrap();
                let site = dicom_dir.join(&manifest.site);
                let twin = jpeg_dir
                    .join(&manifest.site)
                    .join(image.path.replace(".dcm", ".jpg"));
                let ours = decode_rgb(&std::fs::read(site.join(&image.path)).unwrap()).unwrap();
                let theirs = decode_rgb(&std::fs::read(twin).unwrap()).unwrap();
                for (x, y, px) in ours.enumerate_pixels() {
                    if info.regions.iter().any(|r| r.contains(x, y)) {
                        for (a, b) in px.0.iter().zip(theirs.get_pixel(x, y).0) {
                            let d = a.abs_diff(b);
                            sum += u64::from(d);
                            max = max.max(d);
                            n += 1;
                        }
                    } else {
                        assert_eq!(px.0, [0, 0, 0], "{}: ({x},{y}) masked", image.path);
                    }
                }
            }
        }
    }
    let mean = sum as f64 / n as f64;
    eprintln!("DICOM vs JPEG pixels inside the region: mean {mean:.4}, largest {max}");
    assert!(mean < 0.1 && max <= 8, "mean {mean}, largest {max}");
}
