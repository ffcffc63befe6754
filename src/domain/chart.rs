//! Small server-rendered SVG charts (no JavaScript). They contain no user
//! text; labels and accessible descriptions come from the templates.

use std::fmt::Write;

/// The outcome recorded for a key that passed every check; every other
/// outcome is a rejection code.
pub const VALID: &str = "VALID";

/// One bar: accepted and rejected verifications in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bar {
    pub valid: i64,
    pub rejected: i64,
}

impl Bar {
    /// Count `n` verifications with this outcome.
    pub fn add(&mut self, outcome: &str, n: i64) {
        if outcome == VALID {
            self.valid += n;
        } else {
            self.rejected += n;
        }
    }

    pub fn total(self) -> i64 {
        self.valid + self.rejected
    }
}

/// Stacked bars (valid below, rejected on top), scaled to the highest bar.
/// `width` and `height` are the viewBox size; the SVG scales to its container.
pub fn stacked_bars(bars: &[Bar], width: u32, height: u32) -> String {
    let max = bars.iter().map(|b| b.total()).max().unwrap_or(0).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let slot = f64::from(width) / n;
    let bar_w = (slot * 0.8).max(0.5);
    let h = f64::from(height);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg" aria-hidden="true" focusable="false">"#
    );
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{h}" x2="{width}" y2="{h}" stroke="#c5ccd3" stroke-width="1"/>"##
    );
    for (i, b) in bars.iter().enumerate() {
        if b.total() == 0 {
            continue;
        }
        let x = i as f64 * slot + (slot - bar_w) / 2.0;
        let valid_h = b.valid as f64 / max * h;
        let rejected_h = b.rejected as f64 / max * h;
        if b.valid > 0 {
            let _ = write!(
                svg,
                r##"<rect x="{x:.2}" y="{:.2}" width="{bar_w:.2}" height="{valid_h:.2}" fill="#2f7d4f"/>"##,
                h - valid_h
            );
        }
        if b.rejected > 0 {
            let _ = write!(
                svg,
                r##"<rect x="{x:.2}" y="{:.2}" width="{bar_w:.2}" height="{rejected_h:.2}" fill="#c2410c"/>"##,
                h - valid_h - rejected_h
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A sparkline of totals, for key lists.
pub fn sparkline(values: &[i64], width: u32, height: u32) -> String {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len();
    let h = f64::from(height) - 1.0;
    let step = if n > 1 {
        f64::from(width) / (n - 1) as f64
    } else {
        0.0
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                h - (*v as f64 / max * (h - 1.0))
            )
        })
        .collect();
    format!(
        r##"<svg class="sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" aria-hidden="true" focusable="false"><polyline points="{}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/></svg>"##,
        points.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_highest_and_skip_empty_hours() {
        let svg = stacked_bars(
            &[
                Bar {
                    valid: 10,
                    rejected: 0,
                },
                Bar::default(),
                Bar {
                    valid: 2,
                    rejected: 3,
                },
            ],
            30,
            100,
        );
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(
            svg.contains(r##"height="100.00" fill="#2f7d4f""##),
            "the highest bar fills the height"
        );
        assert!(svg.contains(r##"height="30.00" fill="#c2410c""##));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn outcomes_other_than_valid_count_as_rejected() {
        let mut bar = Bar::default();
        bar.add(VALID, 3);
        bar.add("RATE_LIMITED", 2);
        bar.add("REVOKED", 1);
        assert_eq!(
            bar,
            Bar {
                valid: 3,
                rejected: 3
            }
        );
        assert_eq!(bar.total(), 6);
    }

    #[test]
    fn sparkline_has_a_point_per_value() {
        let svg = sparkline(&[0, 5, 10], 60, 16);
        assert!(
            svg.contains(r#"points="0.0,15.0 30.0,8.0 60.0,1.0""#),
            "{svg}"
        );
        assert!(sparkline(&[], 60, 16).contains("points=\"\""));
    }
}
