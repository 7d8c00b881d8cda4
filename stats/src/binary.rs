//! The binary task's metrics: AUC, threshold, 2×2 table and its proportions,
//! per-site results, stage agreement, adjusted odds ratios, calibration.

use crate::auc::{AucInterval, RankedScores, auc_delong};
use crate::bootstrap::{Strata, percentile_interval, run_replicates};
use crate::calibration::calibration;
use crate::covariates::build_design;
use crate::error::StatsError;
use crate::interval::{Interval, Z95, wilson};
use crate::kappa::{KappaWeights, weighted_kappa, weighted_kappa_se};
use crate::logistic::{fit_logit, wald_p_value};
use crate::metrics::{
    BinaryMetrics, BootstrapInfo, Confusion, OddsRatio, OrderedMap, SCHEMA_VERSION, SiteBinary,
    StageAgreement,
};
use crate::options::{AnalyzeOptions, ThresholdChoice};
use crate::predictions::{BinaryPredictions, Component, locate};
use crate::threshold::youden_threshold;

/// Computes every binary metric of `predictions`.
pub fn analyze_binary(
    predictions: &BinaryPredictions,
    options: &AnalyzeOptions,
) -> Result<BinaryMetrics, StatsError> {
    let mut warnings = Vec::new();
    let labelled: Vec<usize> = (0..predictions.cases.len())
        .filter(|&i| predictions.cases[i].label.is_some())
        .collect();
    let scores: Vec<f64> = labelled
        .iter()
        .map(|&i| predictions.cases[i].score)
        .collect();
    let positive: Vec<bool> = labelled
        .iter()
        .map(|&i| predictions.cases[i].label == Some(true))
        .collect();
    let n = labelled.len() as u64;
    let n_positive = positive.iter().filter(|p| **p).count() as u64;
    if n == 0 {
        warnings.push("no labelled cases: every metric is null".to_string());
    }
    let prevalence = proportion(n_positive, n, "prevalence", &mut warnings);
    let auc = auc_or_warn(&scores, &positive, "AUC", &mut warnings);
    let own_youden_threshold = youden_threshold(&scores, &positive);
    let (threshold, threshold_method, threshold_source) = match options.threshold {
        ThresholdChoice::Fixed(t) => (Some(t), "fixed", options.threshold_source.as_str()),
        ThresholdChoice::Youden => {
            if own_youden_threshold.is_none() && n > 0 {
                warnings.push(
                    "Youden threshold undefined: the labelled cases have one class".to_string(),
                );
            }
            (own_youden_threshold, "youden", "own_youden")
        }
    };
    let called: Vec<bool> = scores
        .iter()
        .map(|&s| threshold.is_some_and(|t| s >= t))
        .collect();
    let confusion = threshold.map(|_| table(&positive, &called, None));
    let (sensitivity, specificity, ppv, npv, accuracy) = match confusion {
        Some(c) => (
            proportion(c.tp, c.tp + c.fn_, "sensitivity", &mut warnings),
            proportion(c.tn, c.tn + c.fp, "specificity", &mut warnings),
            proportion(c.tp, c.tp + c.fp, "PPV", &mut warnings),
            proportion(c.tn, c.tn + c.fn_, "NPV", &mut warnings),
            proportion(c.tp + c.tn, n, "accuracy", &mut warnings),
        ),
        None => (None, None, None, None, None),
    };
    let sites: Vec<&str> = labelled
        .iter()
        .map(|&i| predictions.cases[i].site.as_str())
        .collect();
    let per_site = per_site(
        predictions,
        &sites,
        &scores,
        &positive,
        &called,
        threshold.is_some(),
        &mut warnings,
    );
    let mut agreement_of =
        |c: Component| agreement(predictions, c, options.order(c).as_deref(), &mut warnings);
    let stage_agreement = agreement_of(Component::Stage)?;
    let t_agreement = agreement_of(Component::PrimaryTumour)?;
    let n_agreement = agreement_of(Component::RegionalNodes)?;
    let odds_ratios = odds_ratios(predictions, options, &mut warnings)?;
    let calibration = calibration(&scores, &positive, "", &mut warnings);
    let mut metrics = BinaryMetrics {
        schema_version: SCHEMA_VERSION,
        task: "binary",
        n,
        n_positive,
        n_negative: n - n_positive,
        n_unlabelled: predictions.cases.len() as u64 - n,
        prevalence,
        auc,
        threshold,
        threshold_method,
        threshold_source,
        own_youden_threshold,
        sensitivity,
        specificity,
        ppv,
        npv,
        accuracy,
        confusion,
        per_site,
        stage_agreement,
        t_agreement,
        n_agreement,
        odds_ratios,
        calibration,
        bootstrap: None,
        warnings,
    };
    if options.bootstrap > 0 && n > 0 {
        add_bootstrap(&mut metrics, &sites, &scores, &positive, &called, options);
    }
    Ok(metrics)
}

