//! What every side of nodal must agree on, and nothing that does I/O: the
//! wire messages, archive manifests and their tile shards, model cards, the studies and their
//! tasks, partial aggregates, the bucket layout (every object key, built and
//! parsed in one place) and archive ids.

pub mod ajcc;
pub mod archive_id;
pub mod layout;
pub mod manifest;
pub mod model_card;
pub mod partial;
pub mod shard;
pub mod study;
pub mod text;
pub mod wire;

/// nodal's version, recorded in manifests and run provenance.
pub const NODAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Hex-encoded SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
