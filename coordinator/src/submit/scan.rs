//! The scan: every file `cases.csv` names is read once and hashed; images
//! have their header checked, reports are parsed. Files in the folder that
//! no row names are listed as warnings.

use super::cases_csv::{CASES_CSV, CaseRow, Role};
use super::decode;
use super::problem::Problem;
use super::report;
use nodal_common::manifest::{ReportValue, SourceFile};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

/// Largest source file read, bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// A source image as the scan saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedImage {
    /// Path, hash and size.
    pub file: SourceFile,
    /// Width in pixels, from the header.
    pub width: u32,
    /// Height in pixels, from the header.
    pub height: u32,
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

/// Read, hash and check every file the rows name. `cases_csv` is the table's
/// own entry. Problems go to `problems`; `on_file` is called once per file.
pub fn scan(
    dir: &Path,
    min_side: u32,
    cases_csv: SourceFile,
    rows: &[CaseRow],
    problems: &mut Vec<Problem>,
    on_file: &(dyn Fn() + Sync),
) -> Scan {
    let listed = unique_listings(rows, problems);
    let results: Vec<Result<Scanned, Vec<Problem>>> = listed
        .par_iter()
        .map(|l| {
            let out = scan_one(dir, min_side, l);
            on_file();
            out
        })
        .collect();
    let mut scan = Scan {
        files: vec![cases_csv],
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
    scan.unlisted = unlisted_files(dir, &named, problems);
    scan
}

/// Read a file of the site folder and check that it still has the hash the
/// scan recorded.
pub fn read_verified(dir: &Path, file: &SourceFile) -> Result<Vec<u8>, String> {
    let bytes =
        std::fs::read(under(dir, &file.path)).map_err(|e| format!("cannot be read: {e}"))?;
    if nodal_common::sha256_hex(&bytes) != file.sha256 {
        return Err("the file changed while nodal submit was running".into());
    }
    Ok(bytes)
}

/// The file `rel` (forward slashes) inside `dir`.
pub fn under(dir: &Path, rel: &str) -> PathBuf {
    rel.split('/')
        .fold(dir.to_path_buf(), |p, part| p.join(part))
}

/// Read a whole file of at most [`MAX_FILE_BYTES`] and describe it.
pub fn read_source(dir: &Path, rel: &str) -> io::Result<(Vec<u8>, SourceFile)> {
    let path = under(dir, rel);
    let meta = std::fs::metadata(&path)?;
    if meta.is_dir() {
        return Err(io::Error::other("it is a folder, not a file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(io::Error::other(format!(
            "it is {} bytes, more than the {MAX_FILE_BYTES}-byte limit",
            meta.len()
        )));
    }
    let bytes = std::fs::read(&path)?;
    let file = SourceFile {
        path: rel.to_owned(),
        sha256: nodal_common::sha256_hex(&bytes),
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
                problems.push(Problem::field(
                    CASES_CSV,
                    Some(row.line),
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

fn scan_one(dir: &Path, min_side: u32, l: &Listed<'_>) -> Result<Scanned, Vec<Problem>> {
    let (bytes, file) = read_source(dir, l.path).map_err(|e| {
        let what = if e.kind() == io::ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            format!("cannot be read: {e}")
        };
        vec![Problem::field(
            CASES_CSV,
            Some(l.row.line),
            l.column,
            format!("{} {what}", l.path),
        )]
    })?;
    let listed_at = format!("(listed at {CASES_CSV}:{})", l.row.line);
    match l.role {
        Role::Image => {
            let (_, width, height) = decode::header(&bytes)
                .map_err(|e| vec![Problem::file(l.path, format!("{e} {listed_at}"))])?;
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
            }))
        }
        Role::Report => {
            let features = report::parse(l.path, &bytes, &l.row.case_id)?;
            Ok(Scanned::Report(file, features))
        }
    }
}

/// Every file under `dir` that is neither `cases.csv` nor named by a row.
fn unlisted_files(dir: &Path, named: &HashSet<&str>, problems: &mut Vec<Problem>) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, rel)) = stack.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(Problem::file(
                    if rel.is_empty() { "." } else { &rel },
                    format!("the folder cannot be listed: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), child));
            } else if child != CASES_CSV && !named.contains(child.as_str()) {
                found.push(child);
            }
        }
    }
    found.sort();
    found
}
