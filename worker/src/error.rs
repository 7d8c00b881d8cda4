//! The one error type of nodal-worker.

use std::path::PathBuf;

/// What can go wrong loading and running models and preparing their inputs.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The ONNX Runtime library could not be found.
    #[error(
        "ONNX Runtime library not found (looked for {tried}); run `scripts/setup.sh ort`, \
         or set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1"
    )]
    RuntimeMissing {
        /// The places searched, separated by `; `.
        tried: String,
    },
    /// The ONNX Runtime library was found but could not be loaded.
    #[error("cannot load ONNX Runtime from {}: {message}", path.display())]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },
    /// The execution provider asked for cannot be used.
    #[error("execution provider {provider} unavailable: {message}")]
    Provider {
        /// `cuda` or `cpu`.
        provider: &'static str,
        /// Why.
        message: String,
    },
    /// An ONNX Runtime call failed.
    #[error("onnx runtime: {context}: {source}")]
    Ort {
        /// What was being done.
        context: String,
        /// The error ONNX Runtime gave.
        #[source]
        source: ort::Error,
    },
    /// A model file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `card.json` is not a valid model card.
    #[error("model card {origin}: {source}")]
    Card {
        /// Where the card came from.
        origin: String,
        /// The parse error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The ONNX bytes do not hash to the card's `onnx_sha256`.
    #[error(
        "model {model}: ONNX sha256 {actual} does not match the card's {expected}; refusing to load"
    )]
    HashMismatch {
        /// Model name.
        model: String,
        /// Hash in the card.
        expected: String,
        /// Hash of the bytes.
        actual: String,
    },
    /// The graph and the card disagree, or the card contradicts itself.
    #[error("model {model}: {message}")]
    CardMismatch {
        /// Model name.
        model: String,
        /// What differs.
        message: String,
    },
    /// An input passed to [`crate::model::Model::run`] has the wrong shape or is missing.
    #[error("model {model}: input {input:?}: {message}")]
    BadInput {
        /// Model name.
        model: String,
        /// The graph input.
        input: String,
        /// What is wrong.
        message: String,
    },
    /// A tile could not be decoded or does not fit the model.
    #[error("tile: {0}")]
    Tile(#[from] crate::preprocess::TileError),
    /// An object-store operation failed (its kind says whether to retry).
    #[error(transparent)]
    Store(#[from] nodal_common::store::StoreError),
    /// A broker operation failed.
    #[error(transparent)]
    Broker(#[from] nodal_common::broker::BrokerError),
    /// A job names an archive whose manifest is not in the store.
    #[error("archive {archive_id:?} has no manifest at {key}")]
    MissingArchive {
        /// The archive the job names.
        archive_id: String,
        /// The manifest key looked up.
        key: String,
    },
    /// The model a job names is not the one its card describes.
    #[error(
        "model {model}: the job expects ONNX sha256 {expected}, the card at {card_key} says {card}"
    )]
    ModelRefMismatch {
        /// Model name.
        model: String,
        /// Where the card was read.
        card_key: String,
        /// The hash the job carries.
        expected: String,
        /// The hash in the card.
        card: String,
    },
    /// The worker's settings are unusable.
    #[error("worker configuration: {0}")]
    Config(String),
}

/// What an error means for the job that met it, and for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retrying may help: the job goes back to the queue.
    Transient,
    /// The job can never succeed: it goes to the dead-letter queue.
    Permanent,
    /// This worker cannot run anything (no runtime, no such device): the job
    /// goes back to the queue for another worker and this one stops.
    Fatal,
}

impl WorkerError {
    /// Whether to requeue, dead-letter, or stop the worker.
    pub fn kind(&self) -> ErrorKind {
        use nodal_common::store::StoreErrorKind;
        match self {
            WorkerError::RuntimeMissing { .. }
            | WorkerError::RuntimeLoad { .. }
            | WorkerError::Provider { .. }
            | WorkerError::Config(_) => ErrorKind::Fatal,
            WorkerError::Ort { .. } | WorkerError::Io { .. } => ErrorKind::Transient,
            WorkerError::Store(e) => match e.kind {
                StoreErrorKind::Transient | StoreErrorKind::Denied => ErrorKind::Transient,
                StoreErrorKind::NotFound | StoreErrorKind::Permanent => ErrorKind::Permanent,
            },
            WorkerError::Broker(e) if e.transient => ErrorKind::Transient,
            WorkerError::Broker(_) => ErrorKind::Permanent,
            WorkerError::Card { .. }
            | WorkerError::HashMismatch { .. }
            | WorkerError::CardMismatch { .. }
            | WorkerError::BadInput { .. }
            | WorkerError::Tile(_)
            | WorkerError::MissingArchive { .. }
            | WorkerError::ModelRefMismatch { .. } => ErrorKind::Permanent,
        }
    }

    /// True for a store that is unavailable for now (a transient store
    /// error that outlasted the retries): what hands a job back.
    pub fn is_store_unavailable(&self) -> bool {
        matches!(self, WorkerError::Store(e) if e.is_transient())
    }

    /// Wrap an ONNX Runtime error with what was being done.
    pub(crate) fn ort(context: impl Into<String>) -> impl FnOnce(ort::Error) -> WorkerError {
        let context = context.into();
        move |source| WorkerError::Ort { context, source }
    }
}
