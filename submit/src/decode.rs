//! Decoding source images (JPEG, PNG or DICOM ultrasound, [`super::dicom`]) to 8-bit RGB, strictly: a truncated
//! or corrupt file is an error, never a silently half-grey picture. The
//! image's EXIF orientation is applied, so that QC and tiling see the
//! picture as a viewer shows it.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};
use nodal_types::manifest::DicomInfo;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Largest accepted image side, pixels.
pub const MAX_SIDE: u32 = 16_384;

/// The accepted source image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JPEG (JFIF/Exif).
    Jpeg,
    /// PNG.
    Png,
    /// DICOM Part 10 ultrasound.
    Dicom,
}

impl SourceFormat {
    /// The format announced by the first bytes of a file, if it is one of ours.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if super::dicom::is_dicom(bytes) {
            Some(Self::Dicom)
        } else {
            None
        }
    }

    /// `JPEG`, `PNG` or `DICOM`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Dicom => "DICOM",
        }
    }
}

/// Why a file could not be decoded; the text names the defect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// What a file's header announces, without decoding pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageHeader {
    /// JPEG, PNG or DICOM.
    pub format: SourceFormat,
    /// Width of the stored pixels.
    pub width: u32,
    /// Height of the stored pixels.
    pub height: u32,
    /// The EXIF orientation tag (1–8; 1 when absent or invalid, and for DICOM).
    pub orientation: u8,
    /// The allowlisted DICOM attributes, for a DICOM file.
    pub dicom: Option<DicomInfo>,
}

impl ImageHeader {
    /// Width and height as displayed, the orientation applied.
    pub fn displayed(&self) -> (u32, u32) {
        if self.orientation >= 5 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Read the header of a JPEG, PNG or DICOM file: format, size and orientation.
/// A file of another kind is refused without quoting its content.
pub fn header(bytes: &[u8]) -> Result<ImageHeader, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError("the file is empty".into()));
    }
    let format = SourceFormat::sniff(bytes).ok_or_else(|| {
        DecodeError(
            "not a JPEG, PNG or DICOM image (it has neither the JPEG nor the PNG signature, nor DICM at byte 128)"
                .into(),
        )
    })?;
    let (width, height, orientation) = match format {
        SourceFormat::Jpeg => {
            let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options());
            decoder
                .decode_headers()
                .map_err(|e| DecodeError(format!("bad JPEG header: {e}")))?;
            let info = decoder
                .info()
                .ok_or_else(|| DecodeError("bad JPEG header: no frame header".into()))?;
            let orientation = decoder
                .exif()
                .and_then(|exif| Orientation::from_exif_chunk(exif))
                .unwrap_or(Orientation::NoTransforms);
            (u32::from(info.width), u32::from(info.height), orientation)
        }
        SourceFormat::Dicom => {
            let head = super::dicom::header(bytes)?;
            return Ok(ImageHeader {
                format,
                width: head.width,
                height: head.height,
                orientation: 1,
                dicom: Some(head.info),
            });
        }
        SourceFormat::Png => {
            let mut decoder = png_decoder(bytes, "bad PNG header")?;
            let (width, height) = decoder.dimensions();
            let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
            (width, height, orientation)
        }
    };
    check_size(width, height)?;
    Ok(ImageHeader {
        format,
        width,
        height,
        orientation: orientation.to_exif(),
        dicom: None,
    })
}

/// Decode a whole JPEG, PNG or DICOM file to RGB; a JPEG or PNG has its EXIF orientation applied.
/// Alpha is dropped, grey is expanded, 16-bit samples are reduced to 8 bits.
/// A DICOM file gives its chosen frame, masked as [`super::dicom`] says.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let header = header(bytes)?;
    let (format, width, height) = (header.format, header.width, header.height);
    let image = match format {
        SourceFormat::Jpeg => decode_jpeg(bytes, width, height)?,
        SourceFormat::Png => decode_png(bytes)?,
        SourceFormat::Dicom => super::dicom::decode_rgb(bytes)?.0,
    };
    if image.dimensions() != (width, height) {
        return Err(DecodeError(format!(
            "the {} header says {width}×{height} but {}×{} pixels were decoded",
            format.name(),
            image.width(),
            image.height()
        )));
    }
    Ok(oriented(image, header.orientation))
}

