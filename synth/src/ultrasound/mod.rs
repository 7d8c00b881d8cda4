//! The ultrasound study (lymph-node metastasis in papillary thyroid
//! carcinoma): four sites, one colour-Doppler frame and one structured
//! report per case.

mod artefact;
mod label;
mod record;
mod scan;

use crate::plan::{self, CaseKey, ImageKey, Site};
use crate::seed::{self, Purpose};
use crate::summary::{SiteSummary, StudySummary};
use crate::{
    ImageFormat, PlantedRow, StudyCtx, StudyOutput, SynthError, alloc, dicom, output, rel, under,
};
use nodal_types::ajcc::{Category, DistantMetastasis, RegionalNodes, StageGroup};
use nodal_types::manifest::QcReason;
use nodal_types::study::Study;
use rand::Rng;
use rayon::prelude::*;
use record::{REPORT_SCHEMA, Report, UltrasoundRow};
use std::collections::{BTreeMap, BTreeSet};

/// The ultrasound centres: us-a trains the model, the others validate it.
const SITES: [Site; 4] = [
    Site {
        name: "us-a",
        weight: 0.4,
        train_fraction: 0.8,
    },
    Site {
        name: "us-b",
        weight: 0.2,
        train_fraction: 0.0,
    },
    Site {
        name: "us-c",
        weight: 0.2,
        train_fraction: 0.0,
    },
    Site {
        name: "us-d",
        weight: 0.2,
        train_fraction: 0.0,
    },
];
/// Share of cases planted as ineligible (spread evenly over the criteria).
const INELIGIBLE_RATE: f64 = 0.06;
/// Share of frames planted with a defect.
const DEFECT_RATE: f64 = 0.02;

fn tag() -> u64 {
    seed::study_tag(Study::Ultrasound)
}

