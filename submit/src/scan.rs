//! The scan: every file `cases.csv` names is read once and hashed; images
//! have their header checked, reports are parsed. Files in the folder that
//! no row names are listed as warnings.

use super::cases_table::{CaseRow, Role};
use super::decode;
use super::problem::Problem;
use super::report;
use super::site_folder::{AccessError, SiteFolder};
use nodal_types::manifest::{DicomInfo, ReportValue, SourceFile};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Largest source file read, bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// A source image as the scan saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedImage {
    /// Path, hash and size.
    pub file: SourceFile,
    /// Width in pixels as displayed (orientation applied), from the header.
    pub width: u32,
    /// Height in pixels as displayed, from the header.
    pub height: u32,
    /// The EXIF orientation applied when decoding (1 = none).
    pub orientation: u8,
    /// The allowlisted attributes of a DICOM source.
    pub dicom: Option<DicomInfo>,
}

/// What the scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every file read (cases.csv, images, reports), sorted by path.
    pub files: Vec<SourceFile>,
    /// Images by path.
    pub images: HashMap<String, ScannedImage>,
    /// Parsed report features by path.
    pub reports: HashMap<String, BTreeMap<String, ReportValue>>,
    /// Files in the folder that no row names (ignored).
    pub unlisted: Vec<String>,
}

/// One referenced file with the row that names it.
struct Listed<'a> {
    path: &'a str,
    role: Role,
    column: &'static str,
    row: &'a CaseRow,
}

/// Read, hash and check every file the rows name. `table` is the case
/// table's own entry. Problems go to `problems`; `on_file` is called once
/// per file.
pub fn scan(
    folder: &SiteFolder,
    min_side: u32,
    table: SourceFile,
    rows: &[CaseRow],
    problems: &mut Vec<Problem>,
    on_file: &(dyn Fn() + Sync),
) -> Scan {
    let listed = unique_listings(rows, problems);
    let results: Vec<Result<Scanned, Vec<Problem>>> = listed
        .par_iter()
        .map(|l| {
            let out = scan_one(folder, min_side, l);
            on_file();
            out
        })
        .collect();
    let table_path = table.path.clone();
    let mut scan = Scan {
        files: vec![table],
        ..Scan::default()
    };
    for result in results {
        match result {
            Err(mut p) => problems.append(&mut p),
            Ok(Scanned::Image(image)) => {
                scan.files.push(image.file.clone());
                scan.images.insert(image.file.path.clone(), image);
            }
            Ok(Scanned::Report(file, features)) => {
                scan.reports.insert(file.path.clone(), features);
                scan.files.push(file);
            }
        }
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    let named: HashSet<&str> = listed.iter().map(|l| l.path).collect();
    scan.unlisted = unlisted_files(folder, &table_path, &named, problems);
    scan
}

/// Read a file of the site folder again and check that it still has the
/// hash the scan recorded.
pub fn read_verified(folder: &SiteFolder, file: &SourceFile) -> Result<Vec<u8>, String> {
    let bytes = folder
        .read(&file.path, MAX_FILE_BYTES)
        .map_err(|e| e.to_string())?;
    if nodal_types::sha256_hex(&bytes) != file.sha256 {
        return Err("the file changed while nodal submit was running".into());
    }
    Ok(bytes)
}

/// Read a whole file of at most [`MAX_FILE_BYTES`] and describe it.
pub fn read_source(folder: &SiteFolder, rel: &str) -> Result<(Vec<u8>, SourceFile), AccessError> {
    let bytes = folder.read(rel, MAX_FILE_BYTES)?;
    let file = SourceFile {
        path: rel.to_owned(),
        sha256: nodal_types::sha256_hex(&bytes),
        bytes: bytes.len() as u64,
    };
    Ok((bytes, file))
}

enum Scanned {
    Image(ScannedImage),
    Report(SourceFile, BTreeMap<String, ReportValue>),
}

fn unique_listings<'a>(rows: &'a [CaseRow], problems: &mut Vec<Problem>) -> Vec<Listed<'a>> {
    let mut first: HashMap<&str, u64> = HashMap::new();
    let mut listed = Vec::new();
    for row in rows {
        for f in &row.files {
            if let Some(line) = first.get(f.path.as_str()) {
                problems.push(row.problem(
                    f.column,
                    format!("{} is already listed at line {line}", f.path),
                ));
                continue;
            }
            first.insert(&f.path, row.line);
            listed.push(Listed {
                path: &f.path,
                role: f.role,
                column: f.column,
                row,
            });
        }
    }
    listed
}

fn scan_one(folder: &SiteFolder, min_side: u32, l: &Listed<'_>) -> Result<Scanned, Vec<Problem>> {
    let (bytes, file) = read_source(folder, l.path)
        .map_err(|e| vec![l.row.problem(l.column, format!("{} {e}", l.path))])?;
    let listed_at = format!("(listed at {})", l.row.at());
    match l.role {
        Role::Image => {
            let header = decode::header(&bytes)
                .map_err(|e| vec![Problem::file(l.path, format!("{e} {listed_at}"))])?;
            let (width, height) = header.displayed();
            if width < min_side || height < min_side {
                return Err(vec![Problem::file(
                    l.path,
                    format!(
                        "the image is {width}×{height} pixels, smaller than the {min_side}×{min_side} the study needs {listed_at}"
                    ),
                )]);
            }
            Ok(Scanned::Image(ScannedImage {
                file,
                width,
                height,
                orientation: header.orientation,
                dicom: header.dicom,
            }))
        }
        Role::Report => {
            let features = report::parse(l.path, &bytes, &l.row.case_id)?;
            if let Some(problem) = report::diameter_in_other_units(l.path, &features, l.row) {
                return Err(vec![problem]);
            }
            Ok(Scanned::Report(file, features))
        }
    }
}

/// Every file of the folder that is neither the case table nor named by a row.
fn unlisted_files(
    folder: &SiteFolder,
    table: &str,
    named: &HashSet<&str>,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let (files, failed) = folder.list();
    for (rel, e) in failed {
        problems.push(Problem::file(
            &rel,
            format!("the folder cannot be listed: {e}"),
        ));
    }
    files
        .into_iter()
        .filter(|f| f != table && !named.contains(f.as_str()))
        .collect()
}