/// `image` turned as its EXIF orientation tag says.
fn oriented(image: RgbImage, tag: u8) -> RgbImage {
    match Orientation::from_exif(tag) {
        None | Some(Orientation::NoTransforms) => image,
        Some(orientation) => {
            let mut dynamic = DynamicImage::ImageRgb8(image);
            dynamic.apply_orientation(orientation);
            dynamic.into_rgb8()
        }
    }
}

fn png_decoder<'a>(
    bytes: &'a [u8],
    what: &str,
) -> Result<image::codecs::png::PngDecoder<std::io::Cursor<&'a [u8]>>, DecodeError> {
    image::codecs::png::PngDecoder::new(std::io::Cursor::new(bytes))
        .map_err(|e| DecodeError(format!("{what}: {e}")))
}

fn options() -> DecoderOptions {
    DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_strict_mode(true)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize)
}

/// Refuse an empty image or one larger than [`MAX_SIDE`].
pub(crate) fn check_size(width: u32, height: u32) -> Result<(), DecodeError> {
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
    let decoder = png_decoder(bytes, "corrupt PNG")?;
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| DecodeError(format!("corrupt PNG: {e}")))?;
    Ok(image.into_rgb8())
}

/// `jpeg` with an EXIF APP1 segment holding orientation `tag` put after
/// its start-of-image marker (for tests).
#[cfg(test)]
pub(crate) fn with_exif_orientation(jpeg: &[u8], tag: u16) -> Vec<u8> {
    // Little-endian TIFF header, one IFD with one entry (0x0112, SHORT).
    let mut tiff = vec![
        0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
    ];
    tiff.extend(tag.to_le_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
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
                .contains("not a JPEG, PNG or DICOM")
        );
        assert!(decode_rgb(b"").unwrap_err().0.contains("empty"));
        let refused = decode_rgb(b"root:x:0:0:root").unwrap_err().0;
        assert!(refused.contains("not a JPEG, PNG or DICOM"), "{refused}");
        // Nothing of a refused file's content is echoed, neither as text
        // nor as hex.
        assert!(
            !refused.contains("root") && !refused.contains("72 6f"),
            "{refused}"
        );
    }

    /// A JPEG of `img` with an EXIF APP1 segment holding `tag`.
    fn jpeg_with_orientation(img: &RgbImage, tag: u16) -> Vec<u8> {
        let mut plain = Cursor::new(Vec::new());
        img.write_to(&mut plain, ImageFormat::Jpeg).unwrap();
        with_exif_orientation(&plain.into_inner(), tag)
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 64×32 image, left half black, right half white.
        let img = RgbImage::from_fn(64, 32, |x, _| {
            if x < 32 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let bytes = jpeg_with_orientation(&img, 6);
        let head = header(&bytes).unwrap();
        assert_eq!((head.width, head.height, head.orientation), (64, 32, 6));
        assert_eq!(head.displayed(), (32, 64));
        let turned = decode_rgb(&bytes).unwrap();
        // Orientation 6: rotate 90° clockwise, the left half goes to the top.
        assert_eq!(turned.dimensions(), (32, 64));
        assert!(
            turned.get_pixel(16, 8)[0] < 40,
            "{:?}",
            turned.get_pixel(16, 8)
        );
        assert!(
            turned.get_pixel(16, 56)[0] > 215,
            "{:?}",
            turned.get_pixel(16, 56)
        );
        let plain = decode_rgb(&jpeg_with_orientation(&img, 1)).unwrap();
        assert_eq!(plain.dimensions(), (64, 32));
    }
}
