//! The multi-class task's metrics: top-1/top-3 accuracy, per-class
//! one-vs-rest AUC and sensitivity/specificity, confusion matrix, per-site
//! accuracy, the reader comparison and per-class calibration.

use crate::auc::RankedScores;
use crate::binary::{auc_or_warn, proportion};
use crate::bootstrap::{Strata, percentile_interval, run_replicates};
use crate::calibration::calibration;
use crate::interval::Interval;
use crate::mcnemar::mcnemar_exact;
use crate::metrics::{
    BootstrapInfo, ClassMetrics, ConfusionMatrix, MulticlassMetrics, OrderedMap, ReaderMetrics,
    SCHEMA_VERSION, SiteMulticlass,
};
use crate::options::AnalyzeOptions;
use crate::predictions::MulticlassPredictions;

/// Arg-max class of a score row, the first class on ties.
pub fn predicted_class(scores: &[f64]) -> usize {
    let mut best = 0;
    for (k, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = k;
        }
    }
    best
}

/// Whether `truth` is among the top `k` classes, ranked as scikit-learn's
/// `top_k_accuracy_score` does (descending score; among equal scores the
/// later class first, from its reversed stable sort).
pub fn in_top_k(scores: &[f64], truth: usize, k: usize) -> bool {
    let ahead = scores
        .iter()
        .enumerate()
        .filter(|&(j, &s)| s > scores[truth] || (s == scores[truth] && j > truth))
        .count();
    ahead < k
}

/// Computes every multi-class metric of `predictions`.
pub fn analyze_multiclass(
    predictions: &MulticlassPredictions,
    options: &AnalyzeOptions,
) -> MulticlassMetrics {
    let mut warnings = Vec::new();
    let classes = &predictions.classes;
    let k = classes.len();
    let labelled: Vec<usize> = (0..predictions.cases.len())
        .filter(|&i| predictions.cases[i].label.is_some())
        .collect();
    let cases: Vec<&crate::predictions::MulticlassCase> =
        labelled.iter().map(|&i| &predictions.cases[i]).collect();
    let truth: Vec<usize> = cases.iter().map(|c| c.label.unwrap_or(0)).collect();
    let predicted: Vec<usize> = cases.iter().map(|c| predicted_class(&c.scores)).collect();
    let top3: Vec<bool> = cases
        .iter()
        .zip(&truth)
        .map(|(c, &t)| in_top_k(&c.scores, t, 3))
        .collect();
    let n = cases.len() as u64;
    if n == 0 {
        warnings.push("no labelled cases: every metric is null".to_string());
    }
    let mut counts = vec![vec![0u64; k]; k];
    for (&t, &p) in truth.iter().zip(&predicted) {
        counts[t][p] += 1;
    }
    let correct: u64 = (0..k).map(|c| counts[c][c]).sum();
    let top1_accuracy = proportion(correct, n, "top-1 accuracy", &mut warnings);
    let top3_accuracy = proportion(
        top3.iter().filter(|h| **h).count() as u64,
        n,
        "top-3 accuracy",
        &mut warnings,
    );

    let mut per_class = Vec::with_capacity(k);
    let mut class_calibration = Vec::with_capacity(k);
    for (c, name) in classes.iter().enumerate() {
        let positive: Vec<bool> = truth.iter().map(|&t| t == c).collect();
        let scores: Vec<f64> = cases.iter().map(|case| case.scores[c]).collect();
        let n_c: u64 = counts[c].iter().sum();
        let called_c: u64 = (0..k).map(|t| counts[t][c]).sum();
        let tp = counts[c][c];
        let context = format!("class {name}");
        per_class.push((
            name.clone(),
            ClassMetrics {
                n: n_c,
                auc: auc_or_warn(
                    &scores,
                    &positive,
                    &format!("{context}: AUC"),
                    &mut warnings,
                ),
                sensitivity: proportion(tp, n_c, &format!("{context}: sensitivity"), &mut warnings),
                specificity: proportion(
                    n - n_c - (called_c - tp),
                    n - n_c,
                    &format!("{context}: specificity"),
                    &mut warnings,
                ),
            },
        ));
        class_calibration.push((
            name.clone(),
            calibration(&scores, &positive, &format!("{context}: "), &mut warnings),
        ));
    }
    let aucs: Option<Vec<f64>> = per_class
        .iter()
        .map(|(_, m)| m.auc.map(|a| a.estimate))
        .collect();
    let macro_auc = aucs.map(|a| a.iter().sum::<f64>() / k as f64);
    if macro_auc.is_none() && n > 0 {
        warnings.push("macro AUC undefined: some class has no one-vs-rest AUC".to_string());
    }

    let mut site_names: Vec<&str> = predictions.cases.iter().map(|c| c.site.as_str()).collect();
    site_names.sort_unstable();
    site_names.dedup();
    let per_site = site_names
        .iter()
        .map(|&site| {
            let rows: Vec<usize> = (0..cases.len())
                .filter(|&j| cases[j].site == site)
                .collect();
            let hits = rows.iter().filter(|&&j| predicted[j] == truth[j]).count() as u64;
            let top1 = proportion(
                hits,
                rows.len() as u64,
                &format!("site {site}: top-1 accuracy"),
                &mut warnings,
            );
            (
                site.to_string(),
                SiteMulticlass {
                    n: rows.len() as u64,
                    top1_accuracy: top1,
                },
            )
        })
        .collect();

    let readers = predictions
        .readers
        .iter()
        .enumerate()
        .map(|(r, name)| {
            (
                name.clone(),
                reader(&cases, &truth, &predicted, r, name, &mut warnings),
            )
        })
        .collect();

    let mut metrics = MulticlassMetrics {
        schema_version: SCHEMA_VERSION,
        task: "multiclass",
        n,
        n_unlabelled: predictions.cases.len() as u64 - n,
        classes: classes.clone(),
        top1_accuracy,
        top3_accuracy,
        macro_auc,
        per_class: OrderedMap(per_class),
        confusion_matrix: ConfusionMatrix {
            labels: classes.clone(),
            counts,
        },
        per_site: OrderedMap(per_site),
        readers: OrderedMap(readers),
        calibration: OrderedMap(class_calibration),
        bootstrap: None,
        warnings,
    };
    if options.bootstrap > 0 && n > 0 {
        let sites: Vec<&str> = cases.iter().map(|c| c.site.as_str()).collect();
        let scores: Vec<&[f64]> = cases.iter().map(|c| c.scores.as_slice()).collect();
        add_bootstrap(
            &mut metrics,
            &Sample {
                sites,
                scores,
                truth,
                predicted,
                top3,
            },
            options,
        );
    }
    metrics
}

