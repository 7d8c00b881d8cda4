//! One module per subcommand: its flags, turned into the libraries' config,
//! and the call that runs it.

pub mod analyze;
pub mod bench;
pub mod client;
pub mod coordinator;
pub mod demo;
pub mod model;
pub mod model_card;
pub mod run;
pub mod submit;
pub mod synth;
pub mod token;
pub mod worker;

use crate::args::{BrokerArgs, StoreArgs};
use anyhow::Context;
use nodal_common::broker::SharedBroker;
use nodal_common::store::SharedStore;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// What a service subcommand runs on: its store, its broker, and its
/// listener bound to `listen`; an error names which could not be had.
pub(crate) async fn service_io(
    store: &StoreArgs,
    broker: &BrokerArgs,
    listen: SocketAddr,
) -> anyhow::Result<(SharedStore, SharedBroker, TcpListener)> {
    let store = store.open().await.context("opening the object store")?;
    let broker = broker.connect().await.context("connecting to the broker")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    Ok((store, broker, listener))
}

/// `<hostname>-<pid>`: a service process's default name in results, the
/// coordinator lease and logs.
pub(crate) fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "nodal".into());
    format!("{host}-{}", std::process::id())
}
