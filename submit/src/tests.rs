//! Whole-submission tests on small hand-made site folders and a real
//! LocalStore: broken folders are refused with every problem named and
//! nothing uploaded; good folders are uploaded once, resume, and are not
//! uploaded again.

use super::*;
use async_trait::async_trait;
use bytes::Bytes;
use image::{Rgb, RgbImage};
use nodal_common::store::{LocalStore, ObjectMeta, ObjectStore, StoreError};
use nodal_types::manifest::{Eligibility, QcReason};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;

const US_HEADER: &str = "case_id,split,age,sex,exam_date,first_diagnosis,ln_dissection,prior_thyroid_surgery,concurrent_tumour,special_population,nodule_fully_visualised,multiple_lesions,location,max_diameter_mm,multifocal,hashimoto,ln_metastasis,pt,pn,m,stage,image,report";
const CY_HEADER: &str = "case_id,split,age,sex,puncture_site,puncture_date,pathological_diagnosis,pathological_type,immunocytochemistry,history_of_malignancy,origin,origin_evidence,images,reader_p1";

/// A store decorator that records the keys written, in order.
#[derive(Debug)]
struct Recording {
    inner: LocalStore,
    puts: Mutex<Vec<String>>,
}

#[async_trait]
impl ObjectStore for Recording {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.inner.put(key, body).await?;
        self.puts.lock().unwrap().push(key.to_owned());
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.inner.get_range(key, offset, len).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

struct Env {
    _tmp: TempDir,
    site: PathBuf,
    store: Arc<Recording>,
}

impl Env {
    async fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("site");
        std::fs::create_dir_all(&site).unwrap();
        let inner = LocalStore::open(tmp.path().join("store")).await.unwrap();
        let store = Arc::new(Recording {
            inner,
            puts: Mutex::new(Vec::new()),
        });
        Self {
            _tmp: tmp,
            site,
            store,
        }
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.site.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn puts(&self) -> Vec<String> {
        self.store.puts.lock().unwrap().clone()
    }

    async fn stored(&self) -> Vec<String> {
        self.store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect()
    }

    async fn submit(&self, study: Study) -> Result<SubmitOutcome, SubmitError> {
        self.submit_with(SubmitOptions::new(study, "site-1", &self.site))
            .await
    }

    async fn submit_with(&self, opts: SubmitOptions) -> Result<SubmitOutcome, SubmitError> {
        submit_site(&opts, self.store.clone(), &Progress::hidden()).await
    }

    /// Submit, expect refusal; return the problems as text and check that
    /// nothing reached the store.
    async fn refused(&self, study: Study) -> Vec<String> {
        // A FIFO or device in the folder must never block the submission.
        let submitted =
            tokio::time::timeout(std::time::Duration::from_secs(60), self.submit(study));
        let err = submitted.await.expect("submit hung").unwrap_err();
        assert!(
            self.stored().await.is_empty(),
            "nothing may be uploaded: {err}"
        );
        match err {
            SubmitError::Invalid { problems, .. } => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected an invalid folder, got {other}"),
        }
    }
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Pseudo-random value in 0..n for pixel (x, y).
fn hash(x: u32, y: u32, n: u32) -> u32 {
    let h = x.wrapping_mul(374_761_393) ^ y.wrapping_mul(668_265_263);
    (h.wrapping_mul(2_246_822_519) >> 16) % n
}

/// A sharp smear: stained cells on glass everywhere.
fn smear(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if hash(x / 3, y / 3, 3) == 0 {
            Rgb([150, 90, 170])
        } else {
            Rgb([236, 233, 239])
        }
    })
}

/// An ultrasound-like frame: grey speckle.
fn frame(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let g = 60 + hash(x, y, 140) as u8;
        Rgb([g, g, g])
    })
}

/// A good ultrasound site of `n` cases; case 2 is 85 years old.
fn us_site(env: &Env, n: usize) {
    let mut csv = format!("{US_HEADER}\n");
    for i in 1..=n {
        let id = format!("U{i}");
        let age = if i == 2 { 85 } else { 40 + i };
        csv += &format!(
            "{id},train,{age},F,2020-01-02,yes,yes,no,no,none,yes,no,lower,4.0,no,no,1,T1a,N1a,M0,I,images/{id}.jpg,reports/{id}.json\n"
        );
        env.write(&format!("images/{id}.jpg"), &jpeg(&frame(96, 64)));
        env.write(&format!("reports/{id}.json"), report(&id).as_bytes());
    }
    env.write("cases.csv", csv.as_bytes());
}

