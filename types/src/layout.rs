//! The bucket layout, nodal's system of record: every object key a site, a
//! coordinator or a worker writes or reads is built here, and every key
//! listed back is parsed here, so the layout has one owner.
//!
//! ```text
//! archives/<site>.<hash>/manifest.json              an archive's manifest
//! archives/<site>.<hash>/shards/<n>.bin               a shard of tiles (the manifest says where each lies)
//! models/<name>/<version>/card.json                 a model card
//! models/<name>/<version>/<onnx file>               its ONNX file
//! runs/<run>/spec.json                              a run's spec (the run exists once it does)
//! runs/<run>/published.json                         every job of the run was published once
//! runs/<run>/cancelled.json                         an operator cancelled the run
//! runs/<run>/parts/<job>.bin                        one job's stored result
//! runs/<run>/<file>                                 a result file; run.json is written last
//! coordinator/lease.json                            the leading coordinator's fencing epoch
//! ```

use crate::archive_id::ArchiveId;
use uuid::Uuid;

/// Prefix of every archive.
pub const ARCHIVES: &str = "archives/";
/// Prefix of every model.
pub const MODELS: &str = "models/";
/// Prefix of every run.
pub const RUNS: &str = "runs/";
/// File name of an archive's manifest.
const MANIFEST: &str = "manifest.json";
/// File name of a model card.
const CARD: &str = "card.json";
/// File name of a run's spec.
const SPEC: &str = "spec.json";
/// File name of a finished run's provenance record, written last.
pub const RUN_RECORD: &str = "run.json";
/// File name of the marker that every job of a run was published once.
const PUBLISHED: &str = "published.json";
/// File name of the marker that an operator cancelled a run.
const CANCELLED: &str = "cancelled.json";
/// Object key of the leading coordinator's fencing epoch.
pub const LEASE_RECORD: &str = "coordinator/lease.json";

/// Object key of an archive's manifest: `archives/<archive_id>/manifest.json`.
pub fn manifest_key(archive_id: &str) -> String {
    format!("{ARCHIVES}{archive_id}/{MANIFEST}")
}

/// The archive id of a manifest key (the inverse of [`manifest_key`]).
pub fn parse_manifest_key(key: &str) -> Option<&str> {
    key.strip_prefix(ARCHIVES)?
        .strip_suffix(MANIFEST)?
        .strip_suffix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Object key prefix under which an archive's shards live.
pub fn shards_prefix(archive_id: &str) -> String {
    format!("{ARCHIVES}{archive_id}/shards/")
}

/// Object key of shard `index` of an archive: `archives/<archive_id>/shards/<index>.bin`,
/// the index zero-padded to 6 digits so that keys sort in shard order.
pub fn shard_key(archive_id: &str, index: u32) -> String {
    format!("{}{index:06}.bin", shards_prefix(archive_id))
}

/// The key prefix of one site's archives: `archives/<site>.` (site names
/// hold no dots, so no other site's archives share it).
pub fn site_archives_prefix(site: &str) -> String {
    format!("{ARCHIVES}{site}.")
}

/// The site whose archives hold `key` (`archives/<site>.…`), if any.
pub fn site_of_key(key: &str) -> Option<&str> {
    let (id, _) = key
        .strip_prefix(ARCHIVES)?
        .split_once('/')
        .unwrap_or((key.strip_prefix(ARCHIVES)?, ""));
    ArchiveId::site_of(id)
}

/// Prefix of every version of a model: `models/<name>/`.
pub fn model_versions_prefix(name: &str) -> String {
    format!("{MODELS}{name}/")
}

/// Object key of a model version's folder in the store (`models/<name>/<version>/`).
pub fn model_prefix(name: &str, version: &str) -> String {
    format!("{}{version}/", model_versions_prefix(name))
}

/// Object key of a model version's `card.json`.
pub fn card_key(name: &str, version: &str) -> String {
    format!("{}{CARD}", model_prefix(name, version))
}

/// Object key of a file of a model version (its ONNX file).
pub fn model_file_key(name: &str, version: &str, file: &str) -> String {
    format!("{}{file}", model_prefix(name, version))
}

/// The model name and version of a card key (the inverse of [`card_key`]).
pub fn parse_card_key(key: &str) -> Option<(&str, &str)> {
    let (name, version) = key
        .strip_prefix(MODELS)?
        .strip_suffix(CARD)?
        .strip_suffix('/')?
        .split_once('/')?;
    let segment = |s: &str| !s.is_empty() && !s.contains('/');
    (segment(name) && segment(version)).then_some((name, version))
}

/// Prefix of one run's objects: `runs/<run_id>/`.
pub fn run_prefix(run_id: Uuid) -> String {
    format!("{RUNS}{run_id}/")
}

/// Object key of a run's spec (written at creation; the run exists once it is).
pub fn spec_key(run_id: Uuid) -> String {
    run_file_key(run_id, SPEC)
}

/// Object key of the marker that every job of a run was published once
/// (a resumed run then publishes only what stalls).
pub fn published_key(run_id: Uuid) -> String {
    run_file_key(run_id, PUBLISHED)
}

/// Object key of the marker that an operator cancelled a run: workers drop
/// its jobs unrun, and a coordinator resuming it finalizes it as cancelled.
pub fn cancelled_key(run_id: Uuid) -> String {
    run_file_key(run_id, CANCELLED)
}

/// Object key prefix of a run's stored job results.
pub fn parts_prefix(run_id: Uuid) -> String {
    format!("{}parts/", run_prefix(run_id))
}

/// Object key of one job's stored result.
pub fn part_key(run_id: Uuid, job_id: Uuid) -> String {
    format!("{}{job_id}.bin", parts_prefix(run_id))
}

/// The job of a part key of run `run_id` (the inverse of [`part_key`]).
pub fn parse_part_key(run_id: Uuid, key: &str) -> Option<Uuid> {
    let job = key
        .strip_prefix(&parts_prefix(run_id))?
        .strip_suffix(".bin")?;
    Uuid::parse_str(job).ok()
}

/// Object key of one of a run's result files (`predictions.csv`, `run.json`, …).
pub fn run_file_key(run_id: Uuid, name: &str) -> String {
    format!("{}{name}", run_prefix(run_id))
}

/// Object key of a finished run's provenance record, `run.json`.
pub fn run_record_key(run_id: Uuid) -> String {
    run_file_key(run_id, RUN_RECORD)
}

/// What a listed key under [`RUNS`] is, for the objects that say what state
/// a run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunObject {
    /// `runs/<run>/spec.json`: the run was created.
    Spec(Uuid),
    /// `runs/<run>/run.json`: the run finished.
    Record(Uuid),
}

