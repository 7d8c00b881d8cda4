//! Property tests (a fuzz target run by `cargo test`) for the predictions
//! reader: arbitrary bytes and structured mutations of valid files never
//! panic, and always give either predictions or an error that names the
//! source and, for a bad value or row, its line or column.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nodal_stats::{StatsError, Task, parse_predictions};
use proptest::prelude::*;

const SOURCE: &str = "fuzz.csv";

const BINARY: &str = "case_id,site,label,score,stage_true,stage_pred,age,sex\n\
c1,A,1,0.91,II,II,54,F\n\
c2,A,0,0.12,,,61,M\n\
c3,B,1,0.55,I,II,47,F\n\
c4,B,0,0.08,,,70,M\n";

const MULTICLASS: &str = "case_id,site,label,score_lung,score_breast,score_other,reader_a\n\
c1,A,lung,0.7,0.2,0.1,lung\n\
c2,A,breast,0.1,0.8,0.1,breast\n\
c3,B,other,0.2,0.2,0.6,lung\n";

/// Parse `bytes` as both tasks and check what comes back.
fn check(bytes: &[u8]) {
    for task in [Task::Binary, Task::Multiclass] {
        match parse_predictions(SOURCE, bytes, task) {
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.starts_with(SOURCE),
                    "the error names the source: {text}"
                );
                if let StatsError::Invalid { at, message, .. } = &e {
                    let at = at.to_string();
                    assert!(
                        at.contains("line") || at.contains("column"),
                        "a located error: {text}"
                    );
                    assert!(!message.is_empty(), "{text}");
                }
                assert!(
                    matches!(
                        e,
                        StatsError::Invalid { .. }
                            | StatsError::Unusable { .. }
                            | StatsError::Read { .. }
                    ),
                    "a reading error, not {e:?}"
                );
            }
        }
    }
}

/// A structured change to a CSV text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace one cell (by row and column, modulo the sizes) with a value.
    Cell(usize, usize, String),
    /// Drop one line.
    DropLine(usize),
    /// Repeat one line.
    RepeatLine(usize),
    /// Insert a character at a byte offset (modulo the length).
    Insert(usize, char),
    /// Cut the text at a byte offset.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let values = prop::sample::select(vec![
        "", "nan", "NaN", "inf", "-0", "1e309", "-0.5", "1.5", "0.5", "x", "\"", "\"a,b\"", "lung",
        "II", "2", "c1", " ", "\u{feff}", "é", "0,1", "\n",
    ]);
    prop_oneof![
        (0usize..8, 0usize..10, values).prop_map(|(r, c, v)| Mutation::Cell(r, c, v.to_owned())),
        (0usize..8).prop_map(Mutation::DropLine),
        (0usize..8).prop_map(Mutation::RepeatLine),
        (
            0usize..400,
            prop::sample::select(vec![',', '"', '\n', '\r', 'x', '\0', 'é'])
        )
            .prop_map(|(at, ch)| Mutation::Insert(at, ch)),
        (0usize..400).prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match mutation {
        Mutation::Cell(r, c, value) => {
            let r = r % lines.len();
            let mut cells: Vec<String> = lines[r].split(',').map(str::to_owned).collect();
            let c = c % cells.len();
            cells[c] = value.clone();
            lines[r] = cells.join(",");
        }
        Mutation::DropLine(r) => {
            let r = r % lines.len();
            lines.remove(r);
        }
        Mutation::RepeatLine(r) => {
            let r = r % lines.len();
            lines.insert(r, lines[r].clone());
        }
        Mutation::Insert(at, ch) => {
            let mut bytes = text.as_bytes().to_vec();
            let mut buf = [0u8; 4];
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, ch.encode_utf8(&mut buf).bytes());
            return bytes;
        }
        Mutation::Truncate(at) => {
            let bytes = text.as_bytes();
            return bytes[..at % (bytes.len() + 1)].to_vec();
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

#[test]
fn the_valid_files_parse() {
    assert!(parse_predictions(SOURCE, BINARY.as_bytes(), Task::Binary).is_ok());
    assert!(parse_predictions(SOURCE, MULTICLASS.as_bytes(), Task::Multiclass).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Integration tests have no lib.rs to keep regressions beside; the
        // failing input is printed instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check(&bytes);
    }

    #[test]
    fn csv_like_noise_never_panics(
        text in "[a-z0-9_,.\"\\n -]{0,300}",
        header in prop::sample::select(vec!["", "case_id,site,label,score\n", "case_id,site,label,score_a,score_b\n"]),
    ) {
        check(format!("{header}{text}").as_bytes());
    }

    #[test]
    fn mutated_valid_files_never_panic(
        mutations in prop::collection::vec(mutation(), 1..5),
        multiclass in any::<bool>(),
    ) {
        let mut text = if multiclass { MULTICLASS } else { BINARY }.to_owned();
        for m in &mutations {
            text = String::from_utf8_lossy(&apply(&text, m)).into_owned();
            if text.is_empty() {
                break;
            }
        }
        check(text.as_bytes());
    }
}
