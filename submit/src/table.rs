//! Reading the case table as hospitals export it: `cases.csv` in UTF-8,
//! UTF-16 (with its byte-order mark) or GB18030/GBK, its fields separated by
//! `,`, `;` or tabs; or `cases.xlsx` (the first sheet, or one named). Every
//! cell comes out as text for the one validation of `cases_table`, with a
//! place that names the file and line (or sheet and cell).

use super::problem::Problem;
use super::site_folder::{AccessError, SiteFolder};
use calamine::{Data, Reader, Xlsx};
use encoding_rs::{Encoding, GB18030, UTF_8};
use nodal_types::manifest::{CasesTable, SourceFile};
use std::io::Cursor;

/// Name of the CSV case table in a site folder.
pub const CASES_CSV: &str = "cases.csv";
/// Name of the spreadsheet case table in a site folder.
pub const CASES_XLSX: &str = "cases.xlsx";
/// Largest case table read, bytes.
pub const MAX_TABLE_BYTES: u64 = 64 * 1024 * 1024;

/// A field delimiter of `cases.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// `,`
    Comma,
    /// `;` (Excel's CSV in many European locales)
    Semicolon,
    /// A tab (Excel's "Unicode text")
    Tab,
}

impl std::str::FromStr for Delimiter {
    type Err = String;

    /// `comma`, `semicolon` or `tab`.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "comma" => Ok(Self::Comma),
            "semicolon" => Ok(Self::Semicolon),
            "tab" => Ok(Self::Tab),
            _ => Err(format!(
                "unknown delimiter {name:?}: expected comma, semicolon or tab"
            )),
        }
    }
}

impl Delimiter {
    const ALL: [Self; 3] = [Self::Comma, Self::Semicolon, Self::Tab];

    fn byte(self) -> u8 {
        match self {
            Self::Comma => b',',
            Self::Semicolon => b';',
            Self::Tab => b'\t',
        }
    }

    /// The delimiter for messages and the manifest: `,`, `;` or `tab`.
    pub fn shown(self) -> &'static str {
        match self {
            Self::Comma => ",",
            Self::Semicolon => ";",
            Self::Tab => "tab",
        }
    }

    /// The name `--delimiter` takes.
    fn flag(self) -> &'static str {
        match self {
            Self::Comma => "comma",
            Self::Semicolon => "semicolon",
            Self::Tab => "tab",
        }
    }
}

/// The text encoding named by `label` (WHATWG labels: `utf-8`, `gb18030`,
/// `gbk`, `utf-16le`, `windows-1252`, …), for `--encoding`.
pub fn parse_encoding(label: &str) -> Result<&'static Encoding, String> {
    Encoding::for_label(label.trim().as_bytes())
        .ok_or_else(|| format!("{label:?} is not a known text encoding (e.g. utf-8, gb18030, gbk)"))
}

/// How to read the case table; `None` means detect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOptions {
    /// The encoding of `cases.csv`.
    pub encoding: Option<&'static Encoding>,
    /// The delimiter of `cases.csv`.
    pub delimiter: Option<Delimiter>,
    /// The sheet of `cases.xlsx`.
    pub sheet: Option<String>,
}

/// Where a row of the table is, for messages: `cases.csv:4` or
/// `cases.xlsx!Sheet1:B7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePlace {
    /// `cases.csv`, or `cases.xlsx!<sheet>`.
    pub name: String,
    /// The spreadsheet column of the table's first column (0 = `A`);
    /// `None` for CSV.
    pub first_column: Option<u32>,
}

impl TablePlace {
    /// The place of `cases.csv`.
    pub fn csv() -> Self {
        Self {
            name: CASES_CSV.into(),
            first_column: None,
        }
    }

    /// A problem with row `line` as a whole.
    pub fn row(&self, line: u64, message: impl Into<String>) -> Problem {
        Problem::at(&self.name, line, message)
    }

