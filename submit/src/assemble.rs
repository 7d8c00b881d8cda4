//! Turning checked rows, scanned files, QC verdicts and eligibility into
//! the manifest's cases (tiles are filled in after upload).

use super::cases_table::CaseRow;
use super::csv_schema::READER_PREFIX;
use super::eligibility;
use super::problem::Problem;
use super::scan::Scan;
use nodal_types::manifest::{Case, ImageEntry, QcVerdict};
use nodal_types::study::{Split, Study};
use std::collections::{BTreeMap, HashMap};

/// The manifest cases of `rows`, in file order, with empty tile lists.
/// Anything missing (which validation should have caught) is a problem.
pub fn cases(
    study: Study,
    rows: &[CaseRow],
    scan: &Scan,
    verdicts: &HashMap<String, QcVerdict>,
) -> Result<Vec<Case>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut cases = Vec::with_capacity(rows.len());
    for row in rows {
        match case(study, row, scan, verdicts) {
            Ok(c) => cases.push(c),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

fn case(
    study: Study,
    row: &CaseRow,
    scan: &Scan,
    verdicts: &HashMap<String, QcVerdict>,
) -> Result<Case, Problem> {
    let at = |field: &str, message: &str| row.problem(field, message);
    let split: Split = row
        .get("split")
        .ok_or_else(|| at("split", "missing value"))?
        .parse()
        .map_err(|e: String| at("split", &e))?;
    let mut images = Vec::new();
    for image in row.images() {
        let (scanned, qc) = scan
            .images
            .get(&image.path)
            .zip(verdicts.get(&image.path))
            .ok_or_else(|| at(image.column, &format!("{} was not checked", image.path)))?;
        images.push(ImageEntry {
            path: image.path.clone(),
            sha256: scanned.file.sha256.clone(),
            width: scanned.width,
            height: scanned.height,
            orientation: scanned.orientation,
            qc: qc.clone(),
            tiles: Vec::new(),
            dicom: scanned.dicom.clone(),
        });
    }
    let report = match row.report() {
        None => None,
        Some(r) => Some(
            scan.reports
                .get(&r.path)
                .cloned()
                .ok_or_else(|| at(r.column, &format!("{} was not checked", r.path)))?,
        ),
    };
    let label_column = study.label_column();
    let stage_column = (study == Study::Ultrasound).then_some("stage");
    let mut clinical = BTreeMap::new();
    let mut readers = BTreeMap::new();
    let file_columns: Vec<&str> = row.files.iter().map(|f| f.column).collect();
    for (name, value) in &row.cells {
        if let Some(reader) = name.strip_prefix(READER_PREFIX).filter(|r| !r.is_empty()) {
            readers.insert(reader.to_owned(), value.clone());
        } else if !matches!(name.as_str(), "case_id" | "split")
            && name != label_column
            && Some(name.as_str()) != stage_column
            && !file_columns.contains(&name.as_str())
        {
            clinical.insert(name.clone(), value.clone());
        }
    }
    Ok(Case {
        case_id: row.case_id.clone(),
        split,
        label: row.get(label_column).map(str::to_owned),
        stage: stage_column.and_then(|c| row.get(c)).map(str::to_owned),
        clinical,
        readers,
        report,
        eligibility: eligibility::judge(study, row)?,
        images,
    })
}
