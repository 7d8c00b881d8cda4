//! Why a submission failed.

use super::problem::Problem;
use nodal_common::store::StoreError;
use std::path::PathBuf;

/// A failed submission. [`SubmitError::Invalid`] means nothing was uploaded.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// An option is unusable (site name, thresholds, concurrency).
    #[error("{0}")]
    Options(String),
    /// The site folder has problems; nothing was uploaded.
    #[error("{}", invalid_message(.dir, .problems))]
    Invalid {
        /// The site folder.
        dir: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A source file could not be read again, or changed, while tiling.
    #[error("{path}: {message}")]
    Source {
        /// Path relative to the site folder.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] StoreError),
    /// The manifest could not be encoded.
    #[error("manifest {key}: {source}")]
    Manifest {
        /// The manifest's key.
        key: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A worker task of the stage died (a bug): its message.
    #[error("the {stage} stage stopped: {message}")]
    Task {
        /// The stage (`scan`, `qc`, `tiling`).
        stage: &'static str,
        /// Why it stopped.
        message: String,
    },
}

fn invalid_message(dir: &std::path::Path, problems: &[Problem]) -> String {
    let mut text = format!(
        "site folder {} is not usable: {} problem{} (nothing was uploaded)",
        dir.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        text += &format!("\n  {p}");
    }
    text
}