    /// A problem with the cell of `field` (table column `column`) in row
    /// `line`: the line for CSV, the cell (`B7`) for a spreadsheet.
    pub fn cell(
        &self,
        line: u64,
        column: Option<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Problem {
        match (self.first_column, column) {
            (Some(first), Some(c)) => {
                let cell = format!("{}{line}", column_letters(first as usize + c));
                Problem::cell(&self.name, line, cell, field, message)
            }
            _ => Problem::field(&self.name, Some(line), field, message),
        }
    }

    /// `cases.csv:4`, for "(listed at …)".
    pub fn line_label(&self, line: u64) -> String {
        format!("{}:{line}", self.name)
    }
}

/// Spreadsheet column letters of the 0-based column `index` (`A`, `Z`, `AA`).
fn column_letters(index: usize) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// One data row: its line (or spreadsheet row) and its cells as text.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// Line of the row in the file (spreadsheet row number for xlsx).
    pub line: u64,
    /// The cells, in header order.
    pub cells: Vec<String>,
}

/// The case table as read, before its cells are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// Where its rows are, for messages.
    pub place: TablePlace,
    /// What was read and how (for the manifest).
    pub record: CasesTable,
    /// Line of the header row.
    pub header_line: u64,
    /// The header cells.
    pub header: Vec<String>,
    /// The data rows.
    pub rows: Vec<RawRow>,
    /// For CSV: how often each other delimiter occurs in the header line
    /// (a hint when the header does not parse).
    pub other_delimiters: Vec<(Delimiter, usize)>,
    /// For CSV: the delimiter the table was split with.
    pub delimiter: Option<Delimiter>,
}

impl RawTable {
    /// A hint for a header that lacks required columns: the other
    /// delimiters it holds, if any.
    pub fn delimiter_hint(&self) -> Option<Problem> {
        let used = self.delimiter?;
        let (other, count) = self
            .other_delimiters
            .iter()
            .copied()
            .filter(|&(_, n)| n > 0)
            .max_by_key(|&(_, n)| n)?;
        Some(self.place.row(
            self.header_line,
            format!(
                "the header was split at '{}' into {} column(s) but holds {count} '{}': if '{}' is the delimiter, give --delimiter {}",
                used.shown(),
                self.header.len(),
                other.shown(),
                other.shown(),
                other.flag()
            ),
        ))
    }
}

/// Read the site folder's case table (`cases.csv` or `cases.xlsx`, not
/// both). Problems go to `problems`; `None` when there is no table to check.
pub fn read(
    folder: &SiteFolder,
    options: &TableOptions,
    problems: &mut Vec<Problem>,
) -> Option<(RawTable, SourceFile)> {
    let csv = folder.read(CASES_CSV, MAX_TABLE_BYTES);
    let xlsx = folder.read(CASES_XLSX, MAX_TABLE_BYTES);
    let (name, bytes) = match (csv, xlsx) {
        (Err(c), Err(x)) if c.is_not_found() && x.is_not_found() => {
            problems.push(Problem::file(
                CASES_CSV,
                "the site folder has no cases.csv (nor cases.xlsx)",
            ));
            return None;
        }
        (Ok(_), Ok(_)) => {
            problems.push(Problem::file(
                CASES_CSV,
                "the site folder has both cases.csv and cases.xlsx: keep the one to submit",
            ));
            return None;
        }
        (Ok(bytes), _) => (CASES_CSV, bytes),
        (_, Ok(bytes)) => (CASES_XLSX, bytes),
        (Err(e), _) if !e.is_not_found() => return unreadable(CASES_CSV, &e, problems),
        (_, Err(e)) => return unreadable(CASES_XLSX, &e, problems),
    };
    let file = SourceFile {
        path: name.to_owned(),
        sha256: nodal_types::sha256_hex(&bytes),
        bytes: bytes.len() as u64,
    };
    let table = if name == CASES_CSV {
        if options.sheet.is_some() {
            problems.push(Problem::file(CASES_CSV, "--sheet is for cases.xlsx only"));
            return None;
        }
        read_csv(&bytes, options, problems)?
    } else {
        if options.encoding.is_some() || options.delimiter.is_some() {
            problems.push(Problem::file(
                CASES_XLSX,
                "--encoding and --delimiter are for cases.csv only",
            ));
            return None;
        }
        read_xlsx(&bytes, options.sheet.as_deref(), problems)?
    };
    Some((table, file))
}

fn unreadable<T>(name: &str, e: &AccessError, problems: &mut Vec<Problem>) -> Option<T> {
    problems.push(Problem::file(name, format!("the case table {e}")));
    None
}

