//! docs/cli.md is generated from the clap definitions, so the configuration
//! reference (every subcommand, flag, environment variable and default)
//! cannot drift from the binary. Regenerate with
//! `NODAL_UPDATE_DOCS=1 cargo test --release --workspace --test cli_reference`.

use clap::{Arg, Command, CommandFactory};
use nodal::cli::Cli;
use std::fmt::Write;
use std::path::PathBuf;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn flag(arg: &Arg) -> String {
    match (arg.get_long(), arg.get_value_names()) {
        (Some(long), Some(names)) if arg.get_num_args().is_none_or(|n| n.takes_values()) => {
            format!("`--{long} <{}>`", names.join(" "))
        }
        (Some(long), _) => format!("`--{long}`"),
        (None, Some(names)) => format!("`<{}>`", names.join(" ")),
        (None, None) => format!("`<{}>`", arg.get_id()),
    }
}

fn render(out: &mut String, cmd: &Command, path: &str) {
    let _ = writeln!(out, "## `{path}`\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version")
        .collect();
    if !args.is_empty() {
        out.push_str("| flag | environment | default | meaning |\n|---|---|---|---|\n");
        for a in args {
            let env = a
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let default: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = if default.is_empty() {
                String::new()
            } else {
                format!("`{}`", default.join(","))
            };
            let help = a
                .get_long_help()
                .or(a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            let aliases: String = a
                .get_all_aliases()
                .unwrap_or_default()
                .iter()
                .map(|alias| format!(" (alias `--{alias}`)"))
                .collect();
            let _ = writeln!(
                out,
                "| {}{aliases} | {env} | {default} | {} |",
                flag(a),
                cell(&help)
            );
        }
        out.push('\n');
    }
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        render(out, sub, &format!("{path} {}", sub.get_name()));
    }
}

#[test]
fn docs_cli_md_matches_the_command_line() {
    let mut generated = String::from(
        "<!-- generated from the clap definitions by nodal/tests/cli_reference.rs; do not edit -->\n\n\
         # Command-line and environment reference\n\n\
         Every flag can also be set through the environment variable shown. Flags of\n\
         `nodal` itself (`--log-json`) apply to every subcommand; `RUST_LOG` sets the\n\
         log filter (default `info` for services, `warn` for interactive commands).\n\n\
         Each flag is declared once and means the same in every subcommand that takes\n\
         it. Renamed flags keep their old name as an alias: `--workers` of `nodal bench`\n\
         and `nodal demo` is `--pipelines` (as in `nodal worker`), and `--grace-period`\n\
         is `--grace-period-secs`. `nodal demo --ort-dylib` reads `NODAL_ORT_DYLIB`\n\
         like the other commands; `ORT_DYLIB_PATH` is still honoured when neither is set.\n\n",
    );
    let mut cli = Cli::command();
    cli.build();
    render(&mut generated, &cli, "nodal");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
    if std::env::var_os("NODAL_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/cli.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/cli.md is out of date: run NODAL_UPDATE_DOCS=1 cargo test --release --workspace --test cli_reference"
    );
}
