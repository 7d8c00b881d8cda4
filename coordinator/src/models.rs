//! The model registry: models live in the object store under
//! `models/<name>/<version>/` (card.json + the ONNX file), where workers
//! fetch them. The coordinator publishes the shipped models there and
//! resolves a run's model reference to a card.

use bytes::Bytes;
use nodal_common::store::{ObjectStore, StoreError};
use nodal_types::layout::{self, card_key};
use nodal_types::model_card::ModelCard;
use nodal_types::sha256_hex;
use nodal_types::wire::ModelRef;
use std::path::{Path, PathBuf};

/// Why a model could not be published or resolved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading a local model folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A card that does not parse.
    #[error("{path}: not a valid model card: {message}")]
    BadCard {
        /// The card's path or key.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The ONNX file does not match the card's hash.
    #[error("{path}: sha256 {actual} does not match the card's onnx_sha256 {expected}")]
    HashMismatch {
        /// The ONNX file.
        path: String,
        /// The card's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The file behind the card is not an ONNX model.
    #[error("{path}: {message}")]
    NotOnnx {
        /// The ONNX file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No model of that name (and version) in the store.
    #[error(
        "unknown model {0:?}: publish it first (the coordinator publishes the shipped models at start)"
    )]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A model resolved from the store: its card and the reference jobs carry.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The card.
    pub card: ModelCard,
    /// What workers are told to load.
    pub reference: ModelRef,
}

/// Publish one model folder (card.json + ONNX file) to the store, after
/// checking the ONNX file against the card's hash. Returns the card.
pub async fn publish_model_dir(
    store: &dyn ObjectStore,
    dir: &Path,
) -> Result<ModelCard, ModelError> {
    let card_path = dir.join("card.json");
    let card_bytes = read(&card_path).await?;
    let card = parse_card(&card_bytes, &card_path.display().to_string())?;
    let onnx_path = dir.join(&card.onnx_file);
    let onnx = read(&onnx_path).await?;
    publish_model_bytes(store, &card_bytes, onnx, &onnx_path.display().to_string()).await
}

/// Publish a model given as bytes (`source` names the ONNX file in errors).
pub async fn publish_model_bytes(
    store: &dyn ObjectStore,
    card_bytes: &[u8],
    onnx: Vec<u8>,
    source: &str,
) -> Result<ModelCard, ModelError> {
    let card = parse_card(card_bytes, source)?;
    let actual = sha256_hex(&onnx);
    if actual != card.onnx_sha256 {
        return Err(ModelError::HashMismatch {
            path: source.to_string(),
            expected: card.onnx_sha256.clone(),
            actual,
        });
    }
    if let Some(message) = crate::onnx_check::onnx_problem(&onnx) {
        return Err(ModelError::NotOnnx {
            path: source.to_string(),
            message,
        });
    }
    let onnx_key = card.onnx_key();
    if store.head(&onnx_key).await?.map(|m| m.size) != Some(onnx.len() as u64) {
        store.put(&onnx_key, Bytes::from(onnx)).await?;
    }
    // The card goes last: its presence marks a complete model version.
    store
        .put(
            &card_key(&card.name, &card.version),
            Bytes::copy_from_slice(card_bytes),
        )
        .await?;
    Ok(card)
}

/// The models nodal ships, built into the binary: (card.json, model.onnx).
const SHIPPED: [(&str, &[u8], &[u8]); 2] = [
    (
        "cytology-origin",
        include_bytes!("../../models/cytology-origin/card.json"),
        include_bytes!("../../models/cytology-origin/model.onnx"),
    ),
    (
        "ptc-ln",
        include_bytes!("../../models/ptc-ln/card.json"),
        include_bytes!("../../models/ptc-ln/model.onnx"),
    ),
];

/// Publish the models built into this binary.
pub async fn publish_shipped_models(store: &dyn ObjectStore) -> Result<Vec<ModelCard>, ModelError> {
    let mut cards = Vec::new();
    for (name, card, onnx) in SHIPPED {
        let source = format!("built-in model {name}");
        cards.push(publish_model_bytes(store, card, onnx.to_vec(), &source).await?);
    }
    Ok(cards)
}

/// Publish every model folder under `root` (each holding a card.json).
pub async fn publish_models(
    store: &dyn ObjectStore,
    root: &Path,
) -> Result<Vec<ModelCard>, ModelError> {
    let mut dirs = Vec::new();
    let mut entries = tokio::fs::read_dir(root)
        .await
        .map_err(|source| ModelError::Io {
            path: root.to_path_buf(),
            source,
        })?;
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|source| ModelError::Io {
            path: root.to_path_buf(),
            source,
        })?
    {
        if entry.path().join("card.json").is_file() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    let mut cards = Vec::new();
    for dir in dirs {
        cards.push(publish_model_dir(store, &dir).await?);
    }
    Ok(cards)
}

/// Resolve `name` or `name@version` to a published model; without a version
/// the highest published version wins.
pub async fn resolve_model(
    store: &dyn ObjectStore,
    spec: &str,
) -> Result<ResolvedModel, ModelError> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (spec, None),
    };
    if name.is_empty() || name.contains('/') {
        return Err(ModelError::Unknown(spec.to_string()));
    }
    let version = match version {
        Some(v) => v,
        None => {
            let prefix = layout::model_versions_prefix(name);
            let versions = store
                .list(&prefix)
                .await?
                .into_iter()
                .filter_map(|m| match layout::parse_card_key(&m.key) {
                    Some((n, version)) if n == name => Some(version.to_string()),
                    _ => None,
                })
                .max_by(|a, b| version_key(a).cmp(&version_key(b)));
            versions.ok_or_else(|| ModelError::Unknown(spec.to_string()))?
        }
    };
    let key = card_key(name, &version);
    let bytes = match store.get(&key).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Err(ModelError::Unknown(spec.to_string())),
        Err(e) => return Err(e.into()),
    };
    let card = parse_card(&bytes, &key)?;
    let reference = ModelRef {
        name: card.name.clone(),
        version: card.version.clone(),
        card_key: key,
        onnx_sha256: card.onnx_sha256.clone(),
    };
    Ok(ResolvedModel { card, reference })
}

/// Parse a card and check its pT and pN heads, naming its source in the error.
pub fn parse_card(bytes: &[u8], source: &str) -> Result<ModelCard, ModelError> {
    let bad = |message: String| ModelError::BadCard {
        path: source.to_string(),
        message,
    };
    let card: ModelCard = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    card.check_category_heads().map_err(bad)?;
    Ok(card)
}

/// Sort key of a dotted version: numeric parts compare as numbers.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-'])
        .map(|p| (p.parse().unwrap_or(0), p.to_string()))
        .collect()
}

async fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_key("1.10.0") > version_key("1.9.3"));
        assert!(version_key("2.0.0") > version_key("1.99.99"));
    }
}
