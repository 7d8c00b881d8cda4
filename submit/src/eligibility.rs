//! The study's eligibility criteria, applied to a case's clinical data in
//! the documented order; the first failed criterion is recorded.

use super::cases_table::CaseRow;
use super::csv_schema::{CYTOLOGY_ORIGINS, yes};
use super::problem::Problem;
use nodal_types::manifest::Eligibility;
use nodal_types::study::Study;

/// Youngest eligible age of the ultrasound study, years.
pub const MIN_AGE: i64 = 18;
/// Oldest eligible age of the ultrasound study, years.
pub const MAX_AGE: i64 = 80;

/// The criteria of `study`, in the order they are applied.
pub fn criteria(study: Study) -> &'static [&'static str] {
    match study {
        Study::Cytology => &["unsupported_origin"],
        Study::Ultrasound => &[
            "age_out_of_range",
            "not_first_diagnosis",
            "no_ln_dissection",
            "prior_thyroid_surgery",
            "concurrent_tumour",
        ],
    }
}

/// The verdict on one (already validated) row.
pub fn judge(study: Study, row: &CaseRow) -> Result<Eligibility, Problem> {
    let failed = match study {
        Study::Cytology => row
            .get("origin")
            .filter(|origin| !CYTOLOGY_ORIGINS.contains(origin))
            .map(|_| "unsupported_origin"),
        Study::Ultrasound => ultrasound(row)?,
    };
    Ok(match failed {
        None => Eligibility::Eligible,
        Some(criterion) => Eligibility::Excluded {
            criterion: criterion.to_owned(),
        },
    })
}

fn ultrasound(row: &CaseRow) -> Result<Option<&'static str>, Problem> {
    let cell = |column: &str| {
        row.get(column)
            .ok_or_else(|| row.problem(column, "missing value (needed for eligibility)"))
    };
    let age: i64 = cell("age")?
        .parse()
        .map_err(|_| row.problem("age", "not an integer (needed for eligibility)"))?;
    let checks = [
        (!(MIN_AGE..=MAX_AGE).contains(&age), "age_out_of_range"),
        (!yes(cell("first_diagnosis")?), "not_first_diagnosis"),
        (!yes(cell("ln_dissection")?), "no_ln_dissection"),
        (yes(cell("prior_thyroid_surgery")?), "prior_thyroid_surgery"),
        (yes(cell("concurrent_tumour")?), "concurrent_tumour"),
    ];
    Ok(checks
        .into_iter()
        .find(|(failed, _)| *failed)
        .map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(cells: &[(&str, &str)]) -> CaseRow {
        CaseRow {
            line: 7,
            case_id: "C".into(),
            cells: cells
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            files: vec![],
            table: std::sync::Arc::new(crate::cases_table::TableRef {
                place: crate::table::TablePlace::csv(),
                header: Vec::new(),
            }),
        }
    }

    fn us(age: &str, first: &str, ln: &str, prior: &str, concurrent: &str) -> Eligibility {
        judge(
            Study::Ultrasound,
            &row(&[
                ("age", age),
                ("first_diagnosis", first),
                ("ln_dissection", ln),
                ("prior_thyroid_surgery", prior),
                ("concurrent_tumour", concurrent),
            ]),
        )
        .unwrap()
    }

    fn excluded(criterion: &str) -> Eligibility {
        Eligibility::Excluded {
            criterion: criterion.into(),
        }
    }

    #[test]
    fn ultrasound_criteria_in_order_with_inclusive_age_bounds() {
        assert_eq!(us("18", "yes", "yes", "no", "no"), Eligibility::Eligible);
        assert_eq!(us("80", "yes", "yes", "no", "no"), Eligibility::Eligible);
        assert_eq!(
            us("17", "no", "no", "yes", "yes"),
            excluded("age_out_of_range")
        );
        assert_eq!(
            us("81", "yes", "yes", "no", "no"),
            excluded("age_out_of_range")
        );
        assert_eq!(
            us("40", "no", "no", "yes", "yes"),
            excluded("not_first_diagnosis")
        );
        assert_eq!(
            us("40", "yes", "no", "yes", "yes"),
            excluded("no_ln_dissection")
        );
        assert_eq!(
            us("40", "yes", "yes", "yes", "yes"),
            excluded("prior_thyroid_surgery")
        );
        assert_eq!(
            us("40", "yes", "yes", "no", "yes"),
            excluded("concurrent_tumour")
        );
    }

    #[test]
    fn cytology_needs_a_supported_or_unknown_origin() {
        assert_eq!(
            judge(Study::Cytology, &row(&[("origin", "lung")])).unwrap(),
            Eligibility::Eligible
        );
        assert_eq!(
            judge(Study::Cytology, &row(&[])).unwrap(),
            Eligibility::Eligible
        );
        assert_eq!(
            judge(Study::Cytology, &row(&[("origin", "melanoma")])).unwrap(),
            excluded("unsupported_origin")
        );
    }

    #[test]
    fn a_missing_cell_is_a_problem_not_a_panic() {
        let p = judge(Study::Ultrasound, &row(&[("age", "40")])).unwrap_err();
        assert_eq!(
            p.to_string(),
            "cases.csv:7: first_diagnosis: missing value (needed for eligibility)"
        );
    }
}
