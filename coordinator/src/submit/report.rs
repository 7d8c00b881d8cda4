//! The structured ultrasound report (`reports/<case_id>.json`,
//! schema `nodal.us-report/1`): parsed and checked field by field.

use super::problem::Problem;
use nodal_common::manifest::ReportValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The schema tag every report carries.
pub const REPORT_SCHEMA: &str = "nodal.us-report/1";

/// What a report field holds.
#[derive(Clone, Copy)]
enum FieldKind {
    /// One of a fixed set of words.
    Level(&'static [&'static str]),
    /// A number greater than 0.
    Positive,
    /// A whole number in the range.
    Integer(i64, i64),
}

const FIELDS: [(&str, FieldKind); 9] = [
    (
        "nodule_location",
        FieldKind::Level(&[
            "left-upper",
            "left-middle",
            "left-lower",
            "right-upper",
            "right-middle",
            "right-lower",
            "isthmus",
        ]),
    ),
    ("max_diameter_mm", FieldKind::Positive),
    (
        "composition",
        FieldKind::Level(&["solid", "mixed", "cystic"]),
    ),
    (
        "echogenicity",
        FieldKind::Level(&[
            "anechoic",
            "hyperechoic",
            "isoechoic",
            "hypoechoic",
            "very-hypoechoic",
        ]),
    ),
    (
        "margin",
        FieldKind::Level(&[
            "smooth",
            "ill-defined",
            "lobulated",
            "irregular",
            "extrathyroidal",
        ]),
    ),
    (
        "calcification",
        FieldKind::Level(&["none", "macrocalcification", "rim", "microcalcification"]),
    ),
    ("aspect_ratio", FieldKind::Positive),
    (
        "vascularity",
        FieldKind::Level(&["none", "peripheral", "central", "mixed"]),
    ),
    ("tirads", FieldKind::Integer(1, 5)),
];

/// Parse the report at `path` (its bytes) for case `case_id`: the feature
/// fields on success, else every problem found, each naming the field.
pub fn parse(
    path: &str,
    bytes: &[u8],
    case_id: &str,
) -> Result<BTreeMap<String, ReportValue>, Vec<Problem>> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![Problem::at(
            path,
            e.line() as u64,
            format!("not valid JSON: {e}"),
        )]
    })?;
    let Value::Object(object) = root else {
        return Err(vec![Problem::file(path, "the report is not a JSON object")]);
    };
    let mut problems = Vec::new();
    let mut field_problem = |field: &str, message: String| {
        problems.push(Problem::field(path, None, field, message));
    };
    match object.get("schema") {
        Some(Value::String(s)) if s == REPORT_SCHEMA => {}
        Some(other) => field_problem("schema", format!("{other} is not {REPORT_SCHEMA:?}")),
        None => field_problem("schema", "missing".into()),
    }
    match object.get("case_id") {
        Some(Value::String(s)) if s == case_id => {}
        Some(other) => field_problem(
            "case_id",
            format!("{other} differs from the case id {case_id:?} in cases.csv"),
        ),
        None => field_problem("case_id", "missing".into()),
    }
    let mut features = BTreeMap::new();
    for (name, kind) in FIELDS {
        match object.get(name) {
            None => field_problem(name, "missing".into()),
            Some(value) => match check(kind, value) {
                Ok(v) => {
                    features.insert(name.to_owned(), v);
                }
                Err(message) => field_problem(name, message),
            },
        }
    }
    for name in unknown_fields(&object) {
        field_problem(&name, "unknown field".into());
    }
    if problems.is_empty() {
        Ok(features)
    } else {
        Err(problems)
    }
}

fn unknown_fields(object: &Map<String, Value>) -> Vec<String> {
    object
        .keys()
        .filter(|k| !matches!(k.as_str(), "schema" | "case_id"))
        .filter(|k| !FIELDS.iter().any(|(name, _)| name == k))
        .cloned()
        .collect()
}

fn check(kind: FieldKind, value: &Value) -> Result<ReportValue, String> {
    match kind {
        FieldKind::Level(levels) => match value {
            Value::String(s) if levels.contains(&s.as_str()) => Ok(ReportValue::Text(s.clone())),
            _ => Err(format!("{value} is not one of {}", levels.join(", "))),
        },
        FieldKind::Positive => match value.as_f64() {
            Some(v) if v > 0.0 && v.is_finite() => Ok(ReportValue::Number(v)),
            _ => Err(format!("{value} is not a number greater than 0")),
        },
        FieldKind::Integer(min, max) => match value.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(ReportValue::Number(v as f64)),
            _ => Err(format!("{value} is not a whole number from {min} to {max}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "schema": "nodal.us-report/1",
  "case_id": "US-0001",
  "nodule_location": "left-upper",
  "max_diameter_mm": 12.4,
  "composition": "solid",
  "echogenicity": "hypoechoic",
  "margin": "irregular",
  "calcification": "microcalcification",
  "aspect_ratio": 1.18,
  "vascularity": "central",
  "tirads": 5
}"#;

    fn messages(r: Result<BTreeMap<String, ReportValue>, Vec<Problem>>) -> Vec<String> {
        r.unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_the_documented_example() {
        let f = parse("reports/US-0001.json", GOOD.as_bytes(), "US-0001").unwrap();
        assert_eq!(f.len(), 9);
        assert_eq!(f["tirads"], ReportValue::Number(5.0));
        assert_eq!(f["margin"], ReportValue::Text("irregular".into()));
    }

    #[test]
    fn names_each_bad_field() {
        let bad = GOOD
            .replace("\"tirads\": 5", "\"tirads\": 7, \"colour\": \"red\"")
            .replace("\"margin\": \"irregular\",", "")
            .replace("12.4", "\"big\"");
        let got = messages(parse("reports/US-0001.json", bad.as_bytes(), "US-0002"));
        assert_eq!(
            got,
            [
                "reports/US-0001.json: case_id: \"US-0001\" differs from the case id \"US-0002\" in cases.csv",
                "reports/US-0001.json: max_diameter_mm: \"big\" is not a number greater than 0",
                "reports/US-0001.json: margin: missing",
                "reports/US-0001.json: tirads: 7 is not a whole number from 1 to 5",
                "reports/US-0001.json: colour: unknown field",
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let got = messages(parse("r.json", b"{\n  \"schema\": \n}", "X"));
        assert!(got[0].starts_with("r.json:3: not valid JSON"), "{got:?}");
        let got = messages(parse("r.json", b"[1, 2]", "X"));
        assert_eq!(got, ["r.json: the report is not a JSON object"]);
    }
}
