//! Choosing and opening a store from one URL plus S3 settings: the
//! configuration type and `open_store`.

use super::{
    HttpConfig, HttpStore, LocalStore, S3Config, S3Store, SharedStore, StoreError, StoreErrorKind,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Which store to open, and how.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// A local folder (the embedded default).
    Local {
        /// The folder; relative paths are relative to the working directory.
        root: PathBuf,
    },
    /// An S3-compatible bucket.
    S3(Box<S3Config>),
    /// The coordinator's object proxy (`http://` or `https://`), with a token.
    Http(Box<HttpConfig>),
}

impl StoreConfig {
    /// Parse a store URL: `file:///abs/path`, `file://relative/path`,
    /// `s3://bucket/prefix` or `http(s)://coordinator:port` (other settings
    /// at their defaults).
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| {
            StoreError::new(
                StoreErrorKind::Permanent,
                "open",
                "",
                url,
                format!(
                    "bad store URL: {why} (expected file:///abs/path, file://relative/path, s3://bucket/prefix or http(s)://coordinator:port)"
                ),
            )
        };
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad("the folder is missing"));
            }
            return Ok(Self::Local { root: path.into() });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("the bucket is missing"));
            }
            let prefix = prefix.trim_end_matches('/');
            return Ok(Self::S3(Box::new(S3Config::new(bucket, prefix))));
        }
        if let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("the coordinator's host is missing"));
            }
            return Ok(Self::Http(Box::new(HttpConfig::new(url))));
        }
        Err(bad("unknown scheme"))
    }

    /// A short description for logs (never includes secrets).
    pub fn describe(&self) -> String {
        match self {
            Self::Local { root } => format!("file://{}", root.display()),
            Self::S3(s3) => s3.describe(),
            Self::Http(http) => http.describe(),
        }
    }
}

/// Open the store `config` names. Bad settings are a permanent error naming
/// what is wrong.
pub async fn open_store(config: &StoreConfig) -> Result<SharedStore, StoreError> {
    Ok(match config {
        StoreConfig::Local { root } => Arc::new(LocalStore::open(root.clone()).await?),
        StoreConfig::S3(s3) => Arc::new(S3Store::connect(s3).await?),
        StoreConfig::Http(http) => Arc::new(HttpStore::connect(http)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_urls() {
        assert_eq!(
            StoreConfig::from_url("file:///srv/nodal").unwrap(),
            StoreConfig::Local {
                root: "/srv/nodal".into()
            }
        );
        assert_eq!(
            StoreConfig::from_url("file://data/nodal").unwrap(),
            StoreConfig::Local {
                root: "data/nodal".into()
            }
        );
    }

    #[test]
    fn parses_s3_urls() {
        let StoreConfig::S3(s3) = StoreConfig::from_url("s3://bucket/some/prefix/").unwrap() else {
            panic!("not s3");
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        let StoreConfig::S3(s3) = StoreConfig::from_url("s3://bucket").unwrap() else {
            panic!("not s3");
        };
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("bucket", ""));
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        for (url, says) in [
            ("ftp://x", "unknown scheme"),
            ("http://", "host is missing"),
            ("/plain/path", "unknown scheme"),
            ("file://", "folder is missing"),
            ("s3://", "bucket is missing"),
            ("s3:///prefix", "bucket is missing"),
        ] {
            let err = StoreConfig::from_url(url).unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::Permanent);
            let text = err.to_string();
            assert!(text.contains(says) && text.contains(url), "{text}");
        }
    }

    #[tokio::test]
    async fn bad_s3_settings_are_refused_before_any_request() {
        let mut s3 = S3Config::new("Bad_Bucket", "");
        let err = S3Store::connect(&s3).await.unwrap_err();
        assert!(err.to_string().contains("Bad_Bucket"), "{err}");
        s3.bucket = "good-bucket".into();
        s3.access_key = Some("AKIA".into());
        let err = S3Store::connect(&s3).await.unwrap_err();
        assert!(err.to_string().contains("together"), "{err}");
        s3.access_key = None;
        s3.endpoint = Some("localhost:9000".into());
        let err = S3Store::connect(&s3).await.unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        s3.endpoint = None;
        s3.part_size = super::super::MIB;
        let err = S3Store::connect(&s3).await.unwrap_err();
        assert!(err.to_string().contains("part size"), "{err}");
    }
}
