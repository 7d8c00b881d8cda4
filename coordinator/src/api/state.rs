//! What every handler shares: the engine, who may call, the metrics registry
//! and the object proxy's settings.

use crate::auth::TokenStore;
use crate::run::engine::Engine;
use prometheus::Registry;
use std::sync::Arc;

/// Who may call the API.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every request needs a bearer token from this store.
    Tokens(Arc<TokenStore>),
    /// No authentication: every caller is an operator. Only for local use.
    Open,
}

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The run engine.
    pub engine: Engine,
    /// Access control.
    pub access: Access,
    /// The process's metrics registry, served at /metrics.
    pub registry: Registry,
    /// The object proxy's settings (`/store`).
    pub proxy: ProxyConfig,
}

/// Default largest body a PUT may carry, in MiB. Tiles are tens of KiB; a
/// manifest is about 12 KiB per case (2,500 cases ≈ 30 MiB).
pub const DEFAULT_MAX_BODY_MIB: usize = 128;

/// Settings of the object proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Largest PUT body, in bytes; larger ones get `413`.
    pub max_body: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY_MIB * 1024 * 1024,
        }
    }
}
