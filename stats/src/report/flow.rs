//! The participant flow (STARD): submitted → eligible → passed QC → analysed,
//! with the exclusions at each step, drawn as a diagram.

use crate::error::StatsError;
use crate::report::charts::{FONT, plot_error};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// Cases left out at one step, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Why (e.g. "age outside 18–80", "no usable tile").
    pub reason: String,
    /// How many cases.
    pub n: u64,
}

/// The flow of cases from submission to analysis, filled by the coordinator
/// from the archive manifests and failures.csv.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParticipantFlow {
    /// Cases in the submitted archives.
    pub submitted: u64,
    /// Cases not eligible, by reason.
    pub excluded_ineligible: Vec<Exclusion>,
    /// Eligible cases.
    pub eligible: u64,
    /// Eligible cases failing image QC, by reason.
    pub excluded_qc: Vec<Exclusion>,
    /// Cases passing QC.
    pub passed_qc: u64,
    /// Cases with no prediction (no usable tile, decode failure...), by reason.
    pub failed_inference: Vec<Exclusion>,
    /// Cases with a prediction (rows of predictions.csv).
    pub analysed: u64,
}

impl ParticipantFlow {
    /// Where the counts do not add up (each step = previous − its exclusions).
    pub fn inconsistencies(&self) -> Vec<String> {
        let total = |v: &[Exclusion]| v.iter().map(|e| e.n).sum::<u64>();
        let steps = [
            (
                "eligible",
                self.submitted,
                &self.excluded_ineligible,
                self.eligible,
            ),
            (
                "passed QC",
                self.eligible,
                &self.excluded_qc,
                self.passed_qc,
            ),
            (
                "analysed",
                self.passed_qc,
                &self.failed_inference,
                self.analysed,
            ),
        ];
        steps
            .iter()
            .filter(|(_, before, out, after)| before.checked_sub(total(out)) != Some(*after))
            .map(|(name, before, out, after)| {
                format!(
                    "participant flow: {before} − {} excluded ≠ {after} {name}",
                    total(out)
                )
            })
            .collect()
    }
}

const WIDTH: i32 = 900;
const BOX_W: i32 = 290;
const BOX_H: i32 = 52;
const SIDE_W: i32 = 420;
const LINE: i32 = 21;

/// The flow diagram as inline SVG; `labelled` and `unlabelled` split the
/// analysed cases as the metrics count them.
pub fn flow_svg(
    flow: &ParticipantFlow,
    labelled: u64,
    unlabelled: u64,
) -> Result<String, StatsError> {
    let steps: [(&str, u64, &[Exclusion], &str); 4] = [
        (
            "Submitted",
            flow.submitted,
            &flow.excluded_ineligible,
            "Not eligible",
        ),
        (
            "Eligible",
            flow.eligible,
            &flow.excluded_qc,
            "Failed image QC",
        ),
        (
            "Passed QC",
            flow.passed_qc,
            &flow.failed_inference,
            "No prediction",
        ),
        ("Analysed", flow.analysed, &[], ""),
    ];
    let gap = |ex: &[Exclusion]| (ex.len() as i32 + 1) * LINE + 30;
    let height: i32 = 10
        + steps[..3]
            .iter()
            .map(|(_, _, ex, _)| BOX_H + gap(ex).max(40))
            .sum::<i32>()
        + BOX_H
        + LINE
        + 16;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| plot_error("participant flow", e))?;
        let x = 40;
        let mut y = 10;
        let draw_box =
            |y: i32, x: i32, w: i32, lines: &[String], bold: bool| -> Result<(), StatsError> {
                let h = BOX_H.max(LINE * lines.len() as i32 + 14);
                root.draw(&Rectangle::new(
                    [(x, y), (x + w, y + h)],
                    ShapeStyle::from(&RGBColor(40, 60, 90)).stroke_width(if bold { 2 } else { 1 }),
                ))
                .map_err(|e| plot_error("participant flow", e))?;
                for (i, line) in lines.iter().enumerate() {
                    let style = (FONT, 19).into_font().color(&BLACK);
                    root.draw(&Text::new(
                        line.clone(),
                        (x + 10, y + 8 + LINE * i as i32),
                        style,
                    ))
                    .map_err(|e| plot_error("participant flow", e))?;
                }
                Ok(())
            };
        let arrow = |from: (i32, i32), to: (i32, i32)| -> Result<(), StatsError> {
            let colour = RGBColor(40, 60, 90);
            root.draw(&PathElement::new(vec![from, to], colour.stroke_width(2)))
                .map_err(|e| plot_error("participant flow", e))?;
            let head = if from.0 == to.0 {
                vec![(to.0 - 6, to.1 - 9), (to.0 + 6, to.1 - 9), to]
            } else {
                vec![(to.0 - 9, to.1 - 6), (to.0 - 9, to.1 + 6), to]
            };
            root.draw(&Polygon::new(head, colour.filled()))
                .map_err(|e| plot_error("participant flow", e))
        };
        for (i, (name, n, excluded, why)) in steps.iter().enumerate() {
            let mut lines = vec![format!("{name}: {n}")];
            if i == 3 {
                lines.push(format!("labelled {labelled}, unlabelled {unlabelled}"));
            }
            draw_box(y, x, BOX_W, &lines, true)?;
            if i == 3 {
                break;
            }
            let next = y + BOX_H + gap(excluded).max(40);
            let mid = x + BOX_W / 2;
            arrow((mid, y + BOX_H), (mid, next))?;
            if !excluded.is_empty() {
                let total: u64 = excluded.iter().map(|e| e.n).sum();
                let mut side = vec![format!("{why}: {total}")];
                side.extend(excluded.iter().map(|e| format!("  {}: {}", e.reason, e.n)));
                let sy = y + BOX_H + 8;
                arrow((mid, sy + 14), (x + BOX_W + 80, sy + 14))?;
                draw_box(sy, x + BOX_W + 80, SIDE_W, &side, false)?;
            }
            y = next;
        }
        root.present()
            .map_err(|e| plot_error("participant flow", e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> ParticipantFlow {
        ParticipantFlow {
            submitted: 100,
            excluded_ineligible: vec![Exclusion {
                reason: "age outside 18–80".into(),
                n: 5,
            }],
            eligible: 95,
            excluded_qc: vec![
                Exclusion {
                    reason: "blurred".into(),
                    n: 3,
                },
                Exclusion {
                    reason: "no node".into(),
                    n: 2,
                },
            ],
            passed_qc: 90,
            failed_inference: vec![],
            analysed: 90,
        }
    }

    #[test]
    fn consistent_flow_has_no_complaint_and_a_wrong_one_does() {
        assert!(flow().inconsistencies().is_empty());
        let mut bad = flow();
        bad.passed_qc = 91;
        assert_eq!(bad.inconsistencies().len(), 2);
    }

    #[test]
    fn diagram_names_every_step_and_reason() {
        let svg = flow_svg(&flow(), 80, 10).unwrap();
        for text in [
            "Submitted: 100",
            "Eligible: 95",
            "blurred: 3",
            "Analysed: 90",
            "labelled 80",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
