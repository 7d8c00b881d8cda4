//! Site names and the deterministic archive id: the same folder submitted
//! with the same settings always gets the same id.

use nodal_common::manifest::{
    CasesTable, QcThresholds, SourceFile, TileFormat, TileMode, TileSpec,
};
use nodal_common::study::Study;
use sha2::{Digest, Sha256};

/// Version of what `submit` computes from the files (validation,
/// eligibility, QC measures, tiling and tile encoding). Bump it whenever a
/// change would alter a manifest or a tile, so that old archives are not
/// mistaken for new ones.
pub const PIPELINE_VERSION: u32 = 2;

/// Why `site` is not a usable site name (`[a-z0-9][a-z0-9-]{0,31}`), or `None`.
pub fn site_problem(site: &str) -> Option<String> {
    let mut chars = site.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && site.len() <= 32 {
        None
    } else {
        Some(format!(
            "site name {site:?} is not usable: 1–32 characters of a–z, 0–9 and '-', not starting with '-'"
        ))
    }
}

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
) -> String {
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
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!("{site}.{}", &digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submit::{qc, tiling};

    fn file(path: &str, sha: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            sha256: sha.into(),
            bytes: 1,
        }
    }

    #[test]
    fn site_names() {
        for ok in ["cy-a", "0", "site-42", &"a".repeat(32)] {
            assert_eq!(site_problem(ok), None, "{ok}");
        }
        for bad in ["", "-a", "Cy-a", "cy_a", "cy.a", &"a".repeat(33)] {
            assert!(site_problem(bad).is_some(), "{bad}");
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
        let id = archive_id(Study::Cytology, "cy-a", &spec, &t, &table, &files);
        assert!(id.starts_with("cy-a.") && id.len() == 5 + 16, "{id}");
        let reversed = [files[1].clone(), files[0].clone()];
        assert_eq!(
            archive_id(Study::Cytology, "cy-a", &spec, &t, &table, &reversed),
            id
        );
        let changed = [file("cases.csv", "aa"), file("images/1.jpg", "bc")];
        assert_ne!(
            archive_id(Study::Cytology, "cy-a", &spec, &t, &table, &changed),
            id
        );
        let stricter = QcThresholds {
            min_coverage: 0.5,
            ..t.clone()
        };
        assert_ne!(
            archive_id(Study::Cytology, "cy-a", &spec, &stricter, &table, &files),
            id
        );
        assert_ne!(
            archive_id(Study::Cytology, "cy-b", &spec, &t, &table, &files)[5..],
            id[5..]
        );
        assert_ne!(
            archive_id(Study::Ultrasound, "cy-a", &spec, &t, &table, &files),
            id
        );
        let gbk = CasesTable {
            encoding: Some("GBK".into()),
            ..table.clone()
        };
        assert_ne!(
            archive_id(Study::Cytology, "cy-a", &spec, &t, &gbk, &files),
            id
        );
        let mut other_codec = spec.clone();
        other_codec.codec.version = "2.1.5".into();
        assert_ne!(
            archive_id(Study::Cytology, "cy-a", &other_codec, &t, &table, &files),
            id,
            "tiles of another codec are another archive"
        );
    }
}
