//! `nodal submit` end to end on `nodal synth` archives (scale 0.01): all
//! eight sites go to a real S3 server (s3s-fs) and to a local folder; the
//! manifests are checked against `planted.csv` (every planted defect and
//! ineligible case found, nothing else excluded); re-submission makes no
//! PUT; an interrupted upload resumes with exactly the missing objects.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use bytes::Bytes;
use nodal_common::store::{LocalStore, ObjectMeta, ObjectStore, S3Store, SharedStore, StoreError};
use nodal_submit::{Progress, SubmitOptions, SubmitOutcome, submit_site};
use nodal_synth::SynthConfig;
use nodal_testkit::S3Server;
use nodal_types::layout::{manifest_key, shard_key};
use nodal_types::manifest::{Eligibility, Manifest};
use nodal_types::shard::crc32c;
use nodal_types::study::Study;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tempfile::TempDir;

const SITES: [(Study, &str); 8] = [
    (Study::Cytology, "cy-a"),
    (Study::Cytology, "cy-b"),
    (Study::Cytology, "cy-c"),
    (Study::Cytology, "cy-d"),
    (Study::Ultrasound, "us-a"),
    (Study::Ultrasound, "us-b"),
    (Study::Ultrasound, "us-c"),
    (Study::Ultrasound, "us-d"),
];

/// A store decorator counting the PUTs that reach the real store.
#[derive(Debug)]
struct CountingStore {
    inner: SharedStore,
    puts: AtomicUsize,
}

impl CountingStore {
    fn new(inner: SharedStore) -> Arc<Self> {
        Arc::new(Self {
            inner,
            puts: AtomicUsize::new(0),
        })
    }

    fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, body).await
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
        format!("counting {}", self.inner.describe())
    }
}

/// Synthetic archives of both studies at scale 0.01.
fn synth(seed: u64) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        out: dir.path().join("out"),
        studies: Study::ALL.to_vec(),
        scale: 0.01,
        seed,
        format: nodal_synth::ImageFormat::Jpeg,
    };
    nodal_synth::generate(&config).unwrap();
    dir
}

/// What synth planted in one site: defective images by path, ineligible
/// cases by id.
#[derive(Debug, Default)]
struct Planted {
    defects: BTreeMap<String, String>,
    ineligible: BTreeMap<String, String>,
}

fn planted(out: &Path, study: Study, site: &str) -> Planted {
    let mut reader = csv::Reader::from_path(out.join(study.as_str()).join("planted.csv")).unwrap();
    let mut planted = Planted::default();
    for row in reader.records() {
        let row = row.unwrap();
        if &row[0] != site {
            continue;
        }
        match row[3].strip_prefix("ineligible:") {
            Some(criterion) => planted
                .ineligible
                .insert(row[1].to_owned(), criterion.to_owned()),
            None => planted.defects.insert(row[2].to_owned(), row[3].to_owned()),
        };
    }
    planted
}

fn site_dir(out: &Path, study: Study, site: &str) -> PathBuf {
    out.join(study.as_str()).join(site)
}

async fn submit(out: &Path, study: Study, site: &str, store: SharedStore) -> SubmitOutcome {
    let opts = SubmitOptions::new(study, site, site_dir(out, study, site));
    submit_site(&opts, store, &Progress::hidden())
        .await
        .unwrap_or_else(|e| panic!("{site}: {e}"))
}

/// Per QC reason: (true positives, false positives, false negatives).
type Confusion = BTreeMap<String, (usize, usize, usize)>;

