//! Clinical covariates → the design matrix of the adjusted odds-ratio model:
//! numeric columns as one term, text columns dummy-coded against a reference.

use crate::error::StatsError;
use crate::predictions::BinaryPredictions;
use nalgebra::DMatrix;

/// Values read as missing in a covariate column (compared case-insensitively).
pub const MISSING_TOKENS: [&str; 5] = ["", "na", "n/a", "nan", "null"];

/// The design of a logistic fit: intercept first, then one column per term.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Rows = complete labelled cases; column 0 is the intercept.
    pub x: DMatrix<f64>,
    /// Outcome (0/1) per row.
    pub y: Vec<f64>,
    /// Term names of columns 1.. (`column` or `column=level`).
    pub terms: Vec<String>,
    /// Labelled cases left out for a missing covariate value.
    pub dropped: usize,
    /// Things worth a warning (e.g. a text column with a single level).
    pub notes: Vec<String>,
}

fn is_missing(value: &str) -> bool {
    MISSING_TOKENS.iter().any(|t| value.eq_ignore_ascii_case(t))
}

/// How one covariate enters the model.
enum Coding {
    Numeric,
    Categorical { levels: Vec<String> },
}

/// Builds the design of `label ~ 1 + covariates`.
pub fn build_design(
    predictions: &BinaryPredictions,
    covariates: &[String],
    references: &[(String, String)],
) -> Result<Design, StatsError> {
    let columns = covariates
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if covariates[..i].contains(name) {
                return Err(bad("--covariates", format!("\"{name}\" is named twice")));
            }
            column_values(predictions, name)
        })
        .collect::<Result<Vec<Vec<&str>>, _>>()?;
    for (column, _) in references {
        if !covariates.contains(column) {
            return Err(bad(
                "--reference",
                format!("\"{column}\" is not one of --covariates"),
            ));
        }
    }
    let rows: Vec<usize> = (0..predictions.cases.len())
        .filter(|&i| {
            predictions.cases[i].label.is_some() && columns.iter().all(|c| !is_missing(c[i]))
        })
        .collect();
    let labelled = predictions
        .cases
        .iter()
        .filter(|c| c.label.is_some())
        .count();
    let mut terms = Vec::new();
    let mut notes = Vec::new();
    let mut codings = Vec::new();
    for (name, values) in covariates.iter().zip(&columns) {
        let numeric = values
            .iter()
            .filter(|v| !is_missing(v))
            .all(|v| v.parse::<f64>().is_ok_and(f64::is_finite));
        if numeric {
            terms.push(name.clone());
            codings.push(Coding::Numeric);
            continue;
        }
        let mut levels: Vec<String> = rows.iter().map(|&i| values[i].to_string()).collect();
        levels.sort();
        levels.dedup();
        let reference = match references.iter().find(|(c, _)| c == name) {
            Some((_, level)) if levels.contains(level) => level.clone(),
            Some((_, level)) => {
                return Err(bad(
                    "--reference",
                    format!(
                        "level \"{level}\" of \"{name}\" is not among its values in the fitted rows ({})",
                        levels.join(", ")
                    ),
                ));
            }
            None => levels.first().cloned().unwrap_or_default(),
        };
        levels.retain(|l| *l != reference);
        if levels.is_empty() {
            notes.push(format!(
                "odds ratios: covariate \"{name}\" has a single level and adds no term"
            ));
        }
        terms.extend(levels.iter().map(|l| format!("{name}={l}")));
        codings.push(Coding::Categorical { levels });
    }
    let mut x = DMatrix::zeros(rows.len(), terms.len() + 1);
    for (r, &i) in rows.iter().enumerate() {
        x[(r, 0)] = 1.0;
        let mut col = 1;
        for (coding, values) in codings.iter().zip(&columns) {
            match coding {
                Coding::Numeric => {
                    x[(r, col)] = values[i].parse::<f64>().unwrap_or(f64::NAN);
                    col += 1;
                }
                Coding::Categorical { levels } => {
                    for level in levels {
                        x[(r, col)] = if values[i] == level { 1.0 } else { 0.0 };
                        col += 1;
                    }
                }
            }
        }
    }
    let y = rows
        .iter()
        .map(|&i| {
            if predictions.cases[i].label == Some(true) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Ok(Design {
        x,
        y,
        terms,
        dropped: labelled - rows.len(),
        notes,
    })
}

/// The values of a covariate column (an extra column, or `site`), one per case.
fn column_values<'a>(
    predictions: &'a BinaryPredictions,
    name: &str,
) -> Result<Vec<&'a str>, StatsError> {
    if name == "site" {
        return Ok(predictions.cases.iter().map(|c| c.site.as_str()).collect());
    }
    let Some(index) = predictions.extra_columns.iter().position(|c| c == name) else {
        return Err(bad(
            "--covariates",
            format!(
                "\"{name}\" is not a covariate column of {} (columns: site, {})",
                predictions.source,
                predictions.extra_columns.join(", ")
            ),
        ));
    };
    Ok(predictions
        .cases
        .iter()
        .map(|c| c.extra[index].as_str())
        .collect())
}

fn bad(option: &'static str, message: String) -> StatsError {
    StatsError::BadOption { option, message }
}
