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

/// The bars summed per group of `per` consecutive bars (hours into days).
pub fn totals_per(bars: &[Bar], per: usize) -> Vec<Bar> {
    bars.chunks(per.max(1))
        .map(|c| {
            c.iter().fold(Bar::default(), |a, b| Bar {
                valid: a.valid + b.valid,
                rejected: a.rejected + b.rejected,
            })
        })
        .collect()
}

/// The index and bar with the most verifications (the first such), if any
/// bar has any.
pub fn busiest(bars: &[Bar]) -> Option<(usize, Bar)> {
    bars.iter()
        .copied()
        .enumerate()
        .filter(|(_, b)| b.total() > 0)
        .fold(None, |best: Option<(usize, Bar)>, (i, b)| match best {
            Some((_, top)) if top.total() >= b.total() => best,
            _ => Some((i, b)),
        })
}

/// Stacked bars with a faint line between every `per` bars (days on an
/// hourly chart), so the time axis under the chart lines up with them.
pub fn stacked_bars_divided(bars: &[Bar], per: usize, width: u32, height: u32) -> String {
    let svg = stacked_bars(bars, width, height);
    if per == 0 || bars.len() <= per {
        return svg;
    }
    let slot = f64::from(width) / bars.len() as f64;
    let mut lines = String::new();
    for i in (per..bars.len()).step_by(per) {
        let x = i as f64 * slot;
        let _ = write!(
            lines,
            r##"<line x1="{x:.2}" y1="0" x2="{x:.2}" y2="{height}" stroke="#c5ccd3" stroke-width="1" stroke-dasharray="3 3"/>"##
        );
    }
    svg.replacen("</svg>", &format!("{lines}</svg>"), 1)
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
    fn days_are_summed_divided_and_the_busiest_hour_found() {
        let mut bars = vec![Bar::default(); 48];
        bars[3] = Bar {
            valid: 2,
            rejected: 1,
        };
        bars[30] = Bar {
            valid: 5,
            rejected: 0,
        };
        assert_eq!(
            totals_per(&bars, 24),
            [
                Bar {
                    valid: 2,
                    rejected: 1
                },
                Bar {
                    valid: 5,
                    rejected: 0
                }
            ]
        );
        assert_eq!(busiest(&bars).map(|(i, _)| i), Some(30));
        assert_eq!(busiest(&[Bar::default(); 3]), None);
        let svg = stacked_bars_divided(&bars, 24, 480, 100);
        assert_eq!(svg.matches("stroke-dasharray").count(), 1, "{svg}");
        assert!(svg.contains(r#"x1="240.00""#));
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
