//! Small server-side SVG pictures for the console: a call's waveform and the charts. Pure
//! functions from numbers to markup; no text from users or recordings ever enters them (labels
//! are numbers and dates), so nothing here needs escaping beyond what `fmt` writes.
//!
//! Text that needs translating (titles, legends) stays in the console's HTML around the image.

use std::fmt::Write;

/// Colours of series 1, 2, …; the console's legend uses the same (app.css `.swatch-N`).
pub const SERIES: [&str; 3] = ["#0b5cad", "#d97706", "#1a7f37"];
const AXIS: &str = "#57606a";

fn open(w: u32, h: u32, label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{label}\">"
    )
}

/// One lane per channel, mirrored around its centre line; heights relative to the loudest
/// peak of the call, so a quiet call is still readable. Lanes are numbered 1 and 2 at the left.
pub fn waveform(channels: &[Vec<u8>]) -> String {
    const W: u32 = 960;
    const LANE: u32 = 90;
    let h = LANE * channels.len().max(1) as u32;
    let mut s = open(W, h, "waveform");
    let loudest = channels.iter().flatten().copied().max().unwrap_or(0).max(1);
    for (c, values) in channels.iter().enumerate() {
        let colour = SERIES[c % SERIES.len()];
        let mid = LANE as f64 * (c as f64 + 0.5);
        let step = f64::from(W - 24) / values.len().max(1) as f64;
        let _ = write!(
            s,
            "<line x1=\"24\" x2=\"{W}\" y1=\"{mid}\" y2=\"{mid}\" stroke=\"#d0d7de\"/>\
             <text x=\"4\" y=\"{}\" font-family=\"sans-serif\" font-size=\"14\" fill=\"{AXIS}\">{}</text>\
             <path fill=\"{colour}\" d=\"",
            mid + 5.0,
            c + 1
        );
        for (i, &v) in values.iter().enumerate() {
            let half = (f64::from(v) / f64::from(loudest) * (f64::from(LANE) / 2.0 - 4.0)).max(0.5);
            let _ = write!(
                s,
                "M{:.1} {:.1}h{:.1}v{:.1}h-{:.1}z",
                24.0 + i as f64 * step,
                mid - half,
                step.max(1.0),
                2.0 * half,
                step.max(1.0)
            );
        }
        s.push_str("\"/>");
    }
    s.push_str("</svg>");
    s
}

/// A day's values, one per series (stacked bottom-up).
pub struct Day {
    /// Days since 1970-01-01.
    pub day: i64,
    pub values: Vec<f64>,
}

/// Stacked daily bars with a y-axis maximum and a date under every seventh bar; `unit` formats
/// the axis figure.
pub fn bars(days: &[Day], unit: fn(f64) -> String) -> String {
    frame(days, unit, |s, x, w, y_of, d| {
        let mut base = 0.0;
        for (i, v) in d.values.iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            let (top, bottom) = (y_of(base + v), y_of(base));
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                x + 1.0,
                (w - 2.0).max(1.0),
                bottom - top,
                SERIES[i % SERIES.len()]
            );
            base += v;
        }
    })
}

/// A filled line of one series (e.g. storage used).
pub fn area(days: &[Day], unit: fn(f64) -> String) -> String {
    let mut points = String::new();
    let svg = frame(days, unit, |_, x, w, y_of, d| {
        let v = d.values.first().copied().unwrap_or(0.0);
        let _ = write!(points, "L{:.1} {:.1}", x + w / 2.0, y_of(v));
    });
    let (left, right, bottom) = (
        PAD_L + BAR_W / 2.0,
        PAD_L + BAR_W * (days.len() as f64 - 0.5),
        PLOT_H + PAD_T,
    );
    let path = format!(
        "<path d=\"M{left:.1} {bottom:.1}{points}L{right:.1} {bottom:.1}z\" fill=\"{}\" fill-opacity=\"0.35\" stroke=\"{}\" stroke-width=\"2\"/>",
        SERIES[0], SERIES[0]
    );
    svg.replacen("</svg>", &format!("{path}</svg>"), 1)
}

const BAR_W: f64 = 24.0;
const PAD_L: f64 = 64.0;
const PAD_T: f64 = 12.0;
const PLOT_H: f64 = 200.0;

/// Axes, the maximum and the dates; `draw` paints each day at `x` with width `w`.
fn frame(
    days: &[Day],
    unit: fn(f64) -> String,
    mut draw: impl FnMut(&mut String, f64, f64, &dyn Fn(f64) -> f64, &Day),
) -> String {
    let width = (PAD_L + BAR_W * days.len() as f64 + 8.0) as u32;
    let height = (PAD_T + PLOT_H + 28.0) as u32;
    let max = days
        .iter()
        .map(|d| d.values.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1.0);
    let y_of = move |v: f64| PAD_T + PLOT_H - v / max * PLOT_H;
    let mut s = open(width, height, "chart");
    let _ = write!(
        s,
        "<g font-family=\"sans-serif\" font-size=\"12\" fill=\"{AXIS}\">\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text></g>\
         <line x1=\"{PAD_L}\" x2=\"{PAD_L}\" y1=\"{PAD_T}\" y2=\"{}\" stroke=\"{AXIS}\"/>\
         <line x1=\"{PAD_L}\" x2=\"{width}\" y1=\"{}\" y2=\"{}\" stroke=\"{AXIS}\"/>",
        PAD_L - 6.0,
        PAD_T + 10.0,
        unit(max),
        PAD_L - 6.0,
        PAD_T + PLOT_H,
        PAD_T + PLOT_H,
        PAD_T + PLOT_H,
        PAD_T + PLOT_H,
    );
    for (i, d) in days.iter().enumerate() {
        let x = PAD_L + BAR_W * i as f64;
        draw(&mut s, x, BAR_W, &y_of, d);
        if i % 7 == 0 {
            let date = time::OffsetDateTime::from_unix_timestamp(d.day * 86_400)
                .map(|t| format!("{:02}-{:02}", u8::from(t.month()), t.day()))
                .unwrap_or_default();
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-family=\"sans-serif\" font-size=\"12\" fill=\"{AXIS}\">{date}</text>",
                x,
                PAD_T + PLOT_H + 18.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveform_has_a_lane_per_channel() {
        let svg = waveform(&[vec![0, 128, 255], vec![10, 20, 30]]);
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains(">1</text>") && svg.contains(">2</text>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn bars_stack_and_label_the_maximum() {
        let days = vec![
            Day {
                day: 20_000,
                values: vec![2.0, 1.0],
            },
            Day {
                day: 20_001,
                values: vec![0.0, 0.0],
            },
        ];
        let svg = bars(&days, |v| format!("{v}"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(">3</text>"), "{svg}");
        assert!(svg.contains(">10-04</text>"), "{svg}");
    }
}
