//! The tiling rule of `docs/archive-format.md` (the training script
//! implements the same): cytology on a non-overlapping 224-pixel grid with
//! background tiles skipped, ultrasound resized whole to 224×224; tiles are
//! stored as JPEG through the one tile codec ([`nodal_codec`]: libjpeg-turbo,
//! quality 90, 4:2:0), the codec the models were validated on.

use image::RgbImage;
use image::imageops::{self, FilterType};
use nodal_types::manifest::{TileFormat, TileMode, TileSpec};
use nodal_types::study::Study;

/// Tile edge, pixels.
pub const TILE_SIZE: u32 = 224;
/// How `study`'s images are tiled.
pub fn tile_spec(study: Study) -> TileSpec {
    let mode = match study {
        Study::Cytology => TileMode::Grid,
        Study::Ultrasound => TileMode::Whole,
    };
    TileSpec {
        size: TILE_SIZE,
        mode,
        format: TileFormat::Jpeg,
        codec: nodal_codec::tile_codec(),
    }
}

/// The smallest image side `study` accepts: one tile for the cytology
/// grid; enough to measure for the whole-image ultrasound tile.
pub fn min_image_side(study: Study) -> u32 {
    match study {
        Study::Cytology => TILE_SIZE,
        Study::Ultrasound => 32,
    }
}

/// The tissue test of the tiling rule: stained (`max − min ≥ 25`) or dark
/// (`(R+G+B)/3 < 200`); pale grey glass is not tissue.
pub fn is_tissue(rgb: [u8; 3]) -> bool {
    let max = rgb.iter().copied().max().unwrap_or(0);
    let min = rgb.iter().copied().min().unwrap_or(0);
    max - min >= 25 || rgb.iter().map(|&c| u32::from(c)).sum::<u32>() < 600
}

/// One tile before encoding: its top-left corner in the source image and
/// its pixels (`TILE_SIZE`² RGB).
#[derive(Debug, Clone)]
pub struct CutTile {
    /// Left edge in the source image.
    pub x: u32,
    /// Top edge in the source image.
    pub y: u32,
    /// The tile's pixels.
    pub pixels: RgbImage,
}

/// Cut `image` into the tiles `mode` asks for, in row-major order.
pub fn cut(mode: TileMode, image: &RgbImage) -> Vec<CutTile> {
    match mode {
        TileMode::Grid => grid(image),
        TileMode::Whole => vec![CutTile {
            x: 0,
            y: 0,
            pixels: imageops::resize(image, TILE_SIZE, TILE_SIZE, FilterType::Triangle),
        }],
    }
}

fn grid(image: &RgbImage) -> Vec<CutTile> {
    let (cols, rows) = (image.width() / TILE_SIZE, image.height() / TILE_SIZE);
    let (stride, side) = (image.width() as usize * 3, TILE_SIZE as usize);
    let raw = image.as_raw();
    let area = side * side;
    let mut tiles = Vec::new();
    for row in 0..rows {
        for col in 0..cols {
            let (x, y) = (col * TILE_SIZE, row * TILE_SIZE);
            let tissue: usize = (0..side)
                .map(|dy| {
                    let start = (y as usize + dy) * stride + x as usize * 3;
                    raw[start..start + side * 3]
                        .chunks_exact(3)
                        .filter(|p| is_tissue([p[0], p[1], p[2]]))
                        .count()
                })
                .sum();
            // "fewer than 20 % tissue" is background: tissue / area < 1/5.
            if tissue * 5 >= area {
                let pixels = imageops::crop_imm(image, x, y, TILE_SIZE, TILE_SIZE).to_image();
                tiles.push(CutTile { x, y, pixels });
            }
        }
    }
    tiles
}

/// Encode a tile with the tile codec ([`nodal_codec::encode_rgb`]:
/// baseline JPEG, quality 90, 4:2:0). The same pixels always give the same
/// bytes.
pub fn encode_jpeg(pixels: &RgbImage) -> Result<Vec<u8>, nodal_codec::CodecError> {
    nodal_codec::encode_rgb(
        pixels.as_raw(),
        pixels.width() as usize,
        pixels.height() as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const GLASS: Rgb<u8> = Rgb([236, 233, 239]);
    const NUCLEUS: Rgb<u8> = Rgb([82, 64, 132]);

    #[test]
    fn tissue_test_matches_the_rule() {
        assert!(!is_tissue([236, 233, 239]), "pale grey glass");
        assert!(is_tissue([200, 175, 210]), "stained: spread 35");
        assert!(is_tissue([199, 199, 199]), "dark grey: mean 199 < 200");
        assert!(!is_tissue([200, 200, 200]), "mean exactly 200 is not dark");
        assert!(!is_tissue([225, 215, 201]), "spread 24 < 25, mean 213");
        assert!(is_tissue([226, 215, 201]), "spread 25");
    }

    #[test]
    fn grid_drops_edges_and_background_tiles() {
        // 1024×768 → 4 × 3 candidates. Paint tissue into three tiles: one
        // full, one just over 20 % (kept), one just under (skipped).
        let mut img = RgbImage::from_pixel(1024, 768, GLASS);
        let fill = |img: &mut RgbImage, x0: u32, y0: u32, width: u32, n: u32| {
            for i in 0..n {
                img.put_pixel(x0 + i % width, y0 + i / width, NUCLEUS);
            }
        };
        let area = TILE_SIZE * TILE_SIZE;
        fill(&mut img, 0, 0, TILE_SIZE, area);
        fill(&mut img, 224, 448, TILE_SIZE, area / 5 + 1);
        fill(&mut img, 672, 224, TILE_SIZE, area / 5 - 1);
        // Tissue in the dropped right edge (x ≥ 896) only.
        fill(&mut img, 896, 0, 128, 128 * 700);
        let tiles = cut(TileMode::Grid, &img);
        let at: Vec<(u32, u32)> = tiles.iter().map(|t| (t.x, t.y)).collect();
        assert_eq!(at, [(0, 0), (224, 448)]);
        assert_eq!(tiles[0].pixels.dimensions(), (224, 224));
        assert_eq!(*tiles[0].pixels.get_pixel(5, 5), NUCLEUS);
    }

    #[test]
    fn whole_mode_gives_one_resized_tile() {
        let img = RgbImage::from_fn(640, 480, |x, _| {
            if x < 320 {
                Rgb([0, 0, 0])
            } else {
                Rgb([200, 200, 200])
            }
        });
        let tiles = cut(TileMode::Whole, &img);
        assert_eq!(tiles.len(), 1);
        assert_eq!((tiles[0].x, tiles[0].y), (0, 0));
        assert_eq!(tiles[0].pixels.dimensions(), (224, 224));
        assert_eq!(tiles[0].pixels.get_pixel(10, 100)[0], 0);
        assert_eq!(tiles[0].pixels.get_pixel(200, 100)[0], 200);
    }

    #[test]
    fn jpeg_encoding_is_deterministic_420_q90() {
        let img = RgbImage::from_fn(224, 224, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
        });
        let a = encode_jpeg(&img).unwrap();
        let b = encode_jpeg(&img).unwrap();
        assert_eq!(a, b);
        let decoded = image::load_from_memory(&a).unwrap().into_rgb8();
        assert_eq!(decoded.dimensions(), (224, 224));
        // SOF0 component 1 (luma) sampling factor 0x22 means 4:2:0.
        let sof = a.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        assert_eq!(a[sof + 11], 0x22, "luma sampling factors");
    }
}
