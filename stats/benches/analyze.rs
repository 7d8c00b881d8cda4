//! The speed target: a 10,000-case, 8-class predictions file with a
//! 2,000-replicate bootstrap (parse + metrics + bootstrap + report).

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use nodal_stats::{AnalyzeOptions, ReportInput, Task, analyze, parse_predictions, render_report};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

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

/// A realistic 10,000-case multi-class predictions.csv (4 sites, 2 readers).
fn predictions_csv(cases: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut csv = String::from("case_id,site,label");
    for c in CLASSES {
        csv.push_str(&format!(",score_{c}"));
    }
    csv.push_str(",reader_a,reader_b\n");
    for i in 0..cases {
        let truth = rng.random_range(0..CLASSES.len());
        let mut w: Vec<f64> = (0..CLASSES.len()).map(|_| rng.random::<f64>()).collect();
        w[truth] += 2.0 * rng.random::<f64>();
        let total: f64 = w.iter().sum();
        let site = ["H1", "H2", "H3", "H4"][i % 4];
        csv.push_str(&format!("FNA-{i:05},{site},{}", CLASSES[truth]));
        for v in &w {
            csv.push_str(&format!(",{:.6}", v / total));
        }
        let call = |rng: &mut ChaCha8Rng| {
            if rng.random::<f64>() < 0.75 {
                CLASSES[truth]
            } else {
                CLASSES[rng.random_range(0..8)]
            }
        };
        let (a, b) = (call(&mut rng), call(&mut rng));
        csv.push_str(&format!(",{a},{b}\n"));
    }
    csv
}

fn bench(c: &mut Criterion) {
    let csv = predictions_csv(10_000);
    let options = AnalyzeOptions {
        bootstrap: 2000,
        seed: 1,
        ..Default::default()
    };
    let mut group = c.benchmark_group("multiclass_10k");
    group.sample_size(10);
    group.bench_function("parse", |b| {
        b.iter(|| parse_predictions("bench", black_box(csv.as_bytes()), Task::Multiclass))
    });
    let predictions =
        parse_predictions("bench", csv.as_bytes(), Task::Multiclass).expect("valid bench input");
    group.bench_function("metrics_no_bootstrap", |b| {
        b.iter(|| analyze(black_box(&predictions), &AnalyzeOptions::default()))
    });
    group.bench_function("metrics_bootstrap_2000", |b| {
        b.iter(|| analyze(black_box(&predictions), &options))
    });
    let metrics = analyze(&predictions, &options).expect("metrics");
    group.bench_function("report", |b| {
        b.iter(|| {
            let input = ReportInput {
                metrics: &metrics,
                predictions: &predictions,
                title: None,
                subset: None,
                flow: None,
                provenance: None,
            };
            render_report(black_box(&input))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
