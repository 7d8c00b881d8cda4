//! Cytology clinical records: origin, pathology, demographics, follow-up and
//! the two readers' calls, correlated with the origin where that is natural.

use crate::output::round_to;
use chrono::{Days, NaiveDate};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// The eight supported origins, in model output order.
pub(crate) const CLASSES: [&str; 8] = [
    "lung",
    "breast",
    "thyroid",
    "nasopharynx",
    "oesophagus",
    "stomach",
    "colorectum",
    "other",
];

/// Prevalence of each supported origin.
const PREVALENCE: [f64; 8] = [0.30, 0.14, 0.10, 0.12, 0.09, 0.09, 0.08, 0.08];

/// Recorded origins outside the supported classes (planted as ineligible).
pub(crate) const UNSUPPORTED: [&str; 2] = ["melanoma", "sarcoma"];

/// The recorded primary origin of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A supported class, by index into [`CLASSES`].
    Class(usize),
    /// An origin outside the study's classes, by index into [`UNSUPPORTED`].
    Unsupported(usize),
}

impl Origin {
    /// The recorded origin text.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Origin::Class(i) => CLASSES[i],
            Origin::Unsupported(i) => UNSUPPORTED[i],
        }
    }
}

/// Pathological type as the archive records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathType {
    /// Adenocarcinoma.
    Adeno,
    /// Squamous cell carcinoma.
    Squamous,
    /// Papillary carcinoma.
    Papillary,
    /// Undifferentiated carcinoma.
    Undifferentiated,
    /// Small cell carcinoma.
    SmallCell,
    /// Anything else.
    Other,
}

impl PathType {
    fn as_str(self) -> &'static str {
        match self {
            PathType::Adeno => "adenocarcinoma",
            PathType::Squamous => "squamous cell carcinoma",
            PathType::Papillary => "papillary carcinoma",
            PathType::Undifferentiated => "undifferentiated carcinoma",
            PathType::SmallCell => "small cell carcinoma",
            PathType::Other => "other",
        }
    }
}

/// Draw a supported origin by prevalence.
pub(crate) fn draw_class(rng: &mut impl Rng) -> usize {
    weighted(rng, &PREVALENCE)
}

/// Index drawn with probability proportional to `weights`.
pub(crate) fn weighted(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// Pathological type given the origin.
pub(crate) fn draw_path_type(rng: &mut impl Rng, origin: Origin) -> PathType {
    use PathType::*;
    let table: &[(PathType, f64)] = match origin {
        Origin::Class(0) => &[
            (Adeno, 0.55),
            (Squamous, 0.25),
            (SmallCell, 0.15),
            (Undifferentiated, 0.05),
        ],
        Origin::Class(1) => &[(Adeno, 0.95), (Other, 0.05)],
        Origin::Class(2) => &[(Papillary, 0.92), (Undifferentiated, 0.08)],
        Origin::Class(3) => &[(Undifferentiated, 0.75), (Squamous, 0.25)],
        Origin::Class(4) => &[(Squamous, 0.88), (Adeno, 0.12)],
        Origin::Class(5) => &[(Adeno, 0.95), (Other, 0.05)],
        Origin::Class(6) => &[(Adeno, 0.98), (Other, 0.02)],
        Origin::Class(_) => &[
            (Adeno, 0.4),
            (Other, 0.3),
            (Undifferentiated, 0.2),
            (Squamous, 0.1),
        ],
        Origin::Unsupported(_) => &[(Other, 1.0)],
    };
    let weights: Vec<f64> = table.iter().map(|t| t.1).collect();
    table[weighted(rng, &weights)].0
}

/// One row of a cytology `cases.csv`, columns in the documented order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CytologyRow {
    pub case_id: String,
    pub split: &'static str,
    pub age: u32,
    pub sex: &'static str,
    pub puncture_site: &'static str,
    pub puncture_date: String,
    pub pathological_diagnosis: String,
    pub pathological_type: &'static str,
    pub immunocytochemistry: &'static str,
    pub clinical_diagnosis: Option<&'static str>,
    pub lesion_site: Option<String>,
    pub comorbidities: String,
    pub history_of_malignancy: &'static str,
    pub treatment: Option<&'static str>,
    pub postoperative_complications: Option<&'static str>,
    pub postoperative_days: Option<u32>,
    pub survival_months: Option<f64>,
    pub origin: &'static str,
    pub origin_evidence: &'static str,
    pub images: String,
    pub reader_pathologist1: Option<&'static str>,
    pub reader_pathologist2: Option<&'static str>,
}

