//! Multipart upload of one large body: parts go concurrently (each takes a
//! request slot of the store), and a failed upload is aborted so that no
//! orphaned parts are left to pay for.

use super::S3Store;
use super::error::from_sdk;
use crate::store::{StoreError, StoreErrorKind};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

/// Upload `body` to bucket key `full` (store key `key`) in parts.
pub(super) async fn upload(
    store: &S3Store,
    key: &str,
    full: String,
    body: Bytes,
) -> Result<(), StoreError> {
    let created = {
        let _permit = store.permit("put", key).await?;
        store
            .client
            .create_multipart_upload()
            .bucket(&store.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| from_sdk(e, "put", key, &store.name))?
    };
    let Some(upload_id) = created.upload_id().map(str::to_owned) else {
        return Err(StoreError::new(
            StoreErrorKind::Transient,
            "put",
            key,
            &store.name,
            "the server started a multipart upload without an upload id",
        ));
    };
    let result = send_parts(store, key, &full, &upload_id, body).await;
    if result.is_err() {
        abort(store, key, &full, &upload_id).await;
    }
    result
}

async fn send_parts(
    store: &S3Store,
    key: &str,
    full: &str,
    upload_id: &str,
    body: Bytes,
) -> Result<(), StoreError> {
    let count = body.len().div_ceil(store.part_size);
    let parts = (0..count).map(|i| {
        let start = i * store.part_size;
        let end = (start + store.part_size).min(body.len());
        (i as i32 + 1, body.slice(start..end))
    });
    let mut completed: Vec<CompletedPart> = futures::stream::iter(parts)
        .map(|(number, chunk)| send_part(store, key, full, upload_id, number, chunk))
        .buffer_unordered(store.concurrency)
        .try_collect()
        .await?;
    completed.sort_by_key(|part| part.part_number());
    let _permit = store.permit("put", key).await?;
    store
        .client
        .complete_multipart_upload()
        .bucket(&store.bucket)
        .key(full)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .map_err(|e| from_sdk(e, "put", key, &store.name))?;
    Ok(())
}

async fn send_part(
    store: &S3Store,
    key: &str,
    full: &str,
    upload_id: &str,
    number: i32,
    chunk: Bytes,
) -> Result<CompletedPart, StoreError> {
    let _permit = store.permit("put", key).await?;
    let out = store
        .client
        .upload_part()
        .bucket(&store.bucket)
        .key(full)
        .upload_id(upload_id)
        .part_number(number)
        .content_length(chunk.len() as i64)
        .body(ByteStream::from(chunk))
        .send()
        .await
        .map_err(|e| from_sdk(e, "put", key, &store.name))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_owned))
        .build())
}

/// Best effort: a failure is logged, the upload's own error is what counts.
async fn abort(store: &S3Store, key: &str, full: &str, upload_id: &str) {
    let result = store
        .client
        .abort_multipart_upload()
        .bucket(&store.bucket)
        .key(full)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(e) = result {
        let err = from_sdk(e, "abort upload", key, &store.name);
        tracing::warn!(error = %err, "could not abort a failed multipart upload");
    }
}
