//! Ultrasound case records: demographics, eligibility fields, the nodule's
//! report features, the image-only latent, and the drawn label and stage.

use super::label::{self, Covariates};
use crate::output::round_to;
use chrono::{Days, NaiveDate};
use nodal_types::ajcc::{
    self, DistantMetastasis, Extension, PrimaryTumour, RegionalNodes, StageGroup,
};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// `special_population` values of a planted special-population case.
const SPECIAL_POPULATIONS: [&str; 2] = ["pregnancy", "lactation"];

/// Nodule position along the lobe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pole {
    /// Upper pole.
    Upper,
    /// Mid lobe.
    Middle,
    /// Lower pole.
    Lower,
    /// The isthmus.
    Isthmus,
}

impl Pole {
    /// The `location` column value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Pole::Upper => "upper",
            Pole::Middle => "middle",
            Pole::Lower => "lower",
            Pole::Isthmus => "isthmus",
        }
    }
}

/// Everything about one ultrasound case.
#[derive(Debug, Clone)]
pub(crate) struct UsCase {
    pub age: u32,
    pub male: bool,
    pub exam_date: String,
    pub first_diagnosis: bool,
    pub ln_dissection: bool,
    pub prior_thyroid_surgery: bool,
    pub concurrent_tumour: bool,
    /// `none`, or the special population the patient belongs to.
    pub special_population: &'static str,
    /// Whether the whole nodule is in the frame.
    pub nodule_fully_visualised: bool,
    /// Whether the frame shows more than one distinct lesion.
    pub multiple_lesions: bool,
    /// `left` or `right`; `None` for the isthmus.
    pub side: Option<&'static str>,
    pub pole: Pole,
    pub diameter_mm: f64,
    pub multifocal: bool,
    pub hashimoto: bool,
    pub composition: &'static str,
    pub echogenicity: &'static str,
    pub margin: &'static str,
    pub calcification: &'static str,
    pub aspect_ratio: f64,
    pub vascularity: &'static str,
    pub tirads: u8,
    /// Image-only feature, standard normal.
    pub latent: f64,
    /// Gross extrathyroidal extension (shown in the image; the report says only `extrathyroidal`).
    pub extension: Extension,
    /// A lateral-compartment lymph node in the frame: `Some(true)` abnormal,
    /// `Some(false)` normal-looking, `None` not in view.
    pub lateral_node: Option<bool>,
    /// Drawn metastasis (pN1); `None` without lymph-node dissection.
    pub metastasis: Option<bool>,
    /// Pathological pT.
    pub pt: PrimaryTumour,
    /// Pathological pN; `None` without lymph-node dissection.
    pub pn: Option<RegionalNodes>,
    /// M as the clinical record states it; `None` when not recorded.
    pub m_recorded: Option<DistantMetastasis>,
    /// AJCC 8 stage group from age and the true TNM; `None` without lymph-node dissection.
    pub stage: Option<StageGroup>,
}

impl UsCase {
    /// The `nodule_location` report value.
    pub(crate) fn nodule_location(&self) -> String {
        match self.side {
            Some(side) => format!("{side}-{}", self.pole.as_str()),
            None => "isthmus".to_string(),
        }
    }

    /// Values of the label model's terms.
    pub(crate) fn covariates(&self) -> Covariates {
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        [
            b(self.age < 55),
            b(self.male),
            self.diameter_mm / 10.0,
            b(self.multifocal),
            b(self.calcification == "microcalcification"),
            b(matches!(self.margin, "irregular" | "extrathyroidal")),
            b(matches!(self.vascularity, "central" | "mixed")),
            b(self.hashimoto),
            self.latent,
        ]
    }
}

