//! The one error type of nodal-synth.

use std::path::PathBuf;

/// Why `nodal synth` could not write its archives.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An option is out of range.
    #[error("invalid {option}: {reason}")]
    InvalidConfig {
        /// The option, as named on the command line.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The study folder exists already; synth never mixes old and new files.
    #[error("{}: already exists; choose a new --out folder or remove this one", path.display())]
    AlreadyExists {
        /// The existing folder.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding an image failed.
    #[error("{}: cannot encode image: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: jpeg_encoder::EncodingError,
    },
    /// Writing a CSV file failed.
    #[error("{}: cannot write CSV: {source}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// Writing a JSON file failed.
    #[error("{}: cannot write JSON: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}
