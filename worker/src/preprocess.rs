//! Tile preprocessing: decode a stored JPEG or PNG tile to RGB, check its
//! size against the model card, and write the normalised CHW floats into a
//! caller-provided slot of a batch buffer.

use nodal_types::model_card::ModelCard;

/// Why a tile could not be turned into model input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The bytes are neither JPEG nor PNG.
    #[error("not a JPEG or PNG image ({len} bytes starting {head})")]
    NotAnImage {
        /// Byte count.
        len: usize,
        /// The first bytes, hex.
        head: String,
    },
    /// The image is damaged or cut short.
    #[error("corrupt or truncated {format}: {message}")]
    Corrupt {
        /// `JPEG` or `PNG`.
        format: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// The tile is not the model's tile size.
    #[error("tile is {width}x{height}, the model takes {expected}x{expected}")]
    WrongSize {
        /// Decoded width.
        width: usize,
        /// Decoded height.
        height: usize,
        /// The card's tile edge.
        expected: usize,
    },
    /// The output slot does not hold exactly one tile.
    #[error("output slot holds {got} floats, one tile needs {expected}")]
    SlotSize {
        /// Floats needed: 3 × size × size.
        expected: usize,
        /// Floats given.
        got: usize,
    },
}

/// A decoded RGB image, 8 bits per channel, row-major HWC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbTile {
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// `width × height × 3` bytes.
    pub pixels: Vec<u8>,
}

/// Decode a JPEG (the tile codec, [`nodal_codec::decode_rgb`]: strict,
/// truncation is an error) or PNG tile to RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbTile, TileError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let decoded = nodal_codec::decode_rgb(bytes).map_err(|e| TileError::Corrupt {
            format: "JPEG",
            message: e.to_string(),
        })?;
        Ok(RgbTile {
            width: decoded.width,
            height: decoded.height,
            pixels: decoded.pixels,
        })
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .map_err(|e| TileError::Corrupt {
                format: "PNG",
                message: e.to_string(),
            })?
            .to_rgb8();
        Ok(RgbTile {
            width: img.width() as usize,
            height: img.height() as usize,
            pixels: img.into_raw(),
        })
    } else {
        let head = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(TileError::NotAnImage {
            len: bytes.len(),
            head,
        })
    }
}

/// Write `tile` into `out` as `(pixel / scale - mean[c]) / std[c]`, channel-major (CHW).
pub fn normalise_into(tile: &RgbTile, card: &ModelCard, out: &mut [f32]) -> Result<(), TileError> {
    let size = card.tile.size as usize;
    if tile.width != size || tile.height != size {
        return Err(TileError::WrongSize {
            width: tile.width,
            height: tile.height,
            expected: size,
        });
    }
    let plane = size * size;
    if out.len() != 3 * plane {
        return Err(TileError::SlotSize {
            expected: 3 * plane,
            got: out.len(),
        });
    }
    let n = &card.normalisation;
    for (c, dst) in out.chunks_exact_mut(plane).enumerate() {
        let (mean, std) = (n.mean[c], n.std[c]);
        for (d, px) in dst.iter_mut().zip(tile.pixels.chunks_exact(3)) {
            *d = (f32::from(px[c]) / n.scale - mean) / std;
        }
    }
    Ok(())
}

/// Decode a stored tile and write its normalised CHW floats into `out`.
pub fn preprocess_into(bytes: &[u8], card: &ModelCard, out: &mut [f32]) -> Result<(), TileError> {
    normalise_into(&decode(bytes)?, card, out)
}
