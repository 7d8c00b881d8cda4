//! The `nodal` command line: flag groups declared once ([`args`]), one
//! module per subcommand ([`cmd`]) turning its flags into the libraries'
//! config, and [`cli::main`], which the binary calls.

pub mod args;
pub mod cli;
pub mod cmd;
mod signals;
