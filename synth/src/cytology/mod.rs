//! The cytology study (tumour origin from lymph-node FNA smears): four
//! sites, 1–4 smear images per patient, eight origins.

mod artefact;
mod cells;
mod morph;
mod record;
mod smear;
mod stain;

use crate::plan::{self, CaseKey, ImageKey, Site};
use crate::seed::{self, Purpose};
use crate::summary::{SiteSummary, StudySummary};
use crate::{PlantedRow, StudyCtx, StudyOutput, SynthError, alloc, output, rel, under};
use nodal_types::manifest::QcReason;
use nodal_types::study::Study;
use rand::Rng;
use rayon::prelude::*;
use record::{CytologyRow, Origin};
use std::collections::{BTreeMap, BTreeSet};

/// The cytology centres: cy-a trains the model, the others validate it.
const SITES: [Site; 4] = [
    Site {
        name: "cy-a",
        weight: 0.7,
        train_fraction: 0.8,
    },
    Site {
        name: "cy-b",
        weight: 0.1,
        train_fraction: 0.0,
    },
    Site {
        name: "cy-c",
        weight: 0.1,
        train_fraction: 0.0,
    },
    Site {
        name: "cy-d",
        weight: 0.1,
        train_fraction: 0.0,
    },
];
/// Share of cases planted with an unsupported origin.
const INELIGIBLE_RATE: f64 = 0.01;
/// Share of cases planted with no clinical or pathological evidence of their origin.
const UNCONFIRMED_RATE: f64 = 0.02;
/// Share of images planted with a defect.
const DEFECT_RATE: f64 = 0.02;
/// Share of validation cases the two pathologists read.
const READ_RATE: f64 = 0.25;
/// Accuracy of the two readers.
const READER_ACCURACY: [f64; 2] = [0.80, 0.74];
/// Relative frequency of 1, 2, 3 and 4 images per patient.
const IMAGES_PER_CASE: [f64; 4] = [0.35, 0.35, 0.2, 0.1];

fn tag() -> u64 {
    seed::study_tag(Study::Cytology)
}

