//! Tile shards: an archive's tiles packed end to end, in manifest order,
//! into a few large objects (`archives/<id>/shards/<n>.bin`), so that a
//! worker reads a job's tiles with one ranged GET instead of one GET per
//! tile. The manifest records where each tile lies ([`TileLocation`]);
//! a shard holds nothing but the tiles' bytes.

use serde::{Deserialize, Serialize};

/// Default target size of a shard object (8 MiB: about 600 cytology tiles).
pub const DEFAULT_SHARD_BYTES: u64 = 8 << 20;

/// CRC-32C (Castagnoli) of a tile's bytes, as manifests record it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    // A CRC-32 fits in the low 32 bits of crc-fast's u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// Where a tile's bytes lie, and how to check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileLocation {
    /// Index of the shard in the manifest's `shards`.
    pub shard: u32,
    /// Byte offset of the tile in the shard.
    pub offset: u64,
    /// Length of the tile's bytes.
    pub length: u32,
    /// CRC-32C of the tile's bytes ([`crc32c`]).
    pub crc32c: u32,
}

impl TileLocation {
    /// The offset one past the tile's last byte.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.length)
    }
}

/// A shard, closed and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedShard {
    /// Its index in the archive.
    pub index: u32,
    /// The tiles' bytes, end to end.
    pub body: Vec<u8>,
    /// Number of tiles in it.
    pub tiles: u32,
}

/// Packs tiles, in order, into shards of about `target` bytes. A case's
/// tiles are contiguous, and lie in one shard unless the case alone is
/// larger than a shard; a tile is never split. The same tiles in the same
/// order give the same shards, byte for byte.
#[derive(Debug)]
pub struct ShardPacker {
    target: u64,
    open: Vec<u8>,
    open_tiles: u32,
    index: u32,
}

impl ShardPacker {
    /// A packer closing shards at about `target` bytes (at least 1).
    pub fn new(target: u64) -> Self {
        Self {
            target: target.max(1),
            open: Vec::new(),
            open_tiles: 0,
            index: 0,
        }
    }

    /// Start a case whose tiles take `bytes` in all: the open shard is
    /// closed (and returned) first when the case does not fit in what is
    /// left of it.
    pub fn start_case(&mut self, bytes: u64) -> Option<PackedShard> {
        self.close_unless_room(bytes)
    }

    /// Append one tile: its location, and the shard closed to make room
    /// for it, if any.
    pub fn push(&mut self, tile: &[u8]) -> (TileLocation, Option<PackedShard>) {
        let closed = self.close_unless_room(tile.len() as u64);
        let location = TileLocation {
            shard: self.index,
            offset: self.open.len() as u64,
            length: u32::try_from(tile.len()).expect("a tile is smaller than 4 GiB"),
            crc32c: crc32c(tile),
        };
        self.open.extend_from_slice(tile);
        self.open_tiles += 1;
        (location, closed)
    }

    /// Close the last shard, if it holds any tile.
    pub fn finish(&mut self) -> Option<PackedShard> {
        self.close()
    }

    fn close_unless_room(&mut self, bytes: u64) -> Option<PackedShard> {
        let fits = self.open.len() as u64 + bytes <= self.target;
        if fits { None } else { self.close() }
    }

    fn close(&mut self) -> Option<PackedShard> {
        if self.open_tiles == 0 {
            return None;
        }
        let shard = PackedShard {
            index: self.index,
            body: std::mem::take(&mut self.open),
            tiles: std::mem::take(&mut self.open_tiles),
        };
        self.index += 1;
        Some(shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32c_is_castagnoli() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn a_case_that_does_not_fit_starts_a_shard_and_a_big_case_spans_shards() {
        let mut p = ShardPacker::new(10);
        assert_eq!(p.start_case(6), None);
        assert_eq!(p.push(&[1; 3]).1, None);
        assert_eq!(p.push(&[2; 3]).1, None);
        // 6 + 6 > 10: the next case starts shard 1.
        let closed = p.start_case(6).unwrap();
        assert_eq!((closed.index, closed.tiles, closed.body.len()), (0, 2, 6));
        let (at, none) = p.push(&[3; 6]);
        assert_eq!((at.shard, at.offset, at.length, none), (1, 0, 6, None));
        // A case of 14 bytes: larger than a shard, split at a tile boundary.
        assert!(p.start_case(14).is_some());
        assert_eq!(p.push(&[4; 7]).1, None);
        let (at, closed) = p.push(&[5; 7]);
        assert_eq!((at.shard, at.offset), (3, 0));
        assert_eq!(closed.unwrap().index, 2);
        let last = p.finish().unwrap();
        assert_eq!((last.index, last.tiles, last.body), (3, 1, vec![5; 7]));
    }

    proptest! {
        #[test]
        fn every_tile_is_found_again_at_its_location(
            cases in prop::collection::vec(prop::collection::vec(1usize..50, 1..8), 1..20),
            target in 1u64..300,
        ) {
            let mut p = ShardPacker::new(target);
            let mut shards: Vec<Vec<u8>> = Vec::new();
            let mut placed = Vec::new();
            let keep = |s: Option<PackedShard>, shards: &mut Vec<Vec<u8>>| {
                if let Some(s) = s {
                    assert_eq!(s.index as usize, shards.len());
                    shards.push(s.body);
                }
            };
            let mut n = 0u8;
            for case in &cases {
                keep(p.start_case(case.iter().sum::<usize>() as u64), &mut shards);
                for len in case {
                    n = n.wrapping_add(1);
                    let tile = vec![n; *len];
                    let (at, closed) = p.push(&tile);
                    keep(closed, &mut shards);
                    placed.push((at, tile));
                }
            }
            keep(p.finish(), &mut shards);
            for (at, tile) in &placed {
                let shard = &shards[at.shard as usize];
                prop_assert_eq!(&shard[at.offset as usize..at.end() as usize], tile.as_slice());
                prop_assert_eq!(at.crc32c, crc32c(tile));
            }
            // A case that fits in a shard lies in one.
            let mut at = placed.iter();
            for case in &cases {
                let shards_of_case: std::collections::BTreeSet<u32> =
                    at.by_ref().take(case.len()).map(|(l, _)| l.shard).collect();
                if case.iter().sum::<usize>() as u64 <= target {
                    prop_assert_eq!(shards_of_case.len(), 1);
                }
            }
        }
    }
}
