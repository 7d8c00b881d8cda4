//! Helpers shared by the integration tests: fixture paths and a tolerant
//! JSON comparison.

// Test helpers outside #[test] functions may unwrap too (clippy.toml allows it in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;

/// Path of a file under stats/fixtures/.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Absolute tolerance for the value at `path` (dot-separated keys).
fn tolerance(path: &str, expected: f64) -> f64 {
    if path.contains("odds_ratios") {
        1e-4 * expected.abs().max(1e-300)
    } else if path.contains("auc") && (path.ends_with("ci_low") || path.ends_with("ci_high")) {
        1e-4
    } else if path.contains("intercept") || path.contains("slope") {
        1e-6 * expected.abs().max(1.0)
    } else {
        1e-6
    }
}

/// Compares `actual` to `expected` recursively: same keys (bar `allowed_extra`
/// at the top level), equal strings and nulls, numbers within tolerance.
/// Returns every difference found.
pub fn compare(
    path: &str,
    expected: &Value,
    actual: &Value,
    allowed_extra: &[&str],
    diffs: &mut Vec<String>,
) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match a.get(k) {
                    Some(av) => compare(&p, ev, av, &[], diffs),
                    None => diffs.push(format!("{p}: missing in output")),
                }
            }
            for k in a.keys() {
                if !e.contains_key(k) && !allowed_extra.contains(&k.as_str()) {
                    diffs.push(format!("{path}.{k}: not in the expected output"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                diffs.push(format!(
                    "{path}: {} items expected, {} found",
                    e.len(),
                    a.len()
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(&format!("{path}[{i}]"), ev, av, &[], diffs);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (
                e.as_f64().unwrap_or(f64::NAN),
                a.as_f64().unwrap_or(f64::NAN),
            );
            let tol = tolerance(path, e);
            let close = (e - a).abs() <= tol; // false for NaN
            if !close {
                diffs.push(format!("{path}: expected {e}, got {a} (tolerance {tol:e})"));
            }
        }
        (e, a) if e == a => {}
        (e, a) => diffs.push(format!("{path}: expected {e}, got {a}")),
    }
}
