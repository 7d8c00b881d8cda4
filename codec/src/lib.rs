//! The one JPEG codec of stored tiles, from training to serving.
//!
//! `nodal submit` encodes tiles with [`encode_rgb`] and the worker decodes
//! them with [`decode_rgb`]: libjpeg-turbo through TurboJPEG, built from the
//! source bundled with `turbojpeg-sys` and linked statically, so every
//! machine runs the same codec. Pillow (the training script's and an
//! analyst's Python) wraps libjpeg-turbo too; with the settings of
//! [`tile_codec`] both give the same bytes and the same pixels (see
//! docs/models.md, "Parity").

use nodal_types::manifest::TileCodec;
use std::cell::RefCell;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, Subsamp};

/// The codec library.
pub const CODEC_LIBRARY: &str = "libjpeg-turbo";
/// The libjpeg-turbo version bundled with the pinned `turbojpeg-sys`.
pub const CODEC_VERSION: &str = "3.1.0";
/// JPEG quality of stored tiles.
pub const JPEG_QUALITY: u8 = 90;

/// The codec and settings of stored tiles, as manifests and model cards
/// record them: accurate integer DCT, libjpeg's default ("fancy") chroma
/// upsampling, quality [`JPEG_QUALITY`], 4:2:0, baseline Huffman tables.
pub fn tile_codec() -> TileCodec {
    TileCodec {
        library: CODEC_LIBRARY.to_string(),
        version: CODEC_VERSION.to_string(),
        dct: "islow".to_string(),
        upsampling: "fancy".to_string(),
        quality: JPEG_QUALITY,
        subsampling: "4:2:0".to_string(),
    }
}

/// Why a tile could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The pixel buffer does not hold `width × height` RGB pixels.
    #[error("{len} bytes are not {width}x{height} RGB pixels")]
    BadPixels {
        /// Buffer length.
        len: usize,
        /// Claimed width.
        width: usize,
        /// Claimed height.
        height: usize,
    },
    /// libjpeg-turbo refused: damaged or truncated data (warnings count), or
    /// an image too large.
    #[error("libjpeg-turbo: {0}")]
    Library(String),
}

impl From<turbojpeg::Error> for CodecError {
    fn from(e: turbojpeg::Error) -> Self {
        CodecError::Library(e.to_string())
    }
}

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Encode `width × height` RGB pixels (row-major, 3 bytes a pixel) as a
/// baseline JPEG with the settings of [`tile_codec`]. The same pixels
/// always give the same bytes.
pub fn encode_rgb(pixels: &[u8], width: usize, height: usize) -> Result<Vec<u8>, CodecError> {
    if width == 0 || height == 0 || pixels.len() != width * height * 3 {
        return Err(CodecError::BadPixels {
            len: pixels.len(),
            width,
            height,
        });
    }
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(new_compressor()?),
        };
        let image = Image {
            pixels,
            width,
            pitch: width * 3,
            height,
            format: PixelFormat::RGB,
        };
        Ok(compressor.compress_to_vec(image)?)
    })
}

fn new_compressor() -> Result<Compressor, CodecError> {
    let mut c = Compressor::new()?;
    c.set_quality(i32::from(JPEG_QUALITY))?;
    c.set_subsamp(Subsamp::Sub2x2)?;
    Ok(c)
}

/// A decoded image: `width × height` RGB pixels, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// `width × height × 3` bytes.
    pub pixels: Vec<u8>,
}

/// Decode a JPEG to RGB with the settings of [`tile_codec`]. Strict: data
/// libjpeg-turbo warns about (truncated, damaged) is an error, never a
/// half-grey tile.
pub fn decode_rgb(bytes: &[u8]) -> Result<Decoded, CodecError> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(Decompressor::new()?),
        };
        let header = decompressor.read_header(bytes)?;
        let (width, height) = (header.width, header.height);
        let mut pixels = vec![0; width * height * 3];
        let image = Image {
            pixels: pixels.as_mut_slice(),
            width,
            pitch: width * 3,
            height,
            format: PixelFormat::RGB,
        };
        decompressor.decompress(bytes, image)?;
        Ok(Decoded {
            width,
            height,
            pixels,
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Smooth gradients, one per channel: what JPEG keeps well.
    fn pattern(w: usize, h: usize) -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)])
            })
            .map(|v| v as u8)
            .collect()
    }

    #[test]
    fn encodes_deterministically_as_baseline_420() {
        let px = pattern(224, 224);
        let a = encode_rgb(&px, 224, 224).unwrap();
        assert_eq!(a, encode_rgb(&px, 224, 224).unwrap());
        // SOF0 (baseline) with luma sampling factors 2x2: 4:2:0.
        let sof = a.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        assert_eq!(a[sof + 11], 0x22, "luma sampling factors");
        let back = decode_rgb(&a).unwrap();
        assert_eq!((back.width, back.height), (224, 224));
        let err: i64 = back
            .pixels
            .iter()
            .zip(&px)
            .map(|(&a, &b)| (i64::from(a) - i64::from(b)).abs())
            .max()
            .unwrap();
        assert!(
            err < 128,
            "a lossy but faithful round trip (max error {err})"
        );
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors() {
        let jpeg = encode_rgb(&pattern(64, 48), 64, 48).unwrap();
        let cut = decode_rgb(&jpeg[..jpeg.len() / 2]).unwrap_err();
        assert!(matches!(cut, CodecError::Library(_)), "{cut}");
        assert!(decode_rgb(b"not a jpeg").is_err());
    }

    #[test]
    fn wrong_pixel_buffers_are_refused() {
        let e = encode_rgb(&[0; 10], 2, 2).unwrap_err();
        assert_eq!(e.to_string(), "10 bytes are not 2x2 RGB pixels");
    }
}
