//! The distributed run end to end on real components: synth (scale 0.02) →
//! submit all eight sites to s3s-fs → a `nodal coordinator` process and two
//! `nodal worker` processes over RabbitMQ → one run per study. Every
//! submitted case appears exactly once in predictions.csv or failures.csv;
//! the validation-split AUC agrees with the model card's held-out figure;
//! running the same run again gives a byte-identical predictions.csv. One
//! worker runs two pipelines (`--pipelines 2`), and both answer jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{Cluster, assert_every_case_once, card_path, read_json};
use nodal_coordinator::run::engine::DEFAULT_JOB_TILES;
use nodal_testkit::NodalProcess;
use nodal_testkit::prom::sample;
use nodal_types::study::Study;
use std::collections::BTreeSet;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_studies_run_end_to_end_over_rabbitmq_and_s3() {
    let mut c = Cluster::start("e2e-run").await.unwrap();
    c.submit_synthetic(0.02, 42).await.unwrap();
    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-1", &[]).unwrap();
    // worker-2 runs two pipelines in one process (one per core on CPU).
    c.start_worker("worker-2", &["--pipelines", "2"]).unwrap();

    let mut seen_workers = BTreeSet::new();
    let mut tiles_run = 0;
    for study in Study::ALL {
        let created = c.create_run_with(study, DEFAULT_JOB_TILES).await.unwrap();
        assert!(
            created.jobs_total > 1,
            "{study}: the run is sharded into jobs"
        );
        let done = c.wait_finished(created.run_id, RUN_TIMEOUT).await.unwrap();
        assert_eq!(done.jobs_failed, 0, "{study}: no job failed\n{}", c.logs());
        assert_eq!(
            done.tiles_done as usize, done.tiles_total,
            "{study}: every tile has an output"
        );

        let predictions = c.result_file(done.run_id, "predictions.csv").await.unwrap();
        let failures = c.result_file(done.run_id, "failures.csv").await.unwrap();
        let (predicted, failed) =
            assert_every_case_once(&c.archives[&study], &predictions, &failures);
        assert!(
            predicted > failed * 5,
            "{study}: most cases are predicted ({predicted} vs {failed})"
        );

        let run_json: serde_json::Value =
            serde_json::from_str(&c.result_file(done.run_id, "run.json").await.unwrap()).unwrap();
        let workers: BTreeSet<String> = run_json["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect();
        assert!(
            workers.contains("worker-1") && workers.iter().any(|w| w.starts_with("worker-2-p")),
            "{study}: both workers contributed: {workers:?}"
        );
        seen_workers.extend(workers);
        assert_eq!(run_json["archives"].as_array().unwrap().len(), 4);

        // The validation split's discrimination agrees with the model card.
        let metrics: serde_json::Value = serde_json::from_str(
            &c.result_file(done.run_id, "validation/metrics.json")
                .await
                .unwrap(),
        )
        .unwrap();
        let card = read_json(&card_path(study.default_model()));
        match study {
            Study::Ultrasound => {
                // Validation is analysed at the threshold fixed on the training split.
                assert_eq!(metrics["threshold_source"], "training_split");
                assert_eq!(metrics["threshold_method"], "fixed");
                assert!(metrics["own_youden_threshold"].is_number());
                let all: serde_json::Value = serde_json::from_str(
                    &c.result_file(done.run_id, "metrics.json").await.unwrap(),
                )
                .unwrap();
                assert_eq!(all["threshold_source"], "own_youden");
                // The stage group is derived from predicted pT and pN; all three agree with pathology.
                for key in ["stage_agreement", "t_agreement", "n_agreement"] {
                    assert!(metrics[key]["n"].as_u64().unwrap() > 0, "{key}: {metrics}");
                }
                let t_kappa = metrics["t_agreement"]["kappa_quadratic"].as_f64().unwrap();
                assert!(t_kappa > 0.5, "pT quadratic kappa {t_kappa}");
                let card_auc = card["held_out"]["auc"].as_f64().unwrap();
                let (low, high) = (
                    metrics["auc"]["ci_low"].as_f64().unwrap(),
                    metrics["auc"]["ci_high"].as_f64().unwrap(),
                );
                assert!(
                    low - 0.05 <= card_auc && card_auc <= high + 0.05,
                    "ultrasound: card AUC {card_auc} outside the run's interval {low}–{high}"
                );
            }
            Study::Cytology => {
                let card_auc = card["held_out"]["macro_auc"].as_f64().unwrap();
                let run_auc = metrics["macro_auc"].as_f64().unwrap();
                assert!(
                    (run_auc - card_auc).abs() < 0.08,
                    "cytology: macro AUC {run_auc} vs card {card_auc}"
                );
            }
        }
        assert!(
            c.result_file(done.run_id, "report.html")
                .await
                .unwrap()
                .contains("<svg")
        );

        // The analyst's command-line tools see the same run.
        let out = c.dir.path().join(format!("results-{study}"));
        let env = vec![
            ("NODAL_COORDINATOR".to_string(), c.api.clone()),
            ("NODAL_TOKEN".to_string(), c.tokens["analyst"].clone()),
        ];
        let run = done.run_id.to_string();
        let status_args = ["status".to_string(), run.clone(), "--json".into()];
        let mut status =
            NodalProcess::spawn(&format!("status-{study}"), c.dir.path(), &status_args, &env)
                .unwrap();
        assert!(
            status.wait_exit(Duration::from_secs(30)).unwrap().success(),
            "{}",
            status.output()
        );
        let text = status.output();
        let json: String = text
            .lines()
            .skip_while(|l| *l != "{")
            .collect::<Vec<_>>()
            .join("\n");
        let shown: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(shown["state"], "finished");
        assert_eq!(shown["tiles_done"].as_u64(), Some(done.tiles_done));
        let args = [
            "results".to_string(),
            run,
            "--out".into(),
            out.display().to_string(),
        ];
        let mut results =
            NodalProcess::spawn(&format!("results-{study}"), c.dir.path(), &args, &env).unwrap();
        assert!(
            results
                .wait_exit(Duration::from_secs(30))
                .unwrap()
                .success(),
            "{}",
            results.output()
        );
        assert_eq!(
            std::fs::read_to_string(out.join("predictions.csv")).unwrap(),
            predictions
        );
        for name in [
            "failures.csv",
            "metrics.json",
            "report.html",
            "run.json",
            "validation/metrics.json",
        ] {
            assert!(out.join(name).is_file(), "nodal results wrote {name}");
        }

        // The same run again gives the same predictions, byte for byte.
        let again = c.create_run_with(study, DEFAULT_JOB_TILES).await.unwrap();
        let again = c.wait_finished(again.run_id, RUN_TIMEOUT).await.unwrap();
        tiles_run += done.tiles_total + again.tiles_total;
        let predictions_again = c
            .result_file(again.run_id, "predictions.csv")
            .await
            .unwrap();
        assert!(
            predictions == predictions_again,
            "{study}: a second run must give identical predictions.csv"
        );
    }

    assert_eq!(
        seen_workers,
        BTreeSet::from(["worker-1", "worker-2-p0", "worker-2-p1"].map(String::from)),
        "every worker and both pipelines of worker-2 answered jobs"
    );

    // Tiles are read in shard ranges: in jobs of the default size, at most
    // one GET per 64 tiles.
    let mut gets = 0.0;
    for name in ["worker-1", "worker-2"] {
        let url = c.worker_metrics_url(name).unwrap();
        let text = c.scrape(&url).await.unwrap();
        gets += sample(
            &text,
            "nodal_worker_store_requests_total",
            &[("op", "get_range")],
        )
        .unwrap_or(0.0);
    }
    eprintln!(
        "{tiles_run} tiles in four runs read with {gets} ranged GETs ({:.0} tiles per GET)",
        tiles_run as f64 / gets
    );
    assert!(
        gets >= 1.0 && gets * 64.0 <= tiles_run as f64,
        "{gets} GETs for {tiles_run} tiles"
    );

    operator_runs_a_site_from_the_command_line(&c);
    a_study_team_runs_its_own_model(&c);
}

/// The whole path of docs/models.md, on the command line: an ONNX file
/// shaped as `torch.onnx.export` writes one (built with onnx.helper),
/// `nodal model card`, `nodal model publish` through the coordinator's
/// proxy, a site's archive through `nodal synth` and `nodal submit` (scale
/// 0.01), `nodal run start --watch`, `nodal results`.
fn a_study_team_runs_its_own_model(c: &Cluster) {
    let nodal = |name: &str, args: &[&str]| c.cli_ok(name, args);
    let dir = c.dir.path().join("byo");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = dir.join("exported.onnx");
    let python = nodal_common::locate::find_in_ancestors(std::path::Path::new(
        ".cache/pyref-venv/bin/python",
    ))
    .expect(".cache/pyref-venv (scripts/setup.sh pyref)");
    let script = nodal_testkit::repo_root().join("models/examples/export_like_torch.py");
    let exported = std::process::Command::new(python)
        .arg(script)
        .arg(&onnx)
        .args(["--classes", "8"])
        .status()
        .unwrap();
    assert!(exported.success());
    let model_dir = dir.join("team-origin");
    let classes = "lung,breast,thyroid,nasopharynx,oesophagus,stomach,colorectum,other";
    let onnx = onnx.display().to_string();
    let model_dir = model_dir.display().to_string();
    let card = nodal(
        "model-card",
        &[
            "model",
            "card",
            "--onnx",
            &onnx,
            "--name",
            "team-origin",
            "--study",
            "cytology",
            "--task",
            "multiclass",
            "--classes",
            classes,
            "--out",
            &model_dir,
        ],
    );
    assert!(card.contains("team-origin 1.0.0"), "{card}");
    let published = nodal(
        "model-publish",
        &["model", "publish", &model_dir, "--store", &c.api],
    );
    assert!(
        published.contains("published team-origin@1.0.0"),
        "{published}"
    );

    let synth = dir.join("synth");
    let synth = synth.display().to_string();
    nodal(
        "synth-001",
        &[
            "synth", "--out", &synth, "--study", "cytology", "--scale", "0.01", "--quiet",
        ],
    );
    let (ok, submitted) = c.cli_as(
        "site-cy-a",
        "submit-cy-a",
        &[
            "submit",
            "--study",
            "cytology",
            "--site",
            "cy-a",
            &format!("{synth}/cytology/cy-a"),
            "--store",
            &c.api,
            "--quiet",
        ],
    );
    assert!(ok, "nodal submit: {submitted}\n{}", c.logs());
    let archive = submitted
        .split_whitespace()
        .find(|w| w.starts_with("cy-a.") && w.len() == "cy-a.".len() + 16)
        .unwrap_or_else(|| panic!("the archive id in {submitted}"))
        .to_string();

    let started = nodal(
        "run-start-byo",
        &[
            "run",
            "start",
            "--model",
            "team-origin",
            &archive,
            "--watch",
        ],
    );
    assert!(started.contains("finished"), "{started}");
    let run = started
        .lines()
        .find_map(|l| uuid::Uuid::parse_str(l.trim()).ok())
        .expect("run start prints the run id")
        .to_string();
    let out = dir.join("results");
    nodal(
        "results-byo",
        &["results", &run, "--out", &out.display().to_string()],
    );
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    let run_json = read_json(&out.join("run.json"));
    assert_eq!(run_json["model"]["name"], "team-origin");
    let manifest: nodal_types::manifest::Manifest = serde_json::from_slice(
        &std::fs::read(
            c.s3.data_dir()
                .join(c.s3.bucket())
                .join(crate::cluster::PREFIX)
                .join(nodal_types::layout::manifest_key(&archive)),
        )
        .unwrap(),
    )
    .unwrap();
    let (predicted, _) =
        assert_every_case_once(std::slice::from_ref(&manifest), &predictions, &failures);
    assert!(predicted > 0, "{predictions}");
    let rows = crate::cluster::csv_rows(&predictions);
    let mut distinct = BTreeSet::new();
    for row in &rows {
        let total: f64 = classes
            .split(',')
            .map(|k| row[&format!("score_{k}")].parse::<f64>().unwrap())
            .sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "probabilities sum to 1: {row:?}"
        );
        distinct.insert(row["score_lung"].clone());
    }
    assert!(
        distinct.len() > 1,
        "the model's scores differ from case to case"
    );
}

