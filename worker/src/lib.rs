//! nodal's worker: consumes jobs, reads their tiles from the object store
//! (a few ranged reads of tile shards per job, each tile checked),
//! decodes them on a CPU pool, batches tiles across jobs, runs ONNX Runtime
//! on a dedicated thread per model, folds tile outputs into per-case partial
//! aggregates, publishes each result with confirms and then acks its job.
//!
//! ```text
//! broker ──prefetch──▶ job tasks ──▶ ranged reads of shards ──▶ decode (CPU pool)
//!                                                                   │ bounded
//!   ack ◀── publish ◀── fold per case ◀── oneshot ◀── inference ◀── batcher
//!                                                   thread (ort)  (size, deadline)
//! ```
//!
//! A pipeline is [`run_worker`]; a worker process, its pipelines and
//! endpoints, is [`serve`]; the models ([`runtime`], [`model`]) and
//! tile preprocessing ([`preprocess`]) are usable on their own; [`throughput`]
//! measures the pipeline (`nodal bench`, `cargo bench --bench throughput`).

mod archives;
mod batch;
mod batcher;
pub mod config;
mod cpu_pool;
pub mod error;
mod fetch;
mod hand_back;
pub mod health;
pub mod http;
mod inference;
mod job;
mod metered_store;
pub mod metrics;
pub mod model;
mod model_cache;
mod pipeline;
pub mod preprocess;
pub mod probe;
mod process;
mod ranges;
pub mod runtime;
mod service;
pub mod throughput;
mod tile;

pub use config::WorkerConfig;
pub use error::{ErrorKind, WorkerError};
pub use health::Health;
pub use metrics::WorkerMetrics;
pub use model::Model;
pub use process::serve;
pub use runtime::{Device, Runtime, RuntimeConfig};
pub use service::{WorkerDeps, WorkerSummary, run_worker};
