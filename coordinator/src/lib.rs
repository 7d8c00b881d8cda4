//! The coordinator service: it takes runs (intake and planning), supervises
//! their jobs over the broker, collects and finalises results into the
//! result files and cohort statistics, and serves the HTTP API. [`serve`]
//! runs all of it on a bound listener; the `nodal` binary only turns flags
//! into a [`CoordinatorConfig`].

pub mod api;
pub mod auth;
pub mod leadership;
pub mod metrics;
pub mod models;
pub mod onnx_check;
pub mod output;
pub mod plan;
pub mod run;
mod service;
pub mod statistics;

pub use service::{CoordinatorConfig, serve};
