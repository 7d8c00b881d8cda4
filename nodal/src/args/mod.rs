//! The flag groups more than one subcommand takes, each declared once and
//! flattened where it is needed; defaults come from the libraries' constants.

mod broker;
mod client;
mod pipeline;
mod runtime;
mod store;
mod token;

pub use broker::BrokerArgs;
pub use client::ClientArgs;
pub use pipeline::PipelineArgs;
pub use runtime::{DeviceArg, RuntimeArgs};
pub use store::StoreArgs;
pub use token::TokenArgs;
