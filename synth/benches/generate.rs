//! Throughput of `nodal synth`: cases per second for each study at a tiny
//! scale (every image rendered and JPEG-encoded). Full scale is 10,000
//! cytology + 3,200 ultrasound cases; multiply to estimate its time.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodal_synth::{SynthConfig, generate, study_cases};
use nodal_types::study::Study;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("synth");
    group.sample_size(10);
    for (study, scale) in [(Study::Cytology, 0.002), (Study::Ultrasound, 0.005)] {
        group.throughput(Throughput::Elements(study_cases(study, scale) as u64));
        group.bench_function(format!("{study} cases"), |b| {
            b.iter(|| {
                let dir = tempfile::tempdir().expect("tempdir");
                let config = SynthConfig {
                    out: dir.path().to_path_buf(),
                    studies: vec![study],
                    scale,
                    seed: 1,
                    format: nodal_synth::ImageFormat::Jpeg,
                };
                generate(&config).expect("synth runs")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
