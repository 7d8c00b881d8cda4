//! report.html in a real headless browser (Debian's chromium): it renders,
//! and every number on the page equals metrics.json. Fails, naming
//! `scripts/setup.sh chromium`, when chromium is missing.
//!
//! With NODAL_UPDATE_SCREENSHOT=1 the binary report's screenshot is copied to
//! docs/report-screenshot.png.

// Test helpers outside #[test] functions may unwrap too (clippy.toml allows it in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nodal_stats::{
    AnalyzeOptions, Exclusion, ParticipantFlow, Predictions, ReportInput, Task, analyze,
    read_predictions, render_report, write_results,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name;
        }
    }
    panic!(
        "chromium is not installed: run `scripts/setup.sh chromium` (Debian's chromium package)"
    );
}

fn run_chromium(profile: &Path, extra: &[String], page: &Path) -> Vec<u8> {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// (metric path, data-value, data-format, text) of every marked number in the DOM.
fn marks(dom: &str) -> Vec<(String, String, String, String)> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        let start = tag
            .find(&key)
            .map(|i| i + key.len())
            .unwrap_or_else(|| panic!("{name} missing in {tag}"));
        unescape(&tag[start..start + tag[start..].find('"').unwrap()])
    };
    let mut found = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("<span class=\"num\"") {
        rest = &rest[i..];
        let tag_end = rest.find('>').unwrap();
        let tag = &rest[..tag_end];
        let text_end = rest.find("</span>").unwrap();
        found.push((
            attr(tag, "data-metric"),
            attr(tag, "data-value"),
            attr(tag, "data-format"),
            unescape(&rest[tag_end + 1..text_end]),
        ));
        rest = &rest[text_end..];
    }
    found
}

fn lookup<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(json, |v, key| match v {
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        other => other.get(key),
    })
}

fn expected_text(value: f64, format: &str) -> String {
    match format {
        "3dp" => format!("{value:.3}"),
        "p" if value < 0.001 => "<0.001".to_string(),
        "p" => format!("{value:.3}"),
        "int" => format!("{value:.0}"),
        other => panic!("unknown data-format {other}"),
    }
}

