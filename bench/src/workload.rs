//! What `nodal bench` runs: the model (published to the store as the
//! coordinator publishes it), the archive (synthetic: `nodal synth` images
//! submitted as `nodal submit` does; or an archive already in a store), and
//! the jobs, planned as the coordinator plans runs and repeated or cut to
//! the asked number of tiles.

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use nodal_common::store::{LocalStore, SharedStore};
use nodal_coordinator::models::{publish_model_dir, publish_shipped_models, resolve_model};
use nodal_coordinator::plan::plan_run;
use nodal_submit::{Progress, SubmitOptions, submit_site};
use nodal_synth::SynthConfig;
use nodal_types::layout::manifest_key;
use nodal_types::manifest::Manifest;
use nodal_types::model_card::ModelCard;
use nodal_types::study::Study;
use nodal_types::wire::{Job, JobTile, ModelRef};
use nodal_worker::throughput;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// Distinct tiles kept in memory for the ceiling and decode measurements.
const SAMPLE_TILES: usize = 512;
/// Tiles of the warm-up job.
const WARMUP_TILES: usize = 64;
/// Store reads in flight while loading tiles or copying objects.
const CONCURRENCY: usize = 32;

/// Where the tiles come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `nodal synth` images of the model's study at this scale and seed,
    /// submitted to a local folder in `dir`.
    Synthetic {
        /// Fraction of the full study; `None`: [`default_scale`].
        scale: Option<f64>,
        /// Synth seed.
        seed: u64,
        /// Working folder (synth output and the local store).
        dir: PathBuf,
    },
    /// Archives already submitted to `store`.
    Archives {
        /// The archive ids.
        ids: Vec<String>,
        /// The store holding them.
        store: SharedStore,
    },
}

/// The model, the store, and the timed jobs.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Where the archive, the model and the tiles are.
    pub store: SharedStore,
    /// The model's card.
    pub card: ModelCard,
    /// The ONNX bytes.
    pub onnx: Vec<u8>,
    /// What jobs name.
    pub reference: ModelRef,
    /// The archives' manifests.
    pub manifests: Vec<Manifest>,
    /// The tiles of the sample, stored bytes, for the ceiling and decode rates.
    pub sample: Vec<Bytes>,
    /// A real report vector for the ceiling, for models that take one.
    pub report: Option<Vec<f32>>,
    /// Distinct tiles the planned runs read.
    pub distinct_tiles: usize,
    /// Every shard the planned runs read, by key.
    pub shards: Vec<String>,
}

/// The default synth scale: enough cases for a few hundred distinct tiles.
pub(crate) fn default_scale(study: Study) -> f64 {
    match study {
        Study::Cytology => 0.004,
        Study::Ultrasound => 0.05,
    }
}

/// Publish the model to `store` and read it back: a built-in model's name
/// (`cytology-origin`, `ptc-ln`, optionally `@version`), else a folder with
/// `card.json` and the ONNX file.
pub(crate) async fn publish_model(
    store: &SharedStore,
    spec: &str,
) -> anyhow::Result<(ModelCard, Vec<u8>, ModelRef)> {
    let resolved = if Path::new(spec).join("card.json").is_file() {
        let card = publish_model_dir(store.as_ref(), Path::new(spec)).await?;
        resolve_model(store.as_ref(), &format!("{}@{}", card.name, card.version)).await?
    } else {
        publish_shipped_models(store.as_ref()).await?;
        resolve_model(store.as_ref(), spec).await.with_context(|| {
            format!("--model {spec}: neither a built-in model nor a folder with card.json")
        })?
    };
    let onnx = store.get(&resolved.card.onnx_key()).await?.to_vec();
    Ok((resolved.card, onnx, resolved.reference))
}

