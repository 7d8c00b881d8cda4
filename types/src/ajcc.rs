//! AJCC 8th edition TNM categories and prognostic stage groups of
//! differentiated thyroid cancer (papillary and follicular carcinoma), the
//! one table both `synth` (to derive the pathological stage) and the
//! coordinator (to derive the predicted stage from predicted pT and pN)
//! use.

use std::fmt;
use std::str::FromStr;

/// Age at diagnosis from which T, N and M decide the stage group, years.
pub const AGE_CUTOFF: u32 = 55;

/// A category that can be written as text and parsed back.
pub trait Category: Copy + Sized + 'static {
    /// Every category, in ordinal order.
    const ALL: &'static [Self];
    /// What the categories are called in messages (`pT category`).
    const WHAT: &'static str;
    /// The AJCC spelling (`T1a`, `N1b`, `IVA`).
    fn as_str(self) -> &'static str;

    /// The AJCC spellings of [`Category::ALL`], in order.
    fn labels() -> Vec<String> {
        Self::ALL.iter().map(|c| c.as_str().to_string()).collect()
    }

    /// Parse an AJCC spelling; the error lists the accepted ones.
    fn parse(text: &str) -> Result<Self, UnknownCategory> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| UnknownCategory {
                what: Self::WHAT,
                value: text.to_string(),
                accepted: Self::ALL.iter().map(|c| c.as_str()).collect(),
            })
    }
}

/// A text that is not one of the AJCC categories of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an AJCC 8 {what} ({})", accepted.join(", "))]
pub struct UnknownCategory {
    /// What was expected (`pT category`).
    pub what: &'static str,
    /// The text given.
    pub value: String,
    /// The accepted spellings.
    pub accepted: Vec<&'static str>,
}

macro_rules! categories {
    ($(#[$doc:meta])* $name:ident, $what:literal, [$($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl Category for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            const WHAT: &'static str = $what;
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownCategory;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$name as Category>::parse(s)
            }
        }
    };
}

categories!(
    /// Primary tumour (pT).
    PrimaryTumour, "pT category", [
    /// ≤ 1 cm, limited to the thyroid.
    T1a = "T1a",
    /// > 1 cm and ≤ 2 cm, limited to the thyroid.
    T1b = "T1b",
    /// > 2 cm and ≤ 4 cm, limited to the thyroid.
    T2 = "T2",
    /// > 4 cm, limited to the thyroid.
    T3a = "T3a",
    /// Gross extrathyroidal extension into strap muscles only, any size.
    T3b = "T3b",
    /// Gross extension into subcutaneous tissue, larynx, trachea, oesophagus or recurrent laryngeal nerve.
    T4a = "T4a",
    /// Gross extension into prevertebral fascia, or encasing the carotid artery or mediastinal vessels.
    T4b = "T4b",
]);

categories!(
    /// Regional lymph nodes (pN).
    RegionalNodes, "pN category", [
    /// No regional lymph-node metastasis.
    N0 = "N0",
    /// Metastasis to level VI or VII (central compartment).
    N1a = "N1a",
    /// Metastasis to levels I–V or retropharyngeal nodes (lateral).
    N1b = "N1b",
]);

categories!(
    /// Distant metastasis (M).
    DistantMetastasis, "M category", [
    /// No distant metastasis.
    M0 = "M0",
    /// Distant metastasis.
    M1 = "M1",
]);

categories!(
    /// Prognostic stage group.
    StageGroup, "stage group", [
    /// Stage I.
    I = "I",
    /// Stage II.
    II = "II",
    /// Stage III.
    III = "III",
    /// Stage IVA.
    IVA = "IVA",
    /// Stage IVB.
    IVB = "IVB",
]);

impl PrimaryTumour {
    /// pT from the largest diameter and the extent of gross extrathyroidal
    /// extension.
    pub fn from_extent(diameter_mm: f64, extension: Extension) -> Self {
        match extension {
            Extension::StrapMuscles => PrimaryTumour::T3b,
            Extension::Visceral => PrimaryTumour::T4a,
            Extension::Vascular => PrimaryTumour::T4b,
            Extension::None if diameter_mm <= 10.0 => PrimaryTumour::T1a,
            Extension::None if diameter_mm <= 20.0 => PrimaryTumour::T1b,
            Extension::None if diameter_mm <= 40.0 => PrimaryTumour::T2,
            Extension::None => PrimaryTumour::T3a,
        }
    }
}

impl RegionalNodes {
    /// Whether the category means lymph-node metastasis (pN1).
    pub fn is_metastatic(self) -> bool {
        self != RegionalNodes::N0
    }
}

/// Gross extrathyroidal extension of the primary tumour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// None (or microscopic only, which AJCC 8 no longer counts).
    None,
    /// Into the strap muscles only.
    StrapMuscles,
    /// Into subcutaneous tissue, larynx, trachea, oesophagus or recurrent nerve.
    Visceral,
    /// Into the prevertebral fascia, or encasing the carotid or mediastinal vessels.
    Vascular,
}

