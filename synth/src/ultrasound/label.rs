//! The label model: `ln_metastasis` is drawn from a logistic model of the
//! case's covariates, report features and an image-only latent feature;
//! the pTNM stage follows from age, tumour extent and nodal status.

use crate::summary::{Coefficient, LabelModel};

/// Intercept of the logistic model (tuned for about 45 % positives).
pub(crate) const INTERCEPT: f64 = -4.2;

/// The model's terms: name, log-odds coefficient, definition.
pub(crate) const TERMS: [(&str, f64, &str); 9] = [
    ("age_lt_55", 0.6, "1 when age < 55 years, else 0"),
    ("male", 0.5, "1 when sex = M, else 0"),
    ("max_diameter_cm", 1.0, "max_diameter_mm / 10"),
    ("multifocal", 0.6, "1 when multifocal = yes, else 0"),
    (
        "microcalcification",
        1.5,
        "1 when the report's calcification = microcalcification, else 0",
    ),
    (
        "irregular_margin",
        1.4,
        "1 when the report's margin is irregular or extrathyroidal, else 0",
    ),
    (
        "central_vascularity",
        1.1,
        "1 when the report's vascularity is central or mixed, else 0",
    ),
    ("hashimoto", -0.4, "1 when hashimoto = yes, else 0"),
    (
        "image_latent",
        1.6,
        "standard-normal feature seen only in the image: roundness, echogenicity and lost hilum \
         of the central-compartment lymph node drawn below the thyroid (not in the report)",
    ),
];

/// Values of [`TERMS`] for one case, in the same order.
pub(crate) type Covariates = [f64; 9];

/// Probability of metastasis under the model.
pub(crate) fn probability(x: &Covariates) -> f64 {
    let eta = INTERCEPT + TERMS.iter().zip(x).map(|(t, v)| t.1 * v).sum::<f64>();
    1.0 / (1.0 + (-eta).exp())
}

/// The model as written to `synth.json`.
pub(crate) fn model() -> LabelModel {
    LabelModel {
        link: "logit".to_string(),
        intercept: INTERCEPT,
        coefficients: TERMS
            .iter()
            .map(|&(term, value, definition)| Coefficient {
                term: term.to_string(),
                value,
                definition: definition.to_string(),
            })
            .collect(),
    }
}

/// Primary tumour extent (AJCC 8th edition, thyroid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TCategory {
    /// ≤ 20 mm, within the thyroid.
    T1,
    /// 20–40 mm, within the thyroid.
    T2,
    /// > 40 mm, or gross extension into strap muscles.
    T3,
    /// Invasion of larynx, trachea, oesophagus or recurrent nerve.
    T4a,
    /// Invasion of prevertebral fascia or encasing vessels.
    T4b,
}

/// pTNM stage (AJCC 8th edition, differentiated thyroid cancer).
pub(crate) fn stage(age: u32, t: TCategory, n1: bool, m1: bool) -> &'static str {
    if age < 55 {
        return if m1 { "II" } else { "I" };
    }
    match (t, n1, m1) {
        (_, _, true) | (TCategory::T4b, _, _) => "IV",
        (TCategory::T4a, _, _) => "III",
        (TCategory::T3, _, _) | (_, true, _) => "II",
        _ => "I",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_follows_ajcc_age_rule() {
        assert_eq!(stage(40, TCategory::T4a, true, false), "I");
        assert_eq!(stage(40, TCategory::T1, true, true), "II");
        assert_eq!(stage(60, TCategory::T1, false, false), "I");
        assert_eq!(stage(60, TCategory::T2, true, false), "II");
        assert_eq!(stage(60, TCategory::T4a, false, false), "III");
        assert_eq!(stage(60, TCategory::T1, false, true), "IV");
    }

    #[test]
    fn probability_rises_with_each_positive_term() {
        let base = [0.0; 9];
        for i in 0..9 {
            let mut x = base;
            x[i] = 1.0;
            assert_eq!(
                probability(&x) > probability(&base),
                TERMS[i].1 > 0.0,
                "{}",
                TERMS[i].0
            );
        }
    }
}
