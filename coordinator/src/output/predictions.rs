//! predictions.csv: one row per predicted case, in the schema of
//! `shared/spec/results-format.md` (binary: `score`; multi-class:
//! `score_<class>`), with the clinical covariates and readers the manifests
//! carry, and for a model with pT and pN heads the pathological and
//! predicted pT, pN and AJCC 8 stage group (the predicted group derived from
//! age, predicted pT and pN, and the recorded M, else M0).

use nodal_types::ajcc::{self, Category, DistantMetastasis, PrimaryTumour, RegionalNodes};
use nodal_types::manifest::Case;
use nodal_types::study::Task;
use std::collections::BTreeSet;

/// Columns nodal writes itself, besides [`TNM_COLUMNS`]; a clinical field
/// of the same name is not repeated.
const RESERVED: &[&str] = &[
    "case_id",
    "site",
    "archive_id",
    "split",
    "label",
    "score",
    "predicted",
    "n_tiles",
    // Written as t_true and n_true.
    "pt",
    "pn",
];

/// The pathological-TNM columns, in the order they are written.
const TNM_COLUMNS: [&str; 6] = [
    "t_true",
    "t_pred",
    "n_true",
    "n_pred",
    "stage_true",
    "stage_pred",
];

/// One predicted case.
#[derive(Debug, Clone)]
pub struct PredictionRow<'a> {
    /// The case id as written (qualified with the site when ids collide across archives).
    pub case_id: String,
    /// The submitting site.
    pub site: &'a str,
    /// The archive.
    pub archive_id: &'a str,
    /// The case as the manifest holds it.
    pub case: &'a Case,
    /// Case-level probabilities of the score output (one per class; binary: one).
    pub scores: Vec<f64>,
    /// Case-level pT probabilities, when the model has a pT head.
    pub t_probs: Option<Vec<f64>>,
    /// Case-level pN probabilities, when the model has a pN head.
    pub n_probs: Option<Vec<f64>>,
    /// Tiles that contributed.
    pub tiles: u64,
}

/// What the writer needs to know about the model's outputs.
#[derive(Debug, Clone)]
pub struct PredictionSchema<'a> {
    /// Binary or multi-class.
    pub task: Task,
    /// Class names (multi-class), in score order.
    pub classes: &'a [String],
    /// pT labels in output order, when the model has a pT head.
    pub t_labels: Option<&'a [String]>,
    /// pN labels in output order, when the model has a pN head.
    pub n_labels: Option<&'a [String]>,
}

