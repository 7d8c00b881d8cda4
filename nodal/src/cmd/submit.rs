//! `nodal submit`: validate, QC, tile and upload one site's archive
//! (docs/submission.md); the work is `nodal_submit`'s.

use crate::args::StoreArgs;
use anyhow::Context;
use clap::Args;
use nodal_submit::pixel_budget::DEFAULT_DECODE_MEMORY_MIB;
use nodal_submit::table::{Delimiter, TableOptions, parse_encoding};
use nodal_submit::{
    DEFAULT_SHARD_MIB, DEFAULT_UPLOAD_CONCURRENCY, Progress, SubmitOptions, qc, submit_site,
};
use nodal_types::manifest::QcThresholds;
use nodal_types::study::Study;
use std::path::PathBuf;

/// Options of `nodal submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The study the site's archive belongs to: `cytology` or `ultrasound`.
    #[arg(long)]
    pub study: Study,
    /// The submitting site: 1–32 of a–z, 0–9 and '-' (e.g. `cy-a`).
    #[arg(long)]
    pub site: String,
    /// The site folder: `cases.csv` (or `cases.xlsx`) and the files it names.
    pub dir: PathBuf,
    /// Text encoding of `cases.csv` (e.g. `utf-8`, `gb18030`, `gbk`,
    /// `utf-16le`); default: its byte-order mark, else UTF-8 when valid,
    /// else GB18030.
    #[arg(long, value_parser = parse_encoding)]
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Field delimiter of `cases.csv`: `comma`, `semicolon` or `tab`;
    /// default: the one its header uses most.
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<Delimiter>,
    /// Sheet of `cases.xlsx` to read; default: the first.
    #[arg(long)]
    pub sheet: Option<String>,
    /// Most memory, in MiB, that images decoded at once may take (an image
    /// larger than this is decoded alone).
    #[arg(long, env = "NODAL_DECODE_MEMORY_MIB", default_value_t = DEFAULT_DECODE_MEMORY_MIB)]
    pub decode_memory_mib: u64,
    /// Where the archive goes.
    #[command(flatten)]
    pub store: StoreArgs,
    /// QC: an image with a smaller fraction of tissue/echo pixels is blank
    /// (default: cytology 0.01, ultrasound 0.10).
    #[arg(long)]
    pub min_coverage: Option<f64>,
    /// QC: an image whose variance of the Laplacian is lower is out of focus
    /// (default: cytology 60, ultrasound 100).
    #[arg(long)]
    pub min_laplacian_var: Option<f64>,
    /// QC: an image with a larger fraction of artefact pixels is rejected
    /// (default: cytology 0.05, ultrasound 0.10).
    #[arg(long)]
    pub max_artefact_fraction: Option<f64>,
    /// Most shard uploads in flight.
    #[arg(long, env = "NODAL_UPLOAD_CONCURRENCY", default_value_t = DEFAULT_UPLOAD_CONCURRENCY)]
    pub upload_concurrency: usize,
    /// Size at which a shard of tiles is closed, MiB; fractions allowed
    /// (a case's tiles stay in one shard unless the case alone is larger).
    #[arg(long, env = "NODAL_SHARD_MIB", default_value_t = DEFAULT_SHARD_MIB as f64)]
    pub shard_mib: f64,
    /// Do not draw progress bars.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_delimiter(name: &str) -> Result<Delimiter, String> {
    name.parse()
}

impl From<&SubmitArgs> for SubmitOptions {
    fn from(args: &SubmitArgs) -> Self {
        let defaults = qc::default_thresholds(args.study);
        SubmitOptions {
            thresholds: QcThresholds {
                min_coverage: args.min_coverage.unwrap_or(defaults.min_coverage),
                min_laplacian_var: args.min_laplacian_var.unwrap_or(defaults.min_laplacian_var),
                max_artefact_fraction: args
                    .max_artefact_fraction
                    .unwrap_or(defaults.max_artefact_fraction),
            },
            upload_concurrency: args.upload_concurrency,
            // A negative or NaN size becomes 0, which the options check refuses.
            shard_bytes: (args.shard_mib * f64::from(1u32 << 20)) as u64,
            table: TableOptions {
                encoding: args.encoding,
                delimiter: args.delimiter,
                sheet: args.sheet.clone(),
            },
            decode_memory: args.decode_memory_mib.saturating_mul(1 << 20),
            ..SubmitOptions::new(args.study, &args.site, &args.dir)
        }
    }
}

