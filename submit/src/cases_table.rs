//! Checking the case table: the header, every row and every cell against
//! the study's columns, every problem collected with its place (the file
//! and line of `cases.csv`, the sheet and cell of `cases.xlsx`).

use super::csv_schema::{self, Column, Kind, READER_PREFIX};
use super::problem::Problem;
use super::table::{self, RawTable, TableOptions, TablePlace};
use nodal_types::study::Study;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What a referenced file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A source image (smear or ultrasound frame).
    Image,
    /// A structured ultrasound report.
    Report,
}

/// A file named by a cell of the case table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Path relative to the site folder.
    pub path: String,
    /// What the file is for.
    pub role: Role,
    /// The column that names it.
    pub column: &'static str,
}

/// The table a row comes from: its place and header, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// Where the table is.
    pub place: TablePlace,
    /// Its header cells, in order.
    pub header: Vec<String>,
}

/// One row of the case table, its cells as written (empty cells left out).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    /// Line of the row (the CSV header is line 1; the spreadsheet row for xlsx).
    pub line: u64,
    /// The `case_id` cell (possibly invalid when problems were reported).
    pub case_id: String,
    /// Every non-empty cell by column name.
    pub cells: BTreeMap<String, String>,
    /// The files the row names, images first, in cell order.
    pub files: Vec<FileRef>,
    /// The table the row is in.
    pub table: Arc<TableRef>,
}

impl CaseRow {
    /// The cell of `column`, `None` when empty or absent.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells.get(column).map(String::as_str)
    }

    /// The row's images, in the order the row lists them.
    pub fn images(&self) -> impl Iterator<Item = &FileRef> {
        self.files.iter().filter(|f| f.role == Role::Image)
    }

    /// The row's report, if the study has one.
    pub fn report(&self) -> Option<&FileRef> {
        self.files.iter().find(|f| f.role == Role::Report)
    }

    /// A problem with the row's cell of `column`.
    pub fn problem(&self, column: &str, message: impl Into<String>) -> Problem {
        let index = self.table.header.iter().position(|h| h == column);
        self.table.place.cell(self.line, index, column, message)
    }

    /// Where the row is: `cases.csv:4`.
    pub fn at(&self) -> String {
        self.table.place.line_label(self.line)
    }
}

/// Parse and check `cases.csv` (its bytes, encoding and delimiter detected)
/// for `study`. See [`check`].
pub fn parse_csv(study: Study, bytes: &[u8], problems: &mut Vec<Problem>) -> Vec<CaseRow> {
    match table::read_csv(bytes, &TableOptions::default(), problems) {
        Some(raw) => check(study, &raw, problems),
        None => Vec::new(),
    }
}

/// Check the case table `raw` for `study`. Problems are pushed to
/// `problems`; rows are returned even when some of their cells are bad, so
/// that the files they name can still be checked.
pub fn check(study: Study, raw: &RawTable, problems: &mut Vec<Problem>) -> Vec<CaseRow> {
    let table = Arc::new(TableRef {
        place: raw.place.clone(),
        header: raw.header.clone(),
    });
    let Some(layout) = Layout::new(study, raw, problems) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in &raw.rows {
        let line = record.line;
        if record.cells.len() != raw.header.len() {
            problems.push(raw.place.row(
                line,
                format!(
                    "the row has {} fields but the header has {}",
                    record.cells.len(),
                    raw.header.len()
                ),
            ));
            continue;
        }
        let row = layout.row(line, &record.cells, &table, problems);
        if !row.case_id.is_empty() {
            if let Some(first) = seen.get(&row.case_id) {
                problems.push(row.problem(
                    "case_id",
                    format!("{:?} is already the id of line {first}", row.case_id),
                ));
            } else {
                seen.insert(row.case_id.clone(), line);
            }
        }
        rows.push(row);
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(Problem::file(
            &raw.place.name,
            "no cases: the table has only a header row",
        ));
    }
    rows
}

/// How the header maps columns to their rules.
struct Layout {
    /// Per table column: its name and rule (`None` for unknown columns, kept as text).
    columns: Vec<(String, Option<Column>)>,
}

