//! Progress bars for the stages of a submission (scan, QC, tiling, upload),
//! drawn on the terminal or hidden (tests, `nodal demo`).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where a submission's progress goes.
#[derive(Debug, Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars drawn on standard error.
    pub fn visible() -> Self {
        Self {
            bars: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// No bars at all.
    pub fn hidden() -> Self {
        Self { bars: None }
    }

    /// A bar for a stage of `len` steps counted in `unit`.
    pub fn stage(&self, name: &str, len: u64, unit: &str) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let template =
            format!("{name:>8} [{{bar:36}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})");
        let bar = bars.add(ProgressBar::new(len));
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}
