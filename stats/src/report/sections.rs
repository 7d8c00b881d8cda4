//! The report's sections, task by task.

use crate::auc::roc_curve;
use crate::error::StatsError;
use crate::metrics::{BinaryMetrics, MulticlassMetrics};
use crate::predictions::{BinaryPredictions, MulticlassPredictions};
use crate::report::ReportInput;
use crate::report::charts::{RocSeries, calibration_chart, forest_plot, heat_map, roc_chart};
use crate::report::flow::flow_svg;
use crate::report::format::{Style, escape, interval, mark};
use crate::report::page::inline_svg;
use serde_json::Value;

fn section(id: &str, title: &str, content: &str) -> String {
    format!(
        "<section id=\"{id}\"><h2>{}</h2>{content}</section>",
        escape(title)
    )
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Operating point (FPR, TPR) of an interval pair of sensitivity/specificity.
fn operating_point(sens: &Value, spec: &Value) -> Option<(f64, f64)> {
    Some((
        1.0 - spec.get("estimate")?.as_f64()?,
        sens.get("estimate")?.as_f64()?,
    ))
}

/// The participant flow, or the simple count of analysed cases when unknown.
pub fn flow(input: &ReportInput<'_>) -> Result<String, StatsError> {
    let json = serde_json::to_value(input.metrics)?;
    let labelled = json["n"].as_u64().unwrap_or(0);
    let unlabelled = json["n_unlabelled"].as_u64().unwrap_or(0);
    let Some(flow) = &input.flow else {
        let content = format!(
            "<p>Rows in the predictions: {}; with a reference label (analysed): {}; unlabelled (kept, left out of the metrics): {}.</p>\
             <p class=\"note\">The flow from submission (eligibility, image QC, inference failures) is shown when the coordinator writes the report.</p>",
            mark(
                &["rows"],
                Some(input.predictions.len() as f64),
                Style::Count
            ),
            mark(&["n"], Some(labelled as f64), Style::Count),
            mark(&["n_unlabelled"], Some(unlabelled as f64), Style::Count),
        );
        return Ok(section("flow", "Cases", &content));
    };
    let mut content = inline_svg(
        &flow_svg(flow, labelled, unlabelled)?,
        "participant flow diagram",
    );
    for problem in flow.inconsistencies() {
        content.push_str(&format!("<p class=\"note\">{}</p>", escape(&problem)));
    }
    Ok(section("flow", "Participant flow (STARD)", &content))
}

/// The warnings list, if any.
pub fn warnings(warnings: &[String]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let items: String = warnings
        .iter()
        .map(|w| format!("<li>{}</li>", escape(w)))
        .collect();
    section(
        "warnings",
        "Warnings",
        &format!("<ul class=\"warnings\">{items}</ul>"),
    )
}

fn row(name: &str, value: String) -> String {
    format!(
        "<tr><th scope=\"row\">{}</th><td>{value}</td></tr>",
        escape(name)
    )
}

/// The binary task's sections.
pub fn binary(m: &BinaryMetrics, j: &Value, p: &BinaryPredictions) -> Result<String, StatsError> {
    let mut html = String::new();
    let count = |key: &str| mark(&[key], num(&j[key]), Style::Count);
    let mut table = String::from("<table id=\"headline-table\">");
    table.push_str(&row(
        "Labelled cases",
        format!(
            "{} ({} positive, {} negative; {} unlabelled)",
            count("n"),
            count("n_positive"),
            count("n_negative"),
            count("n_unlabelled")
        ),
    ));
    table.push_str(&row(
        "Metastasis rate (prevalence)",
        interval(&["prevalence"], &j["prevalence"]),
    ));
    table.push_str(&row("AUC (DeLong)", interval(&["auc"], &j["auc"])));
    table.push_str(&row(
        &format!("Threshold ({})", threshold_origin(m.threshold_source)),
        mark(&["threshold"], num(&j["threshold"]), Style::Decimal3),
    ));
    if m.threshold_method == "fixed" {
        table.push_str(&row(
            "Youden threshold of these cases (secondary: optimistic, chosen on them)",
            mark(
                &["own_youden_threshold"],
                num(&j["own_youden_threshold"]),
                Style::Decimal3,
            ),
        ));
    }
    for (key, name) in [
        ("sensitivity", "Sensitivity"),
        ("specificity", "Specificity"),
        ("ppv", "PPV"),
        ("npv", "NPV"),
        ("accuracy", "Accuracy"),
    ] {
        table.push_str(&row(name, interval(&[key], &j[key])));
    }
    table.push_str("</table>");
    html.push_str(&section(
        "headline",
        "Headline results (95 % intervals)",
        &table,
    ));

    let labelled: Vec<&crate::predictions::BinaryCase> =
        p.cases.iter().filter(|c| c.label.is_some()).collect();
    let curve = |cases: &[&crate::predictions::BinaryCase]| {
        let scores: Vec<f64> = cases.iter().map(|c| c.score).collect();
        let positive: Vec<bool> = cases.iter().map(|c| c.label == Some(true)).collect();
        roc_curve(&scores, &positive)
    };
    let mut series = vec![RocSeries {
        name: format!(
            "pooled (AUC {})",
            m.auc.map_or("—".into(), |a| format!("{:.3}", a.estimate))
        ),
        points: curve(&labelled),
        operating_point: operating_point(&j["sensitivity"], &j["specificity"]),
        emphasised: true,
    }];
    for (site, s) in &m.per_site.0 {
        let cases: Vec<_> = labelled
            .iter()
            .copied()
            .filter(|c| &c.site == site)
            .collect();
        let points = curve(&cases);
        if points.is_empty() {
            continue;
        }
        series.push(RocSeries {
            name: format!(
                "site {site} (AUC {})",
                s.auc.map_or("—".into(), |a| format!("{:.3}", a.estimate))
            ),
            points,
            operating_point: operating_point(
                &j["per_site"][site]["sensitivity"],
                &j["per_site"][site]["specificity"],
            ),
            emphasised: false,
        });
    }
    let roc = inline_svg(
        &roc_chart("ROC curves (dot = operating point)", &series)?,
        "ROC curves",
    );
    let cal = inline_svg(
        &calibration_chart(
            "Calibration (10 equal-width bins)",
            &[(String::new(), &m.calibration.bins)],
        )?,
        "calibration plot",
    );
    html.push_str(&section(
        "curves",
        "Discrimination and calibration",
        &format!(
            "<div class=\"grid\"><div>{roc}</div><div>{cal}</div></div>{}",
            calibration_table(&[("", &j["calibration"])])
        ),
    ));

    if let Some(c) = m.confusion {
        let labels = vec!["negative".to_string(), "positive".to_string()];
        let svg = heat_map(
            "2×2 table at the threshold",
            &labels,
            &[vec![c.tn, c.fp], vec![c.fn_, c.tp]],
            "Predicted",
            "Pathology",
        )?;
        let cells = ["tp", "fp", "tn", "fn"].map(|k| {
            format!(
                "{} {}",
                k.to_uppercase(),
                mark(&["confusion", k], num(&j["confusion"][k]), Style::Count)
            )
        });
        html.push_str(&section(
            "confusion",
            "Confusion matrix",
            &format!(
                "{}<p>{}</p>",
                inline_svg(&svg, "confusion matrix"),
                cells.join(" · ")
            ),
        ));
    }

    let mut sites = String::from(
        "<table id=\"per-site\"><tr><th>Site</th><th>n</th><th>Positive</th><th>AUC (DeLong)</th><th>Sensitivity</th><th>Specificity</th></tr>",
    );
    for (site, _) in &m.per_site.0 {
        let s = &j["per_site"][site];
        let base = ["per_site", site.as_str()];
        let at = |k: &'static str| [base[0], base[1], k];
        sites.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(site),
            mark(&at("n"), num(&s["n"]), Style::Count),
            mark(&at("n_positive"), num(&s["n_positive"]), Style::Count),
            interval(&at("auc"), &s["auc"]),
            interval(&at("sensitivity"), &s["sensitivity"]),
            interval(&at("specificity"), &s["specificity"]),
        ));
    }
    sites.push_str("</table><p class=\"note\">Sensitivity and specificity per site use the global threshold.</p>");
    html.push_str(&section("sites", "Per site", &sites));

    let components = [
        (
            "stage_agreement",
            &m.stage_agreement,
            "Stage group",
            "stage",
        ),
        ("t_agreement", &m.t_agreement, "pT", "pT"),
        ("n_agreement", &m.n_agreement, "pN", "pN"),
    ];
    let mut content = String::new();
    for (key, block, title, noun) in components {
        let Some(block) = block else { continue };
        let s = &j[key];
        content.push_str(&format!(
            "<h3>{title}</h3><p>Cases with both: {}; exact agreement {}. Weighted kappa (95 % CI, large-sample SE): linear {}, quadratic {}. Categories in order: {}.</p>",
            mark(&[key, "n"], num(&s["n"]), Style::Count),
            mark(&[key, "accuracy"], num(&s["accuracy"]), Style::Decimal3),
            interval(&[key, "kappa_linear_interval"], &s["kappa_linear_interval"]),
            interval(&[key, "kappa_quadratic_interval"], &s["kappa_quadratic_interval"]),
            escape(&block.categories.join(" < "))
        ));
        if !block.categories.is_empty() {
            let svg = heat_map(
                &format!("{title}: pathological vs predicted"),
                &block.categories,
                &block.matrix,
                &format!("Predicted {noun}"),
                &format!("Pathological {noun}"),
            )?;
            content.push_str(&inline_svg(&svg, &format!("{noun} agreement matrix")));
        }
    }
    if !content.is_empty() {
        html.push_str(&section("stage", "Stage, pT and pN agreement", &content));
    }

    if !m.odds_ratios.is_empty() {
        let mut table = String::from(
            "<table id=\"odds-ratios\"><tr><th>Term</th><th>Odds ratio (95 % CI)</th><th>p</th></tr>",
        );
        for (i, o) in m.odds_ratios.iter().enumerate() {
            let v = &j["odds_ratios"][i];
            let idx = i.to_string();
            let at = |k: &'static str| ["odds_ratios", idx.as_str(), k];
            table.push_str(&format!(
                "<tr><td>{}</td><td>{} ({}–{})</td><td>{}</td></tr>",
                escape(&o.term),
                mark(&at("odds_ratio"), num(&v["odds_ratio"]), Style::Decimal3),
                mark(&at("ci_low"), num(&v["ci_low"]), Style::Decimal3),
                mark(&at("ci_high"), num(&v["ci_high"]), Style::Decimal3),
                mark(&at("p_value"), num(&v["p_value"]), Style::PValue),
            ));
        }
        table.push_str("</table>");
        let plot = if m.odds_ratios.iter().any(|o| o.odds_ratio.is_some()) {
            inline_svg(&forest_plot(&m.odds_ratios)?, "odds-ratio forest plot")
        } else {
            "<p class=\"note\">No odds ratio could be estimated; see the warnings.</p>".to_string()
        };
        html.push_str(&section(
            "odds-ratios-section",
            "Adjusted odds ratios (logistic regression)",
            &format!("{plot}{table}"),
        ));
    }
    Ok(html)
}

