//! Throughput measurement, shared by `nodal bench` and the worker's
//! `throughput` benchmark so both report the same figures the same way:
//!
//! - the inference ceiling `c` ([`inference_ceiling`]): `Model::run` on
//!   ready batches of pre-decoded tiles;
//! - the decode rate `d` ([`decode_rate`]): decode + normalise, alone, on
//!   the decode threads;
//! - end to end ([`end_to_end`]): the real [`crate::run_worker`] over a
//!   store and a broker, from the jobs' publish to their last result, with
//!   per-stage totals ([`StageSnapshot`]) and the process's memory
//!   ([`MemoryUse`]).
//!
//! Each figure is a [`Throughput`]: tiles over wall time and over the
//! process's CPU time, since on a shared machine the wall-clock rates depend
//! on the share of the cores the process got.
//!
//! On a CPU decoding and inference share the cores, so the best the
//! pipeline can reach is [`shared_core_limit`] `1 / (1/c + 1/d)`.

mod cpu;
mod drive;
mod memory;
mod rates;
mod stages;

pub use cpu::{Stopwatch, Throughput, process_cpu_time};
pub use drive::{EndToEnd, Workload, end_to_end};
pub use memory::{MemoryUse, peak_rss_bytes, reset_peak_rss, rss_bytes};
pub use rates::{decode_rate, inference_ceiling};
pub use stages::{StageSnapshot, StageTotals};

use crate::error::WorkerError;
use nodal_common::broker::BrokerError;
use nodal_types::wire::WireError;

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ThroughputError {
    /// Loading or running the model, or a worker, failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// Publishing jobs or reading results failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A job could not be encoded or a result decoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The measurement cannot go on (no tiles, results stopped coming, …).
    #[error("{0}")]
    Stalled(String),
}

/// The best end-to-end rate when decoding (`decode`, tiles/s) and inference
/// (`ceiling`, tiles/s) share the same cores: each tile costs the time of
/// both, `1 / (1/ceiling + 1/decode)`. Zero when either rate is.
pub fn shared_core_limit(ceiling: f64, decode: f64) -> f64 {
    if ceiling <= 0.0 || decode <= 0.0 {
        return 0.0;
    }
    1.0 / (1.0 / ceiling + 1.0 / decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_core_limit_adds_the_costs_per_tile() {
        assert!((shared_core_limit(1000.0, 1000.0) - 500.0).abs() < 1e-9);
        assert!((shared_core_limit(3000.0, 1500.0) - 1000.0).abs() < 1e-9);
        assert_eq!(shared_core_limit(0.0, 10.0), 0.0);
    }
}
