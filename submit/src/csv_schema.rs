//! The columns of `cases.csv` per study and the rules each cell must follow
//! (`docs/archive-format.md`).

use chrono::NaiveDate;
use nodal_types::study::Study;

/// The eight supported primary origins of the cytology study.
pub const CYTOLOGY_ORIGINS: [&str; 8] = [
    "lung",
    "breast",
    "thyroid",
    "nasopharynx",
    "oesophagus",
    "stomach",
    "colorectum",
    "other",
];

/// What confirmed a cytology case's primary origin; `none` excludes the case.
pub const ORIGIN_EVIDENCE: [&str; 4] =
    ["histopathology", "immunohistochemistry", "clinical", "none"];

/// `special_population` values of the ultrasound study; any but `none` excludes the case.
pub const SPECIAL_POPULATIONS: [&str; 4] = ["none", "pregnancy", "lactation", "other"];

/// Prefix of the columns holding human readers' calls.
pub const READER_PREFIX: &str = "reader_";

/// What a cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `[A-Za-z0-9._-]{1,64}`, not only dots.
    Id,
    /// A whole number in `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A decimal number ≥ 0, or > 0 when `positive`.
    Number {
        /// Zero is refused.
        positive: bool,
    },
    /// `YYYY-MM-DD`.
    Date,
    /// `yes` or `no`.
    YesNo,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// Free text.
    Text,
    /// `;`-separated relative paths, between `min` and `max` of them.
    Files {
        /// Fewest paths.
        min: usize,
        /// Most paths.
        max: usize,
    },
    /// One relative path.
    File,
}

/// One column of `cases.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Header name.
    pub name: &'static str,
    /// What its cells hold.
    pub kind: Kind,
    /// Whether the column and every cell of it must be present.
    pub required: bool,
}

const fn col(name: &'static str, kind: Kind, required: bool) -> Column {
    Column {
        name,
        kind,
        required,
    }
}

const SPLIT: Kind = Kind::OneOf(&["train", "validation"]);
const SEX: Kind = Kind::OneOf(&["F", "M"]);
const AGE: Kind = Kind::Integer { min: 0, max: 130 };
const COUNT: Kind = Kind::Integer {
    min: 0,
    max: 1_000_000,
};

const CYTOLOGY: &[Column] = &[
    col("case_id", Kind::Id, true),
    col("split", SPLIT, true),
    col("age", AGE, true),
    col("sex", SEX, true),
    col(
        "puncture_site",
        Kind::OneOf(&[
            "cervical",
            "supraclavicular",
            "axillary",
            "inguinal",
            "mediastinal",
            "other",
        ]),
        true,
    ),
    col("puncture_date", Kind::Date, true),
    col("pathological_diagnosis", Kind::Text, true),
    col(
        "pathological_type",
        Kind::OneOf(&[
            "adenocarcinoma",
            "squamous cell carcinoma",
            "papillary carcinoma",
            "undifferentiated carcinoma",
            "small cell carcinoma",
            "other",
        ]),
        true,
    ),
    col("immunocytochemistry", Kind::YesNo, true),
    col("clinical_diagnosis", Kind::Text, false),
    col("lesion_site", Kind::Text, false),
    col("comorbidities", Kind::Text, false),
    col("history_of_malignancy", Kind::YesNo, true),
    col("treatment", Kind::Text, false),
    col("postoperative_complications", Kind::YesNo, false),
    col("postoperative_days", COUNT, false),
    col("survival_months", Kind::Number { positive: false }, false),
    // Any recorded origin is accepted here; eligibility excludes unsupported ones.
    col("origin", Kind::Text, false),
    col("origin_evidence", Kind::OneOf(&ORIGIN_EVIDENCE), true),
    col("images", Kind::Files { min: 1, max: 4 }, true),
];

