//! Nothing to use: this crate exists for its `Cargo.toml` (feature pinning;
//! see there).
