//! Bad input is an error naming the file, line (header = 1) and column —
//! never a panic, never a silent skip.

// Test helpers outside #[test] functions may unwrap too (clippy.toml allows it in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nodal_stats::{AnalyzeOptions, StatsError, Task, analyze, parse_predictions};

fn error(csv: &str, task: Task) -> String {
    match parse_predictions("cases.csv", csv.as_bytes(), task) {
        Ok(_) => panic!("accepted bad input:\n{csv}"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "\"{message}\" does not contain \"{part}\""
        );
    }
}

const MC_HEADER: &str = "case_id,site,label,score_lung,score_breast,score_other,reader_a\n";

#[test]
fn score_outside_unit_interval() {
    let e = error(
        "case_id,site,label,score\nc1,A,1,0.5\nc2,A,0,1.3\n",
        Task::Binary,
    );
    assert_names(
        &e,
        &[
            "cases.csv",
            "line 3",
            "column \"score\"",
            "1.3",
            "outside [0, 1]",
        ],
    );
}

#[test]
fn non_numeric_and_missing_and_nan_scores() {
    let e = error("case_id,site,label,score\nc1,A,1,abc\n", Task::Binary);
    assert_names(&e, &["line 2", "\"score\"", "\"abc\" is not a number"]);
    let e = error("case_id,site,label,score\nc1,A,1,\n", Task::Binary);
    assert_names(&e, &["line 2", "score is missing"]);
    let e = error("case_id,site,label,score\nc1,A,1,NaN\n", Task::Binary);
    assert_names(&e, &["line 2", "not a finite number"]);
}

#[test]
fn duplicate_case_id_names_both_lines() {
    let e = error(
        "case_id,site,label,score\nc1,A,1,0.5\nc2,A,0,0.1\nc1,B,0,0.2\n",
        Task::Binary,
    );
    assert_names(
        &e,
        &[
            "line 4",
            "column \"case_id\"",
            "duplicate case_id \"c1\"",
            "first at line 2",
        ],
    );
}

#[test]
fn binary_label_must_be_0_1_or_empty() {
    let e = error("case_id,site,label,score\nc1,A,yes,0.5\n", Task::Binary);
    assert_names(
        &e,
        &["line 2", "column \"label\"", "\"yes\" is not 0, 1 or empty"],
    );
}

#[test]
fn missing_required_column_is_named_at_the_header() {
    let e = error("case_id,site,label,prob\nc1,A,1,0.5\n", Task::Binary);
    assert_names(&e, &["line 1", "column \"score\"", "required column"]);
    let e = error(
        "case_id,label,score_a,score_b\nc1,a,0.5,0.5\n",
        Task::Multiclass,
    );
    assert_names(&e, &["line 1", "column \"site\""]);
}

#[test]
fn unknown_class_label_and_reader_call() {
    let e = error(
        &format!("{MC_HEADER}c1,A,liver,0.2,0.3,0.5,\n"),
        Task::Multiclass,
    );
    assert_names(
        &e,
        &[
            "line 2",
            "column \"label\"",
            "\"liver\" is not a known class (lung, breast, other)",
        ],
    );
    let e = error(
        &format!("{MC_HEADER}c1,A,lung,0.2,0.3,0.5,Lung\n"),
        Task::Multiclass,
    );
    assert_names(&e, &["line 2", "column \"reader_a\"", "\"Lung\""]);
}

#[test]
fn multiclass_row_must_sum_to_one() {
    let ok = parse_predictions(
        "x.csv",
        format!("{MC_HEADER}c1,A,lung,0.2,0.3,0.50009,\n").as_bytes(),
        Task::Multiclass,
    );
    assert!(ok.is_ok(), "{ok:?}");
    let e = error(
        &format!("{MC_HEADER}c1,A,lung,0.2,0.3,0.5,\nc2,A,lung,0.2,0.3,0.4,\n"),
        Task::Multiclass,
    );
    assert_names(&e, &["line 3", "score_*", "sum to 0.9"]);
}

#[test]
fn windows_and_old_mac_line_ends_keep_line_numbers_right() {
    for end in ["\r\n", "\r"] {
        let csv = ["case_id,site,label,score", "c1,A,1,0.5", "c2,A,0,1.3", ""].join(end);
        let e = error(&csv, Task::Binary);
        assert_names(&e, &["line 3", "column \"score\"", "1.3"]);
    }
}

#[test]
fn ragged_rows_and_quoted_newlines_keep_line_numbers_right() {
    let e = error(
        "case_id,site,label,score\nc1,A,1,0.5\nc2,A,0\n",
        Task::Binary,
    );
    assert_names(&e, &["line 3", "3 fields but the header has 4"]);
    // A quoted field spanning two lines (RFC 4180) moves the next record to line 4.
    let e = error(
        "case_id,site,label,score\n\"c\n1\",A,1,0.5\nc2,A,0,2\n",
        Task::Binary,
    );
    assert_names(&e, &["line 4", "column \"score\""]);
}

