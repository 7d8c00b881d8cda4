//! Choosing and opening a store from one URL plus S3 settings: the
//! configuration type, its command-line flags and `open_store`.

use super::s3::{
    DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MULTIPART_THRESHOLD_MIB, DEFAULT_OPERATION_TIMEOUT_SECS, DEFAULT_PART_SIZE_MIB, MIB,
};
use super::{
    HttpConfig, HttpStore, LocalStore, S3Config, S3Store, SharedStore, StoreError, StoreErrorKind,
};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// Command-line flags (and environment variables) choosing the object store.
/// Its `Debug` hides the secret key, the session token and the API token.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Object store: `file:///abs/path` or `file://relative/path` (a local
    /// folder, the embedded default), `s3://bucket/prefix`, or the
    /// coordinator's object proxy `http(s)://host:port` (with --token).
    #[arg(
        long = "store",
        env = "NODAL_STORE",
        default_value = "file://nodal-data"
    )]
    pub store: String,
    /// Endpoint of an S3-compatible service (http:// or https://); unset for
    /// AWS S3.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region; unset: AWS_REGION, AWS_DEFAULT_REGION or the AWS profile,
    /// else us-east-1.
    #[arg(long, env = "AWS_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id; unset: the AWS default credential chain.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub s3_access_key: Option<String>,
    /// S3 secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// S3 session token, for temporary credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub s3_session_token: Option<String>,
    /// Path-style addressing (true/false); default: on with --s3-endpoint,
    /// off for AWS.
    #[arg(long, env = "NODAL_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    /// Most S3 (or http store) requests in flight at once.
    #[arg(long, env = "NODAL_S3_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY)]
    pub s3_concurrency: usize,
    /// Attempts per S3 (or http store) request, the first included.
    #[arg(long, env = "NODAL_S3_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub s3_max_attempts: u32,
    /// Seconds allowed to open a connection to S3 (or the http store).
    #[arg(long, env = "NODAL_S3_CONNECT_TIMEOUT_SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT_SECS)]
    pub s3_connect_timeout_secs: u64,
    /// Seconds allowed for one S3 request, its retries included (http
    /// store: for each attempt).
    #[arg(long, env = "NODAL_S3_TIMEOUT_SECS", default_value_t = DEFAULT_OPERATION_TIMEOUT_SECS)]
    pub s3_timeout_secs: u64,
    /// Objects larger than this many MiB are uploaded in parts.
    #[arg(long, env = "NODAL_S3_MULTIPART_THRESHOLD_MIB", default_value_t = DEFAULT_MULTIPART_THRESHOLD_MIB)]
    pub s3_multipart_threshold_mib: usize,
    /// Size of each part of a multipart upload, in MiB (at least 5).
    #[arg(long, env = "NODAL_S3_PART_SIZE_MIB", default_value_t = DEFAULT_PART_SIZE_MIB)]
    pub s3_part_size_mib: usize,
    /// PEM file of CA certificates to trust for an https:// S3 endpoint or
    /// http store, in addition to the system's roots.
    #[arg(long, env = "NODAL_S3_CA_FILE", value_name = "PEM")]
    pub s3_ca_file: Option<PathBuf>,
    /// Trust only the certificates of --s3-ca-file, not the system's roots.
    #[arg(long, env = "NODAL_S3_CA_ONLY", requires = "s3_ca_file")]
    pub s3_ca_only: bool,
    /// Bearer token for an http(s):// store (a site token submits its own
    /// site's archives through the coordinator).
    #[arg(long = "token", env = "NODAL_TOKEN", hide_env_values = true)]
    pub store_token: Option<String>,
}

impl StoreArgs {
    /// The configuration these flags describe; a bad URL is an error naming it.
    pub fn into_config(&self) -> Result<StoreConfig, StoreError> {
        let mut config = StoreConfig::from_url(&self.store)?;
        if let StoreConfig::S3(s3) = &mut config {
            s3.endpoint = self.s3_endpoint.clone();
            s3.region = self.s3_region.clone();
            s3.access_key = self.s3_access_key.clone();
            s3.secret_key = self.s3_secret_key.clone();
            s3.session_token = self.s3_session_token.clone();
            s3.path_style = self.s3_path_style;
            s3.concurrency = self.s3_concurrency;
            s3.max_attempts = self.s3_max_attempts;
            s3.connect_timeout = Duration::from_secs(self.s3_connect_timeout_secs);
            s3.operation_timeout = Duration::from_secs(self.s3_timeout_secs);
            s3.multipart_threshold = self.s3_multipart_threshold_mib.saturating_mul(MIB);
            s3.part_size = self.s3_part_size_mib.saturating_mul(MIB);
            s3.ca_file = self.s3_ca_file.clone();
            s3.ca_only = self.s3_ca_only;
        }
        if let StoreConfig::Http(http) = &mut config {
            http.token = self.store_token.clone();
            http.concurrency = self.s3_concurrency;
            http.max_attempts = self.s3_max_attempts;
            http.connect_timeout = Duration::from_secs(self.s3_connect_timeout_secs);
            http.request_timeout = Duration::from_secs(self.s3_timeout_secs);
            http.ca_file = self.s3_ca_file.clone();
            http.ca_only = self.s3_ca_only;
        }
        Ok(config)
    }

    /// Open the store these flags describe.
    pub async fn open(&self) -> Result<SharedStore, StoreError> {
        open_store(&self.into_config()?).await
    }
}

impl fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.into_config() {
            Ok(config) => config.fmt(f),
            Err(_) => f
                .debug_struct("StoreArgs")
                .field("store", &self.store)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        store: StoreArgs,
    }

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
        s3.part_size = MIB;
        let err = S3Store::connect(&s3).await.unwrap_err();
        assert!(err.to_string().contains("part size"), "{err}");
    }

    #[test]
    fn flags_fill_the_s3_config_and_debug_hides_secrets() {
        let cli = Cli::try_parse_from([
            "nodal",
            "--store",
            "s3://nodal-data/site",
            "--s3-endpoint",
            "http://127.0.0.1:9000",
            "--s3-access-key",
            "AKIDEXAMPLE",
            "--s3-secret-key",
            "very-secret-value",
            "--s3-concurrency",
            "7",
            "--s3-part-size-mib",
            "6",
        ])
        .unwrap();
        let StoreConfig::S3(s3) = cli.store.into_config().unwrap() else {
            panic!("not s3");
        };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.secret_key.as_deref(), Some("very-secret-value"));
        assert_eq!((s3.concurrency, s3.part_size), (7, 6 * MIB));
        assert!(s3.path_style());
        let shown = format!("{:?} {:?}", cli.store, s3);
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
    }
}
