//! nodal's end-to-end and fault suites, one test binary: real RabbitMQ, a
//! real S3 server (s3s-fs), real ONNX models and real `nodal` processes.
//! One binary links the workspace once instead of once per suite, and lets
//! the suites share one synthetic cohort ([`cluster::shared_synth`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_access;
mod api_conformance;
mod bad_input;
mod broker_suite;
mod cancel;
mod cluster;
mod dicom_e2e;
mod dicom_samples;
mod e2e_run;
mod fault_broker;
mod fault_coordinator;
mod fault_process;
mod fault_store;
mod python_parity;
mod soak;
mod store_suite;
mod submit_e2e;
mod tls;
mod worker_rabbit_s3;