/// Renders, opens in chromium, checks every number; returns the PNG screenshot.
fn check_report(
    predictions: &Predictions,
    options: &AnalyzeOptions,
    input_extra: impl Fn(&mut ReportInput<'_>),
    must_show: &[&str],
) -> Vec<u8> {
    let metrics = analyze(predictions, options).unwrap();
    let mut input = ReportInput {
        metrics: &metrics,
        predictions,
        title: None,
        subset: Some("all cases".into()),
        flow: None,
        provenance: None,
    };
    input_extra(&mut input);
    let html = render_report(&input).unwrap();
    for forbidden in [
        "<script", "<link", "<img", "src=", "url(", "http:", "https:", "@import",
    ] {
        assert!(
            !html.contains(forbidden),
            "report.html is not self-contained: holds {forbidden}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write_results(dir.path(), &metrics, Some(&html)).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    let page = dir.path().join("report.html");
    let dom = String::from_utf8(run_chromium(
        &dir.path().join("profile"),
        &["--dump-dom".into()],
        &page,
    ))
    .unwrap();
    assert!(
        dom.matches("<svg").count() >= 3,
        "charts missing from the rendered page"
    );
    let marks = marks(&dom);
    let mut paths = Vec::new();
    for (path, value, format, text) in &marks {
        let Some(expected) = lookup(&json, path).and_then(Value::as_f64) else {
            if path == "rows" {
                assert_eq!(value.parse::<f64>().unwrap(), predictions.len() as f64);
                continue;
            }
            panic!("page shows {path} = {value}, not a number in metrics.json");
        };
        // serde_json's parser may differ from Rust's in the last bit.
        let shown = value.parse::<f64>().unwrap();
        assert!(
            (shown - expected).abs() <= 1e-14 * expected.abs().max(1.0),
            "{path}: page {shown}, metrics.json {expected}"
        );
        assert_eq!(*text, expected_text(expected, format), "{path}: page text");
        paths.push(path.as_str());
    }
    for path in must_show {
        assert!(
            paths.contains(path),
            "headline number {path} not on the page"
        );
    }
    let png = dir.path().join("shot.png");
    run_chromium(
        &dir.path().join("profile2"),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2400".into(),
        ],
        &page,
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 50_000,
        "screenshot looks empty ({} bytes)",
        bytes.len()
    );
    bytes
}

#[test]
fn binary_report_renders_and_shows_metrics_json() {
    let p = read_predictions(&common::fixture("data/binary_main.csv"), Task::Binary).unwrap();
    let options = AnalyzeOptions {
        covariates: vec![
            "age".into(),
            "sex".into(),
            "location".into(),
            "diameter_mm".into(),
        ],
        references: vec![("location".into(), "left".into())],
        stage_order: Some(vec!["I".into(), "II".into(), "III".into(), "IV".into()]),
        bootstrap: 200,
        seed: 1,
        ..Default::default()
    };
    let flow = ParticipantFlow {
        submitted: 1712,
        excluded_ineligible: vec![
            Exclusion {
                reason: "age outside 18–80".into(),
                n: 41,
            },
            Exclusion {
                reason: "no lymph-node dissection".into(),
                n: 23,
            },
        ],
        eligible: 1648,
        excluded_qc: vec![Exclusion {
            reason: "Doppler image unreadable".into(),
            n: 19,
        }],
        passed_qc: 1629,
        failed_inference: vec![Exclusion {
            reason: "no usable tile".into(),
            n: 5,
        }],
        analysed: 1624,
    };
    let run = serde_json::json!({
        "run_id": "2024-05-17-ptc", "nodal_version": "0.1.0",
        "model": {"name": "ptc-lnm-multimodal", "version": "1.2.0", "sha256": "9f2c4e0b7d1a"},
        "archives": ["site-A-2024-04", "site-B-2024-04", "site-C-2024-05", "site-D-2024-05", "site-E-2024-05"],
        "started_at": "2024-05-17T08:02:11Z", "finished_at": "2024-05-17T08:19:40Z"
    });
    let must = [
        "n",
        "auc/estimate",
        "auc/ci_low",
        "auc/ci_high",
        "auc/bootstrap/ci_low",
        "prevalence/estimate",
        "threshold",
        "sensitivity/estimate",
        "specificity/ci_high",
        "ppv/estimate",
        "npv/estimate",
        "accuracy/estimate",
        "per_site/A/auc/estimate",
        "stage_agreement/kappa_quadratic_interval/estimate",
        "stage_agreement/kappa_quadratic_interval/ci_low",
        "stage_agreement/accuracy",
        "t_agreement/kappa_quadratic_interval/estimate",
        "t_agreement/kappa_linear_interval/ci_high",
        "n_agreement/kappa_quadratic_interval/ci_low",
        "n_agreement/accuracy",
        "odds_ratios/1/odds_ratio",
        "odds_ratios/1/p_value",
        "calibration/slope/estimate",
        "calibration/brier",
        "confusion/tp",
    ];
    let png = check_report(
        &p,
        &options,
        |input| {
            input.flow = Some(flow.clone());
            input.provenance = Some(run.clone());
            input.title = Some("PTC lymph-node metastasis — nodal results".into());
        },
        &must,
    );
    if std::env::var_os("NODAL_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report-screenshot.png");
        std::fs::write(docs, png).unwrap();
    }
}

#[test]
fn multiclass_report_renders_and_shows_metrics_json() {
    let p = read_predictions(
        &common::fixture("data/multiclass_main.csv"),
        Task::Multiclass,
    )
    .unwrap();
    let must = [
        "n",
        "top1_accuracy/estimate",
        "top3_accuracy/ci_low",
        "macro_auc",
        "per_class/lung/auc/estimate",
        "per_class/other/specificity/estimate",
        "per_site/H4/top1_accuracy/estimate",
        "readers/pathologist_a/accuracy/estimate",
        "readers/pathologist_b/model_accuracy/estimate",
        "readers/pathologist_a/mcnemar_p",
        "calibration/lung/slope/estimate",
    ];
    check_report(&p, &AnalyzeOptions::default(), |_| {}, &must);
}
