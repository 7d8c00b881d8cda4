//! `nodal synth`: deterministic synthetic study archives laid out exactly as
//! sites submit them (see `docs/archive-format.md`), with images that carry a
//! learnable signal, planted defects and ineligible cases recorded in
//! `planted.csv`, and the ultrasound label model in `synth.json`.
//!
//! Every case and image draws from its own ChaCha stream keyed by
//! (seed, study, site, case, image), so the bytes written do not depend on
//! the number of threads.

mod alloc;
mod canvas;
mod cytology;
mod dicom;
mod error;
mod font;
mod noise;
mod output;
mod plan;
mod seed;
mod summary;
mod ultrasound;

pub use error::SynthError;
pub use summary::{Coefficient, LabelModel, SYNTH_SCHEMA, SiteSummary, StudySummary, SynthSummary};

use nodal_types::study::Study;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Cases of the cytology study at scale 1.
pub const CYTOLOGY_FULL_CASES: usize = 10_000;
/// Cases of the ultrasound study at scale 1.
pub const ULTRASOUND_FULL_CASES: usize = 3_200;
/// Largest accepted `scale`.
pub const MAX_SCALE: f64 = 10.0;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Output folder; `cytology/`, `ultrasound/` and `synth.json` go inside.
    pub out: PathBuf,
    /// The studies to write.
    pub studies: Vec<Study>,
    /// Fraction of the full study sizes (1.0 = 10,000 + 3,200 cases).
    pub scale: f64,
    /// Seed of every random stream.
    pub seed: u64,
    /// How the ultrasound images are written.
    pub format: ImageFormat,
}

/// The file format of the ultrasound images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFormat {
    /// Baseline JPEG files, as today.
    #[default]
    Jpeg,
    /// DICOM Ultrasound Multi-frame Image Storage as PACS exports it: a
    /// three-frame cine loop (the middle frame is the case's picture),
    /// JPEG baseline YBR_FULL_422, fake patient identifiers in the header
    /// and burned into a top banner (`docs/archive-format.md`).
    Dicom,
}

/// Number of cases a study has at `scale`.
pub fn study_cases(study: Study, scale: f64) -> usize {
    let full = match study {
        Study::Cytology => CYTOLOGY_FULL_CASES,
        Study::Ultrasound => ULTRASOUND_FULL_CASES,
    };
    (full as f64 * scale).round() as usize
}

/// Total number of cases `config` will write (for progress bars).
pub fn planned_cases(config: &SynthConfig) -> usize {
    config
        .studies
        .iter()
        .map(|&s| study_cases(s, config.scale))
        .sum()
}

/// Write the archives; see [`generate_with_progress`].
pub fn generate(config: &SynthConfig) -> Result<SynthSummary, SynthError> {
    generate_with_progress(config, &|| {})
}

/// Write the archives of `config`, calling `on_case` once per finished case
/// (from worker threads), and return what was written (also in `synth.json`).
pub fn generate_with_progress(
    config: &SynthConfig,
    on_case: &(dyn Fn() + Sync),
) -> Result<SynthSummary, SynthError> {
    validate(config)?;
    output::create_dir(&config.out)?;
    let mut studies = BTreeMap::new();
    for &study in &config.studies {
        let dir = config.out.join(study.as_str());
        if dir.exists() {
            return Err(SynthError::AlreadyExists { path: dir });
        }
        let ctx = StudyCtx {
            dir,
            seed: config.seed,
            cases: study_cases(study, config.scale),
            format: config.format,
            on_case,
        };
        let out = match study {
            Study::Cytology => cytology::generate(&ctx)?,
            Study::Ultrasound => ultrasound::generate(&ctx)?,
        };
        output::write_csv(&ctx.dir.join("planted.csv"), &out.planted)?;
        studies.insert(study, out.summary);
    }
    let summary = SynthSummary {
        schema: SYNTH_SCHEMA.to_string(),
        nodal_version: nodal_types::NODAL_VERSION.to_string(),
        seed: config.seed,
        scale: config.scale,
        studies,
    };
    output::write_json(&config.out.join("synth.json"), &summary)?;
    Ok(summary)
}

fn validate(config: &SynthConfig) -> Result<(), SynthError> {
    if !(config.scale.is_finite() && config.scale > 0.0 && config.scale <= MAX_SCALE) {
        return Err(SynthError::InvalidConfig {
            option: "--scale",
            reason: format!("{} is not in (0, {MAX_SCALE}]", config.scale),
        });
    }
    if config.studies.is_empty() {
        return Err(SynthError::InvalidConfig {
            option: "--study",
            reason: "no study selected".into(),
        });
    }
    for &study in &config.studies {
        if study_cases(study, config.scale) < 4 {
            return Err(SynthError::InvalidConfig {
                option: "--scale",
                reason: format!(
                    "{} gives fewer than 4 {study} cases (one per site)",
                    config.scale
                ),
            });
        }
    }
    Ok(())
}

/// What a study generator needs.
pub(crate) struct StudyCtx<'a> {
    /// The study folder (`OUT/<study>`).
    pub dir: PathBuf,
    /// The run's seed.
    pub seed: u64,
    /// Number of cases over all sites.
    pub cases: usize,
    /// How ultrasound images are written.
    pub format: ImageFormat,
    /// Called once per finished case.
    pub on_case: &'a (dyn Fn() + Sync),
}

impl StudyCtx<'_> {
    /// A site's folder.
    pub(crate) fn site_dir(&self, site: &str) -> PathBuf {
        self.dir.join(site)
    }
}

/// What a study generator returns.
pub(crate) struct StudyOutput {
    /// Counts for `synth.json`.
    pub summary: StudySummary,
    /// Rows of `planted.csv`.
    pub planted: Vec<PlantedRow>,
}

/// One row of `planted.csv`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlantedRow {
    /// Site folder name.
    pub site: &'static str,
    /// Case id.
    pub case_id: String,
    /// Image path relative to the site folder; empty for a case-level entry.
    pub image: String,
    /// `blank`, `blur`, `artefact` or `ineligible:<criterion>`.
    pub kind: String,
}

/// A path relative to a site folder, with forward slashes.
pub(crate) fn rel(parts: &[&str]) -> String {
    parts.join("/")
}

/// Join a forward-slash relative path onto a folder.
pub(crate) fn under(dir: &Path, rel: &str) -> PathBuf {
    rel.split('/')
        .fold(dir.to_path_buf(), |p, part| p.join(part))
}
