//! Every number of metrics.json against scikit-learn / statsmodels / scipy,
//! on the fixtures made by fixtures/make_fixtures.py.

// Test helpers outside #[test] functions may unwrap too (clippy.toml allows it in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nodal_stats::{AnalyzeOptions, Task, analyze, read_predictions};
use serde_json::Value;

fn options_of(spec: &Value) -> AnalyzeOptions {
    let strings = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    AnalyzeOptions {
        threshold_source: Default::default(),
        threshold: spec["threshold"]
            .as_str()
            .unwrap_or("youden")
            .parse()
            .unwrap(),
        covariates: strings("covariates"),
        references: spec["references"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap().to_string(),
                            p[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        stage_order: spec["stage_order"]
            .as_array()
            .map(|_| strings("stage_order")),
        t_order: spec["t_order"].as_array().map(|_| strings("t_order")),
        n_order: spec["n_order"].as_array().map(|_| strings("n_order")),
        bootstrap: 0,
        seed: 0,
    }
}

fn check(name: &str) {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture(&format!("expected/{name}.json"))).unwrap(),
    )
    .unwrap();
    let task: Task = doc["task"].as_str().unwrap().parse().unwrap();
    let predictions = read_predictions(
        &common::fixture(&format!("data/{}", doc["csv"].as_str().unwrap())),
        task,
    )
    .unwrap();
    let metrics = analyze(&predictions, &options_of(&doc["options"])).unwrap();
    let actual: Value = serde_json::from_str(&metrics.to_json().unwrap()).unwrap();
    let mut diffs = Vec::new();
    common::compare("", &doc["expected"], &actual, &["warnings"], &mut diffs);
    let warnings = metrics.warnings();
    for needle in doc["warnings_contain"].as_array().unwrap() {
        let needle = needle.as_str().unwrap();
        if !warnings.iter().any(|w| w.contains(needle)) {
            diffs.push(format!("no warning contains \"{needle}\""));
        }
    }
    assert!(
        diffs.is_empty(),
        "{name}: {} difference(s):\n{}\nwarnings: {warnings:#?}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn binary_with_youden_threshold_covariates_and_reference_level() {
    check("binary_youden");
}

#[test]
fn binary_with_fixed_threshold_and_given_stage_order() {
    check("binary_fixed");
}

#[test]
fn binary_complete_separation_gives_null_odds_ratios() {
    check("binary_separation");
}

#[test]
fn binary_quasi_separation_gives_null_odds_ratios() {
    check("binary_quasi_separation");
}

#[test]
fn binary_fits_with_fitted_probabilities_near_0_and_1_but_no_separation_are_estimated() {
    check("binary_near_boundary");
}

#[test]
fn multiclass_with_readers_and_argmax_ties() {
    check("multiclass_main");
}

#[test]
fn multiclass_with_an_absent_class_and_a_reader_who_read_nothing() {
    check("multiclass_small");
}

#[test]
fn the_comparison_catches_a_wrong_number_a_missing_key_and_an_extra_key() {
    let expected: Value = serde_json::json!({"auc": {"estimate": 0.9, "ci_low": null}, "n": 3});
    let mut diffs = Vec::new();
    common::compare(
        "",
        &expected,
        &serde_json::json!({"auc": {"estimate": 0.9, "ci_low": null}, "n": 3}),
        &[],
        &mut diffs,
    );
    assert!(diffs.is_empty(), "{diffs:?}");
    common::compare(
        "",
        &expected,
        &serde_json::json!({"auc": {"estimate": 0.901, "ci_low": 0.1}, "extra": 1}),
        &[],
        &mut diffs,
    );
    assert_eq!(diffs.len(), 4, "{diffs:?}");
}
