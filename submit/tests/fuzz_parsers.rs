//! Property tests (fuzz targets run by `cargo test`) for what `nodal submit`
//! reads from a site folder: the `cases.csv` reader (encodings and
//! delimiters detected) with the case-table checks, and the structured
//! ultrasound report (JSON) parser. Arbitrary bytes and structured mutations
//! of valid files never panic, and every problem names its file and, for a
//! bad row or field, its line or field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nodal_submit::cases_table;
use nodal_submit::table::CASES_CSV;
use nodal_submit::{Problem, report};
use nodal_types::study::Study;
use proptest::prelude::*;

const CYTOLOGY: &str = "case_id,split,age,sex,puncture_site,puncture_date,pathological_diagnosis,pathological_type,immunocytochemistry,clinical_diagnosis,lesion_site,history_of_malignancy,survival_months,origin,origin_evidence,images,reader_pathologist1\n\
cy-a-00001,train,53,M,cervical,2015-06-08,metastatic squamous cell carcinoma,squamous cell carcinoma,no,enlarged lymph node,right neck level II,no,109.6,nasopharynx,histopathology,images/cy-a-00001/1.jpg,lung\n\
cy-a-00002,validation,47,F,axillary,2016-09-28,metastatic adenocarcinoma,adenocarcinoma,yes,,right axillary,no,2.7,breast,clinical,images/cy-a-00002/1.jpg;images/cy-a-00002/2.jpg,\n";

const ULTRASOUND: &str = "case_id,split,age,sex,exam_date,first_diagnosis,ln_dissection,prior_thyroid_surgery,concurrent_tumour,special_population,nodule_fully_visualised,multiple_lesions,location,max_diameter_mm,multifocal,hashimoto,ln_metastasis,pt,pn,m,stage,image,report\n\
us-a-00001,validation,59,F,2020-12-17,yes,yes,no,no,none,yes,no,upper,5.5,no,no,0,T1a,N0,M0,I,images/us-a-00001.jpg,reports/us-a-00001.json\n\
us-a-00002,train,47,F,2021-07-24,yes,yes,no,no,none,yes,no,lower,13.8,no,yes,1,T1b,N1a,,I,images/us-a-00002.jpg,reports/us-a-00002.json\n";

const REPORT: &str = r#"{
  "schema": "nodal.us-report/1",
  "case_id": "us-a-00001",
  "nodule_location": "left-upper",
  "max_diameter_mm": 5.5,
  "composition": "solid",
  "echogenicity": "hyperechoic",
  "margin": "lobulated",
  "calcification": "microcalcification",
  "aspect_ratio": 0.84,
  "vascularity": "central",
  "tirads": 5
}"#;

const REPORT_PATH: &str = "reports/us-a-00001.json";

/// Whole-file problems that need no line: the file as a whole is unusable.
fn whole_file(p: &Problem) -> bool {
    p.message.contains("no header")
        || p.message.contains("no cases")
        || p.message.contains("unreadable CSV")
}

fn check_cases(study: Study, bytes: &[u8]) {
    let mut problems = Vec::new();
    let rows = cases_table::parse_csv(study, bytes, &mut problems);
    for p in &problems {
        assert_eq!(p.file, CASES_CSV, "{p}");
        assert!(!p.message.is_empty(), "{p}");
        assert!(
            p.line.is_some() || whole_file(p),
            "a problem without a place: {p}"
        );
    }
    for row in &rows {
        assert!(row.line >= 2, "a row's line is after the header: {row:?}");
    }
}

fn check_report(bytes: &[u8]) {
    match report::parse(REPORT_PATH, bytes, "us-a-00001") {
        Ok(fields) => assert!(!fields.is_empty()),
        Err(problems) => {
            assert!(!problems.is_empty(), "a refusal says why");
            for p in &problems {
                assert_eq!(p.file, REPORT_PATH, "{p}");
                assert!(!p.message.is_empty(), "{p}");
            }
        }
    }
}