fn pick<T: Copy>(rng: &mut impl Rng, table: &[(T, f64)]) -> T {
    let total: f64 = table.iter().map(|t| t.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(v, w) in table {
        if u < w {
            return v;
        }
        u -= w;
    }
    table[table.len() - 1].0
}

fn gauss(rng: &mut impl Rng) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

/// ACR TI-RADS level from the report features.
pub(crate) fn tirads(
    composition: &str,
    echogenicity: &str,
    aspect_ratio: f64,
    margin: &str,
    calcification: &str,
) -> u8 {
    let points = match composition {
        "solid" => 2,
        "mixed" => 1,
        _ => 0,
    } + match echogenicity {
        "anechoic" => 0,
        "hyperechoic" | "isoechoic" => 1,
        "hypoechoic" => 2,
        _ => 3,
    } + if aspect_ratio > 1.0 { 3 } else { 0 }
        + match margin {
            "lobulated" | "irregular" => 2,
            "extrathyroidal" => 3,
            _ => 0,
        }
        + match calcification {
            "macrocalcification" => 1,
            "rim" => 2,
            "microcalcification" => 3,
            _ => 0,
        };
    match points {
        0 | 1 => 1,
        2 => 2,
        3 => 3,
        4..=6 => 4,
        _ => 5,
    }
}

/// Draw a case; `failing` (a name of `Study::eligibility_criteria`) makes
/// it fail exactly that criterion.
pub(crate) fn draw(rng: &mut impl Rng, failing: Option<&str>) -> UsCase {
    let fails = |criterion: &str| failing == Some(criterion);
    let mut age = (44.0 + 12.0 * gauss(rng)).round().clamp(18.0, 80.0) as u32;
    if fails("age_out_of_range") {
        age = if rng.random_bool(0.5) {
            rng.random_range(14..18)
        } else {
            rng.random_range(81..88)
        };
    }
    let male = rng.random_bool(0.25);
    let day0 = NaiveDate::from_ymd_opt(2016, 1, 1).unwrap_or_default();
    let exam_date = day0
        .checked_add_days(Days::new(rng.random_range(0..2922)))
        .unwrap_or(day0)
        .format("%Y-%m-%d")
        .to_string();
    let side = if rng.random_bool(0.06) {
        None
    } else {
        Some(if rng.random_bool(0.5) {
            "left"
        } else {
            "right"
        })
    };
    let pole = match side {
        None => Pole::Isthmus,
        Some(_) => pick(
            rng,
            &[(Pole::Upper, 0.3), (Pole::Middle, 0.4), (Pole::Lower, 0.3)],
        ),
    };
    let diameter_mm = round_to((11.0f64.ln() + 0.55 * gauss(rng)).exp().clamp(3.0, 45.0), 1);
    let composition = pick(rng, &[("solid", 0.85), ("mixed", 0.12), ("cystic", 0.03)]);
    let echogenicity = if composition == "cystic" {
        "anechoic"
    } else {
        pick(
            rng,
            &[
                ("very-hypoechoic", 0.12),
                ("hypoechoic", 0.65),
                ("isoechoic", 0.15),
                ("hyperechoic", 0.08),
            ],
        )
    };
    let p_ete = 0.05 + 0.1 * diameter_mm / 20.0;
    let margin = pick(
        rng,
        &[
            ("smooth", 0.25),
            ("ill-defined", 0.2),
            ("lobulated", 0.15),
            ("irregular", 0.3),
            ("extrathyroidal", p_ete),
        ],
    );
    let calcification = pick(
        rng,
        &[
            ("none", 0.30),
            ("macrocalcification", 0.10),
            ("rim", 0.05),
            ("microcalcification", 0.55),
        ],
    );
    let aspect_ratio = round_to((-0.05 + 0.2 * gauss(rng)).exp().clamp(0.5, 2.0), 2);
    let vascularity = pick(
        rng,
        &[
            ("none", 0.2),
            ("peripheral", 0.35),
            ("central", 0.25),
            ("mixed", 0.2),
        ],
    );
    let multifocal = rng.random_bool(0.3);
    let hashimoto = rng.random_bool(if male { 0.1 } else { 0.3 });
    let latent = gauss(rng);
    let extension = if margin == "extrathyroidal" {
        pick(
            rng,
            &[
                (Extension::StrapMuscles, 0.7),
                (Extension::Visceral, 0.25),
                (Extension::Vascular, 0.05),
            ],
        )
    } else {
        Extension::None
    };
    let special_population = if fails("special_population") {
        SPECIAL_POPULATIONS[rng.random_range(0..SPECIAL_POPULATIONS.len())]
    } else {
        "none"
    };
    let mut case = UsCase {
        age,
        male: male && !fails("special_population"),
        exam_date,
        first_diagnosis: !fails("not_first_diagnosis"),
        ln_dissection: !fails("no_ln_dissection"),
        prior_thyroid_surgery: fails("prior_thyroid_surgery"),
        concurrent_tumour: fails("concurrent_tumour"),
        special_population,
        nodule_fully_visualised: !fails("nodule_not_fully_visualised"),
        multiple_lesions: fails("multiple_lesions"),
        side,
        pole,
        diameter_mm,
        multifocal,
        hashimoto,
        composition,
        echogenicity,
        margin,
        calcification,
        aspect_ratio,
        vascularity,
        tirads: tirads(
            composition,
            echogenicity,
            aspect_ratio,
            margin,
            calcification,
        ),
        latent,
        extension,
        lateral_node: None,
        metastasis: None,
        pt: PrimaryTumour::from_extent(diameter_mm, extension),
        pn: None,
        m_recorded: None,
        stage: None,
    };
    let n1 = rng.random_bool(label::probability(&case.covariates()));
    let n = if !n1 {
        RegionalNodes::N0
    } else if rng.random_bool(label::lateral_probability(pole == Pole::Upper, diameter_mm)) {
        RegionalNodes::N1b
    } else {
        RegionalNodes::N1a
    };
    // An involved lateral node is in view in most N1b frames; a normal one sometimes.
    case.lateral_node = match n {
        RegionalNodes::N1b => rng.random_bool(0.75).then_some(true),
        _ => rng.random_bool(0.25).then_some(false),
    };
    let m = if rng.random_bool(match n {
        RegionalNodes::N0 => 0.01,
        RegionalNodes::N1a => 0.04,
        RegionalNodes::N1b => 0.08,
    }) {
        DistantMetastasis::M1
    } else {
        DistantMetastasis::M0
    };
    case.m_recorded = rng.random_bool(0.85).then_some(m);
    if case.ln_dissection {
        case.metastasis = Some(n1);
        case.pn = Some(n);
        case.stage = Some(ajcc::dtc_stage(age, case.pt, n, m));
    }
    case
}

/// The structured report, fields in the documented order.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub schema: &'static str,
    pub case_id: String,
    pub nodule_location: String,
    pub max_diameter_mm: f64,
    pub composition: &'static str,
    pub echogenicity: &'static str,
    pub margin: &'static str,
    pub calcification: &'static str,
    pub aspect_ratio: f64,
    pub vascularity: &'static str,
    pub tirads: u8,
}

