//! `TokenArgs`: the bearer token for the coordinator, whether it is reached
//! as the API (`nodal status`, `nodal results`) or as the object proxy
//! (`--store http(s)://…`).

use clap::Args;

/// A bearer token for the coordinator.
#[derive(Clone, Args)]
pub struct TokenArgs {
    /// Bearer token for the coordinator (its API, or its object proxy as
    /// an http(s):// store: a site token submits its own site's archives).
    #[arg(long = "token", env = "NODAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl std::fmt::Debug for TokenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.token.as_ref().map(|_| "<hidden>");
        f.debug_struct("TokenArgs").field("token", &shown).finish()
    }
}
