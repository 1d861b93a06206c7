//! Line charts as PNG (plotters): the metrics' curves — perturbation curves per method, MPRT's
//! similarity per randomised layer — one panel each, side by side in one image.
//!
//! Text needs a TrueType font, which plotters does not bundle: [`register_font`] looks for
//! `$LRP_GRAD_FONT` and the usual DejaVu Sans / Arial paths; without one the charts are drawn
//! without text (and say so on stderr once).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// Why a chart could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing or writing failed.
    #[error("cannot write the plot {path}: {reason}")]
    Write {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// One panel: a title, axis labels and named series (`y` per step `0, 1, …`).
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title above the panel.
    pub title: String,
    /// The x axis' label.
    pub x_label: String,
    /// The y axis' label.
    pub y_label: String,
    /// Named lines; the name goes into the legend.
    pub series: Vec<(String, Vec<f64>)>,
    /// Tick labels of the x axis (one per step), when the steps have names (MPRT's layers).
    pub x_names: Vec<String>,
}

/// Registers a system TrueType font for the charts' text once; false when none was found.
pub fn register_font() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let candidates = [
            std::env::var("LRP_GRAD_FONT").unwrap_or_default(),
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
            "/usr/share/fonts/TTF/DejaVuSans.ttf".into(),
            "/Library/Fonts/Arial.ttf".into(),
            "C:\\Windows\\Fonts\\arial.ttf".into(),
        ];
        for path in candidates.iter().filter(|p| !p.is_empty()) {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        eprintln!("note: no TrueType font found (set LRP_GRAD_FONT); plots have no text");
        false
    })
}

/// Writes `charts` as one PNG, `columns` panels per row (written beside `path`, then renamed:
/// no half-written file is left).
pub fn write_panels(path: &Path, charts: &[Chart], columns: usize) -> Result<(), PlotError> {
    let fail = |reason: String| PlotError::Write {
        path: path.display().to_string(),
        reason,
    };
    let columns = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(columns).max(1);
    let partial = path.with_extension("partial.png");
    let text = register_font();
    {
        let size = (560 * columns as u32, 380 * rows as u32);
        let root = BitMapBackend::new(&partial, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            draw(area, chart, text).map_err(|e| fail(e.to_string()))?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    std::fs::rename(&partial, path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        fail(e.to_string())
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw(area: &Area<'_>, chart: &Chart, text: bool) -> Result<(), Box<dyn std::error::Error>> {
    let steps = chart.series.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    let (lo, hi) = (chart.series.iter().flat_map(|(_, v)| v.iter().copied()))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    // A flat series still gets a visible band around it.
    let pad = match hi - lo > 1e-9 {
        true => (hi - lo) * 0.05,
        false => (hi.abs() * 0.05).max(0.05),
    };
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(&chart.title, ("sans-serif", 17))
            .x_label_area_size(36)
            .y_label_area_size(56);
    }
    let x_range = 0f64..(steps.max(2) - 1) as f64;
    let mut c = builder.build_cartesian_2d(x_range, (lo - pad)..(hi + pad))?;
    if text {
        let names = &chart.x_names;
        let label = |v: &f64| match names.get(v.round() as usize) {
            Some(name) if (v - v.round()).abs() < 1e-9 => name.clone(),
            _ if names.is_empty() => format!("{v}"),
            _ => String::new(),
        };
        let mut mesh = c.configure_mesh();
        mesh.x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .x_label_formatter(&label);
        if !names.is_empty() && names.len() <= 12 {
            mesh.x_labels(names.len());
        }
        mesh.draw()?;
    }
    for (k, (name, values)) in chart.series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let points = values.iter().enumerate().map(|(i, v)| (i as f64, *v));
        let line = c.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
        if text {
            line.label(name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
    }
    if text && !chart.series.is_empty() {
        (c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK))
        .label_font(("sans-serif", 12))
        .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_written_whole_and_named() {
        let dir = std::env::temp_dir().join(format!("lrp-grad-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.png");
        let chart = |title: &str| Chart {
            title: title.into(),
            series: vec![
                ("a".into(), vec![1.0, 0.5, 0.2]),
                ("b".into(), vec![1.0, 0.9, 0.8]),
            ],
            ..Chart::default()
        };
        write_panels(&path, &[chart("one"), chart("two"), chart("three")], 2).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(!path.with_extension("partial.png").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let path = Path::new("/nonexistent-dir/x.png");
        let err = write_panels(path, &[Chart::default()], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-dir/x.png"), "{err}");
    }
}
