//! Integer allocation helpers: split a total over parts by weight.

/// Split `total` over `weights` by the largest-remainder method; ties go to
/// the earlier part. The result sums to `total`.
pub(crate) fn largest_remainder(total: usize, weights: &[f64]) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let given: usize = out.iter().sum();
    for &i in order.iter().cycle().take(total.saturating_sub(given)) {
        out[i] += 1;
    }
    out
}

/// Like [`largest_remainder`], but when the total allows it every part with
/// capacity gets at least one (taken from the largest part), so planted
/// items are spread over all sites. `capacity[i]` caps part `i`.
pub(crate) fn spread(total: usize, weights: &[f64], capacity: &[usize]) -> Vec<usize> {
    let mut out = largest_remainder(total, weights);
    // Respect capacities by moving the excess to parts with room.
    for i in 0..out.len() {
        while out[i] > capacity[i] {
            out[i] -= 1;
            if let Some(j) = (0..out.len()).find(|&j| out[j] < capacity[j]) {
                out[j] += 1;
            }
        }
    }
    while let Some(empty) = (0..out.len()).find(|&i| out[i] == 0 && capacity[i] > 0) {
        let Some(donor) = (0..out.len())
            .filter(|&i| out[i] > 1)
            .max_by_key(|&i| out[i])
        else {
            break;
        };
        out[donor] -= 1;
        out[empty] += 1;
    }
    out
}

/// `max(round(rate · n), floor)`, never more than `n`.
pub(crate) fn planted_count(rate: f64, n: usize, floor: usize) -> usize {
    ((rate * n as f64).round() as usize).max(floor).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_sums_and_follows_weights() {
        assert_eq!(
            largest_remainder(32, &[0.4, 0.2, 0.2, 0.2]),
            vec![13, 7, 6, 6]
        );
        assert_eq!(
            largest_remainder(100, &[0.7, 0.1, 0.1, 0.1]),
            vec![70, 10, 10, 10]
        );
        assert_eq!(largest_remainder(0, &[1.0, 1.0]), vec![0, 0]);
    }

    #[test]
    fn spread_gives_every_site_one_when_possible() {
        assert_eq!(spread(5, &[0.7, 0.1, 0.1, 0.1], &[9; 4]), vec![2, 1, 1, 1]);
        assert_eq!(
            spread(2, &[0.7, 0.1, 0.1, 0.1], &[9; 4])
                .iter()
                .sum::<usize>(),
            2
        );
        assert_eq!(spread(3, &[1.0, 1.0], &[1, 9]), vec![1, 2]);
    }

    #[test]
    fn planted_count_has_a_floor() {
        assert_eq!(planted_count(0.02, 100, 3), 3);
        assert_eq!(planted_count(0.02, 1000, 3), 20);
        assert_eq!(planted_count(0.01, 0, 1), 0);
    }
}
