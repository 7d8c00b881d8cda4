//! Bearer-token access control for the coordinator API.
//!
//! Tokens are configured as SHA-256 hashes (never in plain text) with a role:
//! a *site* token reaches its own site's archives, an *analyst* token reads
//! runs and results, an *operator* token creates runs and sees everything.
//! A presented token is hashed and compared in constant time with every
//! configured hash; tokens never reach logs. The same roles decide what the
//! object proxy (`/store`) lets a token touch: see [`Principal::store_access`].

use nodal_types::layout::{self, site_archives_prefix};
use serde::{Deserialize, Serialize};
use std::path::Path;
use subtle::ConstantTimeEq;

/// The environment variable that may hold the tokens JSON inline (instead
/// of a file; e.g. from a Kubernetes secret).
pub const TOKENS_ENV: &str = "NODAL_TOKENS";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    /// A submitting site: its own archives only.
    Site {
        /// The site's name (as in archive ids).
        site: String,
    },
    /// Reads runs and result files.
    Analyst,
    /// Creates runs and sees everything.
    Operator,
}

/// One configured token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Who holds it (for logs and audits).
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// What it may do.
    #[serde(flatten)]
    pub role: Role,
}

/// The caller a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token holder's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// May create and cancel runs.
    pub fn can_manage_runs(&self) -> bool {
        self.role == Role::Operator
    }

    /// May read runs and their result files.
    pub fn can_read_runs(&self) -> bool {
        matches!(self.role, Role::Operator | Role::Analyst)
    }

    /// May see (and announce) archives of `site`.
    pub fn can_access_site(&self, site: &str) -> bool {
        match &self.role {
            Role::Operator => true,
            Role::Site { site: own } => own == site,
            Role::Analyst => false,
        }
    }

    /// May list archives at all.
    pub fn can_list_archives(&self) -> bool {
        !matches!(self.role, Role::Analyst)
    }

    /// May `op` the object `key` (or, for [`StoreOp::List`], every key under
    /// the prefix `key`) through the coordinator's object proxy. An operator
    /// may do anything; a site may read, write and list keys under
    /// `archives/<site>.` only (never delete: it replaces an archive by
    /// submitting again); an analyst nothing (results come from `/runs`).
    /// The refusal says why, naming the token's site and the key's.
    pub fn store_access(&self, op: StoreOp, key: &str) -> Result<(), String> {
        match &self.role {
            Role::Operator => Ok(()),
            Role::Analyst => Err(
                "analyst tokens may not use the object store (read results through /runs/{run_id}/files)"
                    .into(),
            ),
            Role::Site { site } => {
                if op == StoreOp::Delete {
                    return Err(format!(
                        "site tokens may not delete objects (site {site:?}: submit again to replace an archive)"
                    ));
                }
                let own = site_archives_prefix(site);
                if key.starts_with(&own) {
                    return Ok(());
                }
                let whose = layout::site_of_key(key);
                Err(match whose {
                    Some(other) => format!(
                        "a token of site {site:?} may not {} {key:?}: it belongs to site {other:?}; a site token reaches only keys under {own:?}",
                        op.verb()
                    ),
                    None => format!(
                        "a token of site {site:?} may not {} {key:?}: a site token reaches only keys under {own:?}",
                        op.verb()
                    ),
                })
            }
        }
    }
}

/// What a request to the object proxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// GET an object.
    Get,
    /// HEAD an object.
    Head,
    /// PUT an object.
    Put,
    /// DELETE an object.
    Delete,
    /// List a prefix.
    List,
}

impl StoreOp {
    /// The operation as a verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            StoreOp::Get | StoreOp::Head => "read",
            StoreOp::Put => "write",
            StoreOp::Delete => "delete",
            StoreOp::List => "list",
        }
    }
}