/// Layout tag of a structured report.
pub(crate) const REPORT_SCHEMA: &str = "nodal.us-report/1";

/// One row of an ultrasound `cases.csv`, columns in the documented order.
#[derive(Debug, Serialize)]
pub(crate) struct UltrasoundRow {
    pub case_id: String,
    pub split: &'static str,
    pub age: u32,
    pub sex: &'static str,
    pub exam_date: String,
    pub first_diagnosis: &'static str,
    pub ln_dissection: &'static str,
    pub prior_thyroid_surgery: &'static str,
    pub concurrent_tumour: &'static str,
    pub special_population: &'static str,
    pub nodule_fully_visualised: &'static str,
    pub multiple_lesions: &'static str,
    pub location: &'static str,
    pub max_diameter_mm: f64,
    pub multifocal: &'static str,
    pub hashimoto: &'static str,
    pub ln_metastasis: Option<u8>,
    pub pt: &'static str,
    pub pn: Option<&'static str>,
    pub m: Option<&'static str>,
    pub stage: Option<&'static str>,
    pub image: String,
    pub report: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    fn sample(n: usize) -> Vec<UsCase> {
        let mut rng = seed::stream(77, &[]);
        (0..n).map(|_| draw(&mut rng, None)).collect()
    }

    fn rate(cases: &[&UsCase]) -> f64 {
        cases.iter().filter(|c| c.metastasis == Some(true)).count() as f64 / cases.len() as f64
    }

