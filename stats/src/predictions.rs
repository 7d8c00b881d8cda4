//! Per-case predictions of either task, as read from predictions.csv or built
//! in memory, validated the same way.

use crate::error::{StatsError, Where};
use std::collections::HashMap;

/// Largest allowed distance of a multi-class row's score sum from 1.
pub const ROW_SUM_TOLERANCE: f64 = 1e-4;

pub use nodal_types::study::Task;

/// One case of the binary task.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryCase {
    /// Unique case identifier.
    pub case_id: String,
    /// Submitting centre.
    pub site: String,
    /// Ground truth; `None` = unknown.
    pub label: Option<bool>,
    /// Predicted probability of the positive class, in [0, 1].
    pub score: f64,
    /// Pathological and predicted category of each [`Component`], indexed
    /// by `Component as usize`.
    pub ordinal: [OrdinalPair; 3],
    /// Values of the extra (covariate) columns, parallel to
    /// [`BinaryPredictions::extra_columns`]; empty strings are missing values.
    pub extra: Vec<String>,
    /// Line in the CSV source (header = 1), when read from one.
    pub line: Option<u64>,
}

/// An ordinal assessment compared between pathology and the model: the
/// stage group, pT or pN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The stage group: columns `stage_true`, `stage_pred`.
    Stage = 0,
    /// The primary-tumour category: columns `t_true`, `t_pred`.
    PrimaryTumour = 1,
    /// The regional-node category: columns `n_true`, `n_pred`.
    RegionalNodes = 2,
}

impl Component {
    /// Every component, in index order.
    pub const ALL: [Component; 3] = [
        Component::Stage,
        Component::PrimaryTumour,
        Component::RegionalNodes,
    ];

    /// Column prefix: `stage`, `t`, `n` (`<prefix>_true`, `<prefix>_pred`).
    pub fn prefix(self) -> &'static str {
        match self {
            Component::Stage => "stage",
            Component::PrimaryTumour => "t",
            Component::RegionalNodes => "n",
        }
    }

    /// How messages name the component.
    pub fn noun(self) -> &'static str {
        match self {
            Component::Stage => "stage",
            Component::PrimaryTumour => "pT",
            Component::RegionalNodes => "pN",
        }
    }

    /// The option that sets the component's category order.
    pub fn order_flag(self) -> &'static str {
        match self {
            Component::Stage => "--stage-order",
            Component::PrimaryTumour => "--t-order",
            Component::RegionalNodes => "--n-order",
        }
    }
}

/// The pathological and predicted category of one component of one case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrdinalPair {
    /// Pathological category, if given.
    pub truth: Option<String>,
    /// Predicted category, if given.
    pub predicted: Option<String>,
}

/// One case of the multi-class task.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassCase {
    /// Unique case identifier.
    pub case_id: String,
    /// Submitting centre.
    pub site: String,
    /// Index of the true class in `classes`; `None` = unknown.
    pub label: Option<usize>,
    /// One probability per class, in `classes` order.
    pub scores: Vec<f64>,
    /// Each reader's call (class index), parallel to `readers`; `None` = not read.
    pub reader_calls: Vec<Option<usize>>,
    /// Line in the CSV source (header = 1), when read from one.
    pub line: Option<u64>,
}

/// The binary task's predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryPredictions {
    /// Name of the source, used in error messages (a path, or e.g. "run 42").
    pub source: String,
    /// Names of the columns beyond the known ones (candidate covariates).
    pub extra_columns: Vec<String>,
    /// The components whose `<prefix>_true` and `<prefix>_pred` columns were given.
    pub components: Vec<Component>,
    /// The cases, in input order.
    pub cases: Vec<BinaryCase>,
}

/// The multi-class task's predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassPredictions {
    /// Name of the source, used in error messages.
    pub source: String,
    /// Class names, in `score_<class>` header order.
    pub classes: Vec<String>,
    /// Reader names (the `reader_` columns without the prefix).
    pub readers: Vec<String>,
    /// The cases, in input order.
    pub cases: Vec<MulticlassCase>,
}

