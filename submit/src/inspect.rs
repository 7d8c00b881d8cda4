//! The QC pass: every image is decoded in full (a truncated or corrupt file
//! is a problem of the folder) and measured; the verdict is kept, the pixels
//! are not.

use super::decode;
use super::pixel_budget::{PixelBudget, decode_cost};
use super::problem::Problem;
use super::qc;
use super::scan::{ScannedImage, read_verified};
use super::site_folder::SiteFolder;
use nodal_types::manifest::{DicomInfo, QcReason, QcThresholds, QcVerdict};
use nodal_types::study::Study;
use rayon::prelude::*;
use std::collections::HashMap;

/// Decode and judge every image in `images`, within the memory of
/// `budget`; verdicts by image path. Undecodable images are pushed to
/// `problems`. `on_image` is called once per image.
pub fn inspect(
    folder: &SiteFolder,
    budget: &PixelBudget,
    study: Study,
    thresholds: &QcThresholds,
    images: &[&ScannedImage],
    problems: &mut Vec<Problem>,
    on_image: &(dyn Fn() + Sync),
) -> HashMap<String, QcVerdict> {
    let results: Vec<Result<(String, QcVerdict), Problem>> = images
        .par_iter()
        .map(|image| {
            let out = inspect_one(folder, budget, study, thresholds, image);
            on_image();
            out
        })
        .collect();
    let mut verdicts = HashMap::with_capacity(results.len());
    for result in results {
        match result {
            Ok((path, verdict)) => {
                verdicts.insert(path, verdict);
            }
            Err(p) => problems.push(p),
        }
    }
    verdicts
}

fn inspect_one(
    folder: &SiteFolder,
    budget: &PixelBudget,
    study: Study,
    thresholds: &QcThresholds,
    image: &ScannedImage,
) -> Result<(String, QcVerdict), Problem> {
    let path = &image.file.path;
    if image.dicom.as_ref().is_some_and(DicomInfo::unmaskable) {
        return Ok((path.clone(), burned_in()));
    }
    let _memory = budget.reserve(decode_cost(image.width, image.height));
    let bytes = read_verified(folder, &image.file).map_err(|e| Problem::file(path, e))?;
    let pixels = decode::decode_rgb(&bytes).map_err(|e| Problem::file(path, e.0))?;
    let verdict = qc::judge(&qc::measure(study, &pixels), thresholds);
    Ok((path.clone(), verdict))
}

/// The verdict on a DICOM image that may carry burned-in patient text
/// and has no ultrasound region to keep: excluded unread.
fn burned_in() -> QcVerdict {
    QcVerdict {
        passed: false,
        reason: Some(QcReason::BurnedInAnnotation),
        coverage: 0.0,
        laplacian_var: 0.0,
        artefact_fraction: 0.0,
    }
}
