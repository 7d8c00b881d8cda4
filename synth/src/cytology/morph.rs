//! Cell morphology: a profile of traits per tumour type, and the per-case
//! draw that blends profiles and adds noise so classes overlap.

use super::record::{Origin, PathType};
use rand::Rng;
use rand_distr::StandardNormal;

/// Numeric traits of a tumour's cells, indexes into [`Profile::traits`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trait {
    /// Mean nuclear radius, pixels.
    NucR,
    /// Relative spread of nuclear size (pleomorphism).
    Pleo,
    /// Nuclear elongation (long / short axis).
    Aspect,
    /// Nuclear outline irregularity.
    Irregular,
    /// Hyperchromasia, 0–1.
    Dark,
    /// Coarseness of chromatin texture, 0–1.
    Chromatin,
    /// Vesicular nuclei (dark rim, pale centre), 0–1.
    Vesicular,
    /// Probability of a prominent nucleolus.
    Nucleolus,
    /// Probability of a nuclear groove or pseudo-inclusion.
    Groove,
    /// Nuclear / cell radius (N:C ratio).
    Nc,
    /// Cytoplasm colour: 0 cyanophilic, 1 orangeophilic (keratin).
    Keratin,
    /// Cytoplasm opacity.
    CytoAlpha,
    /// Probability of a signet-ring vacuole.
    Vacuole,
    /// Cells per cluster.
    Cells,
    /// Background lymphocytes, 0–1.
    Lymphocytes,
    /// Dirty necrosis, 0–1.
    Necrosis,
    /// Mucin pools, 0–1.
    Mucin,
    /// Colloid, 0–1.
    Colloid,
    /// Melanin pigment, 0–1.
    Pigment,
}

/// Number of [`Trait`]s.
pub(crate) const N_TRAITS: usize = 19;

/// How cells are arranged in a cluster, indexes into [`Profile::arrangement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrangement {
    /// Cohesive flat sheet.
    Sheet,
    /// Glandular rings (acini, rosettes).
    Acinar,
    /// Branching papillary fronds.
    Papillary,
    /// Single scattered cells.
    Dispersed,
    /// Palisades of tall columnar cells.
    Palisade,
    /// Chains of moulded nuclei (small cell) or single files.
    Chain,
    /// Syncytium: overlapping nuclei in shared cytoplasm.
    Syncytial,
}

/// All arrangements in index order.
pub(crate) const ARRANGEMENTS: [Arrangement; 7] = [
    Arrangement::Sheet,
    Arrangement::Acinar,
    Arrangement::Papillary,
    Arrangement::Dispersed,
    Arrangement::Palisade,
    Arrangement::Chain,
    Arrangement::Syncytial,
];

/// The morphology of a tumour type or of one case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    /// Values of the [`Trait`]s.
    pub traits: [f32; N_TRAITS],
    /// Relative frequency of each [`Arrangement`].
    pub arrangement: [f32; 7],
}

impl Profile {
    /// The value of one trait.
    pub(crate) fn get(&self, t: Trait) -> f32 {
        self.traits[t as usize]
    }

    fn blend(&self, other: &Profile, t: f32) -> Profile {
        let mut out = self.clone();
        for (o, b) in out.traits.iter_mut().zip(other.traits) {
            *o += (b - *o) * t;
        }
        for (o, b) in out.arrangement.iter_mut().zip(other.arrangement) {
            *o += (b - *o) * t;
        }
        out
    }
}

/// Strength of the per-case blend towards another type's profile (0–1).
const BLEND_MAX: f32 = 0.55;
/// Log-scale noise on each trait of a case.
const TRAIT_NOISE: f32 = 0.16;