/// Render predictions.csv. Scores are written with 8 decimals.
pub fn to_csv(
    schema: &PredictionSchema<'_>,
    rows: &[PredictionRow<'_>],
) -> Result<Vec<u8>, csv::Error> {
    let clinical: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.case.clinical.keys().map(String::as_str))
        .filter(|k| {
            !RESERVED.contains(k)
                && !TNM_COLUMNS.contains(k)
                && !k.starts_with("score_")
                && !k.starts_with("reader_")
        })
        .collect();
    let readers: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.case.readers.keys().map(String::as_str))
        .collect();
    let with_tnm = schema.t_labels.is_some()
        || schema.n_labels.is_some()
        || rows.iter().any(|r| {
            r.case.stage.is_some()
                || r.case.clinical.contains_key("pt")
                || r.case.clinical.contains_key("pn")
        });

    let mut header: Vec<String> = ["case_id", "site", "archive_id", "split", "label"]
        .map(String::from)
        .to_vec();
    match schema.task {
        Task::Binary => header.push("score".into()),
        Task::Multiclass => {
            header.extend(schema.classes.iter().map(|c| format!("score_{c}")));
            header.push("predicted".into());
        }
    }
    if with_tnm {
        header.extend(TNM_COLUMNS.map(String::from));
    }
    header.push("n_tiles".into());
    header.extend(clinical.iter().map(|c| c.to_string()));
    header.extend(readers.iter().map(|r| format!("reader_{r}")));

    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for row in rows {
        let mut rec: Vec<String> = vec![
            row.case_id.clone(),
            row.site.to_string(),
            row.archive_id.to_string(),
            row.case.split.as_str().to_string(),
            row.case.label.clone().unwrap_or_default(),
        ];
        match schema.task {
            Task::Binary => rec.push(fmt_prob(row.scores.first().copied().unwrap_or(0.0))),
            Task::Multiclass => {
                rec.extend(row.scores.iter().map(|p| fmt_prob(*p)));
                rec.push(
                    argmax(&row.scores)
                        .and_then(|i| schema.classes.get(i))
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        if with_tnm {
            let predicted = |probs: &Option<Vec<f64>>, labels: Option<&[String]>| {
                let (probs, labels) = (probs.as_ref()?, labels?);
                argmax(probs).and_then(|i| labels.get(i)).cloned()
            };
            let t_pred = predicted(&row.t_probs, schema.t_labels);
            let n_pred = predicted(&row.n_probs, schema.n_labels);
            let stage_pred = derived_stage(row.case, t_pred.as_deref(), n_pred.as_deref());
            let clinical = |column: &str| row.case.clinical.get(column).cloned();
            rec.extend(
                [
                    clinical("pt"),
                    t_pred,
                    clinical("pn"),
                    n_pred,
                    row.case.stage.clone(),
                    stage_pred,
                ]
                .map(Option::unwrap_or_default),
            );
        }
        rec.push(row.tiles.to_string());
        rec.extend(
            clinical
                .iter()
                .map(|c| row.case.clinical.get(*c).cloned().unwrap_or_default()),
        );
        rec.extend(
            readers
                .iter()
                .map(|r| row.case.readers.get(*r).cloned().unwrap_or_default()),
        );
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The AJCC 8 stage group from the case's age, the predicted pT and pN, and
/// the recorded M (`m`), M0 when it is not recorded; `None` when the age or
/// a category is missing or not one AJCC knows.
fn derived_stage(case: &Case, t: Option<&str>, n: Option<&str>) -> Option<String> {
    let age: u32 = case.clinical.get("age")?.parse().ok()?;
    let t = PrimaryTumour::parse(t?).ok()?;
    let n = RegionalNodes::parse(n?).ok()?;
    let m = match case.clinical.get("m") {
        Some(m) => DistantMetastasis::parse(m).ok()?,
        None => DistantMetastasis::M0,
    };
    Some(ajcc::dtc_stage(age, t, n, m).as_str().to_string())
}

/// A probability with 8 decimals, clamped to [0, 1].
fn fmt_prob(p: f64) -> String {
    format!("{:.8}", p.clamp(0.0, 1.0))
}

/// Index of the largest value; the first on ties.
fn argmax(v: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, x) in v.iter().enumerate() {
        if best.is_none_or(|b| *x > v[b]) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_types::manifest::Eligibility;
    use nodal_types::study::Split;
    use std::collections::BTreeMap;

    fn case(label: &str, stage: Option<&str>) -> Case {
        Case {
            case_id: "X".into(),
            split: Split::Validation,
            label: Some(label.into()),
            stage: stage.map(String::from),
            clinical: BTreeMap::from([
                ("age".to_string(), "61".to_string()),
                ("site".to_string(), "ignored".to_string()),
                ("sex".to_string(), "F".to_string()),
            ]),
            readers: BTreeMap::from([("pathologist1".to_string(), "lung".to_string())]),
            report: None,
            eligibility: Eligibility::Eligible,
            images: vec![],
        }
    }

    #[test]
    fn multiclass_rows_have_one_score_per_class_and_argmax() {
        let classes = vec!["lung".to_string(), "breast".to_string()];
        let c = case("breast", None);
        let rows = vec![PredictionRow {
            case_id: "X".into(),
            site: "cy-a",
            archive_id: "cy-a.1",
            case: &c,
            scores: vec![0.25, 0.75],
            t_probs: None,
            n_probs: None,
            tiles: 3,
        }];
        let schema = PredictionSchema {
            task: Task::Multiclass,
            classes: &classes,
            t_labels: None,
            n_labels: None,
        };
        let text = String::from_utf8(to_csv(&schema, &rows).unwrap()).unwrap();
        assert_eq!(
            text,
            "case_id,site,archive_id,split,label,score_lung,score_breast,predicted,n_tiles,age,sex,reader_pathologist1\n\
             X,cy-a,cy-a.1,validation,breast,0.25000000,0.75000000,breast,3,61,F,lung\n"
        );
    }

    fn binary_row(c: &Case, t: Vec<f64>, n: Vec<f64>) -> String {
        let t_labels = PrimaryTumour::labels();
        let n_labels = RegionalNodes::labels();
        let rows = vec![PredictionRow {
            case_id: "X".into(),
            site: "us-a",
            archive_id: "us-a.1",
            case: c,
            scores: vec![0.6],
            t_probs: Some(t),
            n_probs: Some(n),
            tiles: 1,
        }];
        let schema = PredictionSchema {
            task: Task::Binary,
            classes: &[],
            t_labels: Some(&t_labels),
            n_labels: Some(&n_labels),
        };
        String::from_utf8(to_csv(&schema, &rows).unwrap()).unwrap()
    }

    #[test]
    fn binary_rows_carry_score_tnm_and_the_derived_stage() {
        let mut c = case("1", Some("II"));
        c.clinical.insert("pt".into(), "T2".into());
        c.clinical.insert("pn".into(), "N1a".into());
        // Age 61, predicted T3a N0, M not recorded (M0): stage II.
        let t = vec![0.1, 0.1, 0.2, 0.4, 0.1, 0.05, 0.05];
        let text = binary_row(&c, t.clone(), vec![0.5, 0.3, 0.2]);
        assert!(
            text.starts_with(
                "case_id,site,archive_id,split,label,score,t_true,t_pred,n_true,n_pred,stage_true,stage_pred,n_tiles,age,sex,reader_pathologist1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nX,us-a,us-a.1,validation,1,0.60000000,T2,T3a,N1a,N0,II,II,1,61,F,lung\n"
            ),
            "{text}"
        );
        // A recorded M1 makes it IVB; a patient under 55 with M1 is II.
        c.clinical.insert("m".into(), "M1".into());
        assert!(
            binary_row(&c, t.clone(), vec![0.5, 0.3, 0.2]).contains(",N1a,N0,II,IVB,1,61,M1,F,")
        );
        c.clinical.insert("age".into(), "40".into());
        assert!(
            binary_row(&c, t.clone(), vec![0.5, 0.3, 0.2]).contains(",N1a,N0,II,II,1,40,M1,F,")
        );
        // An M the table does not know leaves the derived stage empty.
        c.clinical.insert("m".into(), "MX".into());
        assert!(binary_row(&c, t, vec![0.5, 0.3, 0.2]).contains(",N1a,N0,II,,1,40,MX,F,"));
    }

    #[test]
    fn argmax_takes_the_first_on_ties() {
        assert_eq!(argmax(&[0.5, 0.5]), Some(0));
        assert_eq!(argmax(&[]), None);
    }
}
