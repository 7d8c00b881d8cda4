//! `/models` and `/archives`: what the coordinator's store holds, as the
//! engine reads it, filtered by what the token may see.

use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use super::state::ApiState;
use crate::auth::Principal;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use nodal_types::archive_id::ArchiveId;
use nodal_types::manifest::Manifest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A published model, as `GET /models` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// The published models (any token).
#[utoipa::path(get, path = "/models", tag = "catalog",
    responses(
        (status = 200, description = "The models", body = Vec<ModelSummary>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 422, description = "A stored card is unreadable (`bad_input`)", body = ErrorBody),
        (status = 500, description = "The store answered something unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// The ids of the archives the token may see: a site's own, or all
/// (site, operator).
#[utoipa::path(get, path = "/archives", tag = "catalog",
    responses(
        (status = 200, description = "Archive ids", body = Vec<String>),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "An analyst token", body = ErrorBody),
        (status = 500, description = "The store answered something unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
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

/// What an archive holds: cases, eligible cases, images, tiles (the
/// archive's site, or an operator).
#[utoipa::path(get, path = "/archives/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The archive id, `<site>.<hash>`")),
    responses(
        (status = 200, description = "The archive", body = ArchiveSummary),
        (status = 400, description = "Not an archive id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Another site's archive, or an analyst token", body = ErrorBody),
        (status = 404, description = "No such archive (`unknown_archive`)", body = ErrorBody),
        (status = 422, description = "Its manifest is unreadable (`bad_input`)", body = ErrorBody),
        (status = 500, description = "The store answered something unreadable", body = ErrorBody),
        (status = 503, description = "Standing by, or the store is unavailable: retry", body = ErrorBody),
    ))]
pub(super) async fn archive_summary(
    State(state): State<ApiState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    if !who.can_access_site(site_of_archive(&id)) {
        return Err(ApiError::forbidden("see another site's archives"));
    }
    let manifest = state.engine()?.manifest(&id).await?;
    Ok(Json(ArchiveSummary::of(&manifest)).into_response())
}