/// Calibration summary rows: one per `(name, calibration JSON)`; `base` path
/// is `calibration` or `calibration/<class>`.
fn calibration_table(entries: &[(&str, &Value)]) -> String {
    let mut t = String::from("<table class=\"calibration\"><tr>");
    if entries.iter().any(|(n, _)| !n.is_empty()) {
        t.push_str("<th>Class</th>");
    }
    t.push_str("<th>Calibration intercept</th><th>Calibration slope</th><th>Brier score</th><th>Scores of 0 or 1 left out</th></tr>");
    for (name, c) in entries {
        let base: Vec<&str> = if name.is_empty() {
            vec!["calibration"]
        } else {
            vec!["calibration", name]
        };
        let at = |k: &'static str| {
            let mut p = base.clone();
            p.push(k);
            p
        };
        t.push_str("<tr>");
        if !name.is_empty() {
            t.push_str(&format!("<td>{}</td>", escape(name)));
        }
        t.push_str(&format!(
            "<td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            interval(&at("intercept"), &c["intercept"]),
            interval(&at("slope"), &c["slope"]),
            mark(&at("brier"), num(&c["brier"]), Style::Decimal3),
            mark(&at("n_excluded"), num(&c["n_excluded"]), Style::Count),
        ));
    }
    t.push_str("</table><p class=\"note\">Perfect calibration: intercept 0, slope 1.</p>");
    t
}

