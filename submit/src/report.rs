//! The structured ultrasound report (`reports/<case_id>.json`,
//! schema `nodal.us-report/1`): parsed and checked field by field.

use super::cases_table::CaseRow;
use super::problem::Problem;
use nodal_types::manifest::ReportValue;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

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
    let root: Root = serde_json::from_slice(bytes).map_err(|e| {
        let message = if e.to_string().starts_with(DUPLICATE) {
            format!("{e}: a report gives each field once")
        } else {
            format!("not valid JSON: {e}")
        };
        vec![Problem::at(path, e.line() as u64, message)]
    })?;
    let Root::Object(object) = root else {
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

/// Start of the error for a field given twice.
const DUPLICATE: &str = "duplicate field";

/// The report's top level: an object whose keys are checked for
/// duplicates (serde_json alone keeps the last value silently), or any
/// other JSON value.
enum Root {
    Object(Map<String, Value>),
    Other,
}

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RootVisitor)
    }
}

struct RootVisitor;

impl<'de> Visitor<'de> for RootVisitor {
    type Value = Root;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Root, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE} {key:?}")));
            }
            let value: Value = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Root::Object(object))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Root, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Root::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Root, E> {
        Ok(Root::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Root, E> {
        Ok(Root::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Root, E> {
        Ok(Root::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Root, E> {
        Ok(Root::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Root, E> {
        Ok(Root::Other)
    }
    fn visit_unit<E>(self) -> Result<Root, E> {
        Ok(Root::Other)
    }
}

/// The report's diameter against the case table's: values a factor of
/// about 10 apart (8–12.5) mean one of them is in centimetres.
pub fn diameter_in_other_units(
    path: &str,
    features: &BTreeMap<String, ReportValue>,
    row: &CaseRow,
) -> Option<Problem> {
    const FIELD: &str = "max_diameter_mm";
    let Some(ReportValue::Number(report)) = features.get(FIELD) else {
        return None;
    };
    let cell = row.get(FIELD)?;
    let table: f64 = cell.parse().ok()?;
    let ratio = report.max(table) / report.min(table);
    (8.0..=12.5).contains(&ratio).then(|| {
        Problem::field(
            path,
            None,
            FIELD,
            format!(
                "{report} is about {} the {cell} of {} ({FIELD}): one of them looks like centimetres; give both in millimetres",
                if *report < table { "a tenth of" } else { "ten times" },
                row.at()
            ),
        )
    })
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
    fn a_field_given_twice_is_an_error_at_its_line() {
        let twice = GOOD.replace("\"tirads\": 5", "\"tirads\": 5,\n  \"tirads\": 1");
        let got = messages(parse("reports/US-0001.json", twice.as_bytes(), "US-0001"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("reports/US-0001.json:13: duplicate field \"tirads\""),
            "{got:?}"
        );
    }

    #[test]
    fn a_diameter_in_centimetres_is_caught_naming_both_values() {
        let features = parse("reports/US-0001.json", GOOD.as_bytes(), "US-0001").unwrap();
        let header = "case_id,max_diameter_mm";
        let row = |mm: &str| {
            let mut problems = Vec::new();
            let raw = super::super::table::read_csv(
                format!("{header}\nUS-0001,{mm}\n").as_bytes(),
                &Default::default(),
                &mut problems,
            )
            .unwrap();
            let table = std::sync::Arc::new(super::super::cases_table::TableRef {
                place: raw.place.clone(),
                header: raw.header.clone(),
            });
            CaseRow {
                line: 2,
                case_id: "US-0001".into(),
                cells: [("max_diameter_mm".to_owned(), mm.to_owned())].into(),
                files: Vec::new(),
                table,
            }
        };
        let problem = diameter_in_other_units("reports/US-0001.json", &features, &row("124"))
            .unwrap()
            .to_string();
        assert_eq!(
            problem,
            "reports/US-0001.json: max_diameter_mm: 12.4 is about a tenth of the 124 of cases.csv:2 (max_diameter_mm): one of them looks like centimetres; give both in millimetres"
        );
        assert!(diameter_in_other_units("r", &features, &row("1.24")).is_some());
        for agrees in ["12.4", "13.1", "40"] {
            assert!(
                diameter_in_other_units("r", &features, &row(agrees)).is_none(),
                "{agrees}"
            );
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let got = messages(parse("r.json", b"{\n  \"schema\": \n}", "X"));
        assert!(got[0].starts_with("r.json:3: not valid JSON"), "{got:?}");
        let got = messages(parse("r.json", b"[1, 2]", "X"));
        assert_eq!(got, ["r.json: the report is not a JSON object"]);
    }
}
