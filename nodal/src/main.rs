//! The `nodal` binary: one executable for every role.

fn main() -> std::process::ExitCode {
    nodal::cli::main()
}