/// The run object `key` is, or `None` for any other key (parts, result
/// files, keys that are not nodal's).
pub fn parse_run_key(key: &str) -> Option<RunObject> {
    let (run, file) = key.strip_prefix(RUNS)?.split_once('/')?;
    let run = Uuid::parse_str(run).ok()?;
    match file {
        SPEC => Some(RunObject::Spec(run)),
        RUN_RECORD => Some(RunObject::Record(run)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "cy-a.0123456789abcdef";

    #[test]
    fn archive_keys_round_trip() {
        let key = manifest_key(ID);
        assert_eq!(key, "archives/cy-a.0123456789abcdef/manifest.json");
        assert_eq!(parse_manifest_key(&key), Some(ID));
        for other in [
            "archives/cy-a.0123456789abcdef/shards/000000.bin",
            "archives//manifest.json",
            "archives/a/b/manifest.json",
            "archives/cy-a.0123456789abcdefmanifest.json",
            "runs/x/manifest.json",
        ] {
            assert_eq!(parse_manifest_key(other), None, "{other}");
        }
        assert_eq!(
            shard_key(ID, 12),
            "archives/cy-a.0123456789abcdef/shards/000012.bin"
        );
        assert!(shard_key(ID, 0).starts_with(&shards_prefix(ID)));
        assert!(shard_key(ID, 9) < shard_key(ID, 10));
    }

    #[test]
    fn a_key_belongs_to_the_site_of_its_archive() {
        assert_eq!(site_of_key(&manifest_key(ID)), Some("cy-a"));
        assert_eq!(site_of_key(&shard_key(ID, 0)), Some("cy-a"));
        assert_eq!(site_of_key("archives/cy-a."), Some("cy-a"));
        for none in [
            "archives/",
            "archives/cy-a",
            "archives/.x/m",
            "runs/x/run.json",
        ] {
            assert_eq!(site_of_key(none), None, "{none}");
        }
        assert!(manifest_key(ID).starts_with(&site_archives_prefix("cy-a")));
        assert!(!manifest_key(ID).starts_with(&site_archives_prefix("cy")));
    }

    #[test]
    fn model_keys_round_trip() {
        let key = card_key("ptc-ln", "1.1.0");
        assert_eq!(key, "models/ptc-ln/1.1.0/card.json");
        assert_eq!(parse_card_key(&key), Some(("ptc-ln", "1.1.0")));
        for other in [
            "models/ptc-ln/1.1.0/model.onnx",
            "models/ptc-ln/a/b/card.json",
            "models/ptc-ln/card.json",
            "models//1/card.json",
            "runs/ptc-ln/1/card.json",
        ] {
            assert_eq!(parse_card_key(other), None, "{other}");
        }
        assert_eq!(
            model_file_key("ptc-ln", "1.1.0", "model.onnx"),
            "models/ptc-ln/1.1.0/model.onnx"
        );
        assert!(key.starts_with(&model_versions_prefix("ptc-ln")));
    }

    #[test]
    fn run_keys_round_trip() {
        let run = Uuid::from_u128(7);
        let job = Uuid::from_u128(9);
        assert_eq!(parse_run_key(&spec_key(run)), Some(RunObject::Spec(run)));
        assert_eq!(
            parse_run_key(&run_record_key(run)),
            Some(RunObject::Record(run))
        );
        assert_eq!(parse_run_key(&run_file_key(run, "metrics.json")), None);
        assert_eq!(parse_run_key(&part_key(run, job)), None);
        assert_eq!(parse_run_key("runs/not-a-uuid/spec.json"), None);
        assert_eq!(parse_part_key(run, &part_key(run, job)), Some(job));
        assert_eq!(parse_part_key(job, &part_key(run, job)), None);
        assert_eq!(
            parse_part_key(run, &format!("{}x.bin", parts_prefix(run))),
            None
        );
        assert!(part_key(run, job).starts_with(&run_prefix(run)));
    }
}