/// Everything about a case except its id, split, images and readers.
pub(crate) struct Clinical {
    pub age: u32,
    pub sex: &'static str,
    pub puncture_site: &'static str,
    pub puncture_date: String,
    pub clinical_diagnosis: Option<&'static str>,
    pub lesion_site: Option<String>,
    pub comorbidities: String,
    pub history_of_malignancy: bool,
    pub treatment: Option<&'static str>,
    pub postoperative_complications: Option<&'static str>,
    pub postoperative_days: Option<u32>,
    pub survival_months: Option<f64>,
    pub immunocytochemistry: bool,
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn normal(rng: &mut impl Rng, mean: f64, sd: f64) -> f64 {
    mean + sd * rng.sample::<f64, _>(StandardNormal)
}

/// Draw the clinical fields of a case of the given origin and type.
pub(crate) fn draw_clinical(rng: &mut impl Rng, origin: Origin, ptype: PathType) -> Clinical {
    // (age mean, age sd, P(female), median survival months)
    let (age_mean, age_sd, p_female, survival) = match origin {
        Origin::Class(0) => (62.0, 10.0, 0.35, 14.0),
        Origin::Class(1) => (52.0, 11.0, 0.99, 36.0),
        Origin::Class(2) => (42.0, 14.0, 0.75, 90.0),
        Origin::Class(3) => (48.0, 11.0, 0.28, 48.0),
        Origin::Class(4) => (63.0, 8.0, 0.20, 12.0),
        Origin::Class(5) => (60.0, 11.0, 0.35, 10.0),
        Origin::Class(6) => (60.0, 12.0, 0.42, 24.0),
        Origin::Class(_) => (57.0, 14.0, 0.50, 20.0),
        Origin::Unsupported(_) => (55.0, 15.0, 0.45, 18.0),
    };
    let age = normal(rng, age_mean, age_sd).round().clamp(18.0, 92.0) as u32;
    let sex = if rng.random_bool(p_female) { "F" } else { "M" };
    const SITES: [&str; 6] = [
        "cervical",
        "supraclavicular",
        "axillary",
        "inguinal",
        "mediastinal",
        "other",
    ];
    let site_weights: [f64; 6] = match origin {
        Origin::Class(0) => [0.30, 0.50, 0.03, 0.01, 0.12, 0.04],
        Origin::Class(1) => [0.08, 0.25, 0.62, 0.01, 0.02, 0.02],
        Origin::Class(2) | Origin::Class(3) => [0.90, 0.08, 0.0, 0.0, 0.01, 0.01],
        Origin::Class(4) => [0.40, 0.50, 0.01, 0.0, 0.07, 0.02],
        Origin::Class(5) => [0.20, 0.60, 0.02, 0.08, 0.02, 0.08],
        Origin::Class(6) => [0.15, 0.40, 0.03, 0.30, 0.02, 0.10],
        _ => [0.30, 0.20, 0.15, 0.20, 0.05, 0.10],
    };
    let puncture_site = SITES[weighted(rng, &site_weights)];
    let day0 = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
    let puncture_date = day0
        .checked_add_days(Days::new(rng.random_range(0..3287)))
        .unwrap_or(day0)
        .format("%Y-%m-%d")
        .to_string();
    const CLINICAL: [&str; 4] = [
        "lymphadenopathy",
        "suspected metastatic carcinoma",
        "cancer of unknown primary",
        "enlarged lymph node under evaluation",
    ];
    let clinical_diagnosis = rng
        .random_bool(0.85)
        .then(|| CLINICAL[rng.random_range(0..CLINICAL.len())]);
    let side = if rng.random_bool(0.5) {
        "left"
    } else {
        "right"
    };
    let lesion_site = rng.random_bool(0.9).then(|| match puncture_site {
        "cervical" => format!(
            "{side} neck level {}",
            ["II", "III", "IV", "V"][rng.random_range(0..4)]
        ),
        "mediastinal" => "mediastinum".to_string(),
        "other" => "retroperitoneum".to_string(),
        s => format!("{side} {s}"),
    });
    const COMORBID: [(&str, f64); 5] = [
        ("hypertension", 0.25),
        ("diabetes", 0.12),
        ("COPD", 0.06),
        ("hepatitis B", 0.05),
        ("coronary heart disease", 0.07),
    ];
    let comorbidities: Vec<&str> = COMORBID
        .iter()
        .filter(|c| rng.random_bool(c.1))
        .map(|c| c.0)
        .collect();
    let history_of_malignancy = rng.random_bool(0.12);
    const TREATMENTS: [&str; 7] = [
        "chemotherapy",
        "surgery",
        "radiotherapy",
        "chemoradiotherapy",
        "targeted therapy",
        "immunotherapy",
        "palliative care",
    ];
    let surgery_weight = if matches!(
        origin,
        Origin::Class(1) | Origin::Class(2) | Origin::Class(6)
    ) {
        0.35
    } else {
        0.12
    };
    let treatment = rng
        .random_bool(0.9)
        .then(|| TREATMENTS[weighted(rng, &[0.30, surgery_weight, 0.10, 0.18, 0.10, 0.08, 0.06])]);
    let operated = treatment == Some("surgery");
    let postoperative_complications = operated.then(|| yes_no(rng.random_bool(0.15)));
    let postoperative_days = operated.then(|| rng.random_range(4..=21));
    let survival_months = rng.random_bool(0.95).then(|| {
        let months = -survival / std::f64::consts::LN_2 * (1.0 - rng.random::<f64>()).ln();
        round_to(months.clamp(0.5, 120.0), 1)
    });
    let p_icc = if matches!(
        ptype,
        PathType::Adeno | PathType::Other | PathType::Undifferentiated
    ) {
        0.7
    } else {
        0.4
    };
    Clinical {
        age,
        sex,
        puncture_site,
        puncture_date,
        clinical_diagnosis,
        lesion_site,
        comorbidities: comorbidities.join(";"),
        history_of_malignancy,
        treatment,
        postoperative_complications,
        postoperative_days,
        survival_months,
        immunocytochemistry: rng.random_bool(p_icc),
    }
}

/// The pathological diagnosis text.
pub(crate) fn diagnosis(origin: Origin, ptype: PathType) -> String {
    match (origin, ptype) {
        (Origin::Unsupported(0), _) => "metastatic malignant melanoma".to_string(),
        (Origin::Unsupported(_), _) => "metastatic sarcoma".to_string(),
        (_, PathType::Other) => "metastatic carcinoma".to_string(),
        (_, t) => format!("metastatic {}", t.as_str()),
    }
}

/// The recorded pathological type text.
pub(crate) fn path_type_text(ptype: PathType) -> &'static str {
    ptype.as_str()
}

