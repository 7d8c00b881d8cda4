//! Opening the store a bench run names by URL; the servers it starts for
//! the distributed mode (s3s-fs, queues unique to the run) are
//! `nodal_testkit`'s, shared with the tests.

use anyhow::Context;
use nodal_common::store::{SharedStore, StoreConfig, open_store};

/// Open a store URL; for `s3://`, endpoint, region and credentials come from
/// the usual AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
pub(crate) async fn open_store_url(url: &str) -> anyhow::Result<SharedStore> {
    let mut config = StoreConfig::from_url(url)?;
    if let StoreConfig::S3(s3) = &mut config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        s3.endpoint = var("AWS_ENDPOINT_URL");
        s3.region = var("AWS_REGION");
        s3.access_key = var("AWS_ACCESS_KEY_ID");
        s3.secret_key = var("AWS_SECRET_ACCESS_KEY");
        s3.session_token = var("AWS_SESSION_TOKEN");
    }
    open_store(&config)
        .await
        .with_context(|| format!("opening the store {url}"))
}
