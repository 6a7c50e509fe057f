//! Charts as SVG, drawn on the server so that pages need no script and no
//! CDN and print as they look. Pure functions from figures to markup: a
//! bar chart, a line chart over dates and paired bars (a value against its
//! comparator). Every chart carries a `<title>` and `<desc>` and the
//! figures also appear in a table next to it, so the charts are never the
//! only way to read a number.

use maud::{Markup, html};

/// One bar: its label and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// One point of a line chart: a label on the x axis (a date) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub label: String,
    pub value: f64,
}

const WIDTH: f64 = 640.0;
const BAR_ROW: f64 = 26.0;
const LABEL_WIDTH: f64 = 210.0;

/// A round top for an axis: the smallest of 1, 2, 5 × 10ⁿ at or above
/// `max` (at least 1).
pub fn nice_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= max {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{}", value.round() as i64)
    } else {
        format!("{value:.1}")
    }
}

/// Horizontal bars, one row per bar, the value written at the end of each.
pub fn bar_chart(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let height = BAR_ROW * bars.len().max(1) as f64 + 20.0;
    let max = nice_max(bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let span = WIDTH - LABEL_WIDTH - 60.0;
    let desc = bars
        .iter()
        .map(|b| format!("{}: {}", b.label, number(b.value)))
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        svg id=(id) class="chart" role="img" viewBox=(format!("0 0 {WIDTH} {height}"))
            aria-labelledby=(format!("{id}-title {id}-desc")) {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (desc) }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = 10.0 + BAR_ROW * i as f64;
                @let w = (bar.value.max(0.0) / max * span).max(if bar.value > 0.0 { 2.0 } else { 0.0 });
                text x=(LABEL_WIDTH - 8.0) y=(y + 15.0) text-anchor="end" class="label" { (bar.label) }
                rect x=(LABEL_WIDTH) y=(y + 2.0) width=(format!("{w:.1}")) height=(BAR_ROW - 8.0) class=(format!("bar bar-{}", i % 6)) {}
                text x=(LABEL_WIDTH + w + 6.0) y=(y + 15.0) class="value" { (number(bar.value)) }
            }
        }
    }
}

/// A line over dated points, with the axis, its top value and the first
/// and last labels; each point a marker with its value as a tooltip.
pub fn line_chart(id: &str, title: &str, points: &[Point]) -> Markup {
    let height = 240.0;
    let (left, right, top, bottom) = (48.0, 16.0, 16.0, 36.0);
    let max = nice_max(points.iter().map(|p| p.value).fold(0.0, f64::max));
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + plot_h - (v.max(0.0) / max) * plot_h;
    let path = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect::<Vec<_>>()
        .join(" ");
    let desc = points
        .iter()
        .map(|p| format!("{}: {}", p.label, number(p.value)))
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        svg id=(id) class="chart" role="img" viewBox=(format!("0 0 {WIDTH} {height}"))
            aria-labelledby=(format!("{id}-title {id}-desc")) {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (desc) }
            line x1=(left) y1=(top + plot_h) x2=(left + plot_w) y2=(top + plot_h) class="axis" {}
            line x1=(left) y1=(top) x2=(left) y2=(top + plot_h) class="axis" {}
            line x1=(left) y1=(top + plot_h / 2.0) x2=(left + plot_w) y2=(top + plot_h / 2.0) class="grid" {}
            text x=(left - 6.0) y=(top + 4.0) text-anchor="end" class="label" { (number(max)) }
            text x=(left - 6.0) y=(top + plot_h / 2.0 + 4.0) text-anchor="end" class="label" { (number(max / 2.0)) }
            text x=(left - 6.0) y=(top + plot_h + 4.0) text-anchor="end" class="label" { "0" }
            @if let Some(first) = points.first() {
                text x=(x(0)) y=(height - 12.0) text-anchor="start" class="label" { (first.label) }
            }
            @if n > 1 {
                @if let Some(last) = points.last() {
                    text x=(x(n - 1)) y=(height - 12.0) text-anchor="end" class="label" { (last.label) }
                }
            }
            polyline points=(path) class="line" {}
            @for (i, p) in points.iter().enumerate() {
                circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(p.value))) r="3.5" class="dot" {
                    title { (p.label) ": " (number(p.value)) }
                }
            }
        }
    }
}

