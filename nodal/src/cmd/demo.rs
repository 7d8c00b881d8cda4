//! `nodal demo`: the whole system on one machine with nothing to set up.
//!
//! Synthesises both studies, submits every site to a local-folder store,
//! and runs the real coordinator engine and the real worker pipeline (as
//! many workers as cores) over an in-process broker, then prints the
//! headline table and where the result files are. Many machines use
//! RabbitMQ and S3 instead (`nodal coordinator` / `nodal worker`); the code
//! is the same, only the adapters differ.

use crate::args::{PipelineArgs, RuntimeArgs};
use anyhow::{Context, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use nodal_common::broker::{MemoryBroker, QueueNames, SharedBroker};
use nodal_common::store::{LocalStore, SharedStore};
use nodal_coordinator::leadership::Fence;
use nodal_coordinator::metrics::CoordinatorMetrics;
use nodal_coordinator::run::engine::{Engine, EngineConfig};
use nodal_coordinator::run::{RESULT_FILES, RunRequest, RunState, RunStatus};
use nodal_submit::{Progress, SubmitOptions, submit_site};
use nodal_synth::SynthConfig;
use nodal_types::layout::run_file_key;
use nodal_types::study::Study;
use nodal_worker::{Health, Runtime, WorkerDeps, WorkerMetrics, run_worker};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Options of `nodal demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Fraction of the full study sizes to synthesise (1.0 = 10,000 cytology + 3,200 ultrasound cases).
    #[arg(long, default_value_t = 0.05)]
    pub scale: f64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Folder for the synthetic archives, the local object store and the results.
    #[arg(long, default_value = "nodal-demo")]
    pub out: PathBuf,
    /// ONNX Runtime (the intra-op threads are shared out among the pipelines).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The worker pipelines [default here: one per core].
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `nodal demo`.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let archives_dir = args.out.join("archives");
    let results_dir = args.out.join("results");
    step(&format!(
        "synthesising both studies at scale {} (seed {}) into {}",
        args.scale,
        args.seed,
        archives_dir.display()
    ));
    synthesise(&archives_dir, args.scale, args.seed, args.quiet).await?;

    let store: SharedStore = Arc::new(LocalStore::open(args.out.join("store")).await?);
    nodal_coordinator::models::publish_shipped_models(store.as_ref()).await?;
    step("submitting every site (validate, eligibility, QC, tiling, upload)");
    let mut archives: Vec<(Study, String)> = Vec::new();
    for study in Study::ALL {
        for site in site_dirs(&archives_dir.join(study.as_str()))? {
            let name = site
                .file_name()
                .and_then(|n| n.to_str())
                .context("site folder name")?
                .to_string();
            let options = SubmitOptions::new(study, &name, &site);
            let progress = if args.quiet {
                Progress::hidden()
            } else {
                Progress::visible()
            };
            let outcome = submit_site(&options, store.clone(), &progress)
                .await
                .with_context(|| format!("submitting {}", site.display()))?;
            archives.push((study, outcome.manifest.archive_id.clone()));
        }
    }

    step("running both models through the coordinator and workers (in-process broker)");
    let shutdown = CancellationToken::new();
    let broker: SharedBroker = Arc::new(MemoryBroker::new(QueueNames::default(), 5));
    let registry = prometheus::Registry::new();
    let fence = Fence::take(store.clone(), "nodal-demo").await?;
    let engine = Engine::start(
        store.clone(),
        broker.clone(),
        EngineConfig::default(),
        CoordinatorMetrics::register(&registry)?,
        fence,
        shutdown.clone(),
    )
    .await?;
    let pipelines = args
        .pipeline
        .pipelines
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = Arc::new(Runtime::init(args.runtime.config(pipelines))?);
    let deps = WorkerDeps {
        store: store.clone(),
        broker: broker.clone(),
        runtime,
        metrics: WorkerMetrics::register(&registry)?,
        health: Health::default(),
    };
    let mut worker_tasks = Vec::new();
    for i in 0..pipelines {
        let config = args.pipeline.worker_config(format!("demo-worker-{i}"));
        worker_tasks.push(tokio::spawn(run_worker(
            config,
            deps.clone(),
            shutdown.clone(),
        )));
    }

    let mut runs = Vec::new();
    for study in Study::ALL {
        let request = RunRequest {
            archives: archives
                .iter()
                .filter(|(s, _)| *s == study)
                .map(|(_, a)| a.clone())
                .collect(),
            model: study.default_model().to_string(),
            job_tiles: None,
            label: Some(format!("nodal demo, {study}")),
        };
        runs.push((study, engine.create_run(request).await?));
    }
    let finished = follow_runs(&engine, &runs, args.quiet).await?;
    shutdown.cancel();
    for task in worker_tasks {
        task.await.context("worker task")??;
    }
    engine.stopped().await;

    let mut report_paths = Vec::new();
    for (study, status) in &finished {
        if let RunState::Failed { reason } = &status.state {
            bail!("the {study} run failed: {reason}");
        }
        let dir = results_dir.join(study.as_str());
        for name in RESULT_FILES {
            match store.get(&run_file_key(status.run_id, name)).await {
                Ok(bytes) => crate::cmd::client::write_atomically(&dir.join(name), &bytes).await?,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        report_paths.push(dir.join("report.html"));
    }
    println!();
    for (study, _) in &finished {
        let dir = results_dir.join(study.as_str());
        print!("{}", headline(*study, &dir)?);
    }
    println!(
        "\nfinished in {:.0} s; result files:",
        started.elapsed().as_secs_f64()
    );
    for (study, _) in &finished {
        println!("  {}/", results_dir.join(study.as_str()).display());
    }
    for path in report_paths {
        println!("report: {}", path.display());
    }
    Ok(())
}

fn step(message: &str) {
    eprintln!("==> {message}");
}

/// Synthesise into `dir`, reusing an earlier output of the same seed and scale.
async fn synthesise(dir: &Path, scale: f64, seed: u64, quiet: bool) -> anyhow::Result<()> {
    let summary = dir.join("synth.json");
    if let Ok(text) = tokio::fs::read_to_string(&summary).await {
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        if v["seed"].as_u64() == Some(seed) && v["scale"].as_f64() == Some(scale) {
            step("  (reusing the archives already there)");
            return Ok(());
        }
    }
    if tokio::fs::try_exists(dir).await? {
        tokio::fs::remove_dir_all(dir)
            .await
            .with_context(|| format!("removing the old {}", dir.display()))?;
    }
    let config = SynthConfig {
        out: dir.to_path_buf(),
        studies: Study::ALL.to_vec(),
        scale,
        seed,
        format: nodal_synth::ImageFormat::Jpeg,
    };
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(nodal_synth::planned_cases(&config) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("    synth [{bar:40}] {pos}/{len} cases ({eta})")?
            .progress_chars("=> "),
    );
    let b = bar.clone();
    tokio::task::spawn_blocking(move || nodal_synth::generate_with_progress(&config, &|| b.inc(1)))
        .await
        .context("synth task")??;
    bar.finish_and_clear();
    Ok(())
}

/// The site folders of a study folder, sorted.
fn site_dirs(study_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(study_dir)
        .with_context(|| format!("reading {}", study_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cases.csv").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Show a progress bar per run until every run has finished or failed.
async fn follow_runs(
    engine: &Engine,
    runs: &[(Study, RunStatus)],
    quiet: bool,
) -> anyhow::Result<Vec<(Study, RunStatus)>> {
    let multi = MultiProgress::new();
    if quiet {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "    {msg:<11} [{bar:40}] {pos}/{len} tiles ({per_sec}, {eta})",
    )?
    .progress_chars("=> ");
    let bars: Vec<ProgressBar> = runs
        .iter()
        .map(|(study, s)| {
            let bar = multi.add(ProgressBar::new(s.tiles_total as u64));
            bar.set_style(style.clone());
            bar.set_message(study.as_str());
            bar
        })
        .collect();
    loop {
        let mut done = Vec::new();
        for ((study, s), bar) in runs.iter().zip(&bars) {
            let status = engine.run_status(s.run_id).await?;
            bar.set_position(status.tiles_done + status.tiles_failed);
            if status.state.is_ended() {
                bar.finish();
                done.push((*study, status));
            }
        }
        if done.len() == runs.len() {
            return Ok(done);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The headline table of one study, from its validation-split metrics.
fn headline(study: Study, dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("validation/metrics.json");
    let path = if path.is_file() {
        path
    } else {
        dir.join("metrics.json")
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let m: Value = serde_json::from_str(&text)?;
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<34} {v}\n"));
    match study {
        Study::Ultrasound => {
            out.push_str("\nPTC lymph-node metastasis (ptc-ln), validation split\n");
            line(
                &mut out,
                "cases (labelled)",
                format!("{} ({} positive)", m["n"], m["n_positive"]),
            );
            line(&mut out, "metastasis rate", interval(&m["prevalence"]));
            line(&mut out, "AUC (DeLong 95 % CI)", interval(&m["auc"]));
            let origin = match m["threshold_source"].as_str() {
                Some("training_split") => "threshold (Youden, training split)",
                Some("model_card") => "threshold (the model card's)",
                _ => "threshold (Youden, these cases)",
            };
            line(&mut out, origin, number(&m["threshold"]));
            line(&mut out, "sensitivity", interval(&m["sensitivity"]));
            line(&mut out, "specificity", interval(&m["specificity"]));
            if let Some(sites) = m["per_site"].as_object() {
                for (site, s) in sites {
                    line(
                        &mut out,
                        &format!("AUC at {site}"),
                        format!("{} (n = {})", interval(&s["auc"]), s["n"]),
                    );
                }
            }
            let components = [
                ("stage_agreement", "stage group (derived), quadratic kappa"),
                ("t_agreement", "pT, quadratic kappa"),
                ("n_agreement", "pN, quadratic kappa"),
            ];
            for (key, what) in components {
                let block = &m[key];
                if block["kappa_quadratic_interval"].is_object() {
                    line(&mut out, what, interval(&block["kappa_quadratic_interval"]));
                } else if block["kappa_quadratic"].is_number() {
                    line(&mut out, what, number(&block["kappa_quadratic"]));
                }
            }
        }
        Study::Cytology => {
            out.push_str("\nTumour origin from cytology (cytology-origin), validation split\n");
            line(&mut out, "cases (labelled)", m["n"].to_string());
            line(&mut out, "top-1 accuracy", interval(&m["top1_accuracy"]));
            line(&mut out, "top-3 accuracy", interval(&m["top3_accuracy"]));
            line(&mut out, "macro AUC (one-vs-rest)", number(&m["macro_auc"]));
            if let Some(sites) = m["per_site"].as_object() {
                for (site, s) in sites {
                    line(
                        &mut out,
                        &format!("top-1 at {site}"),
                        format!("{} (n = {})", interval(&s["top1_accuracy"]), s["n"]),
                    );
                }
            }
            if let Some(readers) = m["readers"].as_object() {
                for (name, r) in readers {
                    line(
                        &mut out,
                        &format!("{name} vs model (n = {})", r["n"]),
                        format!(
                            "{} vs {} (McNemar p = {})",
                            number(&r["accuracy"]["estimate"]),
                            number(&r["model_accuracy"]["estimate"]),
                            number(&r["mcnemar_p"])
                        ),
                    );
                }
            }
        }
    }
    Ok(out)
}

fn number(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "n/a".to_string(), |x| format!("{x:.3}"))
}

fn interval(v: &Value) -> String {
    match (
        v["estimate"].as_f64(),
        v["ci_low"].as_f64(),
        v["ci_high"].as_f64(),
    ) {
        (Some(e), Some(l), Some(h)) => format!("{e:.3} ({l:.3}–{h:.3})"),
        (Some(e), _, _) => format!("{e:.3}"),
        _ => "n/a".into(),
    }
}
