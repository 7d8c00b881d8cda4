//! The two studies nodal serves, and the vocabulary they share.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A clinical study whose archives nodal accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Study {
    /// Tumour origin from lymph-node fine-needle aspiration cytology (multi-class).
    Cytology,
    /// Lymph-node metastasis in papillary thyroid carcinoma from ultrasound (binary).
    Ultrasound,
}

impl Study {
    /// Both studies, in a fixed order.
    pub const ALL: [Study; 2] = [Study::Cytology, Study::Ultrasound];

    /// The lowercase name used in folders, flags and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Study::Cytology => "cytology",
            Study::Ultrasound => "ultrasound",
        }
    }

    /// The prediction task of the study.
    pub fn task(self) -> Task {
        match self {
            Study::Cytology => Task::Multiclass,
            Study::Ultrasound => Task::Binary,
        }
    }

    /// The name of the model nodal ships for the study.
    pub fn default_model(self) -> &'static str {
        match self {
            Study::Cytology => "cytology-origin",
            Study::Ultrasound => "ptc-ln",
        }
    }

    /// The `cases.csv` column that holds the ground-truth label.
    pub fn label_column(self) -> &'static str {
        match self {
            Study::Cytology => "origin",
            Study::Ultrasound => "ln_metastasis",
        }
    }

    /// The protocol's eligibility criteria, in the order `submit` applies
    /// them (`docs/submission.md`); a case records the first it fails.
    pub fn eligibility_criteria(self) -> &'static [&'static str] {
        match self {
            Study::Cytology => &["no_confirmed_origin", "unsupported_origin"],
            Study::Ultrasound => &[
                "age_out_of_range",
                "not_first_diagnosis",
                "no_ln_dissection",
                "prior_thyroid_surgery",
                "concurrent_tumour",
                "special_population",
                "nodule_not_fully_visualised",
                "multiple_lesions",
            ],
        }
    }
}

impl fmt::Display for Study {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Study {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cytology" => Ok(Study::Cytology),
            "ultrasound" => Ok(Study::Ultrasound),
            other => Err(format!(
                "unknown study {other:?}: expected \"cytology\" or \"ultrasound\""
            )),
        }
    }
}

/// The prediction task, as named in `predictions.csv` and `metrics.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// One probability of the positive class per case.
    Binary,
    /// One probability per class per case.
    Multiclass,
}

impl Task {
    /// The lowercase name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(Task::Binary),
            "multiclass" => Ok(Task::Multiclass),
            other => Err(format!(
                "unknown task {other:?}: expected \"binary\" or \"multiclass\""
            )),
        }
    }
}

/// Whether a case was used to train the model or held out from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Used to fit the shipped model.
    Train,
    /// Held out: internal or external validation.
    Validation,
}

impl Split {
    /// The lowercase name used in `cases.csv` and `predictions.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "validation" => Ok(Split::Validation),
            other => Err(format!(
                "unknown split {other:?}: expected \"train\" or \"validation\""
            )),
        }
    }
}