fn report(id: &str) -> String {
    format!(
        r#"{{"schema":"nodal.us-report/1","case_id":"{id}","nodule_location":"left-upper","max_diameter_mm":12.4,"composition":"solid","echogenicity":"hypoechoic","margin":"irregular","calcification":"microcalcification","aspect_ratio":1.18,"vascularity":"central","tirads":5}}"#
    )
}

/// A cytology site: K1 two good smears (one PNG), K2 one blank smear,
/// K3 melanoma (unsupported) with a good smear.
fn cy_site(env: &Env) {
    let rows = [
        "K1,train,50,F,axillary,2019-03-04,metastatic adenocarcinoma,adenocarcinoma,no,no,lung,histopathology,images/K1/1.jpg;images/K1/2.png,lung",
        "K2,validation,61,M,cervical,2019-03-05,metastatic carcinoma,other,yes,no,,clinical,images/K2/1.jpg,",
        "K3,validation,70,M,inguinal,2019-03-06,metastatic melanoma,other,yes,yes,melanoma,histopathology,images/K3/1.jpg,other",
    ];
    env.write(
        "cases.csv",
        format!("{CY_HEADER}\n{}\n", rows.join("\n")).as_bytes(),
    );
    env.write("images/K1/1.jpg", &jpeg(&smear(448, 300)));
    env.write("images/K1/2.png", &png(&smear(224, 224)));
    env.write(
        "images/K2/1.jpg",
        &jpeg(&RgbImage::from_pixel(448, 448, Rgb([236, 233, 239]))),
    );
    env.write("images/K3/1.jpg", &jpeg(&smear(224, 224)));
}

#[tokio::test]
async fn cytology_site_is_uploaded_with_every_verdict() {
    let env = Env::new().await;
    cy_site(&env);
    env.write("notes.txt", b"not listed");
    let out = env.submit(Study::Cytology).await.unwrap();
    let m = &out.manifest;
    assert_eq!(
        m.cases
            .iter()
            .map(|c| c.case_id.as_str())
            .collect::<Vec<_>>(),
        ["K1", "K2", "K3"]
    );
    let k1 = &m.cases[0];
    assert_eq!(k1.label.as_deref(), Some("lung"));
    assert_eq!(k1.readers.get("p1").map(String::as_str), Some("lung"));
    assert_eq!(k1.clinical.get("age").map(String::as_str), Some("50"));
    assert!(!k1.clinical.contains_key("images") && !k1.clinical.contains_key("origin"));
    assert!(k1.images.iter().all(|i| i.qc.passed), "{:?}", k1.images);
    let names: Vec<&str> = k1
        .images
        .iter()
        .flat_map(|i| i.tiles.iter().map(|t| t.name.as_str()))
        .collect();
    let id = &m.archive_id;
    assert_eq!(names, ["K1/0-0-0.jpg", "K1/0-224-0.jpg", "K1/1-0-0.jpg"]);
    // The three tiles end to end in the one shard, each found by its CRC-32C.
    assert_eq!(m.shards.len(), 1);
    let shard = env.store.get(&shard_key(id, 0)).await.unwrap();
    assert_eq!(shard.len() as u64, m.shards[0].bytes);
    let mut end = 0;
    for tile in k1.images.iter().flat_map(|i| &i.tiles) {
        assert_eq!((tile.at.shard, tile.at.offset), (0, end));
        let bytes = &shard[tile.at.offset as usize..tile.at.end() as usize];
        assert_eq!(nodal_types::shard::crc32c(bytes), tile.at.crc32c);
        decode::decode_rgb(bytes).expect("a tile is a JPEG of its own");
        end = tile.at.end();
    }
    assert_eq!(end, m.shards[0].bytes);
    assert_eq!(m.cases[1].images[0].qc.reason, Some(QcReason::Blank));
    assert!(m.cases[1].images[0].tiles.is_empty());
    assert_eq!(
        m.cases[2].eligibility,
        Eligibility::Excluded {
            criterion: "unsupported_origin".into()
        }
    );
    assert!(m.cases[2].images[0].qc.passed && m.cases[2].images[0].tiles.is_empty());
    assert_eq!(out.unlisted, ["notes.txt"]);
    assert_eq!(m.source_files.len(), 5);
    let s = &out.summary;
    assert_eq!(
        (
            s.cases,
            s.eligible,
            s.runnable,
            s.images,
            s.qc_passed,
            s.tiles
        ),
        (3, 2, 1, 4, 3, 3)
    );
    assert_eq!(s.qc_failed.get(&QcReason::Blank), Some(&1));
    // Shards first, the manifest last; the stored manifest is the returned one.
    let puts = env.puts();
    assert_eq!(puts, [shard_key(id, 0), manifest_key(id)]);
    assert_eq!(
        puts.last().map(String::as_str),
        Some(manifest_key(id).as_str())
    );
    let stored = Manifest::parse(&env.store.get(&manifest_key(id)).await.unwrap()).unwrap();
    assert_eq!(&stored, m);
}