#[test]
fn empty_inputs_are_refused() {
    assert_names(&error("", Task::Binary), &["cases.csv", "no header row"]);
    assert_names(
        &error("case_id,site,label,score\n", Task::Binary),
        &["no data rows"],
    );
    assert_names(
        &error("case_id,site,label,score_a\nc1,A,a,1\n", Task::Multiclass),
        &["at least two score_<class> columns"],
    );
}

#[test]
fn one_stage_column_without_the_other() {
    let e = error(
        "case_id,site,label,score,stage_true\nc1,A,1,0.5,I\n",
        Task::Binary,
    );
    assert_names(&e, &["line 1", "stage_pred"]);
}

#[test]
fn one_tnm_column_without_the_other() {
    let e = error(
        "case_id,site,label,score,t_true,n_pred\nc1,A,1,0.5,T1a,N0\n",
        Task::Binary,
    );
    assert_names(
        &e,
        &["line 1", "t_pred", "t_true is given but t_pred is missing"],
    );
    let e = error(
        "case_id,site,label,score,n_pred\nc1,A,1,0.5,N0\n",
        Task::Binary,
    );
    assert_names(
        &e,
        &["line 1", "n_true", "n_pred is given but n_true is missing"],
    );
}

#[test]
fn a_tnm_category_outside_the_ajcc_default_order_is_named() {
    let p = parse_predictions(
        "tnm.csv",
        "case_id,site,label,score,t_true,t_pred,n_true,n_pred\n\
         c1,A,1,0.9,T1a,T1b,N1a,N1a\nc2,A,0,0.2,T2,T1,N0,N0\n"
            .as_bytes(),
        Task::Binary,
    )
    .unwrap();
    let e = analyze(&p, &AnalyzeOptions::default())
        .unwrap_err()
        .to_string();
    assert_names(
        &e,
        &[
            "tnm.csv",
            "line 3",
            "column \"t_pred\"",
            "pT \"T1\" is not in --t-order (T1a,T1b,T2,T3a,T3b,T4a,T4b)",
        ],
    );
    // Given an order that knows T1, the same file is analysed.
    let options = AnalyzeOptions {
        t_order: Some(["T1", "T1a", "T1b", "T2"].map(String::from).to_vec()),
        ..Default::default()
    };
    let metrics = analyze(&p, &options).unwrap().to_json().unwrap();
    let m: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    assert_eq!(m["t_agreement"]["categories"].as_array().unwrap().len(), 4);
    assert_eq!(m["n_agreement"]["accuracy"], 1.0);
    assert!(m["stage_agreement"].is_null());
}

#[test]
fn unreadable_file_names_the_path() {
    let e = nodal_stats::read_predictions("/nonexistent/predictions.csv".as_ref(), Task::Binary)
        .unwrap_err();
    assert!(matches!(e, StatsError::Read { .. }));
    assert_names(
        &e.to_string(),
        &["/nonexistent/predictions.csv", "cannot read"],
    );
}

fn binary_with_covariates() -> nodal_stats::Predictions {
    let csv = "case_id,site,label,score,stage_true,stage_pred,sex,age\n\
               c1,A,1,0.9,I,I,F,40\nc2,A,0,0.2,II,I,M,50\nc3,B,1,0.7,II,V,F,\nc4,B,0,0.4,I,I,M,61\n";
    parse_predictions("cov.csv", csv.as_bytes(), Task::Binary).unwrap()
}

#[test]
fn options_that_do_not_fit_the_data_are_errors() {
    let p = binary_with_covariates();
    let run = |options: AnalyzeOptions| analyze(&p, &options).unwrap_err().to_string();
    let e = run(AnalyzeOptions {
        covariates: vec!["weight".into()],
        ..Default::default()
    });
    assert_names(&e, &["--covariates", "\"weight\"", "sex, age"]);
    let e = run(AnalyzeOptions {
        covariates: vec!["sex".into()],
        references: vec![("sex".into(), "X".into())],
        ..Default::default()
    });
    assert_names(&e, &["--reference", "level \"X\" of \"sex\"", "F, M"]);
    let e = run(AnalyzeOptions {
        references: vec![("age".into(), "1".into())],
        covariates: vec!["sex".into()],
        ..Default::default()
    });
    assert_names(&e, &["--reference", "\"age\" is not one of --covariates"]);
    let e = run(AnalyzeOptions {
        stage_order: Some(vec!["I".into(), "II".into()]),
        ..Default::default()
    });
    assert_names(
        &e,
        &[
            "cov.csv",
            "line 4",
            "column \"stage_pred\"",
            "stage \"V\" is not in --stage-order",
        ],
    );
}

#[test]
fn multiclass_refuses_binary_only_options() {
    let p = parse_predictions(
        "m.csv",
        format!("{MC_HEADER}c1,A,lung,0.2,0.3,0.5,\n").as_bytes(),
        Task::Multiclass,
    )
    .unwrap();
    let e = analyze(
        &p,
        &AnalyzeOptions {
            covariates: vec!["age".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_names(&e.to_string(), &["--covariates", "binary task only"]);
}
