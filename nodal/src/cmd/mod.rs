//! One module per subcommand: its flags, turned into the libraries' config,
//! and the call that runs it.

pub mod analyze;
pub mod bench;
pub mod client;
pub mod coordinator;
pub mod demo;
pub mod submit;
pub mod synth;
pub mod token;
pub mod worker;
