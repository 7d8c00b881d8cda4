//! A job's tiles as ranged reads: tiles that lie end to end (or nearly) in
//! one shard are read with one GET and cut apart afterwards. A planned job
//! of consecutive cases in one shard is a single range.

use nodal_types::wire::Job;

/// Largest gap between two tiles read in one GET: the bytes between them
/// (tiles of left-out cases or images) are read and dropped.
pub(crate) const MAX_GAP: u64 = 256 << 10;
/// Largest range read in one GET.
pub(crate) const MAX_RANGE: u64 = 64 << 20;

/// One GET: `offset..end` of a shard, and the job's tiles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range<'a> {
    /// The shard's object key.
    pub shard_key: &'a str,
    /// First byte read.
    pub offset: u64,
    /// One past the last byte read.
    pub end: u64,
    /// The tiles in it, as (case index in the job, tile index in the case).
    pub tiles: Vec<(usize, usize)>,
}

impl Range<'_> {
    /// Bytes read.
    pub(crate) fn len(&self) -> u64 {
        self.end - self.offset
    }
}

/// The ranges that read `wanted` tiles of `job`: the tiles in shard and
/// offset order, a tile joining the open range when it lies in the same
/// shard, starts at most [`MAX_GAP`] after the range's end (or inside it:
/// a tile named twice is read once), and the range stays within
/// [`MAX_RANGE`].
pub(crate) fn ranges<'a>(job: &'a Job, wanted: &[(usize, usize)]) -> Vec<Range<'a>> {
    let tile = |&(case, index): &(usize, usize)| &job.cases[case].tiles[index];
    let mut order = wanted.to_vec();
    order.sort_by_key(|at| (tile(at).shard_key.as_str(), tile(at).offset));
    let mut out: Vec<Range<'a>> = Vec::new();
    for at in order {
        let t = tile(&at);
        match out.last_mut() {
            Some(open)
                if open.shard_key == t.shard_key
                    && t.offset <= open.end + MAX_GAP
                    && t.end().max(open.end) - open.offset <= MAX_RANGE =>
            {
                open.end = open.end.max(t.end());
                open.tiles.push(at);
            }
            _ => out.push(Range {
                shard_key: &t.shard_key,
                offset: t.offset,
                end: t.end(),
                tiles: vec![at],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal_testkit::fixtures::{case, manifest_in_shards, model_ref};
    use nodal_types::wire::{JobCase, JobTile};
    use uuid::Uuid;

    fn tile(shard: &str, offset: u64, length: u32) -> JobTile {
        JobTile {
            name: format!("{shard}@{offset}"),
            shard_key: shard.into(),
            offset,
            length,
            crc32c: 0,
        }
    }

    fn job(cases: Vec<Vec<JobTile>>) -> Job {
        let mut j = empty_job();
        j.cases = cases
            .into_iter()
            .enumerate()
            .map(|(i, tiles)| JobCase {
                case_id: format!("c{i}"),
                part: 0,
                tiles,
                report: None,
            })
            .collect();
        j
    }

    fn empty_job() -> Job {
        Job {
            run_id: Uuid::from_u128(1),
            job_id: Uuid::from_u128(2),
            index: 0,
            model: model_ref(),
            archive_id: "a".into(),
            cases: vec![],
            traceparent: None,
        }
    }

    fn all(job: &Job) -> Vec<(usize, usize)> {
        job.cases
            .iter()
            .enumerate()
            .flat_map(|(c, case)| (0..case.tiles.len()).map(move |i| (c, i)))
            .collect()
    }

    #[test]
    fn near_tiles_of_a_shard_are_one_read_and_a_wide_gap_or_another_shard_start_another() {
        let j = job(vec![
            vec![tile("s0", 0, 10), tile("s0", 10, 10)],
            // A small gap is read through.
            vec![tile("s0", 30, 10)],
            // A gap too wide to read through.
            vec![tile("s0", 40 + MAX_GAP + 1, 10)],
            // Another shard, then a tile named again: read once, with the first.
            vec![tile("s1", 0, 5), tile("s0", 0, 10)],
        ]);
        let range = |shard_key, offset, end, tiles| Range {
            shard_key,
            offset,
            end,
            tiles,
        };
        assert_eq!(
            ranges(&j, &all(&j)),
            vec![
                range("s0", 0, 40, vec![(0, 0), (3, 1), (0, 1), (1, 0)]),
                range("s0", 40 + MAX_GAP + 1, 50 + MAX_GAP + 1, vec![(2, 0)]),
                range("s1", 0, 5, vec![(3, 0)]),
            ]
        );
    }

    #[test]
    fn a_range_stays_within_the_largest_read() {
        let big = (MAX_RANGE / 2) as u32;
        let j = job(vec![vec![
            tile("s0", 0, big),
            tile("s0", u64::from(big), big),
            tile("s0", 2 * u64::from(big), 1),
        ]]);
        let lens: Vec<u64> = ranges(&j, &all(&j)).iter().map(Range::len).collect();
        assert_eq!(lens, vec![MAX_RANGE, 1]);
    }

    #[test]
    fn a_planned_job_in_one_shard_is_one_read() {
        // Cases of 6 kept tiles and 3 of a failed image (left out: a gap).
        let m = manifest_in_shards(
            "a",
            (0..5).map(|i| case(&format!("c{i}"), 6, true)).collect(),
            u64::MAX,
        );
        let plan_tiles: Vec<Vec<JobTile>> = m
            .cases
            .iter()
            .map(|c| {
                c.images[0]
                    .tiles
                    .iter()
                    .map(|t| tile("archives/a/shards/000000.bin", t.at.offset, t.at.length))
                    .collect()
            })
            .collect();
        let j = job(plan_tiles);
        let r = ranges(&j, &all(&j));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].tiles.len(), 30);
    }
}