/// A Wilson proportion, or `null` with a warning when the denominator is zero.
pub(crate) fn proportion(
    successes: u64,
    trials: u64,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<Interval> {
    let p = wilson(successes, trials);
    if p.is_none() {
        warnings.push(format!("{what} undefined: zero denominator"));
    }
    p
}

/// An AUC with DeLong interval, or `null` with a warning naming `what`.
pub(crate) fn auc_or_warn(
    scores: &[f64],
    positive: &[bool],
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<AucInterval> {
    match auc_delong(scores, positive) {
        Ok(auc) => {
            if auc.ci_low.is_none() {
                warnings.push(format!(
                    "{what}: DeLong interval undefined (fewer than two cases of a class)"
                ));
            }
            Some(auc)
        }
        Err(why) => {
            warnings.push(format!("{what} undefined: {}", why.reason()));
            None
        }
    }
}

/// The 2×2 table over the cases where `weights` (if any) is non-zero, each
/// counted `weights[i]` times.
fn table(positive: &[bool], called: &[bool], weights: Option<&[u32]>) -> Confusion {
    let mut c = Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    };
    for i in 0..positive.len() {
        let w = weights.map_or(1, |w| u64::from(w[i]));
        match (positive[i], called[i]) {
            (true, true) => c.tp += w,
            (false, true) => c.fp += w,
            (false, false) => c.tn += w,
            (true, false) => c.fn_ += w,
        }
    }
    c
}

fn per_site(
    predictions: &BinaryPredictions,
    sites: &[&str],
    scores: &[f64],
    positive: &[bool],
    called: &[bool],
    has_threshold: bool,
    warnings: &mut Vec<String>,
) -> OrderedMap<SiteBinary> {
    let mut names: Vec<&str> = predictions.cases.iter().map(|c| c.site.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let entries = names
        .into_iter()
        .map(|site| {
            let rows: Vec<usize> = (0..sites.len()).filter(|&j| sites[j] == site).collect();
            let pick = |v: &[bool]| rows.iter().map(|&j| v[j]).collect::<Vec<bool>>();
            let (site_pos, site_called) = (pick(positive), pick(called));
            let site_scores: Vec<f64> = rows.iter().map(|&j| scores[j]).collect();
            let c = table(&site_pos, &site_called, None);
            let label = format!("site {site}");
            let result = SiteBinary {
                n: rows.len() as u64,
                n_positive: c.tp + c.fn_,
                auc: auc_or_warn(&site_scores, &site_pos, &format!("{label}: AUC"), warnings),
                sensitivity: if has_threshold {
                    proportion(
                        c.tp,
                        c.tp + c.fn_,
                        &format!("{label}: sensitivity"),
                        warnings,
                    )
                } else {
                    None
                },
                specificity: if has_threshold {
                    proportion(
                        c.tn,
                        c.tn + c.fp,
                        &format!("{label}: specificity"),
                        warnings,
                    )
                } else {
                    None
                },
            };
            (site.to_string(), result)
        })
        .collect();
    OrderedMap(entries)
}

/// Agreement of pathology and model on one ordinal component, over the
/// cases where both are given; `None` when the component's columns are not.
fn agreement(
    predictions: &BinaryPredictions,
    component: Component,
    order: Option<&[String]>,
    warnings: &mut Vec<String>,
) -> Result<Option<StageAgreement>, StatsError> {
    if !predictions.components.contains(&component) {
        return Ok(None);
    }
    let (noun, prefix) = (component.noun(), component.prefix());
    let pairs: Vec<(usize, &str, &str)> = predictions
        .cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let pair = &c.ordinal[component as usize];
            Some((i, pair.truth.as_deref()?, pair.predicted.as_deref()?))
        })
        .collect();
    let categories: Vec<String> = match order {
        Some(order) => order.to_vec(),
        None => {
            let mut all: Vec<String> = pairs
                .iter()
                .flat_map(|(_, a, b)| [a.to_string(), b.to_string()])
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    let index_of = |i: usize, value: &str, column: &str| {
        categories
            .iter()
            .position(|c| c == value)
            .ok_or_else(|| StatsError::Invalid {
                file: predictions.source.clone(),
                at: locate(predictions.cases[i].line, i, column),
                message: format!(
                    "{noun} \"{value}\" is not in {} ({})",
                    component.order_flag(),
                    categories.join(",")
                ),
            })
    };
    let mut first = Vec::with_capacity(pairs.len());
    let mut second = Vec::with_capacity(pairs.len());
    let (truth_column, predicted_column) = (format!("{prefix}_true"), format!("{prefix}_pred"));
    for &(i, t, p) in &pairs {
        first.push(index_of(i, t, &truth_column)?);
        second.push(index_of(i, p, &predicted_column)?);
    }
    let k = categories.len();
    let mut counts = vec![vec![0u64; k]; k];
    for (&a, &b) in first.iter().zip(&second) {
        counts[a][b] += 1;
    }
    let kappa = |w| weighted_kappa(&first, &second, k, w);
    let (kappa_linear, kappa_quadratic) =
        (kappa(KappaWeights::Linear), kappa(KappaWeights::Quadratic));
    if kappa_linear.is_none() || kappa_quadratic.is_none() {
        warnings.push(format!(
            "{noun} agreement: kappa undefined over {} case(s) in {} observed categor{} (no expected disagreement)",
            pairs.len(),
            categories.len(),
            if categories.len() == 1 { "y" } else { "ies" }
        ));
    }
    // With every case of one side in one category, kappa is 0 by
    // construction and its large-sample SE degenerates to 0: no interval.
    let used = |nonzero: &dyn Fn(usize) -> bool| (0..k).filter(|&c| nonzero(c)).count();
    let one_sided = used(&|i| counts[i].iter().any(|&c| c > 0)) < 2
        || used(&|j| counts.iter().any(|row| row[j] > 0)) < 2;
    if one_sided && !pairs.is_empty() {
        warnings.push(format!(
            "{noun} agreement: kappa intervals undefined, the pathological or the predicted {} use one category",
            if component == Component::Stage { "stages" } else { "categories" }
        ));
    }
    let interval = |kappa: Option<f64>, w| {
        if one_sided {
            return None;
        }
        let se = weighted_kappa_se(&counts, w)?;
        kappa.map(|estimate| Interval {
            estimate,
            ci_low: estimate - Z95 * se,
            ci_high: estimate + Z95 * se,
            bootstrap: None,
        })
    };
    let agreeing = first.iter().zip(&second).filter(|(a, b)| a == b).count();
    Ok(Some(StageAgreement {
        n: pairs.len() as u64,
        accuracy: (!pairs.is_empty()).then(|| agreeing as f64 / pairs.len() as f64),
        kappa_linear_interval: interval(kappa_linear, KappaWeights::Linear),
        kappa_quadratic_interval: interval(kappa_quadratic, KappaWeights::Quadratic),
        interval_method: "large-sample standard error (Fleiss, Cohen & Everitt 1969), kappa ± 1.96 SE",
        categories,
        kappa_linear,
        kappa_quadratic,
        matrix: counts,
    }))
}

fn odds_ratios(
    predictions: &BinaryPredictions,
    options: &AnalyzeOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<OddsRatio>, StatsError> {
    if options.covariates.is_empty() {
        if !options.references.is_empty() {
            return Err(StatsError::BadOption {
                option: "--reference",
                message: "given without --covariates".into(),
            });
        }
        return Ok(Vec::new());
    }
    let design = build_design(predictions, &options.covariates, &options.references)?;
    warnings.extend(design.notes.iter().cloned());
    if design.dropped > 0 {
        warnings.push(format!(
            "odds ratios: {} labelled case(s) with a missing covariate value left out of the fit ({} used)",
            design.dropped,
            design.y.len()
        ));
    }
    let fit = fit_logit(&design.x, &design.y, None);
    Ok(match fit {
        Ok(fit) => design
            .terms
            .iter()
            .enumerate()
            .map(|(j, term)| {
                let (b, se) = (fit.beta[j + 1], fit.se[j + 1]);
                OddsRatio {
                    term: term.clone(),
                    odds_ratio: Some(b.exp()),
                    ci_low: Some((b - Z95 * se).exp()),
                    ci_high: Some((b + Z95 * se).exp()),
                    p_value: Some(wald_p_value(b / se)),
                }
            })
            .collect(),
        Err(failure) => {
            warnings.push(format!("odds ratios are null: {}", failure.reason()));
            design
                .terms
                .iter()
                .map(|term| OddsRatio {
                    term: term.clone(),
                    odds_ratio: None,
                    ci_low: None,
                    ci_high: None,
                    p_value: None,
                })
                .collect()
        }
    })
}

/// Percentile bootstrap intervals of the AUC and the proportions, at the
/// full-sample threshold, patients resampled within sites.
fn add_bootstrap(
    metrics: &mut BinaryMetrics,
    sites: &[&str],
    scores: &[f64],
    positive: &[bool],
    called: &[bool],
    options: &AnalyzeOptions,
) {
    let strata = Strata::new(sites);
    let cases: Vec<usize> = (0..scores.len()).collect();
    let Some(ranked) = RankedScores::new(&cases, scores, positive) else {
        metrics
            .warnings
            .push("bootstrap skipped: too many cases".to_string());
        return;
    };
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let replicates = run_replicates(&strata, options.bootstrap, options.seed, 7, |w, out| {
        out[0] = ranked.weighted_auc(w);
        let c = table(positive, called, Some(w));
        let n = c.tp + c.fp + c.tn + c.fn_;
        out[1] = ratio(c.tp + c.fn_, n);
        out[2] = ratio(c.tp, c.tp + c.fn_);
        out[3] = ratio(c.tn, c.tn + c.fp);
        out[4] = ratio(c.tp, c.tp + c.fp);
        out[5] = ratio(c.tn, c.tn + c.fn_);
        out[6] = ratio(c.tp + c.tn, n);
    });
    let names = [
        "AUC",
        "prevalence",
        "sensitivity",
        "specificity",
        "PPV",
        "NPV",
        "accuracy",
    ];
    let mut intervals = Vec::new();
    for (values, name) in replicates.into_iter().zip(names) {
        let undefined = options.bootstrap - values.len();
        if undefined > 0 {
            metrics.warnings.push(format!(
                "bootstrap: {name} undefined in {undefined} of {} replicates, left out",
                options.bootstrap
            ));
        }
        intervals.push(percentile_interval(values));
    }
    if let Some(auc) = metrics.auc.as_mut() {
        auc.bootstrap = intervals[0];
    }
    let targets = [
        &mut metrics.prevalence,
        &mut metrics.sensitivity,
        &mut metrics.specificity,
        &mut metrics.ppv,
        &mut metrics.npv,
        &mut metrics.accuracy,
    ];
    for (target, interval) in targets.into_iter().zip(&intervals[1..]) {
        if let Some(t) = target.as_mut() {
            t.bootstrap = *interval;
        }
    }
    metrics.bootstrap = Some(BootstrapInfo {
        replicates: options.bootstrap,
        seed: options.seed,
        resampling: "labelled cases with replacement within each site",
        interval: "percentile 2.5-97.5",
        macro_auc: None,
    });
}
