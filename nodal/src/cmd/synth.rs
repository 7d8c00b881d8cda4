//! `nodal synth`: write synthetic study archives, laid out as sites submit them.

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nodal_synth::{ImageFormat, SynthConfig, SynthSummary};
use nodal_types::study::Study;
use std::path::PathBuf;
use std::time::Instant;

/// Which studies to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StudyChoice {
    /// Tumour origin from lymph-node FNA cytology smears.
    Cytology,
    /// Lymph-node metastasis in papillary thyroid carcinoma (ultrasound + report).
    Ultrasound,
    /// Both studies.
    Both,
}

impl StudyChoice {
    fn studies(self) -> Vec<Study> {
        match self {
            StudyChoice::Cytology => vec![Study::Cytology],
            StudyChoice::Ultrasound => vec![Study::Ultrasound],
            StudyChoice::Both => Study::ALL.to_vec(),
        }
    }
}

/// The `--format` of `nodal synth`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatChoice {
    /// Baseline JPEG images.
    Jpeg,
    /// DICOM ultrasound (the cytology study stays JPEG).
    Dicom,
}

impl From<FormatChoice> for ImageFormat {
    fn from(choice: FormatChoice) -> Self {
        match choice {
            FormatChoice::Jpeg => ImageFormat::Jpeg,
            FormatChoice::Dicom => ImageFormat::Dicom,
        }
    }
}

/// Options of `nodal synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder; `cytology/`, `ultrasound/` and `synth.json` are written inside.
    #[arg(long, env = "NODAL_SYNTH_OUT")]
    pub out: PathBuf,
    /// Which study to write.
    #[arg(long, value_enum, default_value = "both")]
    pub study: StudyChoice,
    /// Fraction of the full study size (1.0 = 10,000 cytology patients + 3,200 ultrasound cases).
    #[arg(long, env = "NODAL_SYNTH_SCALE", default_value_t = 1.0)]
    pub scale: f64,
    /// Seed of every random stream; the same seed gives byte-identical files.
    #[arg(long, env = "NODAL_SYNTH_SEED", default_value_t = 42)]
    pub seed: u64,
    /// How the ultrasound images are written: `jpeg`, or `dicom` (a
    /// PACS-style cine loop with fake identifiers in the header and the
    /// burned-in banner; docs/archive-format.md).
    #[arg(long, value_enum, default_value = "jpeg")]
    pub format: FormatChoice,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `nodal synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let config = SynthConfig {
        out: args.out,
        studies: args.study.studies(),
        scale: args.scale,
        seed: args.seed,
        format: args.format.into(),
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(nodal_synth::planned_cases(&config) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} cases ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let summary = nodal_synth::generate_with_progress(&config, &|| bar.inc(1))
        .with_context(|| format!("nodal synth into {}", config.out.display()))?;
    bar.finish_and_clear();
    print!("{}", render_summary(&summary));
    println!(
        "wrote {} in {:.1} s",
        config.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The end-of-run table: cases, images, splits and planted items per site.
fn render_summary(summary: &SynthSummary) -> String {
    let mut out = format!(
        "nodal synth: seed {}, scale {}\n",
        summary.seed, summary.scale
    );
    for (study, s) in &summary.studies {
        out += &format!(
            "{study}\n  {:<6} {:>6} {:>7} {:>6} {:>6} {:>10} {:>6} {:>5} {:>8}\n",
            "site", "cases", "images", "train", "valid", "ineligible", "blank", "blur", "artefact"
        );
        for (site, c) in &s.sites {
            let d = |k: &str| c.defects.get(k).copied().unwrap_or(0);
            out += &format!(
                "  {:<6} {:>6} {:>7} {:>6} {:>6} {:>10} {:>6} {:>5} {:>8}\n",
                site,
                c.cases,
                c.images,
                c.train,
                c.validation,
                c.ineligible,
                d("blank"),
                d("blur"),
                d("artefact")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        synth: SynthArgs,
    }

    #[test]
    fn defaults_are_both_studies_full_scale_seed_42() {
        let cli = Cli::try_parse_from(["synth", "--out", "/tmp/x"]).expect("parses");
        assert_eq!(cli.synth.study.studies(), Study::ALL.to_vec());
        assert_eq!(cli.synth.scale, 1.0);
        assert_eq!(cli.synth.seed, 42);
        let cli = Cli::try_parse_from([
            "synth",
            "--out",
            "o",
            "--study",
            "ultrasound",
            "--scale",
            "0.01",
        ])
        .expect("parses");
        assert_eq!(cli.synth.study.studies(), vec![Study::Ultrasound]);
        assert!(Cli::try_parse_from(["synth", "--out", "o", "--study", "mri"]).is_err());
    }
}