/// Why the token configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The file could not be read.
    #[error("tokens file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON is malformed.
    #[error("tokens {origin}: {message}")]
    Parse {
        /// File path or environment variable.
        origin: String,
        /// What is wrong (serde's message, with line and column).
        message: String,
    },
    /// An entry is invalid.
    #[error("tokens {origin}: entry {index} ({name:?}): {message}")]
    Entry {
        /// File path or environment variable.
        origin: String,
        /// 0-based index of the entry.
        index: usize,
        /// The entry's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    entries: Vec<(Vec<u8>, Principal)>,
}

impl TokenStore {
    /// Parse a JSON list of [`TokenEntry`]; `origin` names the source in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<Self, AuthConfigError> {
        let entries: Vec<TokenEntry> =
            serde_json::from_str(json).map_err(|e| AuthConfigError::Parse {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        let mut out = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let bad = |message: &str| AuthConfigError::Entry {
                origin: origin.to_string(),
                index,
                name: e.name.clone(),
                message: message.to_string(),
            };
            let hash = hex::decode(&e.token_sha256)
                .ok()
                .filter(|h| h.len() == 32)
                .ok_or_else(|| bad("token_sha256 must be 64 hex digits"))?;
            if let Role::Site { site } = &e.role
                && nodal_types::archive_id::site_problem(site).is_some()
            {
                return Err(bad("site must match [a-z0-9][a-z0-9-]{0,31}"));
            }
            out.push((
                hash,
                Principal {
                    name: e.name,
                    role: e.role,
                },
            ));
        }
        Ok(Self { entries: out })
    }

    /// Read a tokens file.
    pub fn from_file(path: &Path) -> Result<Self, AuthConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// The tokens from exactly one source: a file (`--tokens-file`) or the
    /// inline JSON of the environment variable [`TOKENS_ENV`]. `Ok(None)`
    /// when neither is given; both at once is an error.
    pub fn from_sources(
        file: Option<&Path>,
        inline: Option<&str>,
    ) -> Result<Option<Self>, AuthConfigError> {
        match (file, inline) {
            (Some(path), None) => Self::from_file(path).map(Some),
            (None, Some(json)) => Self::from_json(json, &format!("env {TOKENS_ENV}")).map(Some),
            (None, None) => Ok(None),
            (Some(path), Some(_)) => Err(AuthConfigError::Parse {
                origin: path.display().to_string(),
                message: format!("give the tokens in a file or in {TOKENS_ENV}, not both"),
            }),
        }
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal a presented token belongs to. Every entry is compared
    /// (in constant time) so the time taken does not reveal which matched.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let presented = sha256(token.as_bytes());
        let mut found = None;
        for (hash, principal) in &self.entries {
            if bool::from(hash.as_slice().ct_eq(&presented)) && found.is_none() {
                found = Some(principal.clone());
            }
        }
        found
    }
}

