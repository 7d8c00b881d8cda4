//! Reading Prometheus text exposition (what `/metrics` serves) in tests.

/// The value of the sample `name{labels…}` in `text`, or `None` when no
/// sample of that name carries every label given (other labels may be
/// present). Several matching samples are summed, so `&[]` sums a labelled
/// counter over its labels.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let has_all = labels.iter().all(|(k, v)| {
            series_labels
                .split(',')
                .any(|pair| pair.trim() == format!("{k}=\"{v}\""))
        });
        if !has_all {
            continue;
        }
        if let Ok(v) = value.trim().parse::<f64>() {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text = "# HELP x_total help\n# TYPE x_total counter\n\
                    x_total{reason=\"a\"} 2\nx_total{reason=\"b\"} 3\ny 7\n";
        assert_eq!(sample(text, "x_total", &[("reason", "b")]), Some(3.0));
        assert_eq!(sample(text, "x_total", &[]), Some(5.0));
        assert_eq!(sample(text, "y", &[]), Some(7.0));
        assert_eq!(sample(text, "x_total", &[("reason", "c")]), None);
        assert_eq!(sample(text, "z", &[]), None);
    }
}
