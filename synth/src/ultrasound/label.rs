//! The label model: `ln_metastasis` is drawn from a logistic model of the
//! case's covariates, report features and an image-only latent feature;
//! metastatic cases reach the lateral compartment (N1b) with a probability
//! of their own. The stage group follows from age and TNM (`nodal_types::ajcc`).

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

/// Intercept of P(N1b | N1), the lateral share of node-positive cases.
const LATERAL_INTERCEPT: f64 = -1.1;

/// Probability that a node-positive case's metastases reach the lateral
/// compartment (N1b rather than N1a): higher for upper-pole and larger tumours.
pub(crate) fn lateral_probability(upper_pole: bool, diameter_mm: f64) -> f64 {
    let eta = LATERAL_INTERCEPT + if upper_pole { 0.9 } else { 0.0 } + 0.06 * (diameter_mm - 11.0);
    1.0 / (1.0 + (-eta).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateral_share_rises_with_upper_pole_and_size() {
        assert!(lateral_probability(true, 11.0) > lateral_probability(false, 11.0));
        assert!(lateral_probability(false, 30.0) > lateral_probability(false, 11.0));
        assert!((0.2..0.3).contains(&lateral_probability(false, 11.0)));
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