/// Read `cases.csv` from its bytes.
pub fn read_csv(
    bytes: &[u8],
    options: &TableOptions,
    problems: &mut Vec<Problem>,
) -> Option<RawTable> {
    let place = TablePlace::csv();
    let (text, encoding) = match decode_text(bytes, options.encoding) {
        Ok(decoded) => decoded,
        Err(problem) => {
            problems.push(problem);
            return None;
        }
    };
    let text = nodal_types::text::lf_line_ends(text.as_bytes()).into_owned();
    let first_line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let delimiter = options
        .delimiter
        .unwrap_or_else(|| detect_delimiter(first_line));
    let other_delimiters = Delimiter::ALL
        .into_iter()
        .filter(|&d| d != delimiter)
        .map(|d| (d, count_outside_quotes(first_line, d.byte())))
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter.byte())
        .from_reader(text.as_slice());
    let mut records = reader.records();
    let csv_problem = |e: &csv::Error| match e.position() {
        Some(p) => place.row(p.line(), format!("unreadable CSV: {e}")),
        None => Problem::file(CASES_CSV, format!("unreadable CSV: {e}")),
    };
    let header: Vec<String> = match records.next() {
        None => {
            problems.push(Problem::file(
                CASES_CSV,
                "the file is empty (no header row)",
            ));
            return None;
        }
        Some(Err(e)) => {
            problems.push(csv_problem(&e));
            return None;
        }
        Some(Ok(h)) => h.iter().map(str::to_owned).collect(),
    };
    let mut rows = Vec::new();
    for record in records {
        match record {
            Ok(r) => rows.push(RawRow {
                line: r.position().map_or(0, |p| p.line()),
                cells: r.iter().map(str::to_owned).collect(),
            }),
            Err(e) => problems.push(csv_problem(&e)),
        }
    }
    Some(RawTable {
        place,
        record: CasesTable {
            file: CASES_CSV.into(),
            encoding: Some(encoding.name().to_owned()),
            delimiter: Some(delimiter.shown().to_owned()),
            sheet: None,
        },
        header_line: 1,
        header,
        rows,
        other_delimiters,
        delimiter: Some(delimiter),
    })
}

/// Decode the table's bytes: a byte-order mark decides (UTF-8, UTF-16LE/BE);
/// else `forced`; else UTF-8 when valid, else GB18030 (which also reads GBK
/// and GB2312). A byte the encoding cannot decode is an error at its line.
fn decode_text(
    bytes: &[u8],
    forced: Option<&'static Encoding>,
) -> Result<(String, &'static Encoding), Problem> {
    if let Some((bom, len)) = Encoding::for_bom(bytes) {
        if let Some(forced) = forced.filter(|&f| f != bom) {
            return Err(Problem::at(
                CASES_CSV,
                1,
                format!(
                    "the file starts with the byte-order mark of {} but --encoding says {}",
                    bom.name(),
                    forced.name()
                ),
            ));
        }
        return strict(bom, &bytes[len..]).map(|text| (text, bom));
    }
    if let Some(encoding) = forced {
        return strict(encoding, bytes).map(|text| (text, encoding));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_owned(), UTF_8));
    }
    strict(GB18030, bytes)
        .map(|text| (text, GB18030))
        .map_err(|p| Problem {
            message: format!(
                "neither UTF-8 nor GB18030/GBK text ({}); give the file's encoding with --encoding",
                p.message
            ),
            ..p
        })
}

