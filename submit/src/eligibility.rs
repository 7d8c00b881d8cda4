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

/// The verdict on one (already validated) row.
pub fn judge(study: Study, row: &CaseRow) -> Result<Eligibility, Problem> {
    let failed = match study {
        Study::Cytology => {
            if row.get("origin_evidence") == Some("none") {
                Some("no_confirmed_origin")
            } else {
                row.get("origin")
                    .filter(|origin| !CYTOLOGY_ORIGINS.contains(origin))
                    .map(|_| "unsupported_origin")
            }
        }
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
    let first_diagnosis = yes(cell("first_diagnosis")?);
    let ln_dissection = yes(cell("ln_dissection")?);
    let prior_surgery = yes(cell("prior_thyroid_surgery")?);
    let concurrent = yes(cell("concurrent_tumour")?);
    let special = cell("special_population")?;
    let fully_visualised = yes(cell("nodule_fully_visualised")?);
    let multiple_lesions = yes(cell("multiple_lesions")?);
    consistent_nodes(row)?;
    if matches!(special, "pregnancy" | "lactation") && row.get("sex") == Some("M") {
        return Err(row.problem(
            "special_population",
            format!("{special:?} is recorded for a male patient (sex = M)"),
        ));
    }
    let checks = [
        (!(MIN_AGE..=MAX_AGE).contains(&age), "age_out_of_range"),
        (!first_diagnosis, "not_first_diagnosis"),
        (!ln_dissection, "no_ln_dissection"),
        (prior_surgery, "prior_thyroid_surgery"),
        (concurrent, "concurrent_tumour"),
        (special != "none", "special_population"),
        (!fully_visualised, "nodule_not_fully_visualised"),
        (multiple_lesions, "multiple_lesions"),
    ];
    Ok(checks
        .into_iter()
        .find(|(failed, _)| *failed)
        .map(|(_, name)| name))
}

/// `pn` and `ln_metastasis` say the same thing when both are given: N0 is
/// `0`, N1a and N1b are `1`.
fn consistent_nodes(row: &CaseRow) -> Result<(), Problem> {
    if let (Some(pn), Some(label)) = (row.get("pn"), row.get("ln_metastasis")) {
        let metastatic = pn != "N0";
        if metastatic != (label == "1") {
            return Err(row.problem(
                "pn",
                format!("{pn} contradicts ln_metastasis = {label} (N0 is 0, N1a and N1b are 1)"),
            ));
        }
    }
    Ok(())
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

    /// An eligible ultrasound row, then `changes` applied.
    fn us(changes: &[(&str, &str)]) -> Result<Eligibility, Problem> {
        let mut cells = vec![
            ("age", "40"),
            ("sex", "F"),
            ("first_diagnosis", "yes"),
            ("ln_dissection", "yes"),
            ("prior_thyroid_surgery", "no"),
            ("concurrent_tumour", "no"),
            ("special_population", "none"),
            ("nodule_fully_visualised", "yes"),
            ("multiple_lesions", "no"),
        ];
        for &(column, value) in changes {
            match cells.iter_mut().find(|c| c.0 == column) {
                Some(cell) => cell.1 = value,
                None => cells.push((column, value)),
            }
        }
        judge(Study::Ultrasound, &row(&cells))
    }

    fn excluded(criterion: &str) -> Eligibility {
        Eligibility::Excluded {
            criterion: criterion.into(),
        }
    }

    /// The failing value of each ultrasound criterion, in the documented order.
    const FAILING: [(&str, &str, &str); 8] = [
        ("age", "17", "age_out_of_range"),
        ("first_diagnosis", "no", "not_first_diagnosis"),
        ("ln_dissection", "no", "no_ln_dissection"),
        ("prior_thyroid_surgery", "yes", "prior_thyroid_surgery"),
        ("concurrent_tumour", "yes", "concurrent_tumour"),
        ("special_population", "pregnancy", "special_population"),
        (
            "nodule_fully_visualised",
            "no",
            "nodule_not_fully_visualised",
        ),
        ("multiple_lesions", "yes", "multiple_lesions"),
    ];

    #[test]
    fn ultrasound_criteria_in_order_with_inclusive_age_bounds() {
        assert_eq!(us(&[]).unwrap(), Eligibility::Eligible);
        assert_eq!(us(&[("age", "18")]).unwrap(), Eligibility::Eligible);
        assert_eq!(us(&[("age", "80")]).unwrap(), Eligibility::Eligible);
        assert_eq!(us(&[("age", "81")]).unwrap(), excluded("age_out_of_range"));
        let names: Vec<&str> = FAILING.iter().map(|f| f.2).collect();
        assert_eq!(Study::Ultrasound.eligibility_criteria(), names.as_slice());
        // Failing criterion k and every later one records k.
        for k in 0..FAILING.len() {
            let changes: Vec<(&str, &str)> = FAILING[k..].iter().map(|f| (f.0, f.1)).collect();
            assert_eq!(us(&changes).unwrap(), excluded(FAILING[k].2), "{k}");
        }
        for population in ["lactation", "other"] {
            assert_eq!(
                us(&[("special_population", population)]).unwrap(),
                excluded("special_population")
            );
        }
    }

    #[test]
    fn contradictions_are_problems_naming_the_column() {
        let p = us(&[("pn", "N1a"), ("ln_metastasis", "0")]).unwrap_err();
        assert_eq!(
            p.to_string(),
            "cases.csv:7: pn: N1a contradicts ln_metastasis = 0 (N0 is 0, N1a and N1b are 1)"
        );
        assert!(us(&[("pn", "N0"), ("ln_metastasis", "1")]).is_err());
        assert!(us(&[("pn", "N1b"), ("ln_metastasis", "1")]).is_ok());
        let p = us(&[("sex", "M"), ("special_population", "pregnancy")]).unwrap_err();
        assert_eq!(
            p.to_string(),
            "cases.csv:7: special_population: \"pregnancy\" is recorded for a male patient (sex = M)"
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
    fn cytology_without_evidence_of_the_origin_is_excluded_first() {
        let judged = |cells: &[(&str, &str)]| judge(Study::Cytology, &row(cells)).unwrap();
        assert_eq!(
            judged(&[("origin", "lung"), ("origin_evidence", "histopathology")]),
            Eligibility::Eligible
        );
        assert_eq!(
            judged(&[("origin", "lung"), ("origin_evidence", "none")]),
            excluded("no_confirmed_origin")
        );
        assert_eq!(
            judged(&[("origin", "melanoma"), ("origin_evidence", "none")]),
            excluded("no_confirmed_origin")
        );
        assert_eq!(
            Study::Cytology.eligibility_criteria(),
            ["no_confirmed_origin", "unsupported_origin"]
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