#[tokio::test]
async fn resubmitting_uploads_nothing_and_an_interrupted_upload_resumes() {
    let env = Env::new().await;
    us_site(&env, 4);
    // Shards of one byte: each tile is a shard of its own.
    let opts = SubmitOptions {
        shard_bytes: 1,
        ..SubmitOptions::new(Study::Ultrasound, "site-1", &env.site)
    };
    let first = env.submit_with(opts.clone()).await.unwrap();
    let id = first.manifest.archive_id.clone();
    assert!(id.starts_with("site-1."));
    assert_eq!(first.summary.excluded.get("age_out_of_range"), Some(&1));
    assert_eq!((first.summary.tiles, first.summary.uploaded), (3, 4));
    assert_eq!((first.manifest.shards.len(), first.summary.shards), (3, 3));
    let again = env.submit_with(opts.clone()).await.unwrap();
    assert_eq!(again.manifest.archive_id, id);
    assert!(again.summary.already_complete);
    assert_eq!((again.summary.uploaded, again.summary.tiles), (0, 3));
    assert_eq!(env.puts().len(), 4, "no PUT on re-submission");
    // Interrupted: one shard and the manifest never arrived.
    env.store.delete(&manifest_key(&id)).await.unwrap();
    env.store.delete(&shard_key(&id, 2)).await.unwrap();
    let resumed = env.submit_with(opts).await.unwrap();
    assert_eq!((resumed.summary.uploaded, resumed.summary.skipped), (2, 2));
    assert_eq!(&env.puts()[4..], [shard_key(&id, 2), manifest_key(&id)]);
    assert_eq!(resumed.manifest, first.manifest);
}

#[tokio::test]
async fn an_archive_of_the_old_layout_is_submitted_again_in_shards() {
    let env = Env::new().await;
    us_site(&env, 2);
    let first = env.submit(Study::Ultrasound).await.unwrap();
    let id = first.manifest.archive_id.clone();
    // The manifest as a nodal of schema 2 would have left it.
    let mut old: serde_json::Value =
        serde_json::from_slice(&env.store.get(&manifest_key(&id)).await.unwrap()).unwrap();
    old["schema_version"] = 2.into();
    let old = serde_json::to_vec(&old).unwrap();
    let err = Manifest::parse(&old).unwrap_err();
    assert!(err.to_string().contains("re-submit the site"), "{err}");
    env.store.put(&manifest_key(&id), old.into()).await.unwrap();
    let again = env.submit(Study::Ultrasound).await.unwrap();
    assert!(!again.summary.already_complete);
    assert_eq!(again.manifest, first.manifest);
    let stored = Manifest::parse(&env.store.get(&manifest_key(&id)).await.unwrap()).unwrap();
    assert_eq!(stored.schema_version, MANIFEST_SCHEMA_VERSION);
}

#[tokio::test]
async fn changed_settings_or_files_make_a_new_archive() {
    let env = Env::new().await;
    us_site(&env, 2);
    let first = env
        .submit(Study::Ultrasound)
        .await
        .unwrap()
        .manifest
        .archive_id;
    let mut opts = SubmitOptions::new(Study::Ultrasound, "site-1", &env.site);
    opts.thresholds.min_coverage = 0.2;
    let stricter = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap();
    assert_ne!(stricter.manifest.archive_id, first);
    assert_eq!(stricter.manifest.qc_thresholds.min_coverage, 0.2);
    env.write("images/U1.jpg", &jpeg(&frame(100, 64)));
    let changed = env
        .submit(Study::Ultrasound)
        .await
        .unwrap()
        .manifest
        .archive_id;
    assert_ne!(changed, first);
}

#[tokio::test]
async fn bad_options_are_refused_before_reading() {
    let env = Env::new().await;
    for (site, thresholds, says) in [
        ("Site_A", None, "site name \"Site_A\" is not usable"),
        (
            "a",
            Some(QcThresholds {
                min_coverage: 1.5,
                min_laplacian_var: 1.0,
                max_artefact_fraction: 0.1,
            }),
            "--min-coverage must be between 0 and 1",
        ),
        (
            "a",
            Some(QcThresholds {
                min_coverage: 0.1,
                min_laplacian_var: f64::NAN,
                max_artefact_fraction: 0.1,
            }),
            "--min-laplacian-var",
        ),
    ] {
        let mut opts = SubmitOptions::new(Study::Cytology, site, &env.site);
        if let Some(t) = thresholds {
            opts.thresholds = t;
        }
        let err = submit_site(&opts, env.store.clone(), &Progress::hidden())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SubmitError::Options(_)) && err.to_string().contains(says),
            "{err}"
        );
    }
}