impl Layout {
    fn new(study: Study, raw: &RawTable, problems: &mut Vec<Problem>) -> Option<Self> {
        // Unnamed or repeated columns make the rows ambiguous; a missing
        // column does not stop the other cells from being checked.
        let mut ambiguous = false;
        let known = csv_schema::columns(study);
        let mut first_at: HashMap<&str, usize> = HashMap::new();
        let mut columns = Vec::with_capacity(raw.header.len());
        let header_cell = |i: usize, field: &str, message: String| {
            raw.place.cell(raw.header_line, Some(i), field, message)
        };
        for (i, name) in raw.header.iter().enumerate() {
            let name = name.as_str();
            if name.trim().is_empty() {
                ambiguous = true;
                let mut p =
                    header_cell(i, "", format!("column {} of the header has no name", i + 1));
                p.field = None;
                problems.push(p);
            } else if let Some(j) = first_at.insert(name, i) {
                ambiguous = true;
                problems.push(header_cell(
                    i,
                    name,
                    format!("the column appears twice (columns {} and {})", j + 1, i + 1),
                ));
            }
            let rule = known.iter().find(|c| c.name == name).copied().or_else(|| {
                let reader = name.strip_prefix(READER_PREFIX).filter(|r| !r.is_empty());
                reader.map(|_| Column {
                    name: "reader",
                    kind: csv_schema::reader_kind(study),
                    required: false,
                })
            });
            columns.push((name.to_owned(), rule));
        }
        let mut missing = false;
        for c in known.iter().filter(|c| c.required) {
            if !first_at.contains_key(c.name) {
                missing = true;
                problems.push(Problem::field(
                    &raw.place.name,
                    Some(raw.header_line),
                    c.name,
                    format!("the required column is missing from the header ({study} study)"),
                ));
            }
        }
        if missing && let Some(hint) = raw.delimiter_hint() {
            problems.push(hint);
        }
        (!ambiguous).then_some(Self { columns })
    }

    fn row(
        &self,
        line: u64,
        cells: &[String],
        table: &Arc<TableRef>,
        problems: &mut Vec<Problem>,
    ) -> CaseRow {
        let mut row = CaseRow {
            line,
            case_id: String::new(),
            cells: BTreeMap::new(),
            files: Vec::new(),
            table: Arc::clone(table),
        };
        for (index, ((name, rule), value)) in self.columns.iter().zip(cells).enumerate() {
            let value = value.as_str();
            let problem = |message: String| table.place.cell(line, Some(index), name, message);
            if value.is_empty() {
                if rule.is_some_and(|c| c.required) {
                    problems.push(problem("missing value (the column is required)".into()));
                }
                continue;
            }
            if let Some(rule) = rule {
                if let Err(message) = csv_schema::check(rule.kind, value) {
                    problems.push(problem(message));
                    continue;
                }
                let role = match rule.kind {
                    Kind::Files { .. } => Some(Role::Image),
                    Kind::File if rule.name == "report" => Some(Role::Report),
                    Kind::File => Some(Role::Image),
                    _ => None,
                };
                if let Some(role) = role {
                    row.files
                        .extend(csv_schema::paths(value).into_iter().map(|path| FileRef {
                            path,
                            role,
                            column: rule.name,
                        }));
                }
                if rule.name == "case_id" {
                    row.case_id = value.to_owned();
                }
            }
            row.cells.insert(name.clone(), value.to_owned());
        }
        row.files.sort_by_key(|f| f.role == Role::Report);
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US_HEADER: &str = "case_id,split,age,sex,exam_date,first_diagnosis,ln_dissection,prior_thyroid_surgery,concurrent_tumour,special_population,nodule_fully_visualised,multiple_lesions,location,max_diameter_mm,multifocal,hashimoto,ln_metastasis,pt,pn,m,stage,image,report";

    fn us_row(id: &str, age: &str) -> String {
        format!(
            "{id},train,{age},F,2020-01-02,yes,yes,no,no,none,yes,no,lower,4.0,no,no,1,T1a,N1a,M0,I,images/{id}.jpg,reports/{id}.json"
        )
    }

    fn parse_text(study: Study, text: &str) -> (Vec<CaseRow>, Vec<String>) {
        let mut problems = Vec::new();
        let rows = parse_csv(study, text.as_bytes(), &mut problems);
        (rows, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_rows_with_files_and_cells() {
        let text = format!(
            "\u{feff}{US_HEADER},note\n{},hello\n{}\n",
            us_row("C1", "45"),
            us_row("C2", "50") + ","
        );
        let (rows, problems) = parse_text(Study::Ultrasound, &text);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].case_id.as_str()), (2, "C1"));
        assert_eq!(rows[0].get("note"), Some("hello"));
        assert_eq!(rows[1].get("note"), None);
        assert_eq!(
            rows[0]
                .images()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>(),
            ["images/C1.jpg"]
        );
        assert_eq!(
            rows[0].report().map(|f| f.path.as_str()),
            Some("reports/C1.json")
        );
    }

