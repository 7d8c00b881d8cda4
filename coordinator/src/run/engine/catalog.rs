//! What the store holds besides runs, read through the bucket layout: the
//! archives (their manifests) and the published models (their cards).

use super::EngineError;
use crate::models::parse_card;
use nodal_common::store::ObjectStore;
use nodal_types::archive_id::ArchiveId;
use nodal_types::layout::{self, manifest_key};
use nodal_types::manifest::Manifest;
use nodal_types::model_card::ModelCard;

/// The ids of every archive with a manifest (complete archives), in key order.
pub(super) async fn archive_ids(store: &dyn ObjectStore) -> Result<Vec<String>, EngineError> {
    Ok(store
        .list(layout::ARCHIVES)
        .await?
        .into_iter()
        .filter_map(|m| layout::parse_manifest_key(&m.key).map(str::to_string))
        .collect())
}

/// An archive's manifest and the SHA-256 of its stored bytes. A missing
/// manifest is [`EngineError::UnknownArchive`]; one that does not parse, is
/// of another schema version (an archive to re-submit) or names another
/// archive, is [`EngineError::BadManifest`].
pub(super) async fn read_manifest(
    store: &dyn ObjectStore,
    archive_id: &str,
) -> Result<(Manifest, String), EngineError> {
    if let Err(e) = archive_id.parse::<ArchiveId>() {
        return Err(EngineError::BadRequest(e.to_string()));
    }
    let key = manifest_key(archive_id);
    let bytes = match store.get(&key).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(EngineError::UnknownArchive(archive_id.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let sha = nodal_types::sha256_hex(&bytes);
    let manifest = Manifest::parse(&bytes).map_err(|e| EngineError::BadManifest {
        key: key.clone(),
        message: e.to_string(),
    })?;
    if manifest.archive_id != archive_id {
        return Err(EngineError::BadManifest {
            key,
            message: format!(
                "not a valid manifest: it names archive {:?}",
                manifest.archive_id
            ),
        });
    }
    Ok((manifest, sha))
}

/// Every published model's card, in key order.
pub(super) async fn model_cards(store: &dyn ObjectStore) -> Result<Vec<ModelCard>, EngineError> {
    let mut cards = Vec::new();
    for meta in store.list(layout::MODELS).await? {
        if layout::parse_card_key(&meta.key).is_none() {
            continue;
        }
        let bytes = store.get(&meta.key).await?;
        cards.push(parse_card(&bytes, &meta.key)?);
    }
    Ok(cards)
}