/// `nodal archives`, `nodal run start --site … --watch`, `nodal run list`
/// and `nodal run results`: a run from the command line, no curl.
fn operator_runs_a_site_from_the_command_line(c: &Cluster) {
    let nodal = |name: &str, args: &[&str]| c.cli_ok(name, args);
    let json_after = |text: &str, open: &str| -> serde_json::Value {
        let start = text.find(open).expect("JSON in the output");
        serde_json::from_str(&text[start..]).unwrap()
    };
    let listed = json_after(
        &nodal("archives", &["archives", "--site", "us-b", "--json"]),
        "[",
    );
    let archive = c.archives[&Study::Ultrasound]
        .iter()
        .find(|m| m.site == "us-b")
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["archive_id"], archive.archive_id.as_str());
    assert_eq!(
        listed[0]["cases"].as_u64(),
        Some(archive.cases.len() as u64)
    );

    let started = nodal(
        "run-start",
        &[
            "run",
            "start",
            "--model",
            "ptc-ln",
            "--site",
            "us-b",
            "--job-tiles",
            "16",
            "--watch",
        ],
    );
    let run = started
        .lines()
        .find_map(|l| uuid::Uuid::parse_str(l.trim()).ok())
        .expect("run start prints the run id")
        .to_string();
    assert!(started.contains("finished"), "{started}");
    let (ok, refused) = c.cli("run-cancel-finished", &["run", "cancel", &run]);
    assert!(
        !ok && refused.contains("409") && refused.contains("is finished"),
        "a finished run cannot be cancelled: {refused}"
    );

    let runs = json_after(&nodal("run-list", &["run", "list", "--json"]), "[");
    let shown = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run.as_str())
        .expect("run list shows the run");
    assert_eq!(shown["state"], "finished");
    assert_eq!(shown["archives"], serde_json::json!([archive.archive_id]));

    let out = c.dir.path().join("results-cli");
    nodal(
        "run-results",
        &["run", "results", &run, "--out", &out.display().to_string()],
    );
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert_every_case_once(std::slice::from_ref(archive), &predictions, &failures);
}