/// Predictions of either task.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Binary task.
    Binary(BinaryPredictions),
    /// Multi-class task.
    Multiclass(MulticlassPredictions),
}

impl Predictions {
    /// The task of these predictions.
    pub fn task(&self) -> Task {
        match self {
            Predictions::Binary(_) => Task::Binary,
            Predictions::Multiclass(_) => Task::Multiclass,
        }
    }

    /// Number of cases, labelled or not.
    pub fn len(&self) -> usize {
        match self {
            Predictions::Binary(p) => p.cases.len(),
            Predictions::Multiclass(p) => p.cases.len(),
        }
    }

    /// Whether there are no cases at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy holding only the cases for which `keep(case_id, site)` is true
    /// (e.g. the validation split), named `source`.
    pub fn subset(&self, source: &str, keep: impl Fn(&str, &str) -> bool) -> Predictions {
        match self {
            Predictions::Binary(p) => Predictions::Binary(BinaryPredictions {
                source: source.to_string(),
                extra_columns: p.extra_columns.clone(),
                components: p.components.clone(),
                cases: p
                    .cases
                    .iter()
                    .filter(|c| keep(&c.case_id, &c.site))
                    .cloned()
                    .collect(),
            }),
            Predictions::Multiclass(p) => Predictions::Multiclass(MulticlassPredictions {
                source: source.to_string(),
                classes: p.classes.clone(),
                readers: p.readers.clone(),
                cases: p
                    .cases
                    .iter()
                    .filter(|c| keep(&c.case_id, &c.site))
                    .cloned()
                    .collect(),
            }),
        }
    }
}

/// Where a case's field is, for messages: its CSV cell when read from a file,
/// its position otherwise.
pub(crate) fn locate(line: Option<u64>, index: usize, column: &str) -> Where {
    match line {
        Some(line) => Where::Cell {
            line,
            column: column.to_string(),
        },
        None => Where::Case {
            index,
            column: column.to_string(),
        },
    }
}

/// Checks that a score is a finite probability.
pub(crate) fn check_probability(score: f64) -> Result<(), String> {
    if !score.is_finite() {
        Err(format!("score {score} is not a finite number"))
    } else if !(0.0..=1.0).contains(&score) {
        Err(format!("score {score} is outside [0, 1]"))
    } else {
        Ok(())
    }
}

/// Records case ids and reports the first repeat.
#[derive(Default)]
pub(crate) struct UniqueIds {
    seen: HashMap<String, String>,
}

impl UniqueIds {
    /// Notes `id` found at `place`; errors when it was seen before.
    pub(crate) fn insert(&mut self, id: &str, place: String) -> Result<(), String> {
        if id.is_empty() {
            return Err("case_id is empty".to_string());
        }
        match self.seen.get(id) {
            Some(first) => Err(format!("duplicate case_id \"{id}\" (first at {first})")),
            None => {
                self.seen.insert(id.to_string(), place);
                Ok(())
            }
        }
    }
}

fn invalid(source: &str, at: Where, message: String) -> StatsError {
    StatsError::Invalid {
        file: source.to_string(),
        at,
        message,
    }
}

impl BinaryPredictions {
    /// Builds and validates binary predictions given in memory: unique non-empty
    /// case ids, non-empty sites, scores in [0, 1], one value per extra column.
    pub fn new(
        source: &str,
        extra_columns: Vec<String>,
        components: Vec<Component>,
        cases: Vec<BinaryCase>,
    ) -> Result<Self, StatsError> {
        let mut ids = UniqueIds::default();
        for (index, case) in cases.iter().enumerate() {
            let at = |column: &str| locate(case.line, index, column);
            ids.insert(&case.case_id, at("case_id").to_string())
                .map_err(|m| invalid(source, at("case_id"), m))?;
            if case.site.is_empty() {
                return Err(invalid(source, at("site"), "site is empty".into()));
            }
            check_probability(case.score).map_err(|m| invalid(source, at("score"), m))?;
            if case.extra.len() != extra_columns.len() {
                return Err(invalid(
                    source,
                    at("extra"),
                    format!(
                        "{} extra values for {} extra columns",
                        case.extra.len(),
                        extra_columns.len()
                    ),
                ));
            }
        }
        Ok(Self {
            source: source.to_string(),
            extra_columns,
            components,
            cases,
        })
    }
}

