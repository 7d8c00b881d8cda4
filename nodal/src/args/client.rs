//! `ClientArgs`: where the coordinator's API is and how to reach it
//! (`nodal status`, `nodal results`).

use super::TokenArgs;
use clap::Args;
use nodal_common::tls::HttpClientSettings;
use std::path::PathBuf;
use std::time::Duration;

/// Seconds allowed to open a connection to the coordinator.
const CONNECT_TIMEOUT_SECS: u64 = 10;
/// Seconds allowed for one API request (a result file download included).
const REQUEST_TIMEOUT_SECS: u64 = 300;

/// Where the coordinator is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the coordinator API.
    #[arg(
        long,
        env = "NODAL_COORDINATOR",
        default_value = "http://127.0.0.1:8080"
    )]
    pub coordinator: String,
    /// The token.
    #[command(flatten)]
    pub token: TokenArgs,
    /// PEM file of CA certificates to trust for an https:// coordinator, in
    /// addition to the system's roots.
    #[arg(long, env = "NODAL_COORDINATOR_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

impl ClientArgs {
    /// How the API client connects.
    pub fn http_settings(&self) -> HttpClientSettings {
        HttpClientSettings {
            connect_timeout: Duration::from_secs(CONNECT_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(REQUEST_TIMEOUT_SECS),
            ca_file: self.ca_file.clone(),
            ca_only: false,
        }
    }
}
