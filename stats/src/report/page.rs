//! The page shell: style sheet, header, provenance and footer. No scripts,
//! fonts, images or links: the file stands alone.

use crate::report::format::escape;
use serde_json::Value;

/// The style sheet, inlined.
pub const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
  color: #1d2733; background: #f5f7fa; margin: 0; line-height: 1.45; font-size: 15px; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header { background: #17324d; color: #fff; padding: 22px 28px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; }
header p { margin: 0; color: #c9d6e3; }
section { background: #fff; border: 1px solid #dde3ea; border-radius: 6px; padding: 16px 20px; margin: 18px 0; }
h2 { font-size: 18px; margin: 0 0 12px; color: #17324d; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { padding: 5px 12px; border-bottom: 1px solid #e6eaef; text-align: left; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.num { font-variant-numeric: tabular-nums; }
.na { color: #8a96a3; }
.boot { color: #5b6b7b; font-size: 12.5px; display: block; white-space: nowrap; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.grid > div { flex: 0 1 auto; }
svg { max-width: 100%; height: auto; }
ul.warnings li { color: #7a4b00; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.prov dt { font-weight: 600; color: #44566a; }
dl.prov dd { margin: 0; word-break: break-all; }
footer { color: #6b7a8a; font-size: 13px; margin-top: 24px; }
.note { color: #5b6b7b; font-size: 13px; }
"#;

/// Inline SVG as produced by plotters, without the XML namespace attribute
/// (HTML does not need it) so the page holds no URL at all.
pub fn inline_svg(svg: &str, label: &str) -> String {
    let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(label)),
        1,
    )
}

/// Model and data provenance from run.json: its scalar fields, with nested
/// objects flattened to `a.b` keys and arrays summarised.
pub fn provenance(run: &Value) -> String {
    let mut rows = Vec::new();
    flatten("", run, 0, &mut rows);
    let mut html = String::from("<dl class=\"prov\">");
    for (key, value) in rows {
        html.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            escape(&key),
            escape(&value)
        ));
    }
    html.push_str("</dl>");
    html
}

fn flatten(prefix: &str, value: &Value, depth: usize, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if depth < 3 => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, depth + 1, rows);
            }
        }
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            let text: Vec<String> = items.iter().map(scalar).collect();
            rows.push((prefix.to_string(), text.join(", ")));
        }
        Value::Array(items) if depth < 3 && items.len() <= 20 => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, depth + 1, rows);
            }
        }
        Value::Array(items) => rows.push((prefix.to_string(), format!("{} entries", items.len()))),
        other => rows.push((prefix.to_string(), scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_flattens_and_escapes() {
        let run = serde_json::json!({"model": {"name": "ptc<mm>", "sha256": "ab12"}, "archives": ["a1", "a2"]});
        let html = provenance(&run);
        assert!(
            html.contains("<dt>model.name</dt><dd>ptc&lt;mm&gt;</dd>"),
            "{html}"
        );
        assert!(html.contains("<dd>a1, a2</dd>"), "{html}");
    }

    #[test]
    fn inline_svg_drops_the_namespace_url() {
        let svg = inline_svg(
            "<svg width=\"2\" xmlns=\"http://www.w3.org/2000/svg\"></svg>",
            "x",
        );
        assert!(!svg.contains("http"));
        assert!(svg.starts_with("<svg role=\"img\""));
    }
}
