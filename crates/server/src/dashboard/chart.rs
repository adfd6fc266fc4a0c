//! A stacked bar chart as inline SVG, drawn on the server: no chart library, no script.
//! Each bar carries a `<title>` (its numbers, read out by screen readers and shown on
//! hover), and the chart a legend.

use std::fmt::Write;

use super::page::escape;

/// One series: its name, CSS class (colour, from the stylesheet) and a value per bucket.
#[derive(Debug)]
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
    pub values: Vec<u64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 10.0;

/// `labels` name the buckets (one per bar); every series has one value per label.
pub fn stacked_bars(title: &str, labels: &[String], series: &[Series]) -> String {
    let totals: Vec<u64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / labels.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));
    // Axis and the top value.
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}"/><text class="tick" x="{x}" y="{ty}" text-anchor="end">{max}</text><text class="tick" x="{x}" y="{y}" text-anchor="end">0</text>"#,
        y = HEIGHT - BOTTOM,
        x = LEFT - 6.0,
        ty = TOP + 10.0,
    );
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = HEIGHT - BOTTOM;
        let parts: Vec<String> = series
            .iter()
            .map(|s| format!("{} {}", s.values.get(i).copied().unwrap_or(0), s.name))
            .collect();
        let _ = write!(
            svg,
            "<g><title>{}: {}</title>",
            escape(label),
            escape(&parts.join(", "))
        );
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = plot_h * v as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                r#"<rect class="{}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}"/>"#,
                s.class
            );
        }
        svg.push_str("</g>");
        // Every fourth label keeps the axis readable on a phone.
        if i % 4 == 0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                HEIGHT - BOTTOM + 16.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_stacked_titled_and_escaped() {
        let labels = vec!["10:00".to_string(), "11:00".to_string()];
        let series = [
            Series {
                name: "approved",
                class: "s-approved",
                values: vec![3, 0],
            },
            Series {
                name: "denied",
                class: "s-denied",
                values: vec![1, 2],
            },
        ];
        let svg = stacked_bars("Calls <by> decision", &labels, &series);
        assert!(svg.contains("Calls &lt;by&gt; decision"));
        assert_eq!(
            svg.matches("<rect").count(),
            3,
            "zero values draw nothing: {svg}"
        );
        assert!(svg.contains("10:00: 3 approved, 1 denied"));
        assert!(svg.contains(r#"class="s-denied""#));
    }
}
