//! What nodal's coordinator and workers must agree on, and nothing else:
//! the wire messages, archive manifests, model cards, the object-store and
//! broker adapters behind small traits, and telemetry setup.

pub mod broker;
pub mod locate;
pub mod manifest;
pub mod model_card;
pub mod partial;
pub mod retry;
pub mod store;
pub mod study;
pub mod telemetry;
pub mod tls;
pub mod wire;

/// nodal's version, recorded in manifests and run provenance.
pub const NODAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Hex-encoded SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