/// One reader against the model over the labelled cases the reader read.
fn reader(
    cases: &[&crate::predictions::MulticlassCase],
    truth: &[usize],
    predicted: &[usize],
    r: usize,
    name: &str,
    warnings: &mut Vec<String>,
) -> ReaderMetrics {
    let (mut n, mut reader_right, mut model_right, mut only_reader, mut only_model) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for (j, case) in cases.iter().enumerate() {
        let Some(call) = case.reader_calls[r] else {
            continue;
        };
        n += 1;
        let (a, b) = (call == truth[j], predicted[j] == truth[j]);
        reader_right += u64::from(a);
        model_right += u64::from(b);
        only_reader += u64::from(a && !b);
        only_model += u64::from(b && !a);
    }
    let context = format!("reader {name}");
    let mcnemar_p = (n > 0).then(|| mcnemar_exact(only_reader, only_model));
    if n == 0 {
        warnings.push(format!(
            "{context}: read no labelled case; McNemar p undefined"
        ));
    }
    ReaderMetrics {
        n,
        accuracy: proportion(reader_right, n, &format!("{context}: accuracy"), warnings),
        model_accuracy: proportion(
            model_right,
            n,
            &format!("{context}: model accuracy"),
            warnings,
        ),
        mcnemar_p,
    }
}

/// What the bootstrap needs of the labelled cases.
struct Sample<'a> {
    sites: Vec<&'a str>,
    scores: Vec<&'a [f64]>,
    truth: Vec<usize>,
    predicted: Vec<usize>,
    top3: Vec<bool>,
}

