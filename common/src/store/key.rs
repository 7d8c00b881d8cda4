//! The one rule for object keys and list prefixes, shared by every store so
//! that a key valid on a laptop is valid on S3 and the other way round.

use super::{StoreError, StoreErrorKind};

/// Longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Why `key` is not a valid object key, or `None` when it is.
///
/// A key is a non-empty `/`-separated path of at most 1024 bytes: no leading
/// or trailing `/`, no empty, `.` or `..` segments, no backslash and no
/// control characters. Anything else (spaces, `+`, `%`, `=`, `@`, non-ASCII
/// letters…) is allowed.
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("the key is empty");
    }
    if key.ends_with('/') {
        return Some("a key must not end with '/'");
    }
    path_problem(key)
}

/// Why `prefix` is not a valid list prefix, or `None` when it is.
///
/// A prefix is empty or the start of a valid key: the same rules, except that
/// it may end with `/` or in the middle of a segment.
pub fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return None;
    }
    path_problem(prefix.strip_suffix('/').unwrap_or(prefix))
}

fn path_problem(path: &str) -> Option<&'static str> {
    if path.len() > MAX_KEY_BYTES {
        return Some("a key must be at most 1024 bytes");
    }
    if path.starts_with('/') {
        return Some("a key must not start with '/'");
    }
    if path.chars().any(char::is_control) {
        return Some("a key must not contain control characters");
    }
    if path.contains('\\') {
        return Some("a key must not contain '\\'");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Some("a key must not contain empty segments ('//')"),
            "." | ".." => return Some("a key must not contain '.' or '..' segments"),
            _ => {}
        }
    }
    None
}

/// `Ok` for a valid key, else a permanent error naming the key.
pub(crate) fn check_key(op: &'static str, key: &str, store: &str) -> Result<(), StoreError> {
    match key_problem(key) {
        None => Ok(()),
        Some(why) => Err(bad(op, key, store, why)),
    }
}

/// `Ok` for a valid list prefix, else a permanent error naming the prefix.
pub(crate) fn check_prefix(prefix: &str, store: &str) -> Result<(), StoreError> {
    match prefix_problem(prefix) {
        None => Ok(()),
        Some(why) => Err(bad("list", prefix, store, why)),
    }
}

fn bad(op: &'static str, key: &str, store: &str, why: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Permanent,
        op,
        key,
        store,
        format!("invalid key: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_odd_keys() {
        for key in [
            "a",
            "archives/cy-a.0123456789abcdef/manifest.json",
            "tiles/case 1/ü+%=@,;~!.jpg",
            "a/.hidden/..dots/x",
        ] {
            assert_eq!(key_problem(key), None, "{key}");
        }
    }

    #[test]
    fn refuses_bad_keys() {
        let long = "x".repeat(1025);
        for key in [
            "", "/a", "a/", "a//b", "a/../b", "..", "./a", "a/.", "a\\b", "a\nb", &long,
        ] {
            assert!(key_problem(key).is_some(), "{key:?} was accepted");
        }
    }

    #[test]
    fn prefixes_may_be_empty_partial_or_end_with_a_slash() {
        for prefix in ["", "archives/", "archives/cy-a.", "runs/r1/parts/"] {
            assert_eq!(prefix_problem(prefix), None, "{prefix}");
        }
        for prefix in ["/", "/archives", "a//", "../", "a/../b/"] {
            assert!(prefix_problem(prefix).is_some(), "{prefix:?} was accepted");
        }
    }
}
