//! nodal's coordinator side: site submissions, run planning, result
//! collection and aggregation, cohort statistics, the HTTP API, and the
//! `nodal` command line that serves every role from one binary.

pub mod analyze_cmd;
pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client_cmd;
pub mod coordinator_cmd;
pub mod demo;
pub mod metrics;
pub mod models;
pub mod onnx_check;
pub mod output;
pub mod plan;
pub mod run;
pub mod signals;
pub mod stats_hook;
pub mod store_proxy;
pub mod submit;
pub mod synth_cmd;
#[cfg(test)]
mod test_support;
pub mod token_cmd;
pub mod worker_cmd;
