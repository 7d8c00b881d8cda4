//! What every handler shares: the engine (while this coordinator leads),
//! the store, who may call, the metrics registry and the object proxy's
//! settings.

use super::ApiError;
use crate::auth::TokenStore;
use crate::run::engine::Engine;
use axum::http::StatusCode;
use nodal_common::store::SharedStore;
use prometheus::Registry;
use std::sync::Arc;
use tokio::sync::watch;

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
    /// The run engine while this coordinator holds the lease, else `None`
    /// (standing by).
    pub engine: watch::Receiver<Option<Engine>>,
    /// The object store (the proxy serves it whether leading or not).
    pub store: SharedStore,
    /// Access control.
    pub access: Access,
    /// The process's metrics registry, served at /metrics.
    pub registry: Registry,
    /// The object proxy's settings (`/store`).
    pub proxy: ProxyConfig,
}

impl ApiState {
    /// The engine, or `503` while another coordinator leads.
    pub fn engine(&self) -> Result<Engine, ApiError> {
        self.engine.borrow().clone().ok_or_else(standby)
    }
}

/// `503 standby`: another coordinator holds the lease.
fn standby() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "standby",
        "this coordinator is standing by: another one holds the lease",
    )
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
