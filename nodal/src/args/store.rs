//! `StoreArgs`: the flags (and environment variables) choosing the object
//! store, turned into the store's [`StoreConfig`].

use super::TokenArgs;
use nodal_common::store::{
    DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MULTIPART_THRESHOLD_MIB, DEFAULT_OPERATION_TIMEOUT_SECS, DEFAULT_PART_SIZE_MIB, MIB,
    SharedStore, StoreConfig, StoreError, open_store,
};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
    /// The token for an http(s):// store.
    #[command(flatten)]
    pub token: TokenArgs,
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
            http.token = self.token.token.clone();
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
