//! Building the aws-sdk client from an [`S3Config`]: endpoint, region,
//! credentials, retries, timeouts and the checksum settings every
//! S3-compatible server accepts.

use super::S3Config;
use crate::tls::CaCertificates;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// Region used when neither the configuration nor the environment names one
/// (S3-compatible servers usually ignore it).
const FALLBACK_REGION: &str = "us-east-1";

/// The SDK client for `config`. Static credentials when the configuration has
/// them, else the SDK's default chain (environment, profile, web identity,
/// container and instance metadata). `ca` (already checked) is trusted for
/// `https://` endpoints besides the system roots, or alone with `ca_only`.
pub(super) async fn build(
    config: &S3Config,
    ca: Option<&CaCertificates>,
) -> Result<aws_sdk_s3::Client, String> {
    let retry = RetryConfig::standard()
        .with_max_attempts(config.max_attempts)
        .with_initial_backoff(config.retry_initial_backoff);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout)
        .operation_timeout(config.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    loader = match &config.region {
        Some(region) => loader.region(Region::new(region.clone())),
        None => loader.region(
            RegionProviderChain::default_provider().or_else(Region::from_static(FALLBACK_REGION)),
        ),
    };
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    // The SDK's default HTTPS client is built on aws-lc; nodal's is the same
    // hyper + rustls client on ring, trusting the system's roots and, when
    // given, the CA file's (or only those).
    let trust = match ca {
        Some(ca) => TrustStore::default()
            .with_native_roots(!config.ca_only)
            .with_pem_certificate(ca.pem()),
        None => TrustStore::default(),
    };
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| format!("TLS settings: {e}"))?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https();
    loader = loader.http_client(http);
    if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
        loader = loader.credentials_provider(Credentials::new(
            access,
            secret,
            config.session_token.clone(),
            None,
            "nodal-config",
        ));
    }
    let shared = loader.load().await;
    let s3 = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(config.path_style())
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(s3))
}
