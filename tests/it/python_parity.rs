//! The analyst's check, automated: a small archive through the real system
//! (synth scale 0.02 → submit to s3s-fs → `nodal coordinator` + `nodal
//! worker` over RabbitMQ), then a Python reference over the same stored
//! tiles (`models/train/reference.py`: Pillow decode, the card's
//! normalisation, onnxruntime 1.31.1, mean over tiles) must give every
//! case's scores within 1e-5 of predictions.csv, for both models. Needs
//! `scripts/setup.sh pyref` (the venv) besides the usual servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{Cluster, PREFIX, card_path};
use nodal_types::study::Study;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// What reference.py compares with (and tolerates).
const TOLERANCE: &str = "1e-5";

fn reference_python() -> PathBuf {
    nodal_common::locate::find_in_ancestors(std::path::Path::new(".cache/pyref-venv/bin/python"))
        .unwrap_or_else(|tried| {
            panic!("no Python reference venv (run scripts/setup.sh pyref); tried {tried:?}")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_case_scores_equal_a_python_reference_over_the_stored_tiles() {
    let python = reference_python();
    let mut c = Cluster::start("python-parity").await.unwrap();
    c.submit_synthetic(0.02, 42).await.unwrap();
    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-1", &[]).unwrap();
    // s3s-fs keeps each object as a file: <data>/<bucket>/<prefix>/<key>.
    let store = c.s3.data_dir().join(c.s3.bucket()).join(PREFIX);
    let script = nodal_testkit::repo_root().join("models/train/reference.py");

    for study in Study::ALL {
        let created = c.create_run(study).await.unwrap();
        let done = c
            .wait_finished(created.run_id, Duration::from_secs(240))
            .await
            .unwrap();
        assert_eq!(done.jobs_failed, 0, "{study}: no job failed\n{}", c.logs());
        assert_eq!(done.tiles_done as usize, done.tiles_total, "{study}");
        let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
        let rows = predictions.lines().count() - 1;
        assert!(rows > 20, "{study}: {rows} predicted cases");
        let csv_path = c.dir.path().join(format!("predictions-{study}.csv"));
        std::fs::write(&csv_path, &predictions).unwrap();
        let json_path = c.dir.path().join(format!("parity-{study}.json"));

        let out = Command::new(&python)
            .arg(&script)
            .arg("--store")
            .arg(&store)
            .arg("--card")
            .arg(card_path(study.default_model()))
            .arg("--predictions")
            .arg(&csv_path)
            .args(["--tolerance", TOLERANCE, "--json"])
            .arg(&json_path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{study}: reference.py failed: {said}");
        let parity: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
        assert_eq!(
            parity["cases"].as_u64(),
            Some(rows as u64),
            "{study}: {said}"
        );
        let diff = parity["max_abs_diff"].as_f64().unwrap();
        assert!(diff <= 1e-5, "{study}: max |Δ| {diff}");
        eprintln!(
            "{study}: {rows} cases, {} tiles, max |Δ| {diff:e}",
            parity["tiles"]
        );
    }
}
