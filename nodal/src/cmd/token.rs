//! `nodal token`: mint an API token and add its entry to a tokens file.

use anyhow::Context;
use clap::{Args, ValueEnum};
use nodal_coordinator::auth::{Role, TokenEntry, new_token};
use std::path::PathBuf;

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
    /// The coordinator's tokens file: the entry (the token's hash, never the
    /// token) is added to it, creating it if needed. Without it, the entry is
    /// printed to standard error.
    #[arg(long, env = "NODAL_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
}

/// Print a new token (once, to standard output) and record its entry.
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let role = match args.role {
        RoleArg::Site => {
            let site = args.site.unwrap_or_default();
            if let Some(problem) = nodal_types::archive_id::site_problem(&site) {
                anyhow::bail!("--site: {problem}");
            }
            Role::Site { site }
        }
        RoleArg::Analyst => Role::Analyst,
        RoleArg::Operator => Role::Operator,
    };
    let (token, entry) = new_token(&args.name, role);
    match &args.tokens_file {
        Some(path) => {
            let mut entries: Vec<TokenEntry> = match std::fs::read_to_string(path) {
                Ok(text) => serde_json::from_str(&text).with_context(|| {
                    format!("{}: not a tokens file (a JSON list)", path.display())
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            if entries.iter().any(|e| e.name == entry.name) {
                anyhow::bail!(
                    "{} already has a token named {:?}",
                    path.display(),
                    entry.name
                );
            }
            entries.push(entry);
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&entries)?)
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("added {:?} to {}", args.name, path.display());
        }
        None => {
            eprintln!("add this entry to the coordinator's tokens file:");
            eprintln!("{}", serde_json::to_string(&entry)?);
        }
    }
    println!("{token}");
    Ok(())
}