/// A new random token and its configuration entry.
pub fn new_token(name: &str, role: Role) -> (String, TokenEntry) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("ndl_{}", hex::encode(bytes));
    let entry = TokenEntry {
        name: name.to_string(),
        token_sha256: hex::encode(sha256(token.as_bytes())),
        role,
    };
    (token, entry)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (TokenStore, String, String, String) {
        let (site, e1) = new_token(
            "cy-a uploader",
            Role::Site {
                site: "cy-a".into(),
            },
        );
        let (analyst, e2) = new_token("stats team", Role::Analyst);
        let (operator, e3) = new_token("ops", Role::Operator);
        let json = serde_json::to_string(&vec![e1, e2, e3]).unwrap();
        (
            TokenStore::from_json(&json, "test").unwrap(),
            site,
            analyst,
            operator,
        )
    }

    #[test]
    fn tokens_map_to_their_roles_and_rights() {
        let (tokens, site, analyst, operator) = store();
        let s = tokens.authenticate(&site).unwrap();
        assert!(s.can_access_site("cy-a") && !s.can_access_site("cy-b"));
        assert!(!s.can_read_runs() && !s.can_manage_runs());
        let a = tokens.authenticate(&analyst).unwrap();
        assert!(a.can_read_runs() && !a.can_manage_runs() && !a.can_access_site("cy-a"));
        let o = tokens.authenticate(&operator).unwrap();
        assert!(o.can_read_runs() && o.can_manage_runs() && o.can_access_site("cy-b"));
        assert_eq!(tokens.authenticate("ndl_wrong"), None);
        assert_eq!(tokens.authenticate(""), None);
    }

    #[test]
    fn the_store_proxy_follows_the_roles() {
        let (tokens, site, analyst, operator) = store();
        let s = tokens.authenticate(&site).unwrap();
        let own = "archives/cy-a.0123456789abcdef/manifest.json";
        for op in [StoreOp::Get, StoreOp::Head, StoreOp::Put, StoreOp::List] {
            assert_eq!(s.store_access(op, own), Ok(()), "{op:?}");
        }
        assert_eq!(s.store_access(StoreOp::List, "archives/cy-a."), Ok(()));
        let err = s
            .store_access(StoreOp::Put, "archives/cy-b.0123456789abcdef/manifest.json")
            .unwrap_err();
        assert!(
            err.contains("\"cy-a\"") && err.contains("\"cy-b\""),
            "{err}"
        );
        for key in [
            "archives/cy-ab.0123456789abcdef/manifest.json",
            "archives/cy-a",
            "archives/",
            "",
            "runs/x/run.json",
            "models/m/1/card.json",
        ] {
            assert!(s.store_access(StoreOp::Get, key).is_err(), "{key:?}");
            assert!(s.store_access(StoreOp::List, key).is_err(), "{key:?}");
        }
        assert!(
            s.store_access(StoreOp::Delete, own)
                .unwrap_err()
                .contains("delete")
        );
        let a = tokens.authenticate(&analyst).unwrap();
        assert!(a.store_access(StoreOp::Get, "runs/x/run.json").is_err());
        assert!(a.store_access(StoreOp::List, "").is_err());
        let o = tokens.authenticate(&operator).unwrap();
        for op in [StoreOp::Get, StoreOp::Put, StoreOp::Delete, StoreOp::List] {
            assert_eq!(o.store_access(op, "runs/x/run.json"), Ok(()));
        }
    }

    #[test]
    fn tokens_come_from_one_source() {
        let (_, e) = new_token("ops", Role::Operator);
        let json = serde_json::to_string(&vec![e]).unwrap();
        let inline = TokenStore::from_sources(None, Some(&json))
            .unwrap()
            .unwrap();
        assert_eq!(inline.len(), 1);
        assert!(TokenStore::from_sources(None, None).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, &json).unwrap();
        assert_eq!(
            TokenStore::from_sources(Some(&path), None)
                .unwrap()
                .unwrap()
                .len(),
            1
        );
        let both = TokenStore::from_sources(Some(&path), Some(&json))
            .unwrap_err()
            .to_string();
        assert!(both.contains("not both"), "{both}");
        let err = TokenStore::from_sources(None, Some("[\n  {\"name\": }\n]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("env NODAL_TOKENS") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TokenStore::from_json(
            r#"[{"name":"x","token_sha256":"abc","role":"analyst"}]"#,
            "tokens.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("tokens.json") && err.contains("entry 0") && err.contains("64 hex"),
            "{err}"
        );
        let err = TokenStore::from_json(r#"[{"name":"x","role":"wizard"}]"#, "env NODAL_TOKENS")
            .unwrap_err()
            .to_string();
        assert!(err.contains("env NODAL_TOKENS"), "{err}");
        let hash = "0".repeat(64);
        let err = TokenStore::from_json(
            &format!(r#"[{{"name":"x","token_sha256":"{hash}","role":"site","site":"Bad Site"}}]"#),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("site must match"), "{err}");
    }
}