/// The multi-class task's sections.
pub fn multiclass(
    m: &MulticlassMetrics,
    j: &Value,
    p: &MulticlassPredictions,
) -> Result<String, StatsError> {
    let mut html = String::new();
    let mut table = String::from("<table id=\"headline-table\">");
    table.push_str(&row(
        "Labelled cases",
        format!(
            "{} ({} unlabelled)",
            mark(&["n"], num(&j["n"]), Style::Count),
            mark(&["n_unlabelled"], num(&j["n_unlabelled"]), Style::Count)
        ),
    ));
    table.push_str(&row(
        "Top-1 accuracy",
        interval(&["top1_accuracy"], &j["top1_accuracy"]),
    ));
    table.push_str(&row(
        "Top-3 accuracy",
        interval(&["top3_accuracy"], &j["top3_accuracy"]),
    ));
    let mut macro_auc = mark(&["macro_auc"], num(&j["macro_auc"]), Style::Decimal3);
    if let Some(b) = j.get("bootstrap").and_then(|b| b.get("macro_auc")) {
        macro_auc.push_str(&format!(
            " <span class=\"boot\">bootstrap {}–{}</span>",
            mark(
                &["bootstrap", "macro_auc", "ci_low"],
                num(&b["ci_low"]),
                Style::Decimal3
            ),
            mark(
                &["bootstrap", "macro_auc", "ci_high"],
                num(&b["ci_high"]),
                Style::Decimal3
            )
        ));
    }
    table.push_str(&row("Macro AUC (one-vs-rest)", macro_auc));
    table.push_str("</table>");
    html.push_str(&section(
        "headline",
        "Headline results (95 % intervals)",
        &table,
    ));

    let mut classes = String::from(
        "<table id=\"per-class\"><tr><th>Class</th><th>n</th><th>AUC (DeLong)</th><th>Sensitivity</th><th>Specificity</th></tr>",
    );
    for name in &m.classes {
        let c = &j["per_class"][name];
        let at = |k: &'static str| ["per_class", name.as_str(), k];
        classes.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            mark(&at("n"), num(&c["n"]), Style::Count),
            interval(&at("auc"), &c["auc"]),
            interval(&at("sensitivity"), &c["sensitivity"]),
            interval(&at("specificity"), &c["specificity"]),
        ));
    }
    classes.push_str("</table><p class=\"note\">One-vs-rest; sensitivity and specificity of the arg-max prediction.</p>");
    html.push_str(&section("classes", "Per class", &classes));

    let labelled: Vec<&crate::predictions::MulticlassCase> =
        p.cases.iter().filter(|c| c.label.is_some()).collect();
    let mut series = Vec::new();
    for (k, name) in m.classes.iter().enumerate() {
        let scores: Vec<f64> = labelled.iter().map(|c| c.scores[k]).collect();
        let positive: Vec<bool> = labelled.iter().map(|c| c.label == Some(k)).collect();
        let points = roc_curve(&scores, &positive);
        if points.is_empty() {
            continue;
        }
        let auc = m
            .per_class
            .get(name)
            .and_then(|c| c.auc)
            .map_or("—".into(), |a| format!("{:.3}", a.estimate));
        series.push(RocSeries {
            name: format!("{name} ({auc})"),
            points,
            operating_point: operating_point(
                &j["per_class"][name]["sensitivity"],
                &j["per_class"][name]["specificity"],
            ),
            emphasised: false,
        });
    }
    let roc = inline_svg(
        &roc_chart("One-vs-rest ROC curves (dot = arg-max call)", &series)?,
        "ROC curves",
    );
    let cal_series: Vec<(String, &[crate::calibration::ReliabilityBin])> = m
        .calibration
        .0
        .iter()
        .map(|(name, c)| (name.clone(), c.bins.as_slice()))
        .collect();
    let cal = inline_svg(
        &calibration_chart("Calibration per class (10 bins)", &cal_series)?,
        "calibration plot",
    );
    let entries: Vec<(&str, &Value)> = m
        .classes
        .iter()
        .map(|c| (c.as_str(), &j["calibration"][c]))
        .collect();
    html.push_str(&section(
        "curves",
        "Discrimination and calibration",
        &format!(
            "<div class=\"grid\"><div>{roc}</div><div>{cal}</div></div>{}",
            calibration_table(&entries)
        ),
    ));

    let svg = heat_map(
        "Confusion matrix (colour = share of the true class)",
        &m.classes,
        &m.confusion_matrix.counts,
        "Predicted origin",
        "True origin",
    )?;
    html.push_str(&section(
        "confusion",
        "Confusion matrix",
        &inline_svg(&svg, "confusion matrix"),
    ));

    let mut sites = String::from(
        "<table id=\"per-site\"><tr><th>Site</th><th>n</th><th>Top-1 accuracy</th></tr>",
    );
    for (site, _) in &m.per_site.0 {
        let s = &j["per_site"][site];
        sites.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(site),
            mark(&["per_site", site, "n"], num(&s["n"]), Style::Count),
            interval(&["per_site", site, "top1_accuracy"], &s["top1_accuracy"]),
        ));
    }
    sites.push_str("</table>");
    html.push_str(&section("sites", "Per site", &sites));

    if !m.readers.0.is_empty() {
        let mut t = String::from(
            "<table id=\"readers\"><tr><th>Reader</th><th>Cases read</th><th>Reader accuracy</th><th>Model accuracy (same cases)</th><th>McNemar p (exact)</th></tr>",
        );
        for (name, _) in &m.readers.0 {
            let r = &j["readers"][name];
            let at = |k: &'static str| ["readers", name.as_str(), k];
            t.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                mark(&at("n"), num(&r["n"]), Style::Count),
                interval(&at("accuracy"), &r["accuracy"]),
                interval(&at("model_accuracy"), &r["model_accuracy"]),
                mark(&at("mcnemar_p"), num(&r["mcnemar_p"]), Style::PValue),
            ));
        }
        t.push_str("</table>");
        html.push_str(&section("readers-section", "Reader comparison", &t));
    }
    Ok(html)
}

/// Where the operating threshold came from, in words.
fn threshold_origin(source: &str) -> &'static str {
    use crate::options::ThresholdSource;
    ThresholdSource::ALL
        .into_iter()
        .find(|s| s.as_str() == source)
        .map_or("Youden's, chosen on these cases", ThresholdSource::describe)
}