/// One broken folder: how to break a good ultrasound site, and a problem
/// the refusal must list.
struct Broken {
    name: &'static str,
    study: Study,
    breaks: fn(&Env),
    expect: &'static str,
}

fn rewrite_csv(env: &Env, f: impl Fn(String) -> String) {
    let path = env.site.join("cases.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

fn broken_folders() -> Vec<Broken> {
    vec![
        Broken {
            name: "no cases.csv",
            study: Study::Ultrasound,
            breaks: |e| std::fs::remove_file(e.site.join("cases.csv")).unwrap(),
            expect: "cases.csv: the site folder has no cases.csv",
        },
        Broken {
            name: "missing column",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replace(",hashimoto,", ",hashimotos,")),
            expect: "cases.csv:1: hashimoto: the required column is missing from the header (ultrasound study)",
        },
        Broken {
            name: "duplicate case id",
            study: Study::Ultrasound,
            breaks: |e| {
                rewrite_csv(e, |t| {
                    t.replace("U3,train", "U1,train").replace(
                        "images/U3.jpg,reports/U3.json",
                        "images/U3.jpg,reports/U1b.json",
                    )
                })
            },
            expect: "cases.csv:4: case_id: \"U1\" is already the id of line 2",
        },
        Broken {
            name: "unparseable integer",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replace("U3,train,43", "U3,train,4x")),
            expect: "cases.csv:4: age: \"4x\" is not an integer",
        },
        Broken {
            name: "unparseable number",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replacen("lower,4.0", "lower,4.o", 1)),
            expect: "cases.csv:2: max_diameter_mm: \"4.o\" is not a decimal number",
        },
        Broken {
            name: "ragged row",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replacen("lower,4.0", "lower,4,0", 1)),
            expect: "cases.csv:2: the row has 24 fields but the header has 23",
        },
        Broken {
            name: "bad date",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replacen("2020-01-02", "02/01/2020", 1)),
            expect: "cases.csv:2: exam_date: \"02/01/2020\" is not a date (YYYY-MM-DD)",
        },
        Broken {
            name: "bad yes/no",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replacen("yes,yes,no,no", "yes,Y,no,no", 1)),
            expect: "cases.csv:2: ln_dissection: \"Y\" is not \"yes\" or \"no\"",
        },
        Broken {
            name: "missing required value",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replacen(",F,", ",,", 1)),
            expect: "cases.csv:2: sex: missing value (the column is required)",
        },
        Broken {
            name: "missing image",
            study: Study::Ultrasound,
            breaks: |e| std::fs::remove_file(e.site.join("images/U2.jpg")).unwrap(),
            expect: "cases.csv:3: image: images/U2.jpg does not exist",
        },
        Broken {
            name: "truncated image",
            study: Study::Ultrasound,
            breaks: |e| {
                let b = std::fs::read(e.site.join("images/U2.jpg")).unwrap();
                e.write("images/U2.jpg", &b[..b.len() / 2]);
            },
            expect: "images/U2.jpg: truncated JPEG: the end-of-image marker (FF D9) is missing",
        },
        Broken {
            name: "not an image",
            study: Study::Ultrasound,
            breaks: |e| e.write("images/U2.jpg", b"<html>moved</html>"),
            expect: "images/U2.jpg: not a JPEG, PNG or DICOM image (it has neither the JPEG nor the PNG signature, nor DICM at byte 128) (listed at cases.csv:3)",
        },
        Broken {
            name: "empty image",
            study: Study::Ultrasound,
            breaks: |e| e.write("images/U2.jpg", b""),
            expect: "images/U2.jpg: the file is empty (listed at cases.csv:3)",
        },
        Broken {
            name: "corrupt image header",
            study: Study::Ultrasound,
            breaks: |e| {
                let mut b = std::fs::read(e.site.join("images/U2.jpg")).unwrap();
                b[2..120].fill(0);
                e.write("images/U2.jpg", &b);
            },
            expect: "images/U2.jpg: bad JPEG header",
        },
        Broken {
            name: "image too small",
            study: Study::Ultrasound,
            breaks: |e| e.write("images/U2.jpg", &jpeg(&frame(20, 20))),
            expect: "images/U2.jpg: the image is 20×20 pixels, smaller than the 32×32 the study needs (listed at cases.csv:3)",
        },
        Broken {
            name: "report not JSON",
            study: Study::Ultrasound,
            breaks: |e| {
                e.write(
                    "reports/U3.json",
                    b"{\"schema\": \"nodal.us-report/1\",\n\"tirads\": 5,,\n}",
                )
            },
            expect: "reports/U3.json:2: not valid JSON",
        },
        Broken {
            name: "report bad field",
            study: Study::Ultrasound,
            breaks: |e| {
                e.write(
                    "reports/U3.json",
                    report("U3")
                        .replace("\"tirads\":5", "\"tirads\":9")
                        .as_bytes(),
                )
            },
            expect: "reports/U3.json: tirads: 9 is not a whole number from 1 to 5",
        },
        Broken {
            name: "report of another case",
            study: Study::Ultrasound,
            breaks: |e| e.write("reports/U3.json", report("U4").as_bytes()),
            expect: "reports/U3.json: case_id: \"U4\" differs from the case id \"U3\" in cases.csv",
        },
        Broken {
            name: "path outside the folder",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replace("images/U3.jpg", "../U3.jpg")),
            expect: "cases.csv:4: image: \"../U3.jpg\" is not a usable relative path: it has an empty, '.' or '..' segment",
        },
        Broken {
            name: "image listed twice",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replace("images/U3.jpg", "images/U2.jpg")),
            expect: "cases.csv:4: image: images/U2.jpg is already listed at line 3",
        },
        Broken {
            name: "neither UTF-8 nor GB18030",
            study: Study::Ultrasound,
            breaks: |e| {
                let mut b = std::fs::read(e.site.join("cases.csv")).unwrap();
                let at = b.len() - 5;
                b[at] = 0xFF;
                e.write("cases.csv", &b);
            },
            expect: "cases.csv:5: neither UTF-8 nor GB18030/GBK text",
        },
        Broken {
            name: "unknown value",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replacen("lower", "bottom", 1)),
            expect: "cases.csv:2: location: \"bottom\" is not one of upper, middle, lower, isthmus",
        },
        Broken {
            name: "too many smear images",
            study: Study::Cytology,
            breaks: |e| {
                rewrite_csv(e, |t| {
                    t.replace("images/K3/1.jpg,", "a.jpg;b.jpg;c.jpg;d.jpg;e.jpg,")
                })
            },
            expect: "cases.csv:4: images: 5 files listed, expected 1 to 4",
        },
        Broken {
            name: "smear smaller than a tile",
            study: Study::Cytology,
            breaks: |e| e.write("images/K1/2.png", &png(&smear(200, 224))),
            expect: "images/K1/2.png: the image is 200×224 pixels, smaller than the 224×224 the study needs (listed at cases.csv:2)",
        },
        Broken {
            name: "truncated PNG",
            study: Study::Cytology,
            breaks: |e| {
                let b = png(&smear(224, 224));
                e.write("images/K1/2.png", &b[..b.len() - 20]);
            },
            expect: "images/K1/2.png: truncated PNG",
        },
        Broken {
            name: "image linked to a file outside the folder",
            study: Study::Ultrasound,
            breaks: |e| {
                let outside = e.site.parent().unwrap().join("elsewhere.jpg");
                std::fs::write(&outside, jpeg(&frame(96, 64))).unwrap();
                std::fs::remove_file(e.site.join("images/U2.jpg")).unwrap();
                std::os::unix::fs::symlink(&outside, e.site.join("images/U2.jpg")).unwrap();
            },
            expect: "cases.csv:3: image: images/U2.jpg leads outside the site folder through the symbolic link images/U2.jpg",
        },
        Broken {
            name: "images folder linked outside",
            study: Study::Ultrasound,
            breaks: |e| {
                let outside = e.site.parent().unwrap().join("elsewhere");
                std::fs::rename(e.site.join("images"), &outside).unwrap();
                std::os::unix::fs::symlink(&outside, e.site.join("images")).unwrap();
            },
            expect: "cases.csv:2: image: images/U1.jpg leads outside the site folder through the symbolic link images",
        },
        Broken {
            name: "image linked to a device",
            study: Study::Ultrasound,
            breaks: |e| {
                std::fs::remove_file(e.site.join("images/U2.jpg")).unwrap();
                std::os::unix::fs::symlink("/dev/zero", e.site.join("images/U2.jpg")).unwrap();
            },
            expect: "cases.csv:3: image: images/U2.jpg leads outside the site folder",
        },
        Broken {
            name: "a FIFO in place of an image",
            study: Study::Ultrasound,
            breaks: |e| {
                let path = e.site.join("images/U2.jpg");
                std::fs::remove_file(&path).unwrap();
                let made = std::process::Command::new("mkfifo")
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(made.success());
            },
            expect: "cases.csv:3: image: images/U2.jpg is a FIFO (named pipe), not a regular file",
        },
        Broken {
            name: "report field given twice",
            study: Study::Ultrasound,
            breaks: |e| {
                let twice = report("U3").replace("\"tirads\":5", "\"tirads\":5,\"tirads\":1");
                e.write("reports/U3.json", twice.as_bytes());
            },
            expect: "reports/U3.json:1: duplicate field \"tirads\"",
        },
        Broken {
            name: "report diameter in centimetres",
            study: Study::Ultrasound,
            breaks: |e| {
                let cm =
                    report("U3").replace("\"max_diameter_mm\":12.4", "\"max_diameter_mm\":0.41");
                e.write("reports/U3.json", cm.as_bytes());
            },
            expect: "reports/U3.json: max_diameter_mm: 0.41 is about a tenth of the 4.0 of cases.csv:4 (max_diameter_mm)",
        },
        Broken {
            name: "a delimiter that is not the one given",
            study: Study::Ultrasound,
            breaks: |e| rewrite_csv(e, |t| t.replace(',', "\t").replacen("\t", ",", 1)),
            expect: "cases.csv:1: split: the required column is missing",
        },
    ]
}