const ULTRASOUND: &[Column] = &[
    col("case_id", Kind::Id, true),
    col("split", SPLIT, true),
    col("age", AGE, true),
    col("sex", SEX, true),
    col("exam_date", Kind::Date, true),
    col("first_diagnosis", Kind::YesNo, true),
    col("ln_dissection", Kind::YesNo, true),
    col("prior_thyroid_surgery", Kind::YesNo, true),
    col("concurrent_tumour", Kind::YesNo, true),
    col(
        "special_population",
        Kind::OneOf(&SPECIAL_POPULATIONS),
        true,
    ),
    col("nodule_fully_visualised", Kind::YesNo, true),
    col("multiple_lesions", Kind::YesNo, true),
    col(
        "location",
        Kind::OneOf(&["upper", "middle", "lower", "isthmus"]),
        true,
    ),
    col("max_diameter_mm", Kind::Number { positive: true }, true),
    col("multifocal", Kind::YesNo, true),
    col("hashimoto", Kind::YesNo, true),
    col("ln_metastasis", Kind::OneOf(&["0", "1"]), false),
    col(
        "pt",
        Kind::OneOf(&["T1a", "T1b", "T2", "T3a", "T3b", "T4a", "T4b"]),
        false,
    ),
    col("pn", Kind::OneOf(&["N0", "N1a", "N1b"]), false),
    col("m", Kind::OneOf(&["M0", "M1"]), false),
    col(
        "stage",
        Kind::OneOf(&["I", "II", "III", "IVA", "IVB"]),
        false,
    ),
    col("image", Kind::File, true),
    col("report", Kind::File, true),
];

/// The documented columns of `study`'s `cases.csv`.
pub fn columns(study: Study) -> &'static [Column] {
    match study {
        Study::Cytology => CYTOLOGY,
        Study::Ultrasound => ULTRASOUND,
    }
}

/// The kind of a `reader_<name>` cell: a class of the study.
pub fn reader_kind(study: Study) -> Kind {
    match study {
        Study::Cytology => Kind::OneOf(&CYTOLOGY_ORIGINS),
        Study::Ultrasound => Kind::OneOf(&["0", "1"]),
    }
}

/// Check a non-empty cell against `kind`; the error describes the value and
/// what was expected (`"4x" is not an integer`).
pub fn check(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Id => check_id(value),
        Kind::Integer { min, max } => match value.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(()),
            Ok(v) => Err(format!("{v} is outside {min}–{max}")),
            Err(_) => Err(format!("{value:?} is not an integer")),
        },
        Kind::Number { positive } => check_number(value, positive),
        Kind::Date => check_date(value),
        Kind::YesNo => match value {
            "yes" | "no" => Ok(()),
            _ => Err(format!("{value:?} is not \"yes\" or \"no\"")),
        },
        Kind::OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(format!("{value:?} is not one of {}", allowed.join(", ")))
            }
        }
        Kind::Text => Ok(()),
        Kind::Files { min, max } => {
            let paths: Vec<&str> = value.split(';').collect();
            if paths.len() < min || paths.len() > max {
                return Err(format!(
                    "{} files listed, expected {min} to {max}",
                    paths.len()
                ));
            }
            paths.into_iter().try_for_each(check_path)
        }
        Kind::File => check_path(value),
    }
}

/// The paths of a `Files` or `File` cell (already checked).
pub fn paths(value: &str) -> Vec<String> {
    value.split(';').map(str::to_owned).collect()
}

/// Parse a `yes`/`no` cell (already checked).
pub fn yes(value: &str) -> bool {
    value == "yes"
}

fn check_id(value: &str) -> Result<(), String> {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_chars || value.is_empty() || value.len() > 64 {
        return Err(format!(
            "{value:?} is not an id (1–64 of A–Z, a–z, 0–9, '.', '_', '-')"
        ));
    }
    if value.chars().all(|c| c == '.') {
        return Err(format!("{value:?} is not an id (only dots)"));
    }
    Ok(())
}

fn check_number(value: &str, positive: bool) -> Result<(), String> {
    let ok_syntax = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'));
    let parsed = value
        .parse::<f64>()
        .ok()
        .filter(|v| ok_syntax && v.is_finite());
    match parsed {
        None => Err(format!("{value:?} is not a decimal number")),
        Some(v) if positive && v <= 0.0 => Err(format!("{value} is not greater than 0")),
        Some(v) if v < 0.0 => Err(format!("{value} is negative")),
        Some(_) => Ok(()),
    }
}