/// One value and its comparator, as two bars on the same scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    pub label: String,
    pub value: f64,
    pub comparator_label: String,
    pub comparator: Option<f64>,
    pub unit: String,
}

/// Each indicator on its own scale (units differ): the organisation's
/// value above its comparator's.
pub fn paired_chart(id: &str, title: &str, rows: &[Paired]) -> Markup {
    let row_h = 52.0;
    let height = row_h * rows.len().max(1) as f64 + 10.0;
    let span = WIDTH - LABEL_WIDTH - 90.0;
    let desc = rows
        .iter()
        .map(|r| match r.comparator {
            Some(c) => format!(
                "{}: {} against {} {}",
                r.label,
                number(r.value),
                r.comparator_label,
                number(c)
            ),
            None => format!("{}: {}", r.label, number(r.value)),
        })
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        svg id=(id) class="chart" role="img" viewBox=(format!("0 0 {WIDTH} {height}"))
            aria-labelledby=(format!("{id}-title {id}-desc")) {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (desc) }
            @for (i, row) in rows.iter().enumerate() {
                @let y = 6.0 + row_h * i as f64;
                @let max = row.value.abs().max(row.comparator.map(f64::abs).unwrap_or(0.0)).max(f64::MIN_POSITIVE);
                @let w = row.value.abs() / max * span;
                text x=(LABEL_WIDTH - 8.0) y=(y + 14.0) text-anchor="end" class="label" { (truncate(&row.label, 34)) }
                rect x=(LABEL_WIDTH) y=(y + 2.0) width=(format!("{w:.1}")) height="16" class="bar bar-0" {}
                text x=(LABEL_WIDTH + w + 6.0) y=(y + 15.0) class="value" { (number(row.value)) (row.unit) }
                @if let Some(c) = row.comparator {
                    @let cw = c.abs() / max * span;
                    text x=(LABEL_WIDTH - 8.0) y=(y + 36.0) text-anchor="end" class="label muted" { (truncate(&row.comparator_label, 34)) }
                    rect x=(LABEL_WIDTH) y=(y + 24.0) width=(format!("{cw:.1}")) height="16" class="bar comparator" {}
                    text x=(LABEL_WIDTH + cw + 6.0) y=(y + 37.0) class="value" { (number(c)) (row.unit) }
                }
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_tops_round_up() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(43.0), 50.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn bars_carry_values_and_escape_labels() {
        let svg = bar_chart(
            "s",
            "By status",
            &[
                Bar {
                    label: "Open <x>".into(),
                    value: 7.0,
                },
                Bar {
                    label: "Closed".into(),
                    value: 0.0,
                },
            ],
        )
        .into_string();
        assert!(svg.contains("Open &lt;x&gt;: 7; Closed: 0"), "{svg}");
        assert!(svg.contains(">7</text>"));
        assert!(!svg.contains("<x>"));
    }

    #[test]
    fn a_line_has_one_marker_per_point() {
        let points: Vec<Point> = (0..5)
            .map(|i| Point {
                label: format!("2020-0{}-01", i + 1),
                value: i as f64,
            })
            .collect();
        let svg = line_chart("l", "Open", &points).into_string();
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("2020-01-01") && svg.contains("2020-05-01"));
        let empty = line_chart("e", "Open", &[]).into_string();
        assert!(empty.contains("<polyline"));
    }

    #[test]
    fn paired_rows_show_the_comparator() {
        let svg = paired_chart(
            "p",
            "Indicators",
            &[Paired {
                label: "Crime".into(),
                value: 60.5,
                comparator_label: "England and Wales".into(),
                comparator: Some(70.0),
                unit: "".into(),
            }],
        )
        .into_string();
        assert!(svg.contains("Crime: 60.5 against England and Wales 70"));
    }
}
