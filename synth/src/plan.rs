//! Study plans: site sizes, and which cases and images get planted
//! problems (ineligibility, image defects), spread over the sites.

use crate::alloc;
use nodal_types::manifest::QcReason;
use rand::Rng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, BTreeSet};

/// The three planted image defects, in a fixed order.
pub(crate) const DEFECT_KINDS: [QcReason; 3] =
    [QcReason::Blank, QcReason::Blur, QcReason::Artefact];

/// One submitting centre of a study.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    /// Folder name, e.g. `cy-a`.
    pub name: &'static str,
    /// Share of the study's cases.
    pub weight: f64,
    /// Probability that one of its cases is in the training split.
    pub train_fraction: f64,
}

/// Number of cases per site for a study of `total` cases.
pub(crate) fn site_sizes(total: usize, sites: &[Site]) -> Vec<usize> {
    let weights: Vec<f64> = sites.iter().map(|s| s.weight).collect();
    alloc::largest_remainder(total, &weights)
}

/// A case, by site index and index within the site.
pub(crate) type CaseKey = (usize, usize);
/// An image, by site index, case index and image index within the case.
pub(crate) type ImageKey = (usize, usize, usize);

/// `count` distinct cases spread over sites in proportion to their size,
/// each tagged with one of `n_tags` tags in roughly equal numbers.
pub(crate) fn pick_cases(
    rng: &mut impl Rng,
    sizes: &[usize],
    count: usize,
    n_tags: usize,
) -> BTreeMap<CaseKey, usize> {
    let weights: Vec<f64> = sizes.iter().map(|&s| s as f64).collect();
    let per_site = alloc::spread(count, &weights, sizes);
    let mut keys = Vec::with_capacity(count);
    for (site, (&size, &k)) in sizes.iter().zip(&per_site).enumerate() {
        let mut chosen: Vec<usize> = rand::seq::index::sample(rng, size, k).into_vec();
        chosen.sort_unstable();
        keys.extend(chosen.into_iter().map(|c| (site, c)));
    }
    let tags = balanced_tags(rng, keys.len(), n_tags);
    keys.into_iter().zip(tags).collect()
}

/// `count` distinct cases drawn from `candidates` (all of them when fewer).
pub(crate) fn pick_among(
    rng: &mut impl Rng,
    candidates: &[CaseKey],
    count: usize,
) -> BTreeSet<CaseKey> {
    rand::seq::index::sample(rng, candidates.len(), count.min(candidates.len()))
        .into_iter()
        .map(|i| candidates[i])
        .collect()
}

/// `count` distinct images, spread over sites in proportion to their image
/// counts, never in an `excluded` case; each gets a defect kind, the kinds in
/// roughly equal numbers. `images[site][case]` is the case's image count.
pub(crate) fn pick_images(
    rng: &mut impl Rng,
    images: &[Vec<usize>],
    excluded: &BTreeSet<CaseKey>,
    count: usize,
) -> BTreeMap<ImageKey, QcReason> {
    let slots: Vec<Vec<ImageKey>> = images
        .iter()
        .enumerate()
        .map(|(site, cases)| {
            cases
                .iter()
                .enumerate()
                .filter(|(case, _)| !excluded.contains(&(site, *case)))
                .flat_map(|(case, &n)| (0..n).map(move |i| (site, case, i)))
                .collect()
        })
        .collect();
    let capacity: Vec<usize> = slots.iter().map(Vec::len).collect();
    let weights: Vec<f64> = capacity.iter().map(|&c| c as f64).collect();
    let per_site = alloc::spread(count.min(capacity.iter().sum()), &weights, &capacity);
    let mut keys = Vec::with_capacity(count);
    for (site_slots, &k) in slots.iter().zip(&per_site) {
        let mut chosen: Vec<usize> = rand::seq::index::sample(rng, site_slots.len(), k).into_vec();
        chosen.sort_unstable();
        keys.extend(chosen.into_iter().map(|i| site_slots[i]));
    }
    let tags = balanced_tags(rng, keys.len(), DEFECT_KINDS.len());
    keys.into_iter()
        .zip(tags.into_iter().map(|t| DEFECT_KINDS[t]))
        .collect()
}

/// `n` tags out of `0..n_tags` in equal numbers (±1), shuffled.
fn balanced_tags(rng: &mut impl Rng, n: usize, n_tags: usize) -> Vec<usize> {
    let counts = alloc::largest_remainder(n, &vec![1.0; n_tags]);
    let mut tags: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(t, &c)| std::iter::repeat_n(t, c))
        .collect();
    tags.shuffle(rng);
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    #[test]
    fn picks_are_distinct_spread_and_balanced() {
        let mut rng = seed::stream(1, &[1]);
        let images = vec![vec![2; 70], vec![3; 10], vec![1; 10], vec![4; 10]];
        let excluded = BTreeSet::from([(0, 0), (1, 1)]);
        let picked = pick_images(&mut rng, &images, &excluded, 9);
        assert_eq!(picked.len(), 9);
        assert!(picked.keys().all(|&(s, c, _)| !excluded.contains(&(s, c))));
        for site in 0..4 {
            assert!(
                picked.keys().any(|k| k.0 == site),
                "site {site} has a defect"
            );
        }
        for kind in DEFECT_KINDS {
            assert_eq!(picked.values().filter(|&&k| k == kind).count(), 3);
        }
        let cases = pick_cases(&mut rng, &[70, 10, 10, 10], 1, 5);
        assert_eq!(cases.len(), 1);
    }
}