/// Text form of a yes/no value.
/// What confirmed a case's origin: histopathology of the primary, its
/// immunohistochemistry, or clinical and imaging follow-up.
pub(crate) fn draw_evidence(rng: &mut impl Rng) -> &'static str {
    const EVIDENCE: [&str; 3] = ["histopathology", "immunohistochemistry", "clinical"];
    EVIDENCE[weighted(rng, &[0.6, 0.25, 0.15])]
}

pub(crate) fn yn(b: bool) -> &'static str {
    yes_no(b)
}

/// Classes a pathologist plausibly confuses with the true origin, with weights.
fn confusions(origin: Origin) -> &'static [(usize, f64)] {
    match origin {
        Origin::Class(0) => &[(4, 0.3), (1, 0.25), (3, 0.2), (5, 0.1), (7, 0.15)],
        Origin::Class(1) => &[(0, 0.45), (7, 0.25), (5, 0.15), (2, 0.15)],
        Origin::Class(2) => &[(0, 0.4), (1, 0.3), (7, 0.3)],
        Origin::Class(3) => &[(0, 0.45), (4, 0.35), (7, 0.2)],
        Origin::Class(4) => &[(0, 0.5), (3, 0.3), (5, 0.2)],
        Origin::Class(5) => &[(6, 0.4), (4, 0.25), (1, 0.15), (0, 0.2)],
        Origin::Class(6) => &[(5, 0.5), (0, 0.25), (7, 0.25)],
        Origin::Class(_) => &[(0, 0.4), (1, 0.2), (5, 0.2), (6, 0.2)],
        Origin::Unsupported(_) => &[(7, 0.6), (0, 0.4)],
    }
}

/// A reader's call: right with probability `accuracy`, else a plausible confusion.
pub(crate) fn reader_call(rng: &mut impl Rng, origin: Origin, accuracy: f64) -> &'static str {
    let correct = rng.random_bool(accuracy);
    match origin {
        Origin::Class(i) if correct => CLASSES[i],
        _ => {
            let table = confusions(origin);
            let weights: Vec<f64> = table.iter().map(|t| t.1).collect();
            CLASSES[table[weighted(rng, &weights)].0]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    #[test]
    fn class_prevalence_follows_the_table() {
        let mut rng = seed::stream(3, &[]);
        let mut counts = [0usize; 8];
        for _ in 0..20_000 {
            counts[draw_class(&mut rng)] += 1;
        }
        let lung = counts[0] as f64 / 20_000.0;
        assert!((lung - 0.30).abs() < 0.02, "lung share {lung}");
        assert!(counts.iter().all(|&c| c > 1000));
    }

    #[test]
    fn breast_cases_are_nearly_all_female() {
        let mut rng = seed::stream(4, &[]);
        let female = (0..2000)
            .filter(|_| draw_clinical(&mut rng, Origin::Class(1), PathType::Adeno).sex == "F")
            .count();
        assert!(female > 1900, "{female} of 2000");
    }

    #[test]
    fn readers_are_right_about_as_often_as_asked() {
        let mut rng = seed::stream(5, &[]);
        let right = (0..5000)
            .filter(|_| reader_call(&mut rng, Origin::Class(3), 0.8) == "nasopharynx")
            .count();
        assert!((3850..4150).contains(&right), "{right}");
    }
}
