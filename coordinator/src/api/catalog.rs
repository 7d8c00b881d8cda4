//! `/models` and `/archives`: what the coordinator's store holds, as the
//! engine reads it, filtered by what the token may see.

use super::error::ApiError;
use super::state::ApiState;
use crate::auth::Principal;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use nodal_types::archive_id::ArchiveId;
use nodal_types::manifest::Manifest;
use serde::{Deserialize, Serialize};

/// A published model, as `GET /models` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// The study whose archives it reads.
    pub study: String,
    /// Binary or multi-class.
    pub task: String,
    /// Hex SHA-256 of its ONNX file.
    pub onnx_sha256: String,
}

pub(super) async fn list_models(
    State(state): State<ApiState>,
    _who: Principal,
) -> Result<Response, ApiError> {
    let out: Vec<ModelSummary> = state
        .engine()?
        .model_cards()
        .await?
        .into_iter()
        .map(|card| ModelSummary {
            name: card.name,
            version: card.version,
            study: card.study.to_string(),
            task: card.task.to_string(),
            onnx_sha256: card.onnx_sha256,
        })
        .collect();
    Ok(Json(out).into_response())
}

/// What `GET /archives/{id}` tells about an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    /// The archive id.
    pub archive_id: String,
    /// The submitting site.
    pub site: String,
    /// Its study.
    pub study: String,
    /// The nodal version that submitted it.
    pub nodal_version: String,
    /// Cases in the manifest.
    pub cases: usize,
    /// Eligible cases.
    pub eligible: usize,
    /// Images of all cases.
    pub images: usize,
    /// Images that failed QC.
    pub images_failed_qc: usize,
    /// Stored tiles.
    pub tiles: usize,
}

impl ArchiveSummary {
    fn of(m: &Manifest) -> Self {
        Self {
            archive_id: m.archive_id.clone(),
            site: m.site.clone(),
            study: m.study.to_string(),
            nodal_version: m.nodal_version.clone(),
            cases: m.cases.len(),
            eligible: m
                .cases
                .iter()
                .filter(|c| c.eligibility.is_eligible())
                .count(),
            images: m.cases.iter().map(|c| c.images.len()).sum(),
            images_failed_qc: m
                .cases
                .iter()
                .flat_map(|c| &c.images)
                .filter(|i| !i.qc.passed)
                .count(),
            tiles: m.cases.iter().map(|c| c.tile_count()).sum(),
        }
    }
}

/// The site an archive id belongs to (`<site>.<hash>`; the whole id when
/// it has no site part).
fn site_of_archive(archive_id: &str) -> &str {
    ArchiveId::site_of(archive_id).unwrap_or(archive_id)
}

pub(super) async fn list_archives(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<Response, ApiError> {
    if !who.can_list_archives() {
        return Err(ApiError::forbidden(
            "list archives (site or operator tokens only)",
        ));
    }
    let ids: Vec<String> = state
        .engine()?
        .archive_ids()
        .await?
        .into_iter()
        .filter(|id| who.can_access_site(site_of_archive(id)))
        .collect();
    Ok(Json(ids).into_response())
}

pub(super) async fn archive_summary(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !who.can_access_site(site_of_archive(&id)) {
        return Err(ApiError::forbidden("see another site's archives"));
    }
    let manifest = state.engine()?.manifest(&id).await?;
    Ok(Json(ArchiveSummary::of(&manifest)).into_response())
}
