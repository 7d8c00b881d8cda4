//! A problem found in a site folder, naming the file, line and field.

use serde::Serialize;
use std::fmt;

/// One thing wrong with a site folder: where it is and what it is.
/// Displayed as `cases.csv:14: age: "4x" is not an integer`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// Path relative to the site folder (`cases.csv`, `images/C1/1.jpg`, …).
    pub file: String,
    /// Line in the file (1-based; the CSV header is line 1), or the row of
    /// a spreadsheet, when known.
    pub line: Option<u64>,
    /// The spreadsheet cell (`B7`), for problems in an `.xlsx` table.
    pub cell: Option<String>,
    /// The column or JSON field concerned, when there is one.
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl Problem {
    /// A problem with a whole file.
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            cell: None,
            field: None,
            message: message.into(),
        }
    }

    /// A problem at a line of a file.
    pub fn at(file: &str, line: u64, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            ..Self::file(file, message)
        }
    }

    /// A problem with the spreadsheet cell `cell` (`B7`) of row `line`.
    pub fn cell(
        file: &str,
        line: u64,
        cell: String,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            cell: Some(cell),
            ..Self::field(file, Some(line), field, message)
        }
    }

    /// A problem with a field at a line of a file.
    pub fn field(file: &str, line: Option<u64>, field: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            field: Some(field.to_owned()),
            ..Self::file(file, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        match (&self.cell, self.line) {
            (Some(cell), _) => write!(f, ":{cell}")?,
            (None, Some(line)) => write!(f, ":{line}")?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_field_message() {
        let p = Problem::field("cases.csv", Some(14), "age", "\"4x\" is not an integer");
        assert_eq!(p.to_string(), "cases.csv:14: age: \"4x\" is not an integer");
        let p = Problem::field("reports/C1.json", None, "tirads", "missing");
        assert_eq!(p.to_string(), "reports/C1.json: tirads: missing");
        assert_eq!(
            Problem::at("cases.csv", 3, "x").to_string(),
            "cases.csv:3: x"
        );
        assert_eq!(
            Problem::file("images/a.jpg", "empty").to_string(),
            "images/a.jpg: empty"
        );
        let p = Problem::cell("cases.xlsx!Sheet1", 7, "C7".into(), "age", "bad");
        assert_eq!(p.to_string(), "cases.xlsx!Sheet1:C7: age: bad");
    }
}
