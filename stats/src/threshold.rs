//! The Youden operating threshold.

/// The score cut `t` maximising sensitivity + specificity − 1 over the
/// distinct scores (a case positive when `score >= t`), the highest `t` among
/// equal maxima; `None` when a class is missing.
///
/// The index is compared exactly, as `tp·N − fp·P` in integers.
pub fn youden_threshold(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let total_pos = positive.iter().filter(|p| **p).count() as i128;
    let total_neg = positive.len() as i128 - total_pos;
    if total_pos == 0 || total_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0i128, 0i128);
    let mut best: Option<(i128, f64)> = None;
    for (j, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let group_ends = order
            .get(j + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if group_ends {
            let index = tp * total_neg - fp * total_pos;
            // Scores descend, so a strictly better index is the only reason to move.
            if best.is_none_or(|(b, _)| index > b) {
                best = Some((index, scores[i]));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// Youden's threshold of binary predictions' labelled cases (`None` for a
/// multi-class file, or when a class is missing): the threshold a
/// development set fixes for the validation that follows.
pub fn development_threshold(predictions: &crate::Predictions) -> Option<f64> {
    let crate::Predictions::Binary(binary) = predictions else {
        return None;
    };
    let (scores, positive): (Vec<f64>, Vec<bool>) = binary
        .cases
        .iter()
        .filter_map(|c| c.label.map(|label| (c.score, label)))
        .unzip();
    youden_threshold(&scores, &positive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_cut_that_best_separates() {
        let scores = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8];
        let positive = [false, false, false, true, true, true];
        assert_eq!(youden_threshold(&scores, &positive), Some(0.6));
    }

    #[test]
    fn prefers_the_highest_cut_among_equal_maxima() {
        // Cuts 0.9 (tp 1, fp 0) and 0.5 (tp 2, fp 1) tie with two of each class.
        let scores = [0.9, 0.5, 0.4, 0.1];
        let positive = [true, false, true, false];
        assert_eq!(youden_threshold(&scores, &positive), Some(0.9));
    }

    #[test]
    fn undefined_with_one_class() {
        assert_eq!(youden_threshold(&[0.2, 0.4], &[true, true]), None);
    }
}
