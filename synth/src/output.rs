//! Writing files: JPEG images, CSV tables, JSON documents.

use crate::SynthError;
use image::RgbImage;
use serde::Serialize;
use std::path::Path;

/// JPEG quality of the synthetic images (what scanners and PACS exports use).
const JPEG_QUALITY: u8 = 90;

/// Create a folder and its parents.
pub(crate) fn create_dir(path: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(path).map_err(|source| SynthError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Write bytes to a file, creating its folder.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    std::fs::write(path, bytes).map_err(|source| SynthError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Encode an image as baseline JPEG and write it.
pub(crate) fn write_jpeg(path: &Path, img: &RgbImage) -> Result<(), SynthError> {
    write_bytes(path, &encode_jpeg(path, img)?)
}

/// Encode an image as baseline JPEG (`path` names it in errors).
pub(crate) fn encode_jpeg(path: &Path, img: &RgbImage) -> Result<Vec<u8>, SynthError> {
    let mut buf = Vec::with_capacity(img.len() / 6);
    let (Ok(w), Ok(h)) = (u16::try_from(img.width()), u16::try_from(img.height())) else {
        return Err(SynthError::Io {
            path: path.to_owned(),
            source: std::io::Error::other("image too large for JPEG"),
        });
    };
    jpeg_encoder::Encoder::new(&mut buf, JPEG_QUALITY)
        .encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|source| SynthError::Image {
            path: path.to_owned(),
            source,
        })?;
    Ok(buf)
}

/// Write rows as a CSV file with a header row taken from the row type's fields.
pub(crate) fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), SynthError> {
    let csv_err = |source| SynthError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| SynthError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_bytes(path, &bytes)
}

/// Write a value as pretty JSON with a final newline.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| SynthError::Json {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    write_bytes(path, &bytes)
}

/// Round to `digits` decimals (for tidy numbers in CSV and JSON).
pub(crate) fn round_to(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
