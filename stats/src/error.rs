//! The crate's one error type, and where in an input a problem was found.

use std::fmt;
use std::path::PathBuf;

/// Where in a predictions source a problem lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// One cell of a CSV source: its line (the header is line 1) and column name.
    Cell {
        /// Line number, header = 1.
        line: u64,
        /// Column name as written in the header.
        column: String,
    },
    /// A whole line of a CSV source (header = line 1).
    Line(u64),
    /// A column of the source as a whole.
    Column(String),
    /// A case given in memory: its 0-based position and a column.
    Case {
        /// Position of the case in the list it was given in (0-based).
        index: usize,
        /// Column (field) name.
        column: String,
    },
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Cell { line, column } => write!(f, "line {line}, column \"{column}\""),
            Where::Line(line) => write!(f, "line {line}"),
            Where::Column(column) => write!(f, "column \"{column}\""),
            Where::Case { index, column } => write!(f, "case #{}, field \"{column}\"", index + 1),
        }
    }
}

/// Everything that can go wrong in nodal-stats.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The predictions file could not be opened or read.
    #[error("{file}: cannot read: {err}")]
    Read {
        /// The file or source name.
        file: String,
        /// The I/O error.
        #[source]
        err: std::io::Error,
    },
    /// A value, row or column of the predictions is not valid.
    #[error("{file}: {at}: {message}")]
    Invalid {
        /// The file or source name.
        file: String,
        /// Where in the source.
        at: Where,
        /// What is wrong, naming the offending value.
        message: String,
    },
    /// The predictions as a whole cannot be used (no rows, no class columns...).
    #[error("{file}: {message}")]
    Unusable {
        /// The file or source name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// An analysis option does not fit the data or is malformed.
    #[error("option {option}: {message}")]
    BadOption {
        /// The option, as spelled on the command line (e.g. `--reference`).
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A chart of the report could not be drawn.
    #[error("report: cannot draw the {chart}: {message}")]
    Plot {
        /// Which chart.
        chart: &'static str,
        /// The drawing backend's message.
        message: String,
    },
    /// A result file could not be written.
    #[error("cannot write {}: {err}", path.display())]
    Write {
        /// The path being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        err: std::io::Error,
    },
    /// The metrics could not be serialised to JSON.
    #[error("cannot serialise metrics.json: {0}")]
    Json(#[from] serde_json::Error),
}
