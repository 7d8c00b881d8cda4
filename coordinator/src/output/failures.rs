//! failures.csv: every case, image or tile a run left out, with the reason.

use serde::Serialize;

/// How much a failure row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureLevel {
    /// The whole case is missing from predictions.csv.
    Case,
    /// One image of the case was left out (the case may still be predicted).
    Image,
    /// One tile was left out (the case may still be predicted).
    Tile,
}

/// Where in the way through nodal the item was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStage {
    /// The case fails the study's eligibility criteria.
    Eligibility,
    /// The image failed image QC at submission.
    Qc,
    /// No usable tile was left for the case.
    NoTiles,
    /// The structured report could not be encoded for the model.
    Report,
    /// The tile could not be fetched from the store.
    Fetch,
    /// The tile could not be decoded.
    Decode,
    /// Inference failed.
    Infer,
    /// The job holding the case never produced a result.
    Job,
    /// The run was cancelled before the case was predicted.
    Cancelled,
}

impl FailureStage {
    /// The name written in failures.csv.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureStage::Eligibility => "eligibility",
            FailureStage::Qc => "qc",
            FailureStage::NoTiles => "no_tiles",
            FailureStage::Report => "report",
            FailureStage::Fetch => "fetch",
            FailureStage::Decode => "decode",
            FailureStage::Infer => "infer",
            FailureStage::Job => "job",
            FailureStage::Cancelled => "cancelled",
        }
    }
}

/// One row of failures.csv.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FailureRow {
    /// The archive.
    pub archive_id: String,
    /// The submitting site.
    pub site: String,
    /// The case.
    pub case_id: String,
    /// Case, image or tile.
    pub level: FailureLevel,
    /// The image path or tile key; empty for a case row.
    pub item: String,
    /// The stage that left it out.
    pub stage: FailureStage,
    /// Why.
    pub reason: String,
}

/// Render failures.csv (header always present, rows in the given order).
pub fn to_csv(rows: &[FailureRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record([
        "archive_id",
        "site",
        "case_id",
        "level",
        "item",
        "stage",
        "reason",
    ])?;
    for row in rows {
        w.serialize(row)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_header_and_quotes_reasons() {
        let rows = vec![FailureRow {
            archive_id: "cy-a.0123".into(),
            site: "cy-a".into(),
            case_id: "C1".into(),
            level: FailureLevel::Tile,
            item: "archives/x/tiles/C1/0-0-0.jpg".into(),
            stage: FailureStage::Decode,
            reason: "truncated, 12 bytes".into(),
        }];
        let text = String::from_utf8(to_csv(&rows).unwrap()).unwrap();
        assert_eq!(
            text,
            "archive_id,site,case_id,level,item,stage,reason\n\
             cy-a.0123,cy-a,C1,tile,archives/x/tiles/C1/0-0-0.jpg,decode,\"truncated, 12 bytes\"\n"
        );
    }
}