/// Make or open the archive, publish the model, load the tile sample.
pub(crate) async fn prepare(source: &Source, model: &str) -> anyhow::Result<Prepared> {
    let (store, manifests, card, onnx, reference) = match source {
        Source::Synthetic { scale, seed, dir } => {
            let store: SharedStore = Arc::new(LocalStore::open(dir.join("store")).await?);
            let (card, onnx, reference) = publish_model(&store, model).await?;
            let scale = scale.unwrap_or_else(|| default_scale(card.study));
            let manifests = synthetic_archives(&store, card.study, scale, *seed, dir).await?;
            (store, manifests, card, onnx, reference)
        }
        Source::Archives { ids, store } => {
            let (card, onnx, reference) = publish_model(store, model).await?;
            let mut manifests = Vec::new();
            for id in ids {
                let key = manifest_key(id);
                let bytes = store
                    .get(&key)
                    .await
                    .with_context(|| format!("archive {id}: reading its manifest"))?;
                manifests.push(
                    Manifest::parse(&bytes)
                        .with_context(|| format!("archive {id}: {key} cannot be used"))?,
                );
            }
            (store.clone(), manifests, card, onnx, reference)
        }
    };
    let jobs = plan(&manifests, &card, &reference, None, 256)?;
    let tiles = distinct_tiles(&jobs);
    let sample = load(&store, &tiles[..tiles.len().min(SAMPLE_TILES)]).await?;
    let mut seen = HashSet::new();
    let shards: Vec<String> = tiles
        .iter()
        .filter(|t| seen.insert(t.shard_key.as_str()))
        .map(|t| t.shard_key.clone())
        .collect();
    let report = jobs
        .iter()
        .flat_map(|j| &j.cases)
        .find_map(|c| c.report.clone());
    Ok(Prepared {
        store,
        card,
        onnx,
        reference,
        manifests,
        sample,
        report,
        distinct_tiles: tiles.len(),
        shards,
    })
}

impl Prepared {
    /// The timed jobs of `tiles` tiles (all the archives' tiles when `None`)
    /// in jobs of `job_tiles`, and a warm-up job.
    pub(crate) fn workload(
        &self,
        tiles: Option<usize>,
        job_tiles: usize,
    ) -> anyhow::Result<throughput::Workload> {
        let jobs = plan(
            &self.manifests,
            &self.card,
            &self.reference,
            tiles,
            job_tiles,
        )?;
        let mut warmup = cut(jobs.clone(), WARMUP_TILES)
            .into_iter()
            .next()
            .context("no job to warm up with")?;
        warmup.job_id = Uuid::new_v4();
        Ok(throughput::Workload { warmup, jobs })
    }

    /// Mean stored size of the sampled tiles, bytes.
    pub(crate) fn mean_tile_bytes(&self) -> f64 {
        let total: usize = self.sample.iter().map(Bytes::len).sum();
        total as f64 / self.sample.len().max(1) as f64
    }
}

/// Plan the archives' runnable tiles into jobs; with `tiles`, repeat the
/// archives' cases (renamed `<case>~<k>`) as often as needed and cut the
/// plan at exactly that many tiles.
fn plan(
    manifests: &[Manifest],
    card: &ModelCard,
    reference: &ModelRef,
    tiles: Option<usize>,
    job_tiles: usize,
) -> anyhow::Result<Vec<Job>> {
    let run_id = Uuid::new_v4();
    let once = plan_run(run_id, manifests, card, reference, job_tiles)?;
    let available = once.tile_count();
    if available == 0 {
        bail!(
            "the archives have no tile the model can run on ({} left out; first: {:?})",
            once.left_out.len(),
            once.left_out.first().map(|r| &r.reason)
        );
    }
    let Some(wanted) = tiles else {
        return Ok(once.jobs);
    };
    let copies = wanted.div_ceil(available);
    let grown: Vec<Manifest> = manifests
        .iter()
        .map(|m| {
            let mut grown = m.clone();
            for k in 1..copies {
                grown.cases.extend(m.cases.iter().map(|c| {
                    let mut c = c.clone();
                    c.case_id = format!("{}~{k}", c.case_id);
                    c
                }));
            }
            grown
        })
        .collect();
    let jobs = plan_run(run_id, &grown, card, reference, job_tiles)?.jobs;
    Ok(cut(jobs, wanted))
}

/// The first `tiles` tiles of `jobs`, cutting the job (and case) that crosses it.
fn cut(jobs: Vec<Job>, tiles: usize) -> Vec<Job> {
    let mut left = tiles;
    let mut kept = Vec::new();
    for mut job in jobs {
        if left == 0 {
            break;
        }
        job.cases.retain_mut(|case| {
            case.tiles.truncate(left);
            left -= case.tiles.len();
            !case.tiles.is_empty()
        });
        kept.push(job);
    }
    kept
}