// Trait order: NucR Pleo Aspect Irregular Dark Chromatin Vesicular Nucleolus Groove Nc
//              Keratin CytoAlpha Vacuole Cells Lymphocytes Necrosis Mucin Colloid Pigment
// Arrangement: Sheet Acinar Papillary Dispersed Palisade Chain Syncytial
const LUNG_ADENO: Profile = Profile {
    traits: [
        11.0, 0.28, 1.25, 0.10, 0.65, 0.55, 0.20, 0.55, 0.03, 0.55, 0.15, 0.55, 0.08, 24.0, 0.20,
        0.25, 0.15, 0.0, 0.0,
    ],
    arrangement: [0.20, 0.45, 0.15, 0.15, 0.0, 0.0, 0.05],
};
const SQUAMOUS: Profile = Profile {
    traits: [
        8.5, 0.30, 1.35, 0.22, 0.90, 0.20, 0.0, 0.08, 0.0, 0.30, 0.85, 0.80, 0.0, 18.0, 0.10, 0.40,
        0.0, 0.0, 0.0,
    ],
    arrangement: [0.55, 0.0, 0.0, 0.45, 0.0, 0.0, 0.0],
};
const LUNG_SQUAMOUS: Profile = Profile {
    traits: [
        10.0, 0.30, 1.25, 0.18, 0.80, 0.35, 0.05, 0.20, 0.0, 0.40, 0.55, 0.70, 0.0, 20.0, 0.15,
        0.35, 0.0, 0.0, 0.0,
    ],
    arrangement: [0.55, 0.0, 0.0, 0.35, 0.0, 0.0, 0.10],
};
const SMALL_CELL: Profile = Profile {
    traits: [
        7.0, 0.15, 1.30, 0.12, 0.85, 0.40, 0.0, 0.02, 0.0, 0.90, 0.20, 0.30, 0.0, 22.0, 0.25, 0.45,
        0.0, 0.0, 0.0,
    ],
    arrangement: [0.10, 0.0, 0.0, 0.25, 0.0, 0.65, 0.0],
};
const BREAST: Profile = Profile {
    traits: [
        8.5, 0.15, 1.10, 0.06, 0.60, 0.35, 0.05, 0.20, 0.05, 0.55, 0.30, 0.55, 0.10, 20.0, 0.10,
        0.08, 0.05, 0.0, 0.0,
    ],
    arrangement: [0.40, 0.10, 0.0, 0.25, 0.0, 0.25, 0.0],
};
const THYROID: Profile = Profile {
    traits: [
        9.0, 0.12, 1.40, 0.05, 0.30, 0.12, 0.35, 0.10, 0.55, 0.50, 0.30, 0.65, 0.0, 26.0, 0.10,
        0.0, 0.0, 0.55, 0.0,
    ],
    arrangement: [0.30, 0.10, 0.60, 0.0, 0.0, 0.0, 0.0],
};
const NASOPHARYNX: Profile = Profile {
    traits: [
        12.0, 0.20, 1.15, 0.08, 0.35, 0.15, 0.75, 0.90, 0.0, 0.80, 0.20, 0.45, 0.0, 22.0, 0.90,
        0.10, 0.0, 0.0, 0.0,
    ],
    arrangement: [0.10, 0.0, 0.0, 0.20, 0.0, 0.0, 0.70],
};
const STOMACH: Profile = Profile {
    traits: [
        9.0, 0.25, 1.20, 0.14, 0.70, 0.45, 0.10, 0.30, 0.0, 0.45, 0.20, 0.45, 0.60, 14.0, 0.15,
        0.20, 0.45, 0.0, 0.0,
    ],
    arrangement: [0.15, 0.30, 0.0, 0.55, 0.0, 0.0, 0.0],
};
const COLORECTUM: Profile = Profile {
    traits: [
        9.5, 0.18, 2.30, 0.08, 0.75, 0.45, 0.05, 0.25, 0.0, 0.60, 0.25, 0.65, 0.02, 26.0, 0.10,
        0.75, 0.20, 0.0, 0.0,
    ],
    arrangement: [0.05, 0.30, 0.0, 0.05, 0.60, 0.0, 0.0],
};
const OTHER: Profile = Profile {
    traits: [
        10.5, 0.22, 1.05, 0.08, 0.45, 0.30, 0.30, 0.60, 0.0, 0.35, 0.05, 0.25, 0.30, 20.0, 0.10,
        0.10, 0.0, 0.0, 0.0,
    ],
    arrangement: [0.45, 0.25, 0.10, 0.20, 0.0, 0.0, 0.0],
};
const MELANOMA: Profile = Profile {
    traits: [
        11.5, 0.35, 1.10, 0.10, 0.55, 0.35, 0.40, 0.85, 0.10, 0.45, 0.30, 0.60, 0.0, 10.0, 0.10,
        0.10, 0.0, 0.0, 0.80,
    ],
    arrangement: [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
};
const SARCOMA: Profile = Profile {
    traits: [
        9.0, 0.30, 3.00, 0.15, 0.70, 0.45, 0.0, 0.20, 0.0, 0.55, 0.35, 0.40, 0.0, 14.0, 0.05, 0.20,
        0.0, 0.0, 0.0,
    ],
    arrangement: [0.0, 0.0, 0.0, 0.8, 0.2, 0.0, 0.0],
};

/// The typical profile of a tumour of this origin and type.
pub(crate) fn base_profile(origin: Origin, ptype: PathType) -> &'static Profile {
    match (origin, ptype) {
        (Origin::Unsupported(0), _) => &MELANOMA,
        (Origin::Unsupported(_), _) => &SARCOMA,
        (Origin::Class(0), PathType::Squamous) => &LUNG_SQUAMOUS,
        (Origin::Class(0), PathType::SmallCell) => &SMALL_CELL,
        (Origin::Class(0), _) => &LUNG_ADENO,
        (Origin::Class(1), _) => &BREAST,
        (Origin::Class(2), _) => &THYROID,
        (Origin::Class(3), _) => &NASOPHARYNX,
        (Origin::Class(4), PathType::Adeno) => &STOMACH,
        (Origin::Class(4), _) => &SQUAMOUS,
        (Origin::Class(5), _) => &STOMACH,
        (Origin::Class(6), _) => &COLORECTUM,
        (Origin::Class(_), _) => &OTHER,
    }
}