    #[test]
    fn lines_are_counted_right_whatever_the_line_ends() {
        for end in ["\n", "\r\n", "\r"] {
            let text = [
                US_HEADER.to_string(),
                us_row("C1", "45"),
                us_row("C2", "4x"),
            ]
            .join(end);
            let (rows, problems) = parse_text(Study::Ultrasound, &text);
            let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [2, 3], "line end {end:?}");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].starts_with("cases.csv:3:"), "{problems:?}");
        }
    }

    #[test]
    fn every_bad_cell_is_reported_with_line_and_column() {
        let text = format!(
            "{US_HEADER}\n{}\n{}\n{}\n",
            us_row("C1", "4x"),
            us_row("C1", "45").replace("2020-01-02", "2020-13-01"),
            us_row("C3", "45").replace("lower", "")
        );
        let (_, problems) = parse_text(Study::Ultrasound, &text);
        assert_eq!(
            problems,
            [
                "cases.csv:2: age: \"4x\" is not an integer",
                "cases.csv:3: exam_date: \"2020-13-01\" is not a date (YYYY-MM-DD)",
                "cases.csv:3: case_id: \"C1\" is already the id of line 2",
                "cases.csv:4: location: missing value (the column is required)",
            ]
        );
    }

    #[test]
    fn header_problems_stop_before_rows() {
        let text = "case_id,split,age,age\nC1,train,4,5\n";
        let (rows, problems) = parse_text(Study::Cytology, text);
        assert!(rows.is_empty());
        assert!(
            problems[0].starts_with("cases.csv:1: age: the column appears twice"),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p == "cases.csv:1: images: the required column is missing from the header (cytology study)"), "{problems:?}");
    }

    #[test]
    fn ragged_rows_non_utf8_and_empty_files() {
        let text = format!("{US_HEADER}\n{}\nC2,train\n", us_row("C1", "45"));
        let (rows, problems) = parse_text(Study::Ultrasound, &text);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            problems,
            ["cases.csv:3: the row has 2 fields but the header has 23"]
        );
        let mut problems = Vec::new();
        parse_csv(Study::Ultrasound, b"case_id\nC\xff1\n", &mut problems);
        assert!(
            problems[0]
                .to_string()
                .starts_with("cases.csv:2: neither UTF-8 nor GB18030/GBK text"),
            "{problems:?}"
        );
        let (_, problems) = parse_text(Study::Ultrasound, "");
        assert_eq!(problems, ["cases.csv: the file is empty (no header row)"]);
        let (_, problems) = parse_text(Study::Ultrasound, &format!("{US_HEADER}\n"));
        assert_eq!(
            problems,
            ["cases.csv: no cases: the table has only a header row"]
        );
    }

    #[test]
    fn readers_are_checked_against_the_study_classes() {
        let header = "case_id,split,age,sex,puncture_site,puncture_date,pathological_diagnosis,pathological_type,immunocytochemistry,history_of_malignancy,origin_evidence,images,reader_a";
        let row = "K1,validation,60,M,axillary,2019-03-04,metastatic adenocarcinoma,adenocarcinoma,no,no,clinical,images/K1/1.jpg;images/K1/2.png";
        let (rows, problems) = parse_text(
            Study::Cytology,
            &format!("{header}\n{row},lung\n{},liver\n", row.replace("K1", "K2")),
        );
        assert_eq!(rows[0].images().count(), 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("cases.csv:3: reader_a: \"liver\" is not one of lung, breast"),
            "{problems:?}"
        );
    }
}
