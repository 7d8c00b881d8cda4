//! The result files a finished run writes: predictions.csv, failures.csv
//! and run.json (metrics.json and report.html come from nodal-stats).

pub mod failures;
pub mod predictions;
pub mod provenance;
