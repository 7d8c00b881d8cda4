//! Real servers for the tests and `nodal bench`, no mocks: an S3 server
//! ([`S3Server`], s3s-fs in a temporary folder), RabbitMQ helpers (unique
//! queue names per run, cleanup, closing a test's connections, a node of a
//! test's own to kill: [`RabbitNode`]), a loopback [`Partition`], real
//! `nodal` processes ([`NodalProcess`]), reading `/metrics`
//! ([`prom::sample`]), the repository root, and small typed builders of
//! manifests and cards for unit tests ([`fixtures`]).

pub mod fixtures;
mod partition;
mod process;
pub mod prom;
mod rabbit;
mod rabbit_node;
mod s3_server;

pub use partition::Partition;
pub use process::{NodalProcess, nodal_binary, peak_rss_bytes, rss_bytes};
pub use rabbit::{UniqueQueues, amqp_url, close_connections};
pub use rabbit_node::RabbitNode;
pub use s3_server::S3Server;

use std::path::PathBuf;

/// The repository root (the folder holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let tests_crate = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests_crate
        .parent()
        .map_or(tests_crate.clone(), PathBuf::from)
}

/// A short random lowercase hex string, for unique names.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