/// Run `nodal submit`.
pub async fn run(args: SubmitArgs) -> anyhow::Result<()> {
    let options = SubmitOptions::from(&args);
    let store = args
        .store
        .open()
        .await
        .with_context(|| format!("opening the store {}", args.store.store))?;
    let progress = if args.quiet {
        Progress::hidden()
    } else {
        Progress::visible()
    };
    let outcome = submit_site(&options, store, &progress).await?;
    if !outcome.unlisted.is_empty() {
        const SHOWN: usize = 20;
        eprintln!(
            "warning: {} file(s) in {} are not named by cases.csv and were ignored:",
            outcome.unlisted.len(),
            options.dir.display()
        );
        for path in outcome.unlisted.iter().take(SHOWN) {
            eprintln!("  {path}");
        }
        if outcome.unlisted.len() > SHOWN {
            eprintln!("  … and {} more", outcome.unlisted.len() - SHOWN);
        }
    }
    if let Some(table) = &outcome.manifest.cases_table
        && options.table.encoding.is_none()
        && table.encoding.as_deref().is_some_and(|e| e != "UTF-8")
    {
        eprintln!(
            "note: {} is not UTF-8: it was read as {} (give --encoding to choose another)",
            table.file,
            table.encoding.as_deref().unwrap_or_default()
        );
    }
    print!("{}", outcome.summary.table());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SubmitArgs,
    }

    fn parse(extra: &[&str]) -> Result<SubmitArgs, clap::Error> {
        let argv = ["submit", "--study", "ultrasound", "--site", "us-x"]
            .iter()
            .chain(extra)
            .chain(&["dir"]);
        Cli::try_parse_from(argv).map(|cli| cli.args)
    }

    #[test]
    fn flags_become_the_submit_options() {
        let args = parse(&[
            "--min-coverage",
            "0.2",
            "--upload-concurrency",
            "2",
            "--delimiter",
            "semicolon",
            "--encoding",
            "gbk",
            "--decode-memory-mib",
            "64",
            "--shard-mib",
            "0.25",
        ])
        .expect("parses");
        let options = SubmitOptions::from(&args);
        let defaults = qc::default_thresholds(Study::Ultrasound);
        assert_eq!(options.thresholds.min_coverage, 0.2);
        assert_eq!(
            options.thresholds.min_laplacian_var,
            defaults.min_laplacian_var
        );
        assert_eq!(options.upload_concurrency, 2);
        assert_eq!(options.table.delimiter, Some(Delimiter::Semicolon));
        assert_eq!(options.table.encoding.map(|e| e.name()), Some("GBK"));
        assert_eq!(options.decode_memory, 64 << 20);
        assert_eq!(options.shard_bytes, 256 << 10);
        assert_eq!(
            (options.site.as_str(), options.dir.as_path()),
            ("us-x", std::path::Path::new("dir"))
        );
        let plain = SubmitOptions::from(&parse(&[]).expect("parses"));
        assert_eq!(
            plain,
            SubmitOptions::new(Study::Ultrasound, "us-x", "dir"),
            "the defaults are the library's"
        );
    }

    #[test]
    fn bad_flags_are_refused_by_name() {
        assert!(Cli::try_parse_from(["submit", "--study", "xray", "--site", "a", "dir"]).is_err());
        let err = parse(&["--delimiter", "pipe"]).unwrap_err().to_string();
        assert!(err.contains("pipe") && err.contains("semicolon"), "{err}");
    }
}