/// Every tile of `jobs`, each once, in job order.
fn distinct_tiles(jobs: &[Job]) -> Vec<JobTile> {
    let mut seen = HashSet::new();
    jobs.iter()
        .flat_map(|j| &j.cases)
        .flat_map(|c| &c.tiles)
        .filter(|t| seen.insert((t.shard_key.as_str(), t.offset)))
        .cloned()
        .collect()
}

/// Read `tiles` from their shards in `store`.
async fn load(store: &SharedStore, tiles: &[JobTile]) -> anyhow::Result<Vec<Bytes>> {
    futures::stream::iter(tiles)
        .map(|t| async move {
            store
                .get_range(&t.shard_key, t.offset, u64::from(t.length))
                .await
                .with_context(|| format!("reading {} from {}", t.name, t.shard_key))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// Copy `keys` from one store to another.
pub(crate) async fn copy(
    from: &SharedStore,
    to: &SharedStore,
    keys: &[String],
) -> anyhow::Result<()> {
    futures::stream::iter(keys)
        .map(|key| async move {
            let bytes = from.get(key).await?;
            to.put(key, bytes).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// Synthesise the study (reusing an earlier output of the same seed and
/// scale in `dir`) and submit every site to `store`; the manifests.
async fn synthetic_archives(
    store: &SharedStore,
    study: Study,
    scale: f64,
    seed: u64,
    dir: &Path,
) -> anyhow::Result<Vec<Manifest>> {
    let out = dir.join("synth");
    if !synthesised_already(&out, scale, seed) {
        if out.exists() {
            std::fs::remove_dir_all(&out)
                .with_context(|| format!("removing the old {}", out.display()))?;
        }
        let config = SynthConfig {
            out: out.clone(),
            studies: vec![study],
            scale,
            seed,
            format: nodal_synth::ImageFormat::Jpeg,
        };
        tokio::task::spawn_blocking(move || nodal_synth::generate(&config))
            .await
            .context("the synth task")??;
    }
    let study_dir = out.join(study.as_str());
    let mut sites: Vec<PathBuf> = std::fs::read_dir(&study_dir)
        .with_context(|| format!("reading {}", study_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cases.csv").is_file())
        .collect();
    sites.sort();
    let mut manifests = Vec::new();
    for site in sites {
        let name = site
            .file_name()
            .and_then(|n| n.to_str())
            .context("a site folder name")?
            .to_string();
        let options = SubmitOptions::new(study, &name, &site);
        let outcome = submit_site(&options, store.clone(), &Progress::hidden())
            .await
            .with_context(|| format!("submitting {}", site.display()))?;
        manifests.push(outcome.manifest);
    }
    Ok(manifests)
}

fn synthesised_already(out: &Path, scale: f64, seed: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(out.join("synth.json")) else {
        return false;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["seed"].as_u64() == Some(seed) && v["scale"].as_f64() == Some(scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_testkit::fixtures::{card, case, manifest, model_ref};

    #[test]
    fn plans_are_repeated_and_cut_to_the_asked_tiles() {
        let m = manifest("cy-a.0001", vec![case("a", 5, true), case("b", 3, true)]);
        let (card, reference) = (card(), model_ref());
        let all = plan(std::slice::from_ref(&m), &card, &reference, None, 4).expect("plan");
        assert_eq!(all.iter().map(Job::tile_count).sum::<usize>(), 8);
        for wanted in [1, 7, 8, 9, 30] {
            let jobs =
                plan(std::slice::from_ref(&m), &card, &reference, Some(wanted), 4).expect("plan");
            assert_eq!(jobs.iter().map(Job::tile_count).sum::<usize>(), wanted);
            let ids: HashSet<Uuid> = jobs.iter().map(|j| j.job_id).collect();
            assert_eq!(ids.len(), jobs.len(), "job ids are distinct");
            assert!(
                jobs.iter()
                    .all(|j| j.cases.iter().all(|c| !c.tiles.is_empty()))
            );
        }
        assert_eq!(
            distinct_tiles(&plan(&[m], &card, &reference, Some(30), 4).expect("plan")).len(),
            8
        );
    }

    #[test]
    fn an_archive_with_nothing_to_run_is_refused() {
        let m = manifest("cy-a.0001", vec![case("a", 5, false)]);
        let err = plan(&[m], &card(), &model_ref(), Some(10), 4).expect_err("nothing to run");
        assert!(err.to_string().contains("no tile"), "{err}");
    }
}
