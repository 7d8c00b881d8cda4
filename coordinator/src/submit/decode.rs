//! Decoding source images (JPEG or PNG) to 8-bit RGB, strictly: a truncated
//! or corrupt file is an error, never a silently half-grey picture.

use image::RgbImage;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Largest accepted image side, pixels.
pub const MAX_SIDE: u32 = 16_384;

/// The two accepted source image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JPEG (JFIF/Exif).
    Jpeg,
    /// PNG.
    Png,
}

impl SourceFormat {
    /// The format announced by the first bytes of a file, if it is one of ours.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }

    /// `JPEG` or `PNG`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
        }
    }
}

/// Why a file could not be decoded; the text names the defect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The format and size a file's header announces, without decoding pixels.
pub fn header(bytes: &[u8]) -> Result<(SourceFormat, u32, u32), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError("the file is empty".into()));
    }
    let format = SourceFormat::sniff(bytes).ok_or_else(|| {
        let start: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        DecodeError(format!(
            "not a JPEG or PNG image (the file starts with bytes {})",
            start.join(" ")
        ))
    })?;
    let (width, height) = match format {
        SourceFormat::Jpeg => {
            let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options());
            decoder
                .decode_headers()
                .map_err(|e| DecodeError(format!("bad JPEG header: {e}")))?;
            let info = decoder
                .info()
                .ok_or_else(|| DecodeError("bad JPEG header: no frame header".into()))?;
            (u32::from(info.width), u32::from(info.height))
        }
        SourceFormat::Png => {
            let reader = image::ImageReader::with_format(
                std::io::Cursor::new(bytes),
                image::ImageFormat::Png,
            );
            reader
                .into_dimensions()
                .map_err(|e| DecodeError(format!("bad PNG header: {e}")))?
        }
    };
    check_size(width, height)?;
    Ok((format, width, height))
}

/// Decode a whole JPEG or PNG file to RGB. Alpha is dropped, grey is
/// expanded, 16-bit samples are reduced to 8 bits.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let (format, width, height) = header(bytes)?;
    let image = match format {
        SourceFormat::Jpeg => decode_jpeg(bytes, width, height)?,
        SourceFormat::Png => decode_png(bytes)?,
    };
    if image.dimensions() != (width, height) {
        return Err(DecodeError(format!(
            "the {} header says {width}×{height} but {}×{} pixels were decoded",
            format.name(),
            image.width(),
            image.height()
        )));
    }
    Ok(image)
}

fn options() -> DecoderOptions {
    DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_strict_mode(true)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize)
}

fn check_size(width: u32, height: u32) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError(format!("the image is {width}×{height} pixels")));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(DecodeError(format!(
            "the image is {width}×{height} pixels, larger than the {MAX_SIDE}-pixel limit"
        )));
    }
    Ok(())
}

fn decode_jpeg(bytes: &[u8], width: u32, height: u32) -> Result<RgbImage, DecodeError> {
    if !ends_with_eoi(bytes) {
        return Err(DecodeError(
            "truncated JPEG: the end-of-image marker (FF D9) is missing".into(),
        ));
    }
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options());
    let pixels = decoder
        .decode()
        .map_err(|e| DecodeError(format!("corrupt JPEG: {e}")))?;
    RgbImage::from_raw(width, height, pixels).ok_or_else(|| {
        DecodeError(format!(
            "corrupt JPEG: decoded data does not fill {width}×{height} RGB pixels"
        ))
    })
}

/// A JPEG ends with FF D9, possibly followed by zero padding.
fn ends_with_eoi(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xFF, 0xD9])
}

fn decode_png(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    if !bytes.ends_with(&IEND) {
        return Err(DecodeError(
            "truncated PNG: the file does not end with an IEND chunk".into(),
        ));
    }
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| DecodeError(format!("corrupt PNG: {e}")))?;
    Ok(image.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb};
    use std::io::Cursor;

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_jpeg_and_png() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let img = decode_rgb(&encoded(format)).unwrap();
            assert_eq!(img.dimensions(), (64, 48), "{format:?}");
            let px = img.get_pixel(40, 20);
            assert!((i32::from(px[0]) - 160).abs() < 12, "{format:?} {px:?}");
        }
    }

    #[test]
    fn truncated_files_are_errors_naming_the_defect() {
        for (format, says) in [
            (ImageFormat::Jpeg, "truncated JPEG"),
            (ImageFormat::Png, "truncated PNG"),
        ] {
            let bytes = encoded(format);
            let err = decode_rgb(&bytes[..bytes.len() * 2 / 3]).unwrap_err();
            assert!(err.0.contains(says), "{format:?}: {err}");
        }
    }

    #[test]
    fn corrupt_jpeg_header_is_an_error() {
        let mut bytes = encoded(ImageFormat::Jpeg);
        bytes[2..60].fill(0);
        assert!(
            decode_rgb(&bytes)
                .unwrap_err()
                .0
                .starts_with("bad JPEG header")
        );
        bytes.truncate(3);
        assert!(decode_rgb(&bytes).is_err());
    }

    #[test]
    fn other_formats_and_empty_files_are_refused() {
        assert!(
            decode_rgb(b"GIF89a....")
                .unwrap_err()
                .0
                .contains("not a JPEG or PNG")
        );
        assert!(decode_rgb(b"").unwrap_err().0.contains("empty"));
        assert!(
            decode_rgb(b"hello, world")
                .unwrap_err()
                .0
                .contains("68 65 6c 6c")
        );
    }
}