/// Write the ultrasound sites under `ctx.dir`.
pub(crate) fn generate(ctx: &StudyCtx) -> Result<StudyOutput, SynthError> {
    let sizes = plan::site_sizes(ctx.cases, &SITES);
    let mut plan_rng = seed::stream(ctx.seed, &[tag(), Purpose::Plan as u64]);
    let ineligible = plan::pick_cases(
        &mut plan_rng,
        &sizes,
        alloc::planted_count(INELIGIBLE_RATE, ctx.cases, 1),
        Study::Ultrasound.eligibility_criteria().len(),
    );
    let images: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![1; n]).collect();
    let excluded: BTreeSet<CaseKey> = ineligible.keys().copied().collect();
    let defects = plan::pick_images(
        &mut plan_rng,
        &images,
        &excluded,
        alloc::planted_count(DEFECT_RATE, ctx.cases, 3),
    );

    let keys: Vec<CaseKey> = sizes
        .iter()
        .enumerate()
        .flat_map(|(s, &n)| (0..n).map(move |i| (s, i)))
        .collect();
    let cases = keys
        .par_iter()
        .map(|&(s, i)| {
            let out = make_case(ctx, (s, i), ineligible.get(&(s, i)).copied(), &defects);
            (ctx.on_case)();
            out
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut summary = StudySummary {
        sites: BTreeMap::new(),
        label_model: Some(label::model()),
    };
    let mut planted = Vec::new();
    for (s, site) in SITES.iter().enumerate() {
        let site_cases: Vec<&CaseOut> = cases.iter().filter(|c| c.site == s).collect();
        let rows: Vec<&UltrasoundRow> = site_cases.iter().map(|c| &c.row).collect();
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
            sum.images += 1;
            if c.row.split == "train" {
                sum.train += 1;
            } else {
                sum.validation += 1;
            }
            let label = c
                .row
                .ln_metastasis
                .map(|l| l.to_string())
                .unwrap_or_default();
            *sum.labels.entry(label).or_default() += 1;
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

struct CaseOut {
    site: usize,
    row: UltrasoundRow,
    planted: Vec<PlantedRow>,
}

/// Write the case's picture as a three-frame DICOM cine loop, the
/// picture in the middle between two dimmer frames, with its fake
/// patient in the header and the banner.
fn write_dicom(
    ctx: &StudyCtx,
    (s, i): CaseKey,
    case: &record::UsCase,
    mut canvas: crate::canvas::Canvas,
    grain: u64,
    path: &std::path::Path,
) -> Result<(), SynthError> {
    let mut rng = seed::stream(
        ctx.seed,
        &[tag(), Purpose::Identity as u64, s as u64, i as u64],
    );
    let patient = dicom::FakePatient::new(
        SITES[s].name,
        i + 1,
        case.age,
        &case.exam_date,
        rng.random_range(0..100_000_000),
    );
    patient.burn_banner(&mut canvas);
    let picture = canvas.to_image(1.5, grain);
    let mut dim = picture.clone();
    dim.pixels_mut()
        .for_each(|p| p.0 = p.0.map(|c| (u16::from(c) * 3 / 5) as u8));
    dicom::write_ultrasound(
        path,
        &[dim.clone(), picture, dim],
        &patient,
        &case.exam_date,
        rng.random(),
        f64::from(1.0 / scan::PX_PER_MM),
    )
}

fn yn(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn make_case(
    ctx: &StudyCtx,
    (s, i): CaseKey,
    criterion: Option<usize>,
    defects: &BTreeMap<ImageKey, QcReason>,
) -> Result<CaseOut, SynthError> {
    let site = SITES[s];
    let mut rng = seed::stream(
        ctx.seed,
        &[tag(), Purpose::Record as u64, s as u64, i as u64],
    );
    let case_id = format!("{}-{:05}", site.name, i + 1);
    let criterion = criterion.map(|c| Study::Ultrasound.eligibility_criteria()[c]);
    let case = record::draw(&mut rng, criterion);
    let train = rng.random_bool(site.train_fraction);
    let site_dir = ctx.site_dir(site.name);

    let mut px_rng = seed::stream(
        ctx.seed,
        &[tag(), Purpose::Pixels as u64, s as u64, i as u64, 0],
    );
    let defect = defects.get(&(s, i, 0)).copied();
    let machine = &scan::MACHINES[s % scan::MACHINES.len()];
    let mut canvas = scan::render(&case, machine, defect == Some(QcReason::Blank), &mut px_rng);
    match defect {
        Some(QcReason::Blur) => artefact::blur(&mut canvas, &mut px_rng),
        Some(QcReason::Artefact) => artefact::apply(&mut canvas, &mut px_rng),
        _ => {}
    }
    let grain = px_rng.random();
    let image = match ctx.format {
        ImageFormat::Jpeg => {
            let image = rel(&["images", &format!("{case_id}.jpg")]);
            output::write_jpeg(&under(&site_dir, &image), &canvas.to_image(1.5, grain))?;
            image
        }
        ImageFormat::Dicom => {
            let image = rel(&["images", &format!("{case_id}.dcm")]);
            write_dicom(ctx, (s, i), &case, canvas, grain, &under(&site_dir, &image))?;
            image
        }
    };

    let report_path = rel(&["reports", &format!("{case_id}.json")]);
    let report = Report {
        schema: REPORT_SCHEMA,
        case_id: case_id.clone(),
        nodule_location: case.nodule_location(),
        max_diameter_mm: case.diameter_mm,
        composition: case.composition,
        echogenicity: case.echogenicity,
        margin: case.margin,
        calcification: case.calcification,
        aspect_ratio: case.aspect_ratio,
        vascularity: case.vascularity,
        tirads: case.tirads,
    };
    output::write_json(&under(&site_dir, &report_path), &report)?;

    let mut planted = Vec::new();
    if let Some(c) = criterion {
        planted.push(PlantedRow {
            site: site.name,
            case_id: case_id.clone(),
            image: String::new(),
            kind: format!("ineligible:{c}"),
        });
    }
    if let Some(kind) = defect {
        planted.push(PlantedRow {
            site: site.name,
            case_id: case_id.clone(),
            image: image.clone(),
            kind: kind.as_str().to_string(),
        });
    }
    let row = UltrasoundRow {
        case_id,
        split: if train { "train" } else { "validation" },
        age: case.age,
        sex: if case.male { "M" } else { "F" },
        exam_date: case.exam_date.clone(),
        first_diagnosis: yn(case.first_diagnosis),
        ln_dissection: yn(case.ln_dissection),
        prior_thyroid_surgery: yn(case.prior_thyroid_surgery),
        concurrent_tumour: yn(case.concurrent_tumour),
        special_population: case.special_population,
        nodule_fully_visualised: yn(case.nodule_fully_visualised),
        multiple_lesions: yn(case.multiple_lesions),
        location: case.pole.as_str(),
        max_diameter_mm: case.diameter_mm,
        multifocal: yn(case.multifocal),
        hashimoto: yn(case.hashimoto),
        ln_metastasis: case.metastasis.map(u8::from),
        pt: case.pt.as_str(),
        pn: case.pn.map(RegionalNodes::as_str),
        m: case.m_recorded.map(DistantMetastasis::as_str),
        stage: case.stage.map(StageGroup::as_str),
        image,
        report: report_path,
    };
    Ok(CaseOut {
        site: s,
        row,
        planted,
    })
}
