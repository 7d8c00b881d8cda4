//! `nodal token new`: mint an API token and print its configuration entry.

use crate::auth::{Role, new_token};
use clap::{Args, ValueEnum};

/// Roles a token can have.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Submits and sees its own site's archives.
    Site,
    /// Reads runs and results.
    Analyst,
    /// Creates runs and sees everything.
    Operator,
}

/// Options of `nodal token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Who holds the token (recorded in the entry and in audit logs).
    #[arg(long)]
    pub name: String,
    /// What the token may do.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The site, for a site token.
    #[arg(long, required_if_eq("role", "site"))]
    pub site: Option<String>,
}

/// Print a new token (once, to stdout) and the JSON entry for the tokens file (to stderr).
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let role = match args.role {
        RoleArg::Site => {
            let site = args.site.unwrap_or_default();
            if let Some(problem) = crate::submit::archive_id::site_problem(&site) {
                anyhow::bail!("--site: {problem}");
            }
            Role::Site { site }
        }
        RoleArg::Analyst => Role::Analyst,
        RoleArg::Operator => Role::Operator,
    };
    let (token, entry) = new_token(&args.name, role);
    eprintln!("add this entry to the coordinator's tokens file:");
    eprintln!("{}", serde_json::to_string(&entry)?);
    println!("{token}");
    Ok(())
}
