//! Number formatting and HTML escaping for the report; every number shown is
//! marked with the metrics.json path it comes from (`data-metric`), its exact
//! value (`data-value`) and how it was formatted (`data-format`).

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a marked number is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Three decimals.
    Decimal3,
    /// A p-value: three decimals, or `<0.001`.
    PValue,
    /// A whole number.
    Count,
}

impl Style {
    fn name(self) -> &'static str {
        match self {
            Style::Decimal3 => "3dp",
            Style::PValue => "p",
            Style::Count => "int",
        }
    }

    /// The printed text of `value`.
    pub fn text(self, value: f64) -> String {
        match self {
            Style::Decimal3 => format!("{value:.3}"),
            Style::PValue if value < 0.001 => "<0.001".to_string(),
            Style::PValue => format!("{value:.3}"),
            Style::Count => format!("{value:.0}"),
        }
    }
}

/// A number marked with its metrics.json path (keys joined by `/`); an
/// em dash for `null`.
pub fn mark(path: &[&str], value: Option<f64>, style: Style) -> String {
    match value {
        Some(v) => format!(
            "<span class=\"num\" data-metric=\"{}\" data-value=\"{v:?}\" data-format=\"{}\">{}</span>",
            escape(&path.join("/")),
            style.name(),
            escape(&style.text(v))
        ),
        None => "<span class=\"na\" title=\"undefined; see warnings\">—</span>".to_string(),
    }
}

/// An estimate with its interval, "0.873 (0.841–0.905)", each part marked;
/// `base` is the interval's path and `value` its JSON object (or null).
pub fn interval(base: &[&str], value: &serde_json::Value) -> String {
    if value.is_null() {
        return mark(base, None, Style::Decimal3);
    }
    let part = |key: &str| {
        let mut path = base.to_vec();
        path.push(key);
        mark(
            &path,
            value.get(key).and_then(serde_json::Value::as_f64),
            Style::Decimal3,
        )
    };
    // A dash between negative bounds reads as a minus: say "to" instead.
    let negative = value
        .get("ci_low")
        .and_then(serde_json::Value::as_f64)
        .is_some_and(|v| v < 0.0);
    let dash = if negative { " to " } else { "–" };
    let mut text = format!(
        "{} ({}{dash}{})",
        part("estimate"),
        part("ci_low"),
        part("ci_high")
    );
    if let Some(boot) = value.get("bootstrap").filter(|b| !b.is_null()) {
        let mut low = base.to_vec();
        low.extend(["bootstrap", "ci_low"]);
        let mut high = base.to_vec();
        high.extend(["bootstrap", "ci_high"]);
        text.push_str(&format!(
            " <span class=\"boot\">bootstrap {}–{}</span>",
            mark(
                &low,
                boot.get("ci_low").and_then(serde_json::Value::as_f64),
                Style::Decimal3
            ),
            mark(
                &high,
                boot.get("ci_high").and_then(serde_json::Value::as_f64),
                Style::Decimal3
            )
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_carry_path_value_and_text() {
        let m = mark(&["per_site", "A&B", "n"], Some(12.0), Style::Count);
        assert!(m.contains("data-metric=\"per_site/A&amp;B/n\""), "{m}");
        assert!(m.contains(">12<"), "{m}");
        assert_eq!(Style::PValue.text(0.0004), "<0.001");
        assert!(mark(&["x"], None, Style::Decimal3).contains('—'));
    }

    #[test]
    fn interval_reads_estimate_and_bounds() {
        let v = serde_json::json!({"estimate": 0.8731, "ci_low": 0.8412, "ci_high": 0.9049});
        let html = interval(&["auc"], &v);
        assert!(
            html.contains(">0.873<") && html.contains(">0.841<") && html.contains(">0.905<"),
            "{html}"
        );
    }
}