/// Check one manifest against what synth planted: every case of cases.csv
/// listed with a verdict, ineligible cases exactly the planted ones, and
/// the QC confusion counts added to `confusion`.
fn check_manifest(m: &Manifest, out: &Path, planted: &Planted, confusion: &mut Confusion) {
    let csv = std::fs::read_to_string(site_dir(out, m.study, &m.site).join("cases.csv")).unwrap();
    assert_eq!(
        m.cases.len(),
        csv.lines().count() - 1,
        "{}: every case listed",
        m.site
    );
    let excluded: BTreeMap<String, String> = m
        .cases
        .iter()
        .filter_map(|c| match &c.eligibility {
            Eligibility::Excluded { criterion } => Some((c.case_id.clone(), criterion.clone())),
            Eligibility::Eligible => None,
        })
        .collect();
    assert_eq!(excluded, planted.ineligible, "{}: ineligible cases", m.site);
    for case in &m.cases {
        for image in &case.images {
            assert!(
                image.qc.passed || image.tiles.is_empty(),
                "{}: failed QC but tiled",
                image.path
            );
            let found = image.qc.reason.map(|r| r.as_str().to_owned());
            let truth = planted.defects.get(&image.path).cloned();
            if found == truth {
                if let Some(kind) = found {
                    confusion.entry(kind).or_default().0 += 1;
                }
                continue;
            }
            if let Some(kind) = found {
                confusion.entry(kind).or_default().1 += 1;
            }
            if let Some(kind) = truth {
                confusion.entry(kind).or_default().2 += 1;
            }
        }
        if !case.eligibility.is_eligible() {
            assert_eq!(
                case.tile_count(),
                0,
                "{}: excluded cases are not tiled",
                case.case_id
            );
        }
    }
}

fn assert_qc_catches_plants(confusion: &Confusion, planted_total: usize) {
    let found: usize = confusion.values().map(|c| c.0 + c.2).sum();
    assert_eq!(
        found, planted_total,
        "every planted defect is counted: {confusion:?}"
    );
    for (kind, &(tp, fp, fn_)) in confusion {
        let recall = tp as f64 / (tp + fn_).max(1) as f64;
        let precision = tp as f64 / (tp + fp).max(1) as f64;
        assert_eq!(recall, 1.0, "{kind}: recall {confusion:?}");
        assert!(
            precision >= 0.9,
            "{kind}: precision {precision} {confusion:?}"
        );
    }
}

