//! The end-of-submission summary: counts from the manifest plus what the
//! upload did, and its table.

use nodal_types::manifest::{Eligibility, Manifest, QcReason};
use nodal_types::study::Study;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Counts of one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The study.
    pub study: Study,
    /// The submitting site.
    pub site: String,
    /// The archive id.
    pub archive_id: String,
    /// Cases in `cases.csv`.
    pub cases: usize,
    /// Cases meeting every criterion.
    pub eligible: usize,
    /// Excluded cases by the criterion that excluded them.
    pub excluded: BTreeMap<String, usize>,
    /// Eligible cases with at least one tile.
    pub runnable: usize,
    /// Images of all cases.
    pub images: usize,
    /// Images that passed QC.
    pub qc_passed: usize,
    /// Images that failed QC, by reason.
    pub qc_failed: BTreeMap<QcReason, usize>,
    /// Tiles of the archive.
    pub tiles: usize,
    /// Bytes of the archive's tiles.
    pub tile_bytes: u64,
    /// Shard objects holding the tiles.
    pub shards: usize,
    /// Bytes of the source files read.
    pub source_bytes: u64,
    /// Objects written by this submission (tiles and manifest).
    pub uploaded: usize,
    /// Bytes written by this submission.
    pub uploaded_bytes: u64,
    /// Shards found already stored and not written again.
    pub skipped: usize,
    /// True when the complete archive was already stored.
    pub already_complete: bool,
}

impl Summary {
    /// The counts of `manifest`, with the store figures left at zero.
    pub fn of(manifest: &Manifest) -> Self {
        let mut excluded = BTreeMap::new();
        let mut qc_failed = BTreeMap::new();
        let (mut images, mut qc_passed) = (0, 0);
        for case in &manifest.cases {
            if let Eligibility::Excluded { criterion } = &case.eligibility {
                *excluded.entry(criterion.clone()).or_insert(0) += 1;
            }
            for image in &case.images {
                images += 1;
                match image.qc.reason {
                    None => qc_passed += 1,
                    Some(reason) => *qc_failed.entry(reason).or_insert(0) += 1,
                }
            }
        }
        Self {
            study: manifest.study,
            site: manifest.site.clone(),
            archive_id: manifest.archive_id.clone(),
            cases: manifest.cases.len(),
            eligible: manifest
                .cases
                .iter()
                .filter(|c| c.eligibility.is_eligible())
                .count(),
            excluded,
            runnable: manifest.runnable_cases().count(),
            images,
            qc_passed,
            qc_failed,
            tiles: manifest.cases.iter().map(|c| c.tile_count()).sum(),
            tile_bytes: 0,
            shards: manifest.shards.len(),
            source_bytes: manifest.source_files.iter().map(|f| f.bytes).sum(),
            uploaded: 0,
            uploaded_bytes: 0,
            skipped: 0,
            already_complete: false,
        }
    }

    /// The table printed at the end of `nodal submit`.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(t, "  {label:<34} {value:>12}");
        };
        row("cases", self.cases.to_string());
        row("  eligible", self.eligible.to_string());
        for criterion in self.study.eligibility_criteria() {
            let n = self.excluded.get(*criterion).copied().unwrap_or(0);
            row(&format!("  excluded: {criterion}"), n.to_string());
        }
        for (criterion, n) in &self.excluded {
            if !self
                .study
                .eligibility_criteria()
                .contains(&criterion.as_str())
            {
                row(&format!("  excluded: {criterion}"), n.to_string());
            }
        }
        row("  eligible with tiles", self.runnable.to_string());
        row("images", self.images.to_string());
        row("  passed QC", self.qc_passed.to_string());
        for reason in QcReason::ALL {
            let n = self.qc_failed.get(&reason).copied().unwrap_or(0);
            if n == 0 && reason == QcReason::BurnedInAnnotation {
                continue;
            }
            row(&format!("  QC failed: {}", reason.as_str()), n.to_string());
        }
        row("tiles", self.tiles.to_string());
        row("tile bytes", self.tile_bytes.to_string());
        row("shards", self.shards.to_string());
        row("source bytes", self.source_bytes.to_string());
        row("objects uploaded", self.uploaded.to_string());
        row("bytes uploaded", self.uploaded_bytes.to_string());
        row("shards already stored", self.skipped.to_string());
        let state = if self.already_complete {
            "already complete: nothing uploaded"
        } else {
            "complete"
        };
        format!(
            "nodal submit: {} study, site {}\n  {:<34} {:>12}\n{t}  archive {state}\n",
            self.study, self.site, "archive", self.archive_id
        )
    }
}