/// Percentile bootstrap intervals of the per-class AUCs, macro AUC, top-1 and
/// top-3 accuracy and per-class sensitivity and specificity.
fn add_bootstrap(metrics: &mut MulticlassMetrics, sample: &Sample<'_>, options: &AnalyzeOptions) {
    let k = metrics.classes.len();
    let strata = Strata::new(&sample.sites);
    let local: Vec<usize> = (0..sample.truth.len()).collect();
    let ranked: Option<Vec<RankedScores>> = (0..k)
        .map(|c| {
            let scores: Vec<f64> = sample.scores.iter().map(|s| s[c]).collect();
            let positive: Vec<bool> = sample.truth.iter().map(|&t| t == c).collect();
            RankedScores::new(&local, &scores, &positive)
        })
        .collect();
    let Some(ranked) = ranked else {
        metrics
            .warnings
            .push("bootstrap skipped: too many cases".to_string());
        return;
    };
    // Slots: 0 top-1, 1 top-3, 2 macro AUC, then per class: AUC, sensitivity, specificity.
    let slots = 3 + 3 * k;
    let replicates = run_replicates(&strata, options.bootstrap, options.seed, slots, |w, out| {
        let mut confusion = vec![0u64; k * k];
        let (mut total, mut top3) = (0u64, 0u64);
        for (i, &wi) in w.iter().enumerate() {
            let wi = u64::from(wi);
            confusion[sample.truth[i] * k + sample.predicted[i]] += wi;
            total += wi;
            top3 += wi * u64::from(sample.top3[i]);
        }
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let correct: u64 = (0..k).map(|c| confusion[c * k + c]).sum();
        out[0] = ratio(correct, total);
        out[1] = ratio(top3, total);
        let mut auc_sum = Some(0.0);
        for c in 0..k {
            let auc = ranked[c].weighted_auc(w);
            auc_sum = auc_sum.zip(auc).map(|(s, a)| s + a);
            let n_c: u64 = (0..k).map(|p| confusion[c * k + p]).sum();
            let called: u64 = (0..k).map(|t| confusion[t * k + c]).sum();
            let tp = confusion[c * k + c];
            out[3 + 3 * c] = auc;
            out[4 + 3 * c] = ratio(tp, n_c);
            out[5 + 3 * c] = ratio(total - n_c - (called - tp), total - n_c);
        }
        out[2] = auc_sum.map(|s| s / k as f64);
    });
    let mut undefined = 0;
    let intervals: Vec<_> = replicates
        .into_iter()
        .map(|values| {
            undefined = undefined.max(options.bootstrap - values.len());
            percentile_interval(values)
        })
        .collect();
    if undefined > 0 {
        metrics.warnings.push(format!(
            "bootstrap: some metric undefined in up to {undefined} of {} replicates (a class absent from the resample), left out",
            options.bootstrap
        ));
    }
    let set = |target: &mut Option<Interval>, slot: usize| {
        if let Some(t) = target.as_mut() {
            t.bootstrap = intervals[slot];
        }
    };
    set(&mut metrics.top1_accuracy, 0);
    set(&mut metrics.top3_accuracy, 1);
    for (c, (_, class)) in metrics.per_class.0.iter_mut().enumerate() {
        if let Some(auc) = class.auc.as_mut() {
            auc.bootstrap = intervals[3 + 3 * c];
        }
        set(&mut class.sensitivity, 4 + 3 * c);
        set(&mut class.specificity, 5 + 3 * c);
    }
    metrics.bootstrap = Some(BootstrapInfo {
        replicates: options.bootstrap,
        seed: options.seed,
        resampling: "labelled cases with replacement within each site",
        interval: "percentile 2.5-97.5",
        macro_auc: metrics.macro_auc.and(intervals[2]),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(predicted_class(&[0.2, 0.4, 0.4]), 1);
        assert_eq!(predicted_class(&[0.5, 0.5]), 0);
    }

    #[test]
    fn top_k_breaks_ties_as_scikit_learn() {
        // Four classes tied: sklearn ranks them 3, 2, 1, 0.
        let s = [0.25, 0.25, 0.25, 0.25];
        assert!(!in_top_k(&s, 0, 3));
        assert!(in_top_k(&s, 1, 3));
        assert!(in_top_k(&[0.1, 0.2, 0.3, 0.4], 1, 3));
        assert!(!in_top_k(&[0.4, 0.1, 0.2, 0.3], 1, 3));
    }
}
