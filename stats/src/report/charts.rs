//! The report's charts, drawn with plotters into inline SVG: ROC curves,
//! reliability curves, count heat maps and the odds-ratio forest plot.

use crate::auc::RocPoint;
use crate::calibration::ReliabilityBin;
use crate::error::StatsError;
use crate::metrics::OddsRatio;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Font family of chart text (no font files: the browser's sans-serif).
pub const FONT: &str = "sans-serif";

/// Okabe–Ito colours, distinguishable with colour-vision deficiency.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

/// The colour of series `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Maps a plotters error into the crate's error, naming the chart.
pub fn plot_error<E: std::fmt::Debug>(chart: &'static str, err: E) -> StatsError {
    StatsError::Plot {
        chart,
        message: format!("{err:?}"),
    }
}

/// One ROC curve of a chart.
pub struct RocSeries {
    /// Legend text.
    pub name: String,
    /// The curve.
    pub points: Vec<RocPoint>,
    /// The operating point (FPR, TPR), marked with a dot.
    pub operating_point: Option<(f64, f64)>,
    /// Drawn thicker (the pooled curve).
    pub emphasised: bool,
}

/// Thins a curve for drawing: keeps a point when it is at least `step` from
/// the last kept one (in either axis), and always the last.
fn thin(points: &[RocPoint], step: f64) -> Vec<(f64, f64)> {
    let mut kept: Vec<(f64, f64)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let far = kept
            .last()
            .is_none_or(|&(x, y)| (p.fpr - x).abs() >= step || (p.tpr - y).abs() >= step);
        if far || i + 1 == points.len() {
            kept.push((p.fpr, p.tpr));
        }
    }
    kept
}

/// ROC curves with the chance diagonal and operating points.
pub fn roc_chart(caption: &str, series: &[RocSeries]) -> Result<String, StatsError> {
    let err = |e| plot_error("ROC curves", e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("1 − specificity")
            .y_desc("Sensitivity")
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                RGBColor(170, 170, 170).stroke_width(1),
            ))
            .map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            let width = if s.emphasised { 3 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    thin(&s.points, 0.002),
                    c.stroke_width(width),
                ))
                .map_err(err)?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
            if let Some(point) = s.operating_point {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        point,
                        if s.emphasised { 6 } else { 4 },
                        c.filled(),
                    )))
                    .map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Reliability curves (observed fraction against mean score per bin) with the
/// diagonal of perfect calibration.
pub fn calibration_chart(
    caption: &str,
    series: &[(String, &[ReliabilityBin])],
) -> Result<String, StatsError> {
    let err = |e| plot_error("calibration plot", e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("Mean predicted probability")
            .y_desc("Observed fraction positive")
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                RGBColor(170, 170, 170).stroke_width(1),
            ))
            .map_err(err)?;
        for (i, (name, bins)) in series.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(f64, f64)> = bins
                .iter()
                .filter_map(|b| Some((b.mean_predicted?, b.observed?)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 4, c.filled())))
                .map_err(err)?;
        }
        if series.len() > 1 || !series.iter().all(|(n, _)| n.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .label_font((FONT, 13))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A count matrix as a heat map (colour = share of the row), rows = truth top
/// to bottom, columns = prediction, counts written in the cells.
pub fn heat_map(
    caption: &str,
    labels: &[String],
    counts: &[Vec<u64>],
    x_desc: &str,
    y_desc: &str,
) -> Result<String, StatsError> {
    let err = |e| plot_error("heat map", e);
    let k = labels.len() as i32;
    let cell = (280 / k.max(1)).clamp(56, 90);
    let size = (190 + cell * k) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (size + 40, size)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 18))
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(110)
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
            .map_err(err)?;
        let name = |v: &SegmentValue<i32>, flip: bool| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                let idx = if flip { k - 1 - i } else { *i };
                labels.get(idx as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k as usize)
            .y_labels(k as usize)
            .x_label_formatter(&|v| name(v, false))
            .y_label_formatter(&|v| name(v, true))
            .label_style((FONT, 12))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let mut cells = Vec::new();
        for (i, row) in counts.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (j, &n) in row.iter().enumerate() {
                let share = if total > 0 {
                    n as f64 / total as f64
                } else {
                    0.0
                };
                let shade = |base: u8, full: u8| {
                    (f64::from(base) + (f64::from(full) - f64::from(base)) * share).round() as u8
                };
                let fill = RGBColor(shade(247, 8), shade(251, 69), shade(255, 148));
                let (x, y) = (j as i32, k - 1 - i as i32);
                cells.push((x, y, fill, n, share > 0.55));
            }
        }
        chart
            .draw_series(cells.iter().map(|&(x, y, fill, _, _)| {
                Rectangle::new(
                    [
                        (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                    ],
                    fill.filled(),
                )
            }))
            .map_err(err)?;
        chart
            .draw_series(cells.iter().map(|&(x, y, _, n, dark)| {
                let style = (FONT, 13)
                    .into_font()
                    .color(if dark { &WHITE } else { &BLACK })
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ));
                Text::new(
                    n.to_string(),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                    style,
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Adjusted odds ratios with Wald intervals on a log axis, a line at 1;
/// terms whose fit failed are left out (the table says so).
pub fn forest_plot(odds: &[OddsRatio]) -> Result<String, StatsError> {
    let err = |e| plot_error("forest plot", e);
    let rows: Vec<(&str, f64, f64, f64)> = odds
        .iter()
        .filter_map(|o| Some((o.term.as_str(), o.odds_ratio?, o.ci_low?, o.ci_high?)))
        .collect();
    let m = rows.len().max(1) as i32;
    let lo = rows.iter().map(|r| r.2).fold(1.0f64, f64::min) * 0.8;
    let hi = rows.iter().map(|r| r.3).fold(1.0f64, f64::max) * 1.25;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (720, (120 + 34 * m) as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Adjusted odds ratios (95 % Wald interval)", (FONT, 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(170)
            .build_cartesian_2d((lo..hi).log_scale(), (0..m - 1).into_segmented())
            .map_err(err)?;
        let name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => rows
                .get((m - 1 - i) as usize)
                .map(|r| r.0.to_string())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .y_labels(m as usize)
            .y_label_formatter(&name)
            .x_labels(10)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .disable_y_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 13))
            .x_desc("Odds ratio (log scale)")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
                RGBColor(150, 150, 150).stroke_width(1),
            )))
            .map_err(err)?;
        for (i, &(_, or, low, high)) in rows.iter().enumerate() {
            let y = || SegmentValue::CenterOf(m - 1 - i as i32);
            let c = colour(0);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(low, y()), (high, y())],
                    c.stroke_width(2),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new((or, y()), 5, c.filled())))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_ends_and_drops_close_points() {
        let points: Vec<RocPoint> = (0..=1000)
            .map(|i| RocPoint {
                fpr: i as f64 / 1000.0,
                tpr: i as f64 / 1000.0,
            })
            .collect();
        let thin = thin(&points, 0.01);
        assert_eq!(thin.first(), Some(&(0.0, 0.0)));
        assert_eq!(thin.last(), Some(&(1.0, 1.0)));
        assert!(thin.len() <= 102, "{}", thin.len());
    }

    #[test]
    fn heat_map_writes_every_count_and_label() {
        let labels = vec!["lung".to_string(), "breast".to_string()];
        let svg = heat_map(
            "Confusion",
            &labels,
            &[vec![7, 1], vec![2, 9]],
            "Predicted",
            "True",
        )
        .unwrap();
        for text in ["\n7\n", "\n9\n", "\n2\n", "lung", "breast"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