/// Profiles a case may drift towards (every supported type's typical look).
const DRIFT: [&Profile; 9] = [
    &LUNG_ADENO,
    &SQUAMOUS,
    &SMALL_CELL,
    &BREAST,
    &THYROID,
    &NASOPHARYNX,
    &STOMACH,
    &COLORECTUM,
    &OTHER,
];

/// Traits that are probabilities or 0–1 levels, clamped after noise.
const UNIT_TRAITS: [Trait; 14] = [
    Trait::Dark,
    Trait::Chromatin,
    Trait::Vesicular,
    Trait::Nucleolus,
    Trait::Groove,
    Trait::Nc,
    Trait::Keratin,
    Trait::CytoAlpha,
    Trait::Vacuole,
    Trait::Lymphocytes,
    Trait::Necrosis,
    Trait::Mucin,
    Trait::Colloid,
    Trait::Pigment,
];

/// One case's morphology: its type's profile blended part-way towards a
/// random other type, with log-normal noise on every trait.
pub(crate) fn draw_case_profile(rng: &mut impl Rng, origin: Origin, ptype: PathType) -> Profile {
    let base = base_profile(origin, ptype);
    let other = DRIFT[rng.random_range(0..DRIFT.len())];
    let u: f32 = rng.random();
    let mut p = base.blend(other, BLEND_MAX * u * u);
    for v in p.traits.iter_mut() {
        *v *= (TRAIT_NOISE * rng.sample::<f32, _>(StandardNormal)).exp();
    }
    for t in UNIT_TRAITS {
        p.traits[t as usize] = p.traits[t as usize].clamp(0.0, 1.0);
    }
    p.traits[Trait::Nc as usize] = p.get(Trait::Nc).clamp(0.2, 0.92);
    p.traits[Trait::Aspect as usize] = p.get(Trait::Aspect).max(1.0);
    for w in p.arrangement.iter_mut() {
        *w *= (0.5 * rng.sample::<f32, _>(StandardNormal)).exp();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    #[test]
    fn case_profiles_stay_near_their_type_on_average() {
        let mut rng = seed::stream(9, &[]);
        let mut mean_aspect = |origin| {
            (0..400)
                .map(|_| draw_case_profile(&mut rng, origin, PathType::Adeno).get(Trait::Aspect))
                .sum::<f32>()
                / 400.0
        };
        let colorectal = mean_aspect(Origin::Class(6));
        let breast = mean_aspect(Origin::Class(1));
        assert!(
            colorectal > breast + 0.5,
            "colorectal nuclei are elongated: {colorectal} vs {breast}"
        );
        let p = draw_case_profile(&mut rng, Origin::Class(2), PathType::Papillary);
        assert!(UNIT_TRAITS.iter().all(|&t| (0.0..=1.0).contains(&p.get(t))));
    }
}