#[tokio::test]
async fn broken_folders_are_refused_naming_the_place_and_upload_nothing() {
    let cases = broken_folders();
    assert!(cases.len() >= 20);
    for case in cases {
        let env = Env::new().await;
        match case.study {
            Study::Ultrasound => us_site(&env, 4),
            Study::Cytology => cy_site(&env),
        }
        (case.breaks)(&env);
        let problems = env.refused(case.study).await;
        assert!(
            problems.iter().any(|p| p.starts_with(case.expect)),
            "{}: expected a problem starting with {:?}, got {problems:#?}",
            case.name,
            case.expect
        );
        assert!(env.puts().is_empty(), "{}", case.name);
    }
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let env = Env::new().await;
    us_site(&env, 4);
    rewrite_csv(&env, |t| {
        t.replace("U3,train,43", "U3,train,abc")
            .replacen("2020-01-02", "2020-02-31", 1)
    });
    std::fs::remove_file(env.site.join("images/U4.jpg")).unwrap();
    env.write("reports/U2.json", b"nope");
    let problems = env.refused(Study::Ultrasound).await;
    assert_eq!(problems.len(), 4, "{problems:#?}");
    let err = env.submit(Study::Ultrasound).await.unwrap_err().to_string();
    assert!(err.contains("4 problems (nothing was uploaded)"), "{err}");
    assert!(
        err.contains("\n  cases.csv:4: age: \"abc\" is not an integer"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_site_folder_is_named() {
    let env = Env::new().await;
    let opts = SubmitOptions::new(Study::Cytology, "a", env.site.join("nope"));
    let err = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("nope: the site folder does not exist"),
        "{err}"
    );
    assert!(env.stored().await.is_empty());
}

#[test]
fn fixtures_pass_qc() {
    let t = qc::default_thresholds(Study::Cytology);
    assert!(qc::judge(&qc::measure(Study::Cytology, &smear(448, 300)), &t).passed);
    let t = qc::default_thresholds(Study::Ultrasound);
    assert!(qc::judge(&qc::measure(Study::Ultrasound, &frame(96, 64)), &t).passed);
}

#[tokio::test]
async fn a_deleted_or_cut_shard_under_a_complete_manifest_is_uploaded_again() {
    let env = Env::new().await;
    us_site(&env, 3);
    let id = env
        .submit(Study::Ultrasound)
        .await
        .unwrap()
        .manifest
        .archive_id;
    let shard = shard_key(&id, 0);
    env.store.delete(&shard).await.unwrap();
    let puts = env.puts().len();
    let again = env.submit(Study::Ultrasound).await.unwrap();
    assert!(!again.summary.already_complete);
    assert_eq!(&env.puts()[puts..], [shard.clone(), manifest_key(&id)]);
    // A shard of another size than the manifest's is not complete either.
    let whole = env.store.get(&shard).await.unwrap();
    env.store.put(&shard, whole.slice(1..)).await.unwrap();
    let puts = env.puts().len();
    let again = env.submit(Study::Ultrasound).await.unwrap();
    assert!(!again.summary.already_complete);
    assert_eq!(&env.puts()[puts..], [shard, manifest_key(&id)]);
}

#[tokio::test]
async fn options_reach_the_manifest_and_problems_are_listed() {
    let env = Env::new().await;
    us_site(&env, 2);
    let defaults = qc::default_thresholds(Study::Ultrasound);
    let opts = SubmitOptions {
        thresholds: QcThresholds {
            min_coverage: 0.2,
            ..defaults.clone()
        },
        upload_concurrency: 2,
        ..SubmitOptions::new(Study::Ultrasound, "us-x", &env.site)
    };
    let outcome = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap();
    let m = &outcome.manifest;
    assert!(m.archive_id.starts_with("us-x."), "{}", m.archive_id);
    assert_eq!(m.qc_thresholds.min_coverage, 0.2);
    assert_eq!(
        m.qc_thresholds.min_laplacian_var,
        defaults.min_laplacian_var
    );
    std::fs::remove_file(env.site.join("images/U2.jpg")).unwrap();
    let err = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains(
            "1 problem (nothing was uploaded)\n  cases.csv:3: image: images/U2.jpg does not exist"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn refusals_never_quote_a_refused_file() {
    let env = Env::new().await;
    us_site(&env, 2);
    let secret = env.site.parent().unwrap().join("passwd");
    std::fs::write(&secret, b"root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::remove_file(env.site.join("images/U1.jpg")).unwrap();
    std::os::unix::fs::symlink(&secret, env.site.join("images/U1.jpg")).unwrap();
    env.write("images/U2.jpg", b"root:x:0:0:root:/root:/bin/bash\n");
    let problems = env.refused(Study::Ultrasound).await;
    assert_eq!(problems.len(), 2, "{problems:#?}");
    for p in &problems {
        assert!(!p.contains("root") && !p.contains("72 6f"), "{p}");
    }
}

/// Mean absolute difference of two images of the same size.
fn mean_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[tokio::test]
async fn exif_orientation_is_applied_before_qc_and_tiling_and_recorded() {
    let env = Env::new().await;
    us_site(&env, 2);
    // Left half dark, right half bright speckle: turned 90° clockwise the
    // dark half is on top.
    let seen = RgbImage::from_fn(96, 64, |x, y| {
        let g = if x < 48 { 40 } else { 150 } + hash(x, y, 60) as u8;
        Rgb([g, g, g])
    });
    env.write(
        "images/U1.jpg",
        &decode::with_exif_orientation(&jpeg(&seen), 6),
    );
    let out = env.submit(Study::Ultrasound).await.unwrap();
    let image = &out.manifest.cases[0].images[0];
    assert_eq!((image.orientation, image.width, image.height), (6, 64, 96));
    assert_eq!(out.manifest.cases[1].images[0].orientation, 1);
    let at = image.tiles[0].at;
    let tile = env
        .store
        .get_range(
            &shard_key(&out.manifest.archive_id, at.shard),
            at.offset,
            u64::from(at.length),
        )
        .await
        .unwrap();
    let tile = decode::decode_rgb(&tile).unwrap();
    let turned = image::imageops::rotate90(&seen);
    let expected = tiling::cut(nodal_types::manifest::TileMode::Whole, &turned);
    let unturned = tiling::cut(nodal_types::manifest::TileMode::Whole, &seen);
    let (near, far) = (
        mean_diff(&tile, &expected[0].pixels),
        mean_diff(&tile, &unturned[0].pixels),
    );
    assert!(near < 8.0 && far > 25.0, "turned {near}, as stored {far}");
}

/// The ultrasound site's table as rows of cells.
fn us_rows(env: &Env) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(env.site.join("cases.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn gb18030_and_semicolon_tables_go_in_with_the_same_cases() {
    let plain = Env::new().await;
    us_site(&plain, 3);
    rewrite_csv(&plain, |t| {
        t.replacen(",report\n", ",report,note\n", 1)
            .replace(".json\n", ".json,甲状腺结节 随访\n")
    });
    let reference = plain.submit(Study::Ultrasound).await.unwrap().manifest;
    assert_eq!(reference.cases[0].clinical["note"], "甲状腺结节 随访");
    let utf8 = std::fs::read_to_string(plain.site.join("cases.csv")).unwrap();
    for (name, bytes, encoding, delimiter) in [
        (
            "gb18030",
            encoding_rs::GB18030.encode(&utf8).0.into_owned(),
            "gb18030",
            ",",
        ),
        (
            "semicolon",
            utf8.replace(',', ";").into_bytes(),
            "UTF-8",
            ";",
        ),
        (
            "gbk with tabs, CRLF",
            encoding_rs::GBK
                .encode(&utf8.replace(',', "\t").replace('\n', "\r\n"))
                .0
                .into_owned(),
            "gb18030",
            "tab",
        ),
    ] {
        let env = Env::new().await;
        us_site(&env, 3);
        env.write("cases.csv", &bytes);
        let m = env.submit(Study::Ultrasound).await.unwrap().manifest;
        let table = m.cases_table.clone().unwrap();
        assert_eq!(table.encoding.as_deref(), Some(encoding), "{name}");
        assert_eq!(table.delimiter.as_deref(), Some(delimiter), "{name}");
        assert_eq!(m.cases, reference.cases, "{name}");
    }
}

#[tokio::test]
async fn an_explicit_encoding_is_used_and_recorded() {
    let env = Env::new().await;
    us_site(&env, 2);
    let text = std::fs::read_to_string(env.site.join("cases.csv")).unwrap();
    let latin = text
        .replacen(",report\n", ",report,note\n", 1)
        .replace(".json\n", ".json,Müller\n");
    env.write("cases.csv", &encoding_rs::WINDOWS_1252.encode(&latin).0);
    let mut opts = SubmitOptions::new(Study::Ultrasound, "site-1", &env.site);
    opts.table.encoding = Some(encoding_rs::WINDOWS_1252);
    let m = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap()
        .manifest;
    assert_eq!(m.cases[0].clinical["note"], "Müller");
    assert_eq!(
        m.cases_table.unwrap().encoding.as_deref(),
        Some("windows-1252")
    );
}

/// Write `rows` as `cases.xlsx` the way a spreadsheet would hold them:
/// numbers as numbers, dates as dates.
fn write_xlsx(env: &Env, rows: &[Vec<String>], sheet: &str) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let first = book.add_worksheet();
    first.set_name(sheet).unwrap();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            if let Ok(n) = cell.parse::<f64>() {
                first.write_number(r, c, n).unwrap();
            } else if let Ok(d) = ExcelDateTime::parse_from_str(cell)
                && cell.len() == 10
            {
                first.write_datetime_with_format(r, c, &d, &date).unwrap();
            } else {
                first.write_string(r, c, cell).unwrap();
            }
        }
    }
    book.add_worksheet().set_name("Notes").unwrap();
    book.save(env.site.join("cases.xlsx")).unwrap();
}

#[tokio::test]
async fn xlsx_tables_go_in_with_the_same_cases_and_cell_locations() {
    let env = Env::new().await;
    us_site(&env, 3);
    // A spreadsheet holds 4.0 as the number 4: a diameter with a fraction
    // reads the same either way.
    rewrite_csv(&env, |t| t.replace("lower,4.0", "lower,4.5"));
    let reference = env.submit(Study::Ultrasound).await.unwrap().manifest;
    let rows = us_rows(&env);
    std::fs::remove_file(env.site.join("cases.csv")).unwrap();
    write_xlsx(&env, &rows, "Patients");
    let m = env.submit(Study::Ultrasound).await.unwrap().manifest;
    assert_eq!(m.cases, reference.cases);
    let table = m.cases_table.unwrap();
    assert_eq!(
        (table.file.as_str(), table.sheet.as_deref()),
        ("cases.xlsx", Some("Patients"))
    );
    assert!(m.source_files.iter().any(|f| f.path == "cases.xlsx"));

    let mut bad = rows.clone();
    bad[3][2] = "4x".into();
    bad[2][21] = "images/none.jpg".into();
    write_xlsx(&env, &bad, "Patients");
    let puts = env.puts().len();
    let err = env.submit(Study::Ultrasound).await.unwrap_err().to_string();
    assert!(
        err.ends_with(
            "2 problems (nothing was uploaded)\n  cases.xlsx!Patients:V3: image: images/none.jpg does not exist\n  cases.xlsx!Patients:C4: age: \"4x\" is not an integer"
        ),
        "{err}"
    );
    assert_eq!(env.puts().len(), puts);

    let mut opts = SubmitOptions::new(Study::Ultrasound, "site-1", &env.site);
    opts.table.sheet = Some("Notes".into());
    let err = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cases.xlsx!Notes:1: the sheet is empty"),
        "{err}"
    );
    opts.table.sheet = Some("Missing".into());
    let err = submit_site(&opts, env.store.clone(), &Progress::hidden())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no sheet \"Missing\" (its sheets: Patients, Notes)"),
        "{err}"
    );

    env.write("cases.csv", b"case_id\n");
    let err = env.submit(Study::Ultrasound).await.unwrap_err().to_string();
    assert!(
        err.ends_with("\n  cases.csv: the site folder has both cases.csv and cases.xlsx: keep the one to submit"),
        "{err}"
    );
}

#[tokio::test]
async fn large_images_decode_within_the_memory_budget() {
    let env = Env::new().await;
    cy_site(&env);
    // A budget smaller than one smear: every image decodes alone, and the
    // archive is the same as with the default budget.
    let reference = env.submit(Study::Cytology).await.unwrap().manifest;
    let other = Env::new().await;
    cy_site(&other);
    let mut opts = SubmitOptions::new(Study::Cytology, "site-1", &other.site);
    opts.decode_memory = 1;
    let tight = submit_site(&opts, other.store.clone(), &Progress::hidden())
        .await
        .unwrap()
        .manifest;
    assert_eq!(tight.archive_id, reference.archive_id);
    assert_eq!(tight.cases, reference.cases);
}
