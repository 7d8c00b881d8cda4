//! predictions.csv: one row per predicted case, in the schema of
//! `shared/spec/results-format.md` (binary: `score`; multi-class:
//! `score_<class>`), with the clinical covariates, stages and readers the
//! manifests carry.

use nodal_types::manifest::Case;
use nodal_types::study::Task;
use std::collections::BTreeSet;

/// Columns nodal writes itself; a clinical field of the same name is not repeated.
const RESERVED: &[&str] = &[
    "case_id",
    "site",
    "archive_id",
    "split",
    "label",
    "score",
    "predicted",
    "stage_true",
    "stage_pred",
    "n_tiles",
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
    /// Case-level stage probabilities, when the model predicts a stage.
    pub stage_probs: Option<Vec<f64>>,
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
    /// Stage labels, in stage-output order, when the model predicts a stage.
    pub stages: Option<&'a [String]>,
}

/// Render predictions.csv. Scores are written with 8 decimals.
pub fn to_csv(
    schema: &PredictionSchema<'_>,
    rows: &[PredictionRow<'_>],
) -> Result<Vec<u8>, csv::Error> {
    let clinical: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.case.clinical.keys().map(String::as_str))
        .filter(|k| !RESERVED.contains(k) && !k.starts_with("score_") && !k.starts_with("reader_"))
        .collect();
    let readers: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.case.readers.keys().map(String::as_str))
        .collect();
    let with_stage = schema.stages.is_some() || rows.iter().any(|r| r.case.stage.is_some());

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
    if with_stage {
        header.extend(["stage_true".to_string(), "stage_pred".to_string()]);
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
        if with_stage {
            rec.push(row.case.stage.clone().unwrap_or_default());
            let pred = match (&row.stage_probs, schema.stages) {
                (Some(p), Some(labels)) => argmax(p).and_then(|i| labels.get(i)).cloned(),
                _ => None,
            };
            rec.push(pred.unwrap_or_default());
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
            stage_probs: None,
            tiles: 3,
        }];
        let schema = PredictionSchema {
            task: Task::Multiclass,
            classes: &classes,
            stages: None,
        };
        let text = String::from_utf8(to_csv(&schema, &rows).unwrap()).unwrap();
        assert_eq!(
            text,
            "case_id,site,archive_id,split,label,score_lung,score_breast,predicted,n_tiles,age,sex,reader_pathologist1\n\
             X,cy-a,cy-a.1,validation,breast,0.25000000,0.75000000,breast,3,61,F,lung\n"
        );
    }

    #[test]
    fn binary_rows_carry_score_and_stages() {
        let stages = vec!["I".to_string(), "II".to_string()];
        let c = case("1", Some("II"));
        let rows = vec![PredictionRow {
            case_id: "X".into(),
            site: "us-a",
            archive_id: "us-a.1",
            case: &c,
            scores: vec![0.6],
            stage_probs: Some(vec![0.7, 0.3]),
            tiles: 1,
        }];
        let schema = PredictionSchema {
            task: Task::Binary,
            classes: &[],
            stages: Some(&stages),
        };
        let text = String::from_utf8(to_csv(&schema, &rows).unwrap()).unwrap();
        assert!(text.starts_with(
            "case_id,site,archive_id,split,label,score,stage_true,stage_pred,n_tiles,age,sex,"
        ));
        assert!(text.contains("\nX,us-a,us-a.1,validation,1,0.60000000,II,I,1,61,F,lung\n"));
    }

    #[test]
    fn argmax_takes_the_first_on_ties() {
        assert_eq!(argmax(&[0.5, 0.5]), Some(0));
        assert_eq!(argmax(&[]), None);
    }
}