/// Write the cytology sites under `ctx.dir`.
pub(crate) fn generate(ctx: &StudyCtx) -> Result<StudyOutput, SynthError> {
    let sizes = plan::site_sizes(ctx.cases, &SITES);
    let mut plan_rng = seed::stream(ctx.seed, &[tag(), Purpose::Plan as u64]);
    let n_ineligible = alloc::planted_count(INELIGIBLE_RATE, ctx.cases, 1);
    let ineligible = plan::pick_cases(
        &mut plan_rng,
        &sizes,
        n_ineligible,
        record::UNSUPPORTED.len(),
    );
    let images: Vec<Vec<usize>> = sizes
        .iter()
        .enumerate()
        .map(|(s, &n)| (0..n).map(|i| image_count(ctx.seed, s, i)).collect())
        .collect();
    let total_images: usize = images.iter().flatten().sum();
    let excluded: BTreeSet<CaseKey> = ineligible.keys().copied().collect();
    let defects = plan::pick_images(
        &mut plan_rng,
        &images,
        &excluded,
        alloc::planted_count(DEFECT_RATE, total_images, 3),
    );

    let keys: Vec<CaseKey> = sizes
        .iter()
        .enumerate()
        .flat_map(|(s, &n)| (0..n).map(move |i| (s, i)))
        .collect();
    // Unconfirmed origins go to cases planted with nothing else, so each
    // planted case fails exactly one check.
    let clean: Vec<CaseKey> = keys
        .iter()
        .copied()
        .filter(|&(s, i)| {
            !excluded.contains(&(s, i))
                && (0..images[s][i]).all(|k| !defects.contains_key(&(s, i, k)))
        })
        .collect();
    let unconfirmed = plan::pick_among(
        &mut plan_rng,
        &clean,
        alloc::planted_count(UNCONFIRMED_RATE, ctx.cases, 1),
    );
    let cases = keys
        .par_iter()
        .map(|&(s, i)| {
            let out = make_case(
                ctx,
                (s, i),
                images[s][i],
                Planted {
                    unsupported: ineligible.get(&(s, i)).copied(),
                    unconfirmed: unconfirmed.contains(&(s, i)),
                    defects: &defects,
                },
            );
            (ctx.on_case)();
            out
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut summary = StudySummary {
        sites: BTreeMap::new(),
        label_model: None,
    };
    let mut planted = Vec::new();
    for (s, site) in SITES.iter().enumerate() {
        let site_cases: Vec<&CaseOut> = cases.iter().filter(|c| c.site == s).collect();
        let rows: Vec<&CytologyRow> = site_cases.iter().map(|c| &c.row).collect();
        output::write_csv(&ctx.site_dir(site.name).join("cases.csv"), &rows)?;
        let mut sum = SiteSummary {
            defects: plan::DEFECT_KINDS
                .iter()
                .map(|k| (k.as_str().to_string(), 0))
                .collect(),
            ..SiteSummary::default()
        };
        for c in &site_cases {
            sum.cases += 1;
            sum.images += c.images;
            if c.row.split == "train" {
                sum.train += 1;
            } else {
                sum.validation += 1;
            }
            *sum.labels.entry(c.row.origin.to_string()).or_default() += 1;
            for p in &c.planted {
                if p.image.is_empty() {
                    sum.ineligible += 1;
                } else {
                    *sum.defects.entry(p.kind.clone()).or_default() += 1;
                }
            }
            planted.extend(c.planted.iter().cloned());
        }
        summary.sites.insert(site.name.to_string(), sum);
    }
    Ok(StudyOutput { summary, planted })
}

/// Number of images of a case, from its own stream (known before planting).
fn image_count(seed_value: u64, site: usize, index: usize) -> usize {
    let mut rng = seed::stream(
        seed_value,
        &[tag(), Purpose::ImageCount as u64, site as u64, index as u64],
    );
    1 + record::weighted(&mut rng, &IMAGES_PER_CASE)
}

struct CaseOut {
    site: usize,
    row: CytologyRow,
    images: usize,
    planted: Vec<PlantedRow>,
}

/// What the plan planted in one case.
struct Planted<'a> {
    /// An unsupported origin, by index into `record::UNSUPPORTED`.
    unsupported: Option<usize>,
    /// No evidence confirms the origin.
    unconfirmed: bool,
    /// The study's planted image defects.
    defects: &'a BTreeMap<ImageKey, QcReason>,
}

fn make_case(
    ctx: &StudyCtx,
    (s, i): CaseKey,
    n_images: usize,
    planted_here: Planted<'_>,
) -> Result<CaseOut, SynthError> {
    let Planted {
        unsupported,
        unconfirmed,
        defects,
    } = planted_here;
    let site = SITES[s];
    let mut rng = seed::stream(
        ctx.seed,
        &[tag(), Purpose::Record as u64, s as u64, i as u64],
    );
    let case_id = format!("{}-{:05}", site.name, i + 1);
    let origin = match unsupported {
        Some(u) => Origin::Unsupported(u),
        None => Origin::Class(record::draw_class(&mut rng)),
    };
    let ptype = record::draw_path_type(&mut rng, origin);
    let clin = record::draw_clinical(&mut rng, origin, ptype);
    let train = rng.random_bool(site.train_fraction);
    let profile = morph::draw_case_profile(&mut rng, origin, ptype);
    let palette = stain::Stain::for_case(s, &mut rng).palette();
    let read = !train && rng.random_bool(READ_RATE);
    let readers =
        READER_ACCURACY.map(|acc| read.then(|| record::reader_call(&mut rng, origin, acc)));

    let site_dir = ctx.site_dir(site.name);
    let mut paths = Vec::with_capacity(n_images);
    let mut planted = Vec::new();
    if let Origin::Unsupported(_) = origin {
        planted.push(PlantedRow {
            site: site.name,
            case_id: case_id.clone(),
            image: String::new(),
            kind: "ineligible:unsupported_origin".to_string(),
        });
    }
    // A stream of its own, so the rest of the record is what it was before the column.
    let mut evidence_rng = seed::stream(
        ctx.seed,
        &[tag(), Purpose::Record as u64, s as u64, i as u64, 1],
    );
    let origin_evidence = if unconfirmed {
        planted.push(PlantedRow {
            site: site.name,
            case_id: case_id.clone(),
            image: String::new(),
            kind: "ineligible:no_confirmed_origin".to_string(),
        });
        "none"
    } else {
        record::draw_evidence(&mut evidence_rng)
    };
    for img in 0..n_images {
        let mut px_rng = seed::stream(
            ctx.seed,
            &[
                tag(),
                Purpose::Pixels as u64,
                s as u64,
                i as u64,
                img as u64,
            ],
        );
        let defect = defects.get(&(s, i, img)).copied();
        let mut canvas = match defect {
            Some(QcReason::Blank) => smear::render_blank(&palette, &mut px_rng),
            _ => smear::render(&profile, &palette, &mut px_rng),
        };
        match defect {
            Some(QcReason::Blur) => artefact::blur(&mut canvas, &mut px_rng),
            Some(QcReason::Artefact) => artefact::apply(&mut canvas, &mut px_rng),
            _ => {}
        }
        let path = rel(&["images", &case_id, &format!("{}.jpg", img + 1)]);
        output::write_jpeg(
            &under(&site_dir, &path),
            &canvas.to_image(3.0, px_rng.random()),
        )?;
        if let Some(kind) = defect {
            planted.push(PlantedRow {
                site: site.name,
                case_id: case_id.clone(),
                image: path.clone(),
                kind: kind.as_str().to_string(),
            });
        }
        paths.push(path);
    }
    let row = CytologyRow {
        case_id,
        split: if train { "train" } else { "validation" },
        age: clin.age,
        sex: clin.sex,
        puncture_site: clin.puncture_site,
        puncture_date: clin.puncture_date,
        pathological_diagnosis: record::diagnosis(origin, ptype),
        pathological_type: record::path_type_text(ptype),
        immunocytochemistry: record::yn(clin.immunocytochemistry),
        clinical_diagnosis: clin.clinical_diagnosis,
        lesion_site: clin.lesion_site,
        comorbidities: clin.comorbidities,
        history_of_malignancy: record::yn(clin.history_of_malignancy),
        treatment: clin.treatment,
        postoperative_complications: clin.postoperative_complications,
        postoperative_days: clin.postoperative_days,
        survival_months: clin.survival_months,
        origin: origin.name(),
        origin_evidence,
        images: paths.join(";"),
        reader_pathologist1: readers[0],
        reader_pathologist2: readers[1],
    };
    Ok(CaseOut {
        site: s,
        row,
        images: n_images,
        planted,
    })
}