/// Decode all of `bytes` as `encoding`, or say where the first byte it
/// cannot decode is.
fn strict(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, Problem> {
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if !had_errors {
        return Ok(text.into_owned());
    }
    let bad = text.find('\u{FFFD}').unwrap_or(0);
    let line = 1 + text[..bad].matches('\n').count() as u64;
    Err(Problem::at(
        CASES_CSV,
        line,
        format!(
            "not {} text: a byte sequence there cannot be decoded",
            encoding.name()
        ),
    ))
}

/// The delimiter the header line uses most (outside quotes); `,` when none.
fn detect_delimiter(line: &[u8]) -> Delimiter {
    let mut best = (Delimiter::Comma, 0);
    for d in Delimiter::ALL {
        let n = count_outside_quotes(line, d.byte());
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

fn count_outside_quotes(line: &[u8], byte: u8) -> usize {
    let mut quoted = false;
    let mut count = 0;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if b == byte && !quoted {
            count += 1;
        }
    }
    count
}

/// Read a sheet of `cases.xlsx` from its bytes: the first row with any
/// value is the header; empty rows are skipped.
pub fn read_xlsx(
    bytes: &[u8],
    sheet: Option<&str>,
    problems: &mut Vec<Problem>,
) -> Option<RawTable> {
    let mut workbook = match Xlsx::new(Cursor::new(bytes)) {
        Ok(w) => w,
        Err(e) => {
            problems.push(Problem::file(
                CASES_XLSX,
                format!("not a readable .xlsx workbook: {e}"),
            ));
            return None;
        }
    };
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) if names.iter().any(|n| n == wanted) => wanted.to_owned(),
        Some(wanted) => {
            problems.push(Problem::file(
                CASES_XLSX,
                format!("has no sheet {wanted:?} (its sheets: {})", names.join(", ")),
            ));
            return None;
        }
        None => match names.first() {
            Some(first) => first.clone(),
            None => {
                problems.push(Problem::file(CASES_XLSX, "the workbook has no sheet"));
                return None;
            }
        },
    };
    let range = match workbook.worksheet_range(&name) {
        Ok(range) => range,
        Err(e) => {
            problems.push(Problem::file(
                CASES_XLSX,
                format!("sheet {name:?} cannot be read: {e}"),
            ));
            return None;
        }
    };
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let place = TablePlace {
        name: format!("{CASES_XLSX}!{name}"),
        first_column: Some(first_column),
    };
    let mut lines = range.rows().enumerate().filter_map(|(i, cells)| {
        let line = u64::from(first_row) + i as u64 + 1;
        let texts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                cell_text(cell).unwrap_or_else(|message| {
                    let mut problem = place.cell(line, Some(c), "", message);
                    problem.field = None;
                    problems.push(problem);
                    String::new()
                })
            })
            .collect();
        texts.iter().any(|t| !t.is_empty()).then_some((line, texts))
    });
    let Some((header_line, mut header)) = lines.next() else {
        drop(lines);
        problems.push(place.row(1, "the sheet is empty (no header row)"));
        return None;
    };
    let rows: Vec<RawRow> = lines.map(|(line, cells)| RawRow { line, cells }).collect();
    // A sheet's range is as wide as its widest row: drop trailing header
    // cells that are empty in every row.
    while header.last().is_some_and(String::is_empty)
        && rows
            .iter()
            .all(|r| r.cells.get(header.len() - 1).is_none_or(String::is_empty))
    {
        header.pop();
    }
    let width = header.len();
    let rows = rows
        .into_iter()
        .map(|mut r| {
            if r.cells[width.min(r.cells.len())..]
                .iter()
                .all(String::is_empty)
            {
                r.cells.truncate(width);
            }
            r
        })
        .collect();
    Some(RawTable {
        place,
        record: CasesTable {
            file: CASES_XLSX.into(),
            encoding: None,
            delimiter: None,
            sheet: Some(name),
        },
        header_line,
        header,
        rows,
        other_delimiters: Vec::new(),
        delimiter: None,
    })
}

