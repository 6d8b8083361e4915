//! `ipchnl bench --plot`: the round-trip latency distributions of the
//! report as an SVG, one panel per path, ours beside its baseline.
//!
//! Each curve is a percentile spectrum, as HdrHistogram draws one: the
//! x axis counts nines (0, 90 %, 99 %, 99.9 % ..), so that the tail gets as
//! much room as the median; the y axis is the round trip on a log scale.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::report::PathResult;

/// Points per curve.
const STEPS: u32 = 200;

/// Draws the round trips of `results` to the SVG file `file`.
pub fn svg(results: &[PathResult], file: &Path) -> Result<(), String> {
    let cols = 2;
    let rows = results.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(file, (1100, 330 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let panels = root.split_evenly((rows, cols));
    for (r, area) in results.iter().zip(panels.iter()) {
        panel(r, area)?;
    }
    root.present().map_err(|e| format!("cannot write {}: {e}", file.display()))
}

fn panel<DB: DrawingBackend>(
    r: &PathResult,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), String> {
    let curves = [(&r.rtt, "ipchnl", BLUE), (&r.baseline_rtt, "bare", RED)];
    let drawn: Vec<_> = curves.iter().filter(|(h, ..)| !h.is_empty()).collect();
    if drawn.is_empty() {
        return Ok(());
    }
    // As far into the tail as the smaller histogram has samples for.
    let count = drawn.iter().map(|(h, ..)| h.len()).min().unwrap_or(1).max(10);
    let nines = (count as f64).log10().floor().clamp(1.0, 6.0);
    let lo = drawn.iter().map(|(h, ..)| h.min()).min().unwrap_or(1).max(1) as f64;
    let hi = drawn.iter().map(|(h, ..)| h.value_at_quantile(quantile(nines))).max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(r.name, ("sans-serif", 18))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..nines, ((lo * 0.8)..(hi * 1.25)).log_scale())
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_labels(nines as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .x_desc("percentile")
        .y_desc("round trip")
        .y_labels(8)
        .y_label_formatter(&|y| duration_label(*y))
        .light_line_style(BLACK.mix(0.03))
        .draw()
        .map_err(failed)?;
    for (h, label, color) in drawn {
        let color = *color;
        chart
            .draw_series(LineSeries::new(spectrum(h, nines), color.stroke_width(2)))
            .map_err(failed)?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)
}

/// The quantile `nines` nines deep: 0 -> 0, 1 -> 0.9, 2 -> 0.99 ..
fn quantile(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// `90%`, `99.9%` .. for a whole number of nines.
fn percentile_label(nines: f64) -> String {
    let digits = (nines.round() as usize).saturating_sub(2);
    format!("{:.*}%", digits, quantile(nines) * 100.0)
}

/// `250 ns`, `12 µs`, `1.5 ms` for a duration in ns.
fn duration_label(ns: f64) -> String {
    let (value, unit) = match ns {
        n if n >= 1e6 => (n / 1e6, "ms"),
        n if n >= 1e3 => (n / 1e3, "µs"),
        n => (n, "ns"),
    };
    if value >= 10.0 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") }
}

/// `(nines, round trip)` from the median-less start to `nines` deep.
fn spectrum(h: &Histogram<u64>, nines: f64) -> Vec<(f64, f64)> {
    (0..=STEPS)
        .map(|i| {
            let x = nines * f64::from(i) / f64::from(STEPS);
            (x, h.value_at_quantile(quantile(x)).max(1) as f64)
        })
        .collect()
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_count_nines() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration_label(250.0), "250 ns");
        assert_eq!(duration_label(1_500.0), "1.5 µs");
        assert_eq!(duration_label(12_000.0), "12 µs");
        assert_eq!(duration_label(2_000_000.0), "2.0 ms");
    }

    #[test]
    fn a_spectrum_rises_from_the_minimum_to_the_tail() {
        let mut h = crate::histogram();
        for v in 1..=1000u64 {
            h.record(v * 100).unwrap();
        }
        let s = spectrum(&h, 3.0);
        assert_eq!(s.len(), STEPS as usize + 1);
        assert!(s.windows(2).all(|w| w[0].1 <= w[1].1), "percentiles never fall");
        assert!(s[0].1 <= 200.0 && s[s.len() - 1].1 >= 99_000.0);
    }

    #[test]
    fn the_svg_has_a_panel_per_path_with_both_curves() {
        let mut ours = crate::histogram();
        let mut bare = crate::histogram();
        for v in 1..=10_000u64 {
            ours.record(1_000 + v).unwrap();
            bare.record(800 + v).unwrap();
        }
        let result = |name| PathResult {
            ratio_p50: 1.0,
            ratio_stream: 1.0,
            rtt: ours.clone(),
            baseline_rtt: bare.clone(),
            ..PathResult::named(name)
        };
        let file = std::env::temp_dir().join(format!("ipchnl-plot-test-{}.svg", std::process::id()));
        svg(&[result("tcp"), result("unix"), result("same_thread")], &file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(text.starts_with("<svg"), "an SVG document");
        for name in ["tcp", "unix", "same_thread", "ipchnl", "bare", "99.9%"] {
            assert!(text.contains(name), "{name} is drawn");
        }
        assert!(text.matches("<polyline").count() >= 6, "two curves per panel");
    }
}
