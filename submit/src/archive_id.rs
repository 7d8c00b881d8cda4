//! The deterministic archive id: the same folder submitted with the same
//! settings always gets the same id ([`ArchiveId`]: `<site>.<16 hex>`).

use nodal_types::archive_id::{ArchiveId, ArchiveIdError};
use nodal_types::manifest::{CasesTable, QcThresholds, SourceFile, TileFormat, TileMode, TileSpec};
use nodal_types::study::Study;
use sha2::{Digest, Sha256};

/// Version of what `submit` computes from the files (validation,
/// eligibility, QC measures, tiling and tile encoding). Bump it whenever a
/// change would alter a manifest or a tile, so that old archives are not
/// mistaken for new ones.
pub const PIPELINE_VERSION: u32 = 2;

/// `<site>.<first 16 hex of sha256>` over the study, site, tiling spec
/// (with its codec), QC thresholds, [`PIPELINE_VERSION`], how the case table
/// was read and every source file's path and hash (sorted by path).
pub fn archive_id(
    study: Study,
    site: &str,
    tiling: &TileSpec,
    thresholds: &QcThresholds,
    table: &CasesTable,
    files: &[SourceFile],
) -> Result<ArchiveId, ArchiveIdError> {
    let mut text = format!(
        "nodal-archive-id\npipeline={PIPELINE_VERSION}\nstudy={study}\nsite={site}\ntiling={},{},{}\ncodec={}\nqc={},{},{}\n",
        tiling.size,
        match tiling.mode {
            TileMode::Grid => "grid",
            TileMode::Whole => "whole",
        },
        match tiling.format {
            TileFormat::Jpeg => "jpeg",
            TileFormat::Png => "png",
        },
        tiling.codec,
        thresholds.min_coverage,
        thresholds.min_laplacian_var,
        thresholds.max_artefact_fraction
    );
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    text += &format!(
        "table={},{},{},{}\n",
        table.file,
        or_dash(&table.encoding),
        or_dash(&table.delimiter),
        or_dash(&table.sheet)
    );
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for f in sorted {
        text += &format!("file {} {}\n", f.sha256, f.path);
    }
    ArchiveId::from_digest(site, &hex::encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{qc, tiling};

    fn id_of(
        study: Study,
        site: &str,
        tiling: &TileSpec,
        thresholds: &QcThresholds,
        table: &CasesTable,
        files: &[SourceFile],
    ) -> String {
        archive_id(study, site, tiling, thresholds, table, files)
            .expect("a valid site")
            .to_string()
    }

    fn file(path: &str, sha: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            sha256: sha.into(),
            bytes: 1,
        }
    }

    #[test]
    fn id_depends_on_content_and_settings_not_file_order() {
        let t = qc::default_thresholds(Study::Cytology);
        let spec = tiling::tile_spec(Study::Cytology);
        let table = CasesTable {
            file: "cases.csv".into(),
            encoding: Some("UTF-8".into()),
            delimiter: Some(",".into()),
            sheet: None,
        };
        let files = [file("cases.csv", "aa"), file("images/1.jpg", "bb")];
        let id = id_of(Study::Cytology, "cy-a", &spec, &t, &table, &files);
        assert!(id.starts_with("cy-a.") && id.len() == 5 + 16, "{id}");
        let reversed = [files[1].clone(), files[0].clone()];
        assert_eq!(
            id_of(Study::Cytology, "cy-a", &spec, &t, &table, &reversed),
            id
        );
        let changed = [file("cases.csv", "aa"), file("images/1.jpg", "bc")];
        assert_ne!(
            id_of(Study::Cytology, "cy-a", &spec, &t, &table, &changed),
            id
        );
        let stricter = QcThresholds {
            min_coverage: 0.5,
            ..t.clone()
        };
        assert_ne!(
            id_of(Study::Cytology, "cy-a", &spec, &stricter, &table, &files),
            id
        );
        assert_ne!(
            id_of(Study::Cytology, "cy-b", &spec, &t, &table, &files)[5..],
            id[5..]
        );
        assert_ne!(
            id_of(Study::Ultrasound, "cy-a", &spec, &t, &table, &files),
            id
        );
        let gbk = CasesTable {
            encoding: Some("GBK".into()),
            ..table.clone()
        };
        assert_ne!(id_of(Study::Cytology, "cy-a", &spec, &t, &gbk, &files), id);
        let mut other_codec = spec.clone();
        other_codec.codec.version = "2.1.5".into();
        assert_ne!(
            id_of(Study::Cytology, "cy-a", &other_codec, &t, &table, &files),
            id,
            "tiles of another codec are another archive"
        );
    }
}