/// A spreadsheet cell as the text a CSV export would hold: whole numbers
/// without a decimal point, dates as `YYYY-MM-DD`, booleans as `yes`/`no`.
fn cell_text(cell: &Data) -> Result<String, String> {
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Data::DateTime(dt) if dt.is_duration() => {
            return Err(format!(
                "the cell holds a duration ({}), not a value",
                dt.as_f64()
            ));
        }
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            None => {
                return Err(format!(
                    "the cell holds an impossible date ({})",
                    dt.as_f64()
                ));
            }
        },
        Data::DateTimeIso(s) => s.strip_suffix("T00:00:00").unwrap_or(s).to_owned(),
        Data::DurationIso(s) => {
            return Err(format!("the cell holds a duration ({s}), not a value"));
        }
        Data::Error(e) => return Err(format!("the cell holds the spreadsheet error {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(bytes: &[u8], options: &TableOptions) -> (Option<RawTable>, Vec<String>) {
        let mut problems = Vec::new();
        let table = read_csv(bytes, options, &mut problems);
        (table, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn column_letters_run_like_a_spreadsheet() {
        let got: Vec<String> = [0, 1, 25, 26, 27, 701, 702]
            .into_iter()
            .map(column_letters)
            .collect();
        assert_eq!(got, ["A", "B", "Z", "AA", "AB", "ZZ", "AAA"]);
    }

    #[test]
    fn gb18030_and_gbk_tables_are_detected_and_decoded() {
        let text = "case_id,note\nC1,甲状腺乳头状癌\n";
        let (gb, _, _) = GB18030.encode(text);
        let (table, problems) = csv(&gb, &TableOptions::default());
        assert!(problems.is_empty(), "{problems:?}");
        let table = table.unwrap();
        assert_eq!(table.rows[0].cells[1], "甲状腺乳头状癌");
        assert_eq!(table.record.encoding.as_deref(), Some("gb18030"));
        let gbk = parse_encoding("GBK").unwrap();
        let (table, problems) = csv(
            &gb,
            &TableOptions {
                encoding: Some(gbk),
                ..TableOptions::default()
            },
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(table.unwrap().record.encoding.as_deref(), Some("GBK"));
    }

    #[test]
    fn utf16_with_a_bom_is_read() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "case_id;age\r\nC1;45\r\n".encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        let (table, problems) = csv(&bytes, &TableOptions::default());
        assert!(problems.is_empty(), "{problems:?}");
        let table = table.unwrap();
        assert_eq!(table.header, ["case_id", "age"]);
        assert_eq!(table.rows[0].cells, ["C1", "45"]);
        assert_eq!(table.record.encoding.as_deref(), Some("UTF-16LE"));
        assert_eq!(table.record.delimiter.as_deref(), Some(";"));
    }

    #[test]
    fn undecodable_bytes_are_an_error_at_their_line() {
        let (table, problems) = csv(b"case_id\nC1\nC\xff2\n", &TableOptions::default());
        assert!(table.is_none());
        assert!(
            problems[0].starts_with("cases.csv:3: neither UTF-8 nor GB18030/GBK"),
            "{problems:?}"
        );
        let utf8 = TableOptions {
            encoding: Some(UTF_8),
            ..TableOptions::default()
        };
        let (_, problems) = csv(b"case_id\nC\xe91\n", &utf8);
        assert_eq!(
            problems,
            ["cases.csv:2: not UTF-8 text: a byte sequence there cannot be decoded"]
        );
    }

    #[test]
    fn delimiters_are_detected_and_a_wrong_one_is_hinted() {
        for (sep, want) in [
            (",", Delimiter::Comma),
            (";", Delimiter::Semicolon),
            ("\t", Delimiter::Tab),
        ] {
            let text = format!("case_id{sep}\"a,b;c\"{sep}age\nC1{sep}x{sep}4\n");
            let (table, _) = csv(text.as_bytes(), &TableOptions::default());
            let table = table.unwrap();
            assert_eq!(table.delimiter, Some(want), "{sep:?}");
            assert_eq!(table.header.len(), 3, "{sep:?}");
            assert!(table.delimiter_hint().is_none());
        }
        let forced = TableOptions {
            delimiter: Some(Delimiter::Comma),
            ..TableOptions::default()
        };
        let (table, _) = csv(b"case_id;split;age\nC1;train;4\n", &forced);
        let hint = table.unwrap().delimiter_hint().unwrap().to_string();
        assert_eq!(
            hint,
            "cases.csv:1: the header was split at ',' into 1 column(s) but holds 2 ';': if ';' is the delimiter, give --delimiter semicolon"
        );
    }

    #[test]
    fn spreadsheet_cells_read_as_a_csv_export_would() {
        use chrono::NaiveDate;
        let cases = [
            (Data::Float(45.0), "45"),
            (Data::Float(9.6), "9.6"),
            (Data::Int(3), "3"),
            (Data::Bool(true), "yes"),
            (Data::String("lung".into()), "lung"),
            (
                Data::DateTimeIso("2020-01-02T00:00:00".into()),
                "2020-01-02",
            ),
            (Data::Empty, ""),
        ];
        for (cell, want) in cases {
            assert_eq!(cell_text(&cell).unwrap(), want, "{cell:?}");
        }
        let serial = NaiveDate::from_ymd_opt(2019, 3, 4)
            .unwrap()
            .signed_duration_since(NaiveDate::from_ymd_opt(1899, 12, 30).unwrap())
            .num_days() as f64;
        let date = Data::DateTime(calamine::ExcelDateTime::new(
            serial,
            calamine::ExcelDateTimeType::DateTime,
            false,
        ));
        assert_eq!(cell_text(&date).unwrap(), "2019-03-04");
        assert!(
            cell_text(&Data::Error(calamine::CellErrorType::Div0))
                .unwrap_err()
                .contains("#DIV/0!")
        );
    }
}
