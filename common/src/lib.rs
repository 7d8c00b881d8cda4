//! nodal's I/O adapters, and nothing of the shared vocabulary (that is
//! `nodal-types`): the object store and the broker behind small traits,
//! with their adapters (local folder, S3, the coordinator's proxy;
//! in-process, RabbitMQ), retry, TLS, finding files beside the checkout,
//! and telemetry setup.

pub mod broker;
pub mod locate;
pub mod retry;
pub mod store;
pub mod telemetry;
pub mod tls;
