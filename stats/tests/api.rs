//! The in-memory API the coordinator uses: building predictions without a
//! file, subsets, writing results atomically, bootstrap reproducibility.

// Test helpers outside #[test] functions may unwrap too (clippy.toml allows it in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nodal_stats::{
    AnalyzeOptions, BinaryCase, BinaryPredictions, Component, Metrics, OrdinalPair, Predictions,
    Task, analyze, read_predictions, write_results,
};
use serde_json::Value;

mod common;

fn main_binary() -> Predictions {
    read_predictions(&common::fixture("data/binary_main.csv"), Task::Binary).unwrap()
}

fn json(m: &Metrics) -> Value {
    serde_json::from_str(&m.to_json().unwrap()).unwrap()
}

#[test]
fn predictions_built_in_memory_give_the_same_metrics_as_the_file() {
    let Predictions::Binary(file) = main_binary() else {
        panic!("binary expected")
    };
    let cases: Vec<BinaryCase> = file
        .cases
        .iter()
        .map(|c| BinaryCase {
            line: None,
            ..c.clone()
        })
        .collect();
    let memory = BinaryPredictions::new(
        "run 7",
        file.extra_columns.clone(),
        file.components.clone(),
        cases,
    )
    .unwrap();
    let options = AnalyzeOptions {
        covariates: vec!["age".into(), "sex".into()],
        ..Default::default()
    };
    let a = analyze(&Predictions::Binary(file), &options).unwrap();
    let b = analyze(&Predictions::Binary(memory), &options).unwrap();
    assert_eq!(json(&a), json(&b));
}

#[test]
fn in_memory_validation_names_the_case() {
    let case = |id: &str, score: f64| BinaryCase {
        case_id: id.into(),
        site: "A".into(),
        label: Some(true),
        score,
        ordinal: Default::default(),
        extra: vec![],
        line: None,
    };
    let e = BinaryPredictions::new(
        "run 7",
        vec![],
        vec![],
        vec![case("a", 0.2), case("b", 1.5)],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("run 7: case #2, field \"score\": score 1.5 is outside [0, 1]"),
        "{e}"
    );
    let e = BinaryPredictions::new(
        "run 7",
        vec![],
        vec![],
        vec![case("a", 0.2), case("a", 0.5)],
    )
    .unwrap_err();
    assert!(e.to_string().contains("duplicate case_id \"a\""), "{e}");
}

#[test]
fn subset_keeps_only_the_chosen_cases() {
    let all = main_binary();
    let part = all.subset("validation split", |_, site| site == "A");
    assert!(part.len() < all.len() && !part.is_empty());
    let m = json(&analyze(&part, &AnalyzeOptions::default()).unwrap());
    assert_eq!(
        m["per_site"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["A"]
    );
}

#[test]
fn bootstrap_is_reproducible_by_seed_and_independent_of_threads() {
    let p = main_binary();
    let options = AnalyzeOptions {
        bootstrap: 300,
        seed: 11,
        ..Default::default()
    };
    let a = json(&analyze(&p, &options).unwrap());
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = one_thread.install(|| json(&analyze(&p, &options).unwrap()));
    assert_eq!(a, b);
    let c = json(
        &analyze(
            &p,
            &AnalyzeOptions {
                threshold_source: Default::default(),
                seed: 12,
                ..options
            },
        )
        .unwrap(),
    );
    assert_ne!(a["auc"]["bootstrap"], c["auc"]["bootstrap"]);
    for key in [
        "auc",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "accuracy",
        "prevalence",
    ] {
        let (lo, hi, est) = (
            a[key]["bootstrap"]["ci_low"].as_f64().unwrap(),
            a[key]["bootstrap"]["ci_high"].as_f64().unwrap(),
            a[key]["estimate"].as_f64().unwrap(),
        );
        assert!(lo < est && est < hi, "{key}: {lo} {est} {hi}");
        // Percentile and analytic intervals of 1,500 cases agree to about a percent.
        assert!(
            (lo - a[key]["ci_low"].as_f64().unwrap()).abs() < 0.02,
            "{key}"
        );
    }
    assert_eq!(a["bootstrap"]["replicates"], 300);
}

#[test]
fn multiclass_bootstrap_covers_every_class() {
    let p = read_predictions(
        &common::fixture("data/multiclass_main.csv"),
        Task::Multiclass,
    )
    .unwrap();
    let m = json(
        &analyze(
            &p,
            &AnalyzeOptions {
                bootstrap: 200,
                seed: 1,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    for (class, v) in m["per_class"].as_object().unwrap() {
        for key in ["auc", "sensitivity", "specificity"] {
            let b = &v[key]["bootstrap"];
            assert!(
                b["ci_low"].as_f64().unwrap() <= v[key]["estimate"].as_f64().unwrap(),
                "{class} {key}"
            );
            assert!(
                b["ci_high"].as_f64().unwrap() >= v[key]["estimate"].as_f64().unwrap(),
                "{class} {key}"
            );
        }
    }
    let macro_auc = m["macro_auc"].as_f64().unwrap();
    assert!(m["bootstrap"]["macro_auc"]["ci_low"].as_f64().unwrap() < macro_auc);
}

#[test]
fn results_are_written_whole_and_replace_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let m = analyze(&main_binary(), &AnalyzeOptions::default()).unwrap();
    write_results(&out, &m, Some("<html>first</html>")).unwrap();
    let written = write_results(&out, &m, Some("<html>second</html>")).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        "<html>second</html>"
    );
    let back: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(back, json(&m));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
}

#[test]
fn metrics_json_never_holds_nan() {
    let text = analyze(&main_binary(), &AnalyzeOptions::default())
        .unwrap()
        .to_json()
        .unwrap();
    assert!(!text.contains("NaN") && !text.contains("inf"));
    let p = read_predictions(
        &common::fixture("data/multiclass_small.csv"),
        Task::Multiclass,
    )
    .unwrap();
    let text = analyze(&p, &AnalyzeOptions::default())
        .unwrap()
        .to_json()
        .unwrap();
    assert!(text.contains("\"macro_auc\": null"));
}

#[test]
fn a_predicted_stage_of_one_category_has_kappa_zero_and_no_interval() {
    let case = |i: usize, truth: &str| BinaryCase {
        case_id: format!("c{i}"),
        site: "A".into(),
        label: Some(i.is_multiple_of(2)),
        score: 0.1 + 0.08 * i as f64,
        ordinal: [
            OrdinalPair {
                truth: Some(truth.into()),
                predicted: Some("I".into()),
            },
            OrdinalPair::default(),
            OrdinalPair::default(),
        ],
        extra: vec![],
        line: None,
    };
    let cases = (0..10)
        .map(|i| case(i, if i < 7 { "I" } else { "II" }))
        .collect();
    let predictions =
        BinaryPredictions::new("one-sided", vec![], vec![Component::Stage], cases).unwrap();
    let metrics = analyze(
        &Predictions::Binary(predictions),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let stage = &json(&metrics)["stage_agreement"];
    assert_eq!(stage["kappa_quadratic"], 0.0);
    assert!(
        stage["kappa_quadratic_interval"].is_null() && stage["kappa_linear_interval"].is_null()
    );
    assert_eq!(stage["matrix"], serde_json::json!([[7, 0], [3, 0]]));
    assert!(
        metrics
            .warnings()
            .iter()
            .any(|w| w.contains("kappa intervals undefined"))
    );
}