    #[test]
    fn label_rate_is_about_45_percent() {
        let cases = sample(20_000);
        let all: Vec<&UsCase> = cases.iter().collect();
        let r = rate(&all);
        assert!((0.42..0.48).contains(&r), "positive rate {r}");
    }

    #[test]
    fn label_depends_on_covariates_in_the_model_direction() {
        let cases = sample(20_000);
        let split = |f: &dyn Fn(&UsCase) -> bool| {
            let (a, b): (Vec<&UsCase>, Vec<&UsCase>) = cases.iter().partition(|c| f(c));
            (rate(&a), rate(&b))
        };
        let (micro, no_micro) = split(&|c| c.calcification == "microcalcification");
        assert!(
            micro > no_micro + 0.15,
            "microcalcification {micro} vs {no_micro}"
        );
        let (young, old) = split(&|c| c.age < 55);
        assert!(young > old + 0.05, "age < 55 {young} vs {old}");
        let (high, low) = split(&|c| c.latent > 0.0);
        assert!(high > low + 0.2, "image latent {high} vs {low}");
        let (hashi, no_hashi) = split(&|c| c.hashimoto);
        assert!(
            hashi < no_hashi,
            "hashimoto is protective: {hashi} vs {no_hashi}"
        );
    }

    #[test]
    fn tnm_and_stage_in_realistic_proportions() {
        let cases = sample(20_000);
        let share = |f: &dyn Fn(&UsCase) -> bool| {
            cases.iter().filter(|c| f(c)).count() as f64 / cases.len() as f64
        };
        let t1 = share(&|c| c.pt <= PrimaryTumour::T1b);
        assert!((0.7..0.95).contains(&t1), "T1 share {t1}");
        let t4 = share(&|c| c.pt >= PrimaryTumour::T4a);
        assert!((0.005..0.05).contains(&t4), "T4 share {t4}");
        let n1 = share(&|c| c.metastasis == Some(true));
        let n1b = share(&|c| c.pn == Some(RegionalNodes::N1b));
        assert!(
            (0.2..0.4).contains(&(n1b / n1)),
            "N1b among N1 {}",
            n1b / n1
        );
        let m1 = share(&|c| c.m_recorded == Some(DistantMetastasis::M1));
        assert!((0.005..0.05).contains(&m1), "recorded M1 {m1}");
        let late = share(&|c| c.stage.is_some_and(|s| s >= StageGroup::III));
        assert!((0.002..0.05).contains(&late), "stage III-IV {late}");
        let lateral_seen = cases
            .iter()
            .filter(|c| c.pn == Some(RegionalNodes::N1b))
            .filter(|c| c.lateral_node == Some(true))
            .count() as f64
            / (n1b * cases.len() as f64);
        assert!((0.65..0.85).contains(&lateral_seen), "{lateral_seen}");
    }

    #[test]
    fn young_patients_are_stage_i_or_ii_and_planted_criteria_fail_alone() {
        for c in sample(3000) {
            if c.age < 55 {
                assert!(
                    matches!(c.stage, Some(StageGroup::I | StageGroup::II)),
                    "{c:?}"
                );
            }
            assert_eq!(c.metastasis, c.pn.map(RegionalNodes::is_metastatic));
            assert_eq!(
                c.pt == PrimaryTumour::T3b || c.pt >= PrimaryTumour::T4a,
                c.margin == "extrathyroidal"
            );
            assert_eq!(
                c.tirads,
                tirads(
                    c.composition,
                    c.echogenicity,
                    c.aspect_ratio,
                    c.margin,
                    c.calcification
                )
            );
        }
        let mut rng = seed::stream(1, &[]);
        let c = draw(&mut rng, Some("no_ln_dissection"));
        assert!(!c.ln_dissection && c.first_diagnosis && c.metastasis.is_none());
        let c = draw(&mut rng, Some("age_out_of_range"));
        assert!(c.age < 18 || c.age > 80);
    }
}