/// The objects stored under an archive: exactly its shards, whose sizes
/// the manifest records and in which every tile's bytes pass their
/// CRC-32C, and its manifest.
async fn assert_stored(store: &dyn ObjectStore, m: &Manifest) {
    let listed: Vec<(String, u64)> = store
        .list(&format!("archives/{}/", m.archive_id))
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let mut expected: Vec<(String, u64)> = m
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| (shard_key(&m.archive_id, i as u32), s.bytes))
        .collect();
    let manifest_bytes = store.get(&manifest_key(&m.archive_id)).await.unwrap();
    expected.push((manifest_key(&m.archive_id), manifest_bytes.len() as u64));
    expected.sort();
    assert_eq!(listed, expected, "{}: stored shards and manifest", m.site);
    let mut shards = Vec::new();
    for (key, _) in expected.iter().filter(|(k, _)| k.ends_with(".bin")) {
        shards.push(store.get(key).await.unwrap());
    }
    for tile in m
        .cases
        .iter()
        .flat_map(|c| c.images.iter().flat_map(|i| &i.tiles))
    {
        let shard = &shards[tile.at.shard as usize];
        let bytes = &shard[tile.at.offset as usize..tile.at.end() as usize];
        assert_eq!(crc32c(bytes), tile.at.crc32c, "{}: {}", m.site, tile.name);
    }
    let stored = Manifest::parse(&manifest_bytes).unwrap();
    assert!(
        &stored == m,
        "{}: the stored manifest differs from the one returned",
        m.site
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_sites_submit_to_s3_and_a_local_folder() {
    let synth_dir = synth(42);
    let out = synth_dir.path().join("out");
    let server = S3Server::start().await.unwrap();
    let s3 = CountingStore::new(Arc::new(
        S3Store::connect(&server.config("nodal")).await.unwrap(),
    ));
    let local_dir = tempfile::tempdir().unwrap();
    let local = CountingStore::new(Arc::new(LocalStore::open(local_dir.path()).await.unwrap()));
    let mut confusion = Confusion::new();
    let mut planted_defects = 0;
    let mut manifests = Vec::new();
    for (study, site) in SITES {
        let plants = planted(&out, study, site);
        planted_defects += plants.defects.len();
        let before = s3.puts();
        let on_s3 = submit(&out, study, site, s3.clone()).await;
        assert!(on_s3.manifest.archive_id.starts_with(&format!("{site}.")));
        assert_eq!(
            s3.puts() - before,
            on_s3.summary.uploaded,
            "{site}: PUTs counted"
        );
        assert_eq!(
            on_s3.summary.uploaded,
            on_s3.manifest.shards.len() + 1,
            "{site}: shards + manifest"
        );
        check_manifest(&on_s3.manifest, &out, &plants, &mut confusion);
        assert_stored(s3.as_ref(), &on_s3.manifest).await;
        let on_disk = submit(&out, study, site, local.clone()).await;
        assert!(
            on_disk.manifest == on_s3.manifest,
            "{site}: the archives on S3 and on disk differ"
        );
        assert_stored(local.as_ref(), &on_disk.manifest).await;
        manifests.push(on_s3.manifest);
    }
    assert_qc_catches_plants(&confusion, planted_defects);
    assert!(
        planted_defects >= 6,
        "synth plants at least 3 defects per study"
    );
    // At most one object per 64 tiles under archives/, manifests aside.
    let tiles: usize = manifests
        .iter()
        .map(|m| m.cases.iter().map(|c| c.tile_count()).sum::<usize>())
        .sum();
    let shards: usize = manifests.iter().map(|m| m.shards.len()).sum();
    eprintln!(
        "scale 0.01, {} sites: {tiles} tiles in {shards} shards",
        manifests.len()
    );
    assert!(
        shards * 64 <= tiles,
        "{shards} shard objects for {tiles} tiles: more than one per 64"
    );

    // Re-submitting every site uploads nothing.
    let before = (s3.puts(), local.puts());
    for ((study, site), first) in SITES.into_iter().zip(&manifests) {
        let again = submit(&out, study, site, s3.clone()).await;
        assert!(
            again.summary.already_complete && again.summary.uploaded == 0,
            "{site}"
        );
        assert!(
            &again.manifest == first,
            "{site}: the stored manifest read back differs"
        );
        let again = submit(&out, study, site, local.clone()).await;
        assert!(again.summary.already_complete, "{site}");
    }
    assert_eq!((s3.puts(), local.puts()), before, "re-submission made PUTs");

    // An interrupted upload (the manifest and the last shard missing) resumes.
    let m = &manifests[0];
    let last = m.shards.len() as u32 - 1;
    s3.delete(&shard_key(&m.archive_id, last)).await.unwrap();
    s3.delete(&manifest_key(&m.archive_id)).await.unwrap();
    let before = s3.puts();
    let resumed = submit(&out, Study::Cytology, "cy-a", s3.clone()).await;
    assert_eq!(s3.puts() - before, 2, "the last shard and the manifest");
    assert_eq!(
        (resumed.summary.uploaded, resumed.summary.skipped),
        (2, m.shards.len() - 1)
    );
    assert!(&resumed.manifest == m, "the resumed manifest differs");
    assert_stored(s3.as_ref(), m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qc_finds_what_synth_planted_at_other_seeds() {
    for seed in [7, 2024] {
        let synth_dir = synth(seed);
        let out = synth_dir.path().join("out");
        let store_dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(LocalStore::open(store_dir.path()).await.unwrap());
        let mut confusion = Confusion::new();
        let mut planted_defects = 0;
        for (study, site) in SITES {
            let plants = planted(&out, study, site);
            planted_defects += plants.defects.len();
            let outcome = submit(&out, study, site, store.clone()).await;
            check_manifest(&outcome.manifest, &out, &plants, &mut confusion);
        }
        assert_qc_catches_plants(&confusion, planted_defects);
    }
}