fn check_date(value: &str) -> Result<(), String> {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if shaped && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok() {
        Ok(())
    } else {
        Err(format!("{value:?} is not a date (YYYY-MM-DD)"))
    }
}

/// A path relative to the site folder: forward slashes, no empty, `.` or
/// `..` segments, not absolute, no backslash or control characters.
fn check_path(path: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{path:?} is not a usable relative path: {why}"));
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.starts_with('/') || path.get(1..2) == Some(":") {
        return bad("it is absolute");
    }
    if path.contains('\\') {
        return bad("use '/' between folders, not '\\'");
    }
    if path.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    if path.split('/').any(|s| matches!(s, "" | "." | "..")) {
        return bad("it has an empty, '.' or '..' segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_types::ajcc::{
        Category, DistantMetastasis, PrimaryTumour, RegionalNodes, StageGroup,
    };

    #[test]
    fn tnm_columns_accept_exactly_the_ajcc_8_categories() {
        let allowed = |name: &str| match ULTRASOUND.iter().find(|c| c.name == name) {
            Some(Column {
                kind: Kind::OneOf(values),
                ..
            }) => values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(allowed("pt"), PrimaryTumour::labels());
        assert_eq!(allowed("pn"), RegionalNodes::labels());
        assert_eq!(allowed("m"), DistantMetastasis::labels());
        assert_eq!(allowed("stage"), StageGroup::labels());
    }

    #[test]
    fn cells_are_checked_by_kind() {
        assert!(check(Kind::Id, "cy-a-00001").is_ok());
        assert!(check(Kind::Id, "a b").unwrap_err().contains("not an id"));
        assert!(check(Kind::Id, "..").unwrap_err().contains("only dots"));
        assert!(check(Kind::Id, &"x".repeat(65)).is_err());
        assert_eq!(check(AGE, "4x").unwrap_err(), "\"4x\" is not an integer");
        assert_eq!(check(AGE, "200").unwrap_err(), "200 is outside 0–130");
        assert!(check(AGE, "45").is_ok());
        assert!(check(Kind::Number { positive: true }, "12.4").is_ok());
        assert!(
            check(Kind::Number { positive: true }, "0")
                .unwrap_err()
                .contains("greater than 0")
        );
        assert!(
            check(Kind::Number { positive: false }, "1,5")
                .unwrap_err()
                .contains("not a decimal")
        );
        assert!(check(Kind::Number { positive: false }, "NaN").is_err());
        assert!(check(Kind::Number { positive: false }, "inf").is_err());
        assert!(check(Kind::Date, "2021-02-28").is_ok());
        assert!(
            check(Kind::Date, "2021-02-30")
                .unwrap_err()
                .contains("not a date")
        );
        assert!(check(Kind::Date, "2021-2-3").is_err());
        assert!(
            check(Kind::YesNo, "Yes")
                .unwrap_err()
                .contains("\"yes\" or \"no\"")
        );
        assert!(check(SEX, "X").unwrap_err().contains("not one of F, M"));
    }

    #[test]
    fn file_lists_and_paths() {
        let files = Kind::Files { min: 1, max: 4 };
        assert!(check(files, "images/a/1.jpg;images/a/2.jpg").is_ok());
        assert!(
            check(files, "a;b;c;d;e")
                .unwrap_err()
                .contains("5 files listed")
        );
        for bad in [
            "/etc/passwd",
            "images/../x.jpg",
            "images\\a.jpg",
            "a//b.jpg",
            "C:/x.jpg",
            "a;",
        ] {
            assert!(
                check(files, bad)
                    .unwrap_err()
                    .contains("not a usable relative path"),
                "{bad}"
            );
        }
        assert_eq!(paths("a.jpg;b/c.png"), ["a.jpg", "b/c.png"]);
    }

    #[test]
    fn every_study_has_case_id_split_age_and_its_label() {
        for study in Study::ALL {
            let names: Vec<&str> = columns(study).iter().map(|c| c.name).collect();
            for needed in ["case_id", "split", "age", study.label_column()] {
                assert!(names.contains(&needed), "{study}: {needed}");
            }
        }
    }
}