/// The AJCC 8 stage group of differentiated thyroid cancer, from age at
/// diagnosis (years) and T, N and M.
pub fn dtc_stage(age: u32, t: PrimaryTumour, n: RegionalNodes, m: DistantMetastasis) -> StageGroup {
    use PrimaryTumour::*;
    if age < AGE_CUTOFF {
        return match m {
            DistantMetastasis::M0 => StageGroup::I,
            DistantMetastasis::M1 => StageGroup::II,
        };
    }
    match (m, t, n) {
        (DistantMetastasis::M1, _, _) => StageGroup::IVB,
        (_, T4b, _) => StageGroup::IVA,
        (_, T4a, _) => StageGroup::III,
        (_, T3a | T3b, _) => StageGroup::II,
        (_, T1a | T1b | T2, RegionalNodes::N0) => StageGroup::I,
        (_, T1a | T1b | T2, RegionalNodes::N1a | RegionalNodes::N1b) => StageGroup::II,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AJCC 8 table for differentiated thyroid cancer, transcribed row
    /// by row ("T1–T2" etc. expanded below); `*` = any.
    const TABLE: &[(&str, &str, &str, &str, &str)] = &[
        // age, T, N, M, stage
        ("<55", "*", "*", "M0", "I"),
        ("<55", "*", "*", "M1", "II"),
        (">=55", "T1", "N0", "M0", "I"),
        (">=55", "T1", "N1", "M0", "II"),
        (">=55", "T2", "N0", "M0", "I"),
        (">=55", "T2", "N1", "M0", "II"),
        (">=55", "T3", "*", "M0", "II"),
        (">=55", "T4a", "*", "M0", "III"),
        (">=55", "T4b", "*", "M0", "IVA"),
        (">=55", "*", "*", "M1", "IVB"),
    ];

    fn t_matches(pattern: &str, t: PrimaryTumour) -> bool {
        match pattern {
            "*" => true,
            "T1" => matches!(t, PrimaryTumour::T1a | PrimaryTumour::T1b),
            "T3" => matches!(t, PrimaryTumour::T3a | PrimaryTumour::T3b),
            exact => t.as_str() == exact,
        }
    }

    fn n_matches(pattern: &str, n: RegionalNodes) -> bool {
        match pattern {
            "*" => true,
            "N1" => n.is_metastatic(),
            exact => n.as_str() == exact,
        }
    }

    #[test]
    fn every_cell_of_the_table_for_ages_at_and_around_the_cutoff() {
        let ages = [18, 40, 54, 55, 56, 80];
        let mut cells = 0;
        for &age in &ages {
            for &t in PrimaryTumour::ALL {
                for &n in RegionalNodes::ALL {
                    for &m in DistantMetastasis::ALL {
                        let group = if age < AGE_CUTOFF { "<55" } else { ">=55" };
                        let rows: Vec<_> = TABLE
                            .iter()
                            .filter(|r| {
                                r.0 == group
                                    && t_matches(r.1, t)
                                    && n_matches(r.2, n)
                                    && r.3 == m.as_str()
                            })
                            .collect();
                        assert_eq!(rows.len(), 1, "one table row for {age} {t} {n} {m}");
                        assert_eq!(
                            dtc_stage(age, t, n, m).as_str(),
                            rows[0].4,
                            "{age} {t} {n} {m}"
                        );
                        cells += 1;
                    }
                }
            }
        }
        assert_eq!(cells, ages.len() * 7 * 3 * 2);
    }

    #[test]
    fn pt_from_size_and_extension_at_the_bounds() {
        use PrimaryTumour::*;
        let none = Extension::None;
        assert_eq!(PrimaryTumour::from_extent(10.0, none), T1a);
        assert_eq!(PrimaryTumour::from_extent(10.1, none), T1b);
        assert_eq!(PrimaryTumour::from_extent(20.0, none), T1b);
        assert_eq!(PrimaryTumour::from_extent(20.1, none), T2);
        assert_eq!(PrimaryTumour::from_extent(40.0, none), T2);
        assert_eq!(PrimaryTumour::from_extent(40.1, none), T3a);
        assert_eq!(
            PrimaryTumour::from_extent(5.0, Extension::StrapMuscles),
            T3b
        );
        assert_eq!(PrimaryTumour::from_extent(5.0, Extension::Visceral), T4a);
        assert_eq!(PrimaryTumour::from_extent(5.0, Extension::Vascular), T4b);
    }

    #[test]
    fn spellings_round_trip_and_unknown_ones_are_named() {
        for &t in PrimaryTumour::ALL {
            assert_eq!(t.as_str().parse::<PrimaryTumour>(), Ok(t));
        }
        for &s in StageGroup::ALL {
            assert_eq!(s.as_str().parse::<StageGroup>(), Ok(s));
        }
        let err = "T1".parse::<PrimaryTumour>().unwrap_err().to_string();
        assert_eq!(
            err,
            "\"T1\" is not an AJCC 8 pT category (T1a, T1b, T2, T3a, T3b, T4a, T4b)"
        );
        assert_eq!(
            RegionalNodes::labels(),
            ["N0", "N1a", "N1b"].map(String::from)
        );
    }
}
