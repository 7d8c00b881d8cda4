//! Writing metrics.json and report.html: everything is rendered first, each
//! file goes to a temporary name in the same folder and is renamed into
//! place, so a failure never leaves a half-written result.

use crate::error::StatsError;
use crate::metrics::Metrics;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the metrics.
pub const METRICS_FILE: &str = "metrics.json";
/// File name of the report.
pub const REPORT_FILE: &str = "report.html";

/// Writes `dir/metrics.json` and, when given, `dir/report.html` atomically
/// (temporary file + rename), creating `dir` if needed. Returns the paths written.
pub fn write_results(
    dir: &Path,
    metrics: &Metrics,
    report_html: Option<&str>,
) -> Result<Vec<PathBuf>, StatsError> {
    let json = metrics.to_json()?;
    let mut files = vec![(METRICS_FILE, json.as_str())];
    if let Some(html) = report_html {
        files.push((REPORT_FILE, html));
    }
    std::fs::create_dir_all(dir).map_err(|err| StatsError::Write {
        path: dir.to_path_buf(),
        err,
    })?;
    let mut staged = Vec::new();
    for (name, content) in files {
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        if let Err(e) = write_synced(&temp, content) {
            for (t, _) in &staged {
                // Best effort: the temporaries are hidden and named by process.
                let _ = std::fs::remove_file(t);
            }
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        staged.push((temp, dir.join(name)));
    }
    for (temp, target) in &staged {
        std::fs::rename(temp, target).map_err(|err| StatsError::Write {
            path: target.clone(),
            err,
        })?;
    }
    Ok(staged.into_iter().map(|(_, target)| target).collect())
}

fn write_synced(path: &Path, content: &str) -> Result<(), StatsError> {
    let err = |err| StatsError::Write {
        path: path.to_path_buf(),
        err,
    };
    let mut file = std::fs::File::create(path).map_err(err)?;
    file.write_all(content.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}