impl MulticlassPredictions {
    /// Builds and validates multi-class predictions given in memory: at least
    /// two distinct classes, unique case ids, one score per class in [0, 1]
    /// summing to 1 within [`ROW_SUM_TOLERANCE`], labels and reader calls that
    /// are known classes.
    pub fn new(
        source: &str,
        classes: Vec<String>,
        readers: Vec<String>,
        cases: Vec<MulticlassCase>,
    ) -> Result<Self, StatsError> {
        check_classes(source, &classes)?;
        let mut ids = UniqueIds::default();
        for (index, case) in cases.iter().enumerate() {
            let at = |column: &str| locate(case.line, index, column);
            ids.insert(&case.case_id, at("case_id").to_string())
                .map_err(|m| invalid(source, at("case_id"), m))?;
            if case.site.is_empty() {
                return Err(invalid(source, at("site"), "site is empty".into()));
            }
            if case.scores.len() != classes.len() {
                return Err(invalid(
                    source,
                    at("scores"),
                    format!("{} scores for {} classes", case.scores.len(), classes.len()),
                ));
            }
            for (k, &s) in case.scores.iter().enumerate() {
                check_probability(s)
                    .map_err(|m| invalid(source, at(&format!("score_{}", classes[k])), m))?;
            }
            check_row_sum(&case.scores).map_err(|m| invalid(source, at("scores"), m))?;
            if case.label.is_some_and(|l| l >= classes.len()) {
                return Err(invalid(
                    source,
                    at("label"),
                    "label is not a known class".into(),
                ));
            }
            if case.reader_calls.len() != readers.len() {
                return Err(invalid(
                    source,
                    at("readers"),
                    format!(
                        "{} reader calls for {} readers",
                        case.reader_calls.len(),
                        readers.len()
                    ),
                ));
            }
            for (r, call) in case.reader_calls.iter().enumerate() {
                if call.is_some_and(|c| c >= classes.len()) {
                    return Err(invalid(
                        source,
                        at(&format!("reader_{}", readers[r])),
                        "reader call is not a known class".into(),
                    ));
                }
            }
        }
        Ok(Self {
            source: source.to_string(),
            classes,
            readers,
            cases,
        })
    }
}

/// Checks a multi-class row's scores sum to 1 within [`ROW_SUM_TOLERANCE`].
pub(crate) fn check_row_sum(scores: &[f64]) -> Result<(), String> {
    let sum: f64 = scores.iter().sum();
    if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
        Err(format!(
            "class scores sum to {sum}, not 1 (tolerance {ROW_SUM_TOLERANCE})"
        ))
    } else {
        Ok(())
    }
}

/// Checks the class list: at least two, non-empty, distinct.
pub(crate) fn check_classes(source: &str, classes: &[String]) -> Result<(), StatsError> {
    if classes.len() < 2 {
        return Err(StatsError::Unusable {
            file: source.to_string(),
            message: format!(
                "a multi-class file needs at least two score_<class> columns, found {}",
                classes.len()
            ),
        });
    }
    for (i, c) in classes.iter().enumerate() {
        if c.is_empty() {
            return Err(invalid(
                source,
                Where::Column("score_".into()),
                "empty class name".into(),
            ));
        }
        if classes[..i].contains(c) {
            return Err(invalid(
                source,
                Where::Column(format!("score_{c}")),
                format!("class \"{c}\" appears twice"),
            ));
        }
    }
    Ok(())
}
