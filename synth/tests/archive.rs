//! End-to-end checks of `nodal_synth::generate` at scale 0.01: the layout and
//! columns of docs/archive-format.md, counts, planted items, determinism.

use nodal_synth::{SynthConfig, SynthError, SynthSummary, generate};
use nodal_types::study::Study;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CLASSES: [&str; 8] = [
    "lung",
    "breast",
    "thyroid",
    "nasopharynx",
    "oesophagus",
    "stomach",
    "colorectum",
    "other",
];

fn config(out: &Path, seed: u64) -> SynthConfig {
    SynthConfig {
        out: out.to_path_buf(),
        studies: Study::ALL.to_vec(),
        scale: 0.01,
        seed,
        format: nodal_synth::ImageFormat::Jpeg,
    }
}

/// One archive shared by the read-only tests.
fn fixture() -> &'static (tempfile::TempDir, SynthSummary) {
    static FIXTURE: OnceLock<(tempfile::TempDir, SynthSummary)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = generate(&config(dir.path(), 42)).expect("synth runs");
        (dir, summary)
    })
}

fn root() -> &'static Path {
    fixture().0.path()
}

type Row = BTreeMap<String, String>;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Row>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.expect("record");
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Column names of a `cases.csv` table in docs/archive-format.md.
fn documented_columns(section: &str) -> Vec<String> {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/archive-format.md");
    let doc = std::fs::read_to_string(&doc_path).expect("archive-format.md");
    let start = doc
        .find(section)
        .unwrap_or_else(|| panic!("section {section:?} in the doc"));
    let body = &doc[start + section.len()..];
    let end = body.find("\n#").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

fn sites(study: &str) -> Vec<PathBuf> {
    let prefix = if study == "cytology" { "cy" } else { "us" };
    ["a", "b", "c", "d"]
        .iter()
        .map(|s| root().join(study).join(format!("{prefix}-{s}")))
        .collect()
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

#[test]
fn cytology_columns_and_values_follow_the_doc() {
    let documented = documented_columns("## Cytology (tumour origin) — `cases.csv`");
    assert!(
        documented.len() > 15,
        "parsed the doc table: {documented:?}"
    );
    let mut ids = BTreeSet::new();
    for site in sites("cytology") {
        let (header, rows) = read_csv(&site.join("cases.csv"));
        let plain: Vec<&String> = header
            .iter()
            .filter(|h| !h.starts_with("reader_"))
            .collect();
        let doc_plain: Vec<&String> = documented
            .iter()
            .filter(|h| !h.starts_with("reader_"))
            .collect();
        assert_eq!(plain, doc_plain, "{}: columns", site.display());
        assert_eq!(
            header.iter().filter(|h| h.starts_with("reader_")).count(),
            2
        );
        for row in rows {
            let id = &row["case_id"];
            assert!(is_id(id) && ids.insert(id.clone()), "id {id}");
            assert!(["train", "validation"].contains(&row["split"].as_str()));
            assert!(
                row["age"]
                    .parse::<u32>()
                    .is_ok_and(|a| (18..=100).contains(&a)),
                "{id} age"
            );
            assert!(["F", "M"].contains(&row["sex"].as_str()));
            assert!(is_date(&row["puncture_date"]), "{id} date");
            for yn in ["immunocytochemistry", "history_of_malignancy"] {
                assert!(["yes", "no"].contains(&row[yn].as_str()), "{id} {yn}");
            }
            let images: Vec<&str> = row["images"].split(';').collect();
            assert!((1..=4).contains(&images.len()));
            for img in images {
                assert!(!img.contains("..") && !img.starts_with('/'));
                assert!(site.join(img).is_file(), "{id}: {img} exists");
            }
            for reader in ["reader_pathologist1", "reader_pathologist2"] {
                assert!(
                    row[reader].is_empty() || CLASSES.contains(&row[reader].as_str()),
                    "{id} {reader}"
                );
            }
        }
    }
}

#[test]
fn ultrasound_columns_reports_and_images_follow_the_doc() {
    let documented = documented_columns("## Ultrasound (PTC lymph-node metastasis) — `cases.csv`");
    let fields = [
        "schema",
        "case_id",
        "nodule_location",
        "max_diameter_mm",
        "composition",
        "echogenicity",
        "margin",
        "calcification",
        "aspect_ratio",
        "vascularity",
        "tirads",
    ];
    for site in sites("ultrasound") {
        let (header, rows) = read_csv(&site.join("cases.csv"));
        assert_eq!(header, documented, "{}: columns", site.display());
        for row in rows {
            let id = &row["case_id"];
            assert!(is_id(id) && is_date(&row["exam_date"]));
            assert!(["", "0", "1"].contains(&row["ln_metastasis"].as_str()));
            assert!(["", "I", "II", "III", "IVA", "IVB"].contains(&row["stage"].as_str()));
            // pN1 is the metastasis label; the stage group is AJCC 8's of age and TNM.
            let expected_label = match row["pn"].as_str() {
                "" => "",
                "N0" => "0",
                _ => "1",
            };
            assert_eq!(row["ln_metastasis"], expected_label, "{id}");
            if !row["m"].is_empty() && !row["stage"].is_empty() {
                use nodal_types::ajcc::{Category, dtc_stage};
                let stage = dtc_stage(
                    row["age"].parse().expect("age"),
                    Category::parse(&row["pt"]).expect("pt"),
                    Category::parse(&row["pn"]).expect("pn"),
                    Category::parse(&row["m"]).expect("m"),
                );
                assert_eq!(row["stage"], stage.as_str(), "{id}");
            }
            assert!(site.join(&row["image"]).is_file());
            let img = image::open(site.join(&row["image"])).expect("decodes");
            assert_eq!((img.width(), img.height()), (640, 480));
            let report: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&std::fs::read(site.join(&row["report"])).expect("report"))
                    .expect("json");
            let keys: Vec<&str> = report.keys().map(String::as_str).collect();
            let mut expected = fields.to_vec();
            expected.sort_unstable();
            assert_eq!(keys, expected, "{id}: report fields");
            assert_eq!(report["case_id"], id.as_str());
            assert_eq!(report["schema"], "nodal.us-report/1");
            let d: f64 = row["max_diameter_mm"].parse().expect("diameter");
            assert_eq!(report["max_diameter_mm"].as_f64(), Some(d));
            let loc = report["nodule_location"].as_str().expect("location");
            assert!(
                loc == "isthmus" && row["location"] == "isthmus"
                    || loc.ends_with(&format!("-{}", row["location"]))
            );
            assert!(
                report["tirads"]
                    .as_u64()
                    .is_some_and(|t| (1..=5).contains(&t))
            );
        }
    }
}

#[test]
fn counts_at_scale_001_match_summary_and_disk() {
    let summary = &fixture().1;
    let written: SynthSummary =
        serde_json::from_slice(&std::fs::read(root().join("synth.json")).expect("synth.json"))
            .expect("parses");
    assert_eq!(&written, summary);
    let cy = &summary.studies[&Study::Cytology].sites;
    let us = &summary.studies[&Study::Ultrasound].sites;
    let cases = |m: &BTreeMap<String, nodal_synth::SiteSummary>| {
        m.values().map(|s| s.cases).collect::<Vec<_>>()
    };
    assert_eq!(cases(cy), vec![70, 10, 10, 10]);
    assert_eq!(cases(us), vec![13, 7, 6, 6]);
    for (study, sites_summary) in [("cytology", cy), ("ultrasound", us)] {
        for (site, dir) in sites_summary.keys().zip(sites(study)) {
            let s = &sites_summary[site];
            let (_, rows) = read_csv(&dir.join("cases.csv"));
            assert_eq!(rows.len(), s.cases);
            assert_eq!(
                rows.iter().filter(|r| r["split"] == "train").count(),
                s.train
            );
            let on_disk = walk(&dir.join("images")).len();
            assert_eq!(on_disk, s.images, "{site}: images on disk");
            if site.ends_with("-a") {
                assert!(s.train > s.validation, "{site}: mostly train");
            } else {
                assert_eq!(s.train, 0, "{site}: external sites validate only");
            }
        }
    }
    let model = summary.studies[&Study::Ultrasound]
        .label_model
        .as_ref()
        .expect("label model");
    assert!(
        model
            .coefficients
            .iter()
            .any(|c| c.term == "image_latent" && c.value > 0.0)
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Fraction of tissue pixels by the tiling rule, and of ink-dark pixels.
fn pixel_fractions(path: &Path) -> (f64, f64) {
    let img = image::open(path).expect("decodes").to_rgb8();
    let (mut tissue, mut ink) = (0usize, 0usize);
    for p in img.pixels() {
        let [r, g, b] = p.0.map(i32::from);
        let (mx, mn) = (r.max(g).max(b), r.min(g).min(b));
        if mx - mn >= 25 || (r + g + b) / 3 < 200 {
            tissue += 1;
        }
        if mx < 80 {
            ink += 1;
        }
    }
    let n = (img.width() * img.height()) as f64;
    (tissue as f64 / n, ink as f64 / n)
}

#[test]
fn planted_csv_matches_files_and_rows() {
    for study in ["cytology", "ultrasound"] {
        let (header, planted) = read_csv(&root().join(study).join("planted.csv"));
        assert_eq!(header, ["site", "case_id", "image", "kind"]);
        let mut kinds = BTreeMap::<String, usize>::new();
        for p in &planted {
            let site_dir = root().join(study).join(&p["site"]);
            let (_, rows) = read_csv(&site_dir.join("cases.csv"));
            let row = rows
                .iter()
                .find(|r| r["case_id"] == p["case_id"])
                .expect("planted case is in cases.csv");
            let kind = p["kind"].as_str();
            *kinds
                .entry(kind.split(':').next().unwrap_or(kind).to_string())
                .or_default() += 1;
            if let Some(criterion) = kind.strip_prefix("ineligible:") {
                assert!(p["image"].is_empty());
                match criterion {
                    "unsupported_origin" => {
                        assert!(!CLASSES.contains(&row["origin"].as_str()), "{row:?}")
                    }
                    "age_out_of_range" => assert!(
                        row["age"]
                            .parse::<u32>()
                            .is_ok_and(|a| !(18..=80).contains(&a))
                    ),
                    "not_first_diagnosis" => assert_eq!(row["first_diagnosis"], "no"),
                    "no_ln_dissection" => assert_eq!(row["ln_dissection"], "no"),
                    "prior_thyroid_surgery" => assert_eq!(row["prior_thyroid_surgery"], "yes"),
                    "concurrent_tumour" => assert_eq!(row["concurrent_tumour"], "yes"),
                    "special_population" => assert_ne!(row["special_population"], "none"),
                    "nodule_not_fully_visualised" => {
                        assert_eq!(row["nodule_fully_visualised"], "no")
                    }
                    "multiple_lesions" => assert_eq!(row["multiple_lesions"], "yes"),
                    "no_confirmed_origin" => assert_eq!(row["origin_evidence"], "none"),
                    other => panic!("unknown criterion {other}"),
                }
            } else {
                let listed = if study == "cytology" {
                    row["images"].clone()
                } else {
                    row["image"].clone()
                };
                assert!(
                    listed.split(';').any(|i| i == p["image"]),
                    "{p:?} is one of the case's images"
                );
                let (tissue, ink) = pixel_fractions(&site_dir.join(&p["image"]));
                match (study, kind) {
                    ("cytology", "blank") => {
                        assert!(tissue < 0.02, "blank smear has tissue {tissue}")
                    }
                    ("cytology", "artefact") => assert!(ink > 0.2, "artefact ink {ink}"),
                    ("ultrasound", "blank") => assert!(ink > 0.9, "blank frame is dark: {ink}"),
                    _ => {}
                }
            }
        }
        for kind in ["blank", "blur", "artefact", "ineligible"] {
            assert!(
                kinds.get(kind).is_some_and(|&n| n >= 1),
                "{study}: at least one {kind}, got {kinds:?}"
            );
        }
    }
    // Eligible cytology cases all have supported, evidenced origins.
    let (_, planted) = read_csv(&root().join("cytology/planted.csv"));
    let planted_as = |kind: &str| -> BTreeSet<String> {
        planted
            .iter()
            .filter(|p| p["kind"] == kind)
            .map(|p| p["case_id"].clone())
            .collect()
    };
    let unsupported = planted_as("ineligible:unsupported_origin");
    let unconfirmed = planted_as("ineligible:no_confirmed_origin");
    assert!(!unconfirmed.is_empty() && unsupported.is_disjoint(&unconfirmed));
    for site in sites("cytology") {
        for row in read_csv(&site.join("cases.csv")).1 {
            let id = &row["case_id"];
            assert_eq!(
                CLASSES.contains(&row["origin"].as_str()),
                !unsupported.contains(id)
            );
            assert_eq!(row["origin_evidence"] == "none", unconfirmed.contains(id));
        }
    }
}

fn tree_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).expect("prefix").to_path_buf(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_whatever_the_thread_count() {
    let one_thread = tempfile::tempdir().expect("tempdir");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    pool.install(|| generate(&config(one_thread.path(), 42)))
        .expect("synth runs");
    let a = tree_bytes(root());
    let b = tree_bytes(one_thread.path());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs", path.display());
    }
    let other_seed = tempfile::tempdir().expect("tempdir");
    generate(&SynthConfig {
        studies: vec![Study::Ultrasound],
        ..config(other_seed.path(), 7)
    })
    .expect("synth runs");
    let c = tree_bytes(other_seed.path());
    let key = PathBuf::from("ultrasound/us-a/cases.csv");
    assert_ne!(a[&key], c[&key], "another seed gives other cases");
}

#[test]
fn refuses_bad_scale_and_existing_study_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = generate(&SynthConfig {
        scale: 0.0,
        ..config(dir.path(), 1)
    })
    .expect_err("scale 0");
    assert!(
        matches!(
            err,
            SynthError::InvalidConfig {
                option: "--scale",
                ..
            }
        ),
        "{err}"
    );
    let err = generate(&SynthConfig {
        scale: f64::NAN,
        ..config(dir.path(), 1)
    })
    .expect_err("NaN");
    assert!(err.to_string().contains("--scale"), "{err}");
    std::fs::create_dir_all(dir.path().join("cytology")).expect("mkdir");
    let err = generate(&config(dir.path(), 1)).expect_err("exists");
    assert!(
        matches!(err, SynthError::AlreadyExists { .. }) && err.to_string().contains("cytology"),
        "{err}"
    );
}
