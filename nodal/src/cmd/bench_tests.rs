//! `nodal bench --tiles 256 --json` in embedded mode, for both shipped
//! models: the JSON has every field, with sane values. No timing
//! thresholds: only that the figures exist, are positive and add up.

use crate::cli::{Cli, Command};
use clap::Parser;
use serde_json::Value;

/// Parse `nodal bench <flags>` and run it; the JSON it prints.
async fn bench_json(flags: &[&str]) -> Value {
    let argv = ["nodal", "bench", "--json"].iter().chain(flags);
    let Command::Bench(args) = Cli::try_parse_from(argv).expect("flags parse").command else {
        panic!("not the bench command");
    };
    assert!(args.json);
    let report = nodal_bench::measure(&nodal_bench::BenchConfig::from(&*args))
        .await
        .expect("the bench runs");
    let text = serde_json::to_string_pretty(&report).expect("report serialises");
    serde_json::from_str(&text).expect("the output is JSON")
}

fn number(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for part in path.split('.') {
        at = &at[part];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is a number, got {at}"))
}

fn positive(v: &Value, path: &str) -> f64 {
    let x = number(v, path);
    assert!(x.is_finite() && x > 0.0, "{path} = {x}");
    x
}

fn check(v: &Value, model: &str, tiles: f64) {
    for field in [
        "nodal_version",
        "machine",
        "model",
        "device",
        "settings",
        "workload",
        "ceiling",
        "decode",
        "limit",
        "embedded",
        "distributed",
        "memory",
    ] {
        assert!(v.get(field).is_some(), "field {field} missing: {v}");
    }
    assert_eq!(v["model"]["name"], model);
    assert_eq!(v["device"], "cpu");
    assert!(v["distributed"].is_null() && v["memory"].is_null());
    positive(v, "machine.cores");
    for i in 0..3 {
        assert!(
            v["machine"]["load_average_start"][i]
                .as_f64()
                .is_some_and(|l| l >= 0.0)
        );
    }
    assert_eq!(number(v, "settings.batch_size"), 64.0);
    assert_eq!(number(v, "workload.tiles"), tiles);
    assert_eq!(v["workload"]["source"], "synthetic");
    positive(v, "workload.distinct_tiles");
    positive(v, "workload.mean_tile_bytes");
    assert!(
        !v["workload"]["archives"]
            .as_array()
            .expect("archives")
            .is_empty()
    );

    let c = positive(v, "ceiling.tiles_per_s");
    let d = positive(v, "decode.tiles_per_s");
    let limit = positive(v, "limit.tiles_per_s");
    assert!((limit - 1.0 / (1.0 / c + 1.0 / d)).abs() < 1e-6 * limit);
    assert_eq!(v["limit"]["formula"], "1/(1/c+1/d)");
    positive(v, "limit.tiles_per_cpu_s");
    positive(v, "ceiling.tiles_per_cpu_s");
    positive(v, "decode.cores_busy");

    let e = &v["embedded"];
    let rate = positive(e, "tiles_per_s");
    assert!((number(e, "ratio_to_limit") - rate / limit).abs() < 1e-9);
    positive(e, "tiles_per_cpu_s");
    positive(e, "cpu_ratio_to_limit");
    positive(e, "cores_busy");
    assert_eq!(number(e, "tiles_ok"), tiles);
    assert_eq!(number(e, "tiles_failed"), 0.0, "{}", e["first_failure"]);
    assert_eq!(e["broker"], "memory://");
    let fill = positive(e, "batch_fill");
    assert!(fill <= 1.0, "batch fill {fill}");
    let batches = positive(e, "batches");
    let mean = positive(e, "mean_batch_tiles");
    assert!((batches * mean - tiles).abs() < 1e-6 && mean <= 64.0);
    assert!(number(e, "infer_busy") > 0.0);
    // A job's tiles are a few ranged reads of a shard.
    let reads = number(e, "stages.fetch.count");
    assert_eq!(number(e, "shard_reads"), reads);
    assert!(
        reads >= 1.0 && reads <= tiles / 2.0,
        "{reads} reads for {tiles} tiles"
    );
    assert!((number(e, "tiles_per_read") - tiles / reads).abs() < 1e-9);
    positive(e, "stages.fetch.total_s");
    for stage in ["decode", "queue_wait"] {
        assert_eq!(
            number(e, &format!("stages.{stage}.count")),
            tiles,
            "{stage}"
        );
        assert!(number(e, &format!("stages.{stage}.total_s")) >= 0.0);
    }
    assert_eq!(number(e, "stages.infer.count"), batches);
    positive(e, "stages.infer.mean_ms");
    assert_eq!(
        number(e, "stages.publish.count"),
        number(v, "workload.jobs")
    );
    let peak = positive(e, "memory.peak_rss_bytes");
    positive(e, "memory.rss_before_bytes");
    let warm = positive(e, "memory.rss_after_warmup_bytes");
    if e["memory"]["peak_reset"] == true {
        assert!(peak >= number(e, "memory.rss_end_bytes"));
        assert_eq!(number(e, "memory.growth_bytes"), (peak - warm).max(0.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_json_has_every_figure_for_cytology() {
    let flags = [
        "--tiles",
        "256",
        "--rounds",
        "1",
        "--window-secs",
        "0.3",
        "--synth-scale",
        "0.002",
    ];
    let v = bench_json(&flags).await;
    check(&v, "cytology-origin", 256.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_json_has_every_figure_for_the_multimodal_model() {
    let flags = [
        "--model",
        "ptc-ln",
        "--tiles",
        "256",
        "--rounds",
        "1",
        "--window-secs",
        "0.3",
        "--synth-scale",
        "0.02",
    ];
    let v = bench_json(&flags).await;
    check(&v, "ptc-ln", 256.0);
}