/// A structured change to a text file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the `n`th field (comma- or line-separated piece) with a value.
    Field(usize, String),
    /// Drop a line.
    DropLine(usize),
    /// Repeat a line.
    RepeatLine(usize),
    /// Insert a character at a byte offset.
    Insert(usize, char),
    /// Cut at a byte offset.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let values = prop::sample::select(vec![
        "",
        "x",
        "\"",
        "\"a,b\"",
        "-1",
        "131",
        "2015-02-30",
        "20150608",
        "yes",
        "maybe",
        "images/../x.jpg",
        "/abs.jpg",
        "a;;b",
        "é",
        "\u{feff}",
        "1e309",
        "null",
        "{}",
        "[]",
        "\"tirads\": 9",
        "\"schema\": 1",
        "0",
    ]);
    prop_oneof![
        (0usize..60, values).prop_map(|(n, v)| Mutation::Field(n, v.to_owned())),
        (0usize..20).prop_map(Mutation::DropLine),
        (0usize..20).prop_map(Mutation::RepeatLine),
        (
            0usize..1200,
            prop::sample::select(vec![',', '"', '\n', '\r', '{', '}', ':', '\0', 'é'])
        )
            .prop_map(|(at, ch)| Mutation::Insert(at, ch)),
        (0usize..1200).prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    match m {
        Mutation::Field(n, value) => {
            let pieces: Vec<&str> = text.split_inclusive([',', '\n']).collect();
            if pieces.is_empty() {
                return value.clone();
            }
            let n = n % pieces.len();
            let mut out = String::new();
            for (i, piece) in pieces.iter().enumerate() {
                if i == n {
                    out.push_str(value);
                    if let Some(sep) = piece.chars().last().filter(|c| *c == ',' || *c == '\n') {
                        out.push(sep);
                    }
                } else {
                    out.push_str(piece);
                }
            }
            out
        }
        Mutation::DropLine(n) | Mutation::RepeatLine(n) => {
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return String::new();
            }
            let n = n % lines.len();
            if matches!(m, Mutation::DropLine(_)) {
                lines.remove(n);
            } else {
                lines.insert(n, lines[n]);
            }
            lines.concat()
        }
        Mutation::Insert(at, ch) => {
            let mut bytes = text.as_bytes().to_vec();
            let at = at % (bytes.len() + 1);
            let mut buf = [0u8; 4];
            bytes.splice(at..at, ch.encode_utf8(&mut buf).bytes());
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Truncate(at) => {
            let bytes = text.as_bytes();
            String::from_utf8_lossy(&bytes[..at % (bytes.len() + 1)]).into_owned()
        }
    }
}

#[test]
fn the_valid_files_parse_without_problems() {
    for (study, text) in [(Study::Cytology, CYTOLOGY), (Study::Ultrasound, ULTRASOUND)] {
        let mut problems = Vec::new();
        let rows = cases_table::parse_csv(study, text.as_bytes(), &mut problems);
        assert!(problems.is_empty(), "{study}: {problems:?}");
        assert_eq!(rows.len(), 2);
    }
    assert!(report::parse(REPORT_PATH, REPORT.as_bytes(), "us-a-00001").is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 384,
        // Integration tests have no lib.rs to keep regressions beside; the
        // failing input is printed instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn cases_csv_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), cytology in any::<bool>()) {
        let study = if cytology { Study::Cytology } else { Study::Ultrasound };
        check_cases(study, &bytes);
    }

    #[test]
    fn cases_csv_survives_mutations(mutations in prop::collection::vec(mutation(), 1..6), cytology in any::<bool>()) {
        let (study, mut text) = if cytology {
            (Study::Cytology, CYTOLOGY.to_owned())
        } else {
            (Study::Ultrasound, ULTRASOUND.to_owned())
        };
        for m in &mutations {
            text = apply(&text, m);
        }
        check_cases(study, text.as_bytes());
    }

    #[test]
    fn reports_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_report(&bytes);
    }

    #[test]
    fn reports_survive_mutations(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut text = REPORT.to_owned();
        for m in &mutations {
            text = apply(&text, m);
        }
        check_report(text.as_bytes());
    }
}
