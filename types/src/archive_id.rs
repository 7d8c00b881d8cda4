//! Site names and archive ids: `<site>.<16 hex>`, the site that submitted
//! the archive and the start of a digest over what it holds (computed by
//! `nodal submit`). Site names hold no dots, so the site of an id is what
//! comes before its first dot.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest site name.
const MAX_SITE_LEN: usize = 32;
/// Hex digits of the digest in an archive id.
const DIGEST_HEX: usize = 16;

/// Why `site` is not a usable site name (`[a-z0-9][a-z0-9-]{0,31}`), or `None`.
pub fn site_problem(site: &str) -> Option<String> {
    let mut chars = site.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && site.len() <= MAX_SITE_LEN {
        None
    } else {
        Some(format!(
            "site name {site:?} is not usable: 1–32 characters of a–z, 0–9 and '-', not starting with '-'"
        ))
    }
}

/// A valid archive id, `<site>.<16 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArchiveId(String);

/// Why a string is not an archive id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id:?} is not an archive id (<site>.<16 hex digits>): {why}")]
pub struct ArchiveIdError {
    /// The string given.
    pub id: String,
    /// What is wrong with it.
    pub why: String,
}

impl ArchiveId {
    /// The id of an archive of `site` whose content digest is `digest_hex`
    /// (at least 16 hex digits; the first 16 are kept).
    pub fn from_digest(site: &str, digest_hex: &str) -> Result<Self, ArchiveIdError> {
        let digest = digest_hex.get(..DIGEST_HEX).unwrap_or(digest_hex);
        format!("{site}.{digest}").parse()
    }

    /// The submitting site.
    pub fn site(&self) -> &str {
        Self::site_of(&self.0).unwrap_or_default()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The site part of `id` (text before the first dot) when it is not
    /// empty, without checking the rest: for sorting keys by site.
    pub fn site_of(id: &str) -> Option<&str> {
        id.split_once('.')
            .map(|(site, _)| site)
            .filter(|site| !site.is_empty())
    }
}

impl FromStr for ArchiveId {
    type Err = ArchiveIdError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let err = |why: String| ArchiveIdError {
            id: id.to_string(),
            why,
        };
        let (site, digest) = id
            .split_once('.')
            .ok_or_else(|| err("there is no '.' after the site".into()))?;
        if let Some(problem) = site_problem(site) {
            return Err(err(problem));
        }
        let hex = digest.len() == DIGEST_HEX
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(err(format!(
                "{digest:?} after the site is not {DIGEST_HEX} lowercase hex digits"
            )));
        }
        Ok(ArchiveId(id.to_string()))
    }
}

impl TryFrom<String> for ArchiveId {
    type Error = ArchiveIdError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        id.parse()
    }
}

impl From<ArchiveId> for String {
    fn from(id: ArchiveId) -> String {
        id.0
    }
}

impl fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ArchiveId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names() {
        for ok in ["cy-a", "0", "site-42", &"a".repeat(32)] {
            assert_eq!(site_problem(ok), None, "{ok}");
        }
        for bad in ["", "-a", "Cy-a", "cy_a", "cy.a", &"a".repeat(33)] {
            assert!(site_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn ids_parse_and_name_their_site() {
        let id: ArchiveId = "cy-a.0123456789abcdef".parse().expect("valid");
        assert_eq!((id.site(), id.as_str()), ("cy-a", "cy-a.0123456789abcdef"));
        assert_eq!(
            ArchiveId::from_digest("cy-a", "0123456789abcdef99").expect("valid"),
            id
        );
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(json, "\"cy-a.0123456789abcdef\"");
        assert_eq!(
            serde_json::from_str::<ArchiveId>(&json).expect("parses"),
            id
        );
        for (bad, why) in [
            ("cy-a", "no '.'"),
            ("Cy-a.0123456789abcdef", "site name"),
            (".0123456789abcdef", "site name"),
            ("cy-a.0123456789ABCDEF", "hex"),
            ("cy-a.0123", "hex"),
            ("cy-a.0123456789abcdef/x", "hex"),
        ] {
            let err = bad.parse::<ArchiveId>().unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<ArchiveId>("\"cy-a\"").is_err());
        assert_eq!(ArchiveId::site_of("cy-a.x"), Some("cy-a"));
        assert_eq!(ArchiveId::site_of(".x"), None);
    }
}
