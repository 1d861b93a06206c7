//! Figures of the examples: labelled heatmap grids and perturbation curves (plotters).
//! Heatmaps themselves come from `lrp_grad::heatmap` (the CLI's code).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use lrp_grad::heatmap::{self, ColorMap};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::mnist::SIDE;

/// Registers a system TrueType font for plotters' text (DejaVu Sans, or `$LRP_GRAD_FONT`).
/// Returns false when none is found: figures are then drawn without text.
pub fn fonts() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let candidates = [
            std::env::var("LRP_GRAD_FONT").unwrap_or_default(),
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
            "/usr/share/fonts/TTF/DejaVuSans.ttf".into(),
            "/Library/Fonts/Arial.ttf".into(),
        ];
        for path in candidates.iter().filter(|p| !p.is_empty()) {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        eprintln!("note: no TrueType font found (set LRP_GRAD_FONT); figures will have no labels");
        false
    })
}

/// A digit as a grey image.
pub fn digit(pixels: &[f32]) -> RgbImage {
    RgbImage::from_fn(SIDE as u32, SIDE as u32, |x, y| {
        let v = (pixels[y as usize * SIDE + x as usize].clamp(0.0, 1.0) * 255.0) as u8;
        Rgb([v, v, v])
    })
}

/// A 28×28 relevance map as a heatmap (symmetric normalisation per map).
pub fn relevance_map(relevance: &[f32], cmap: &ColorMap) -> RgbImage {
    heatmap::heatmap(relevance, 1, SIDE, SIDE, cmap).expect("28x28 relevance")
}

/// A grid of cells (rows × columns, all the same size) with column titles on top and row
/// labels on the left, written as PNG.
pub fn labelled_grid(
    path: &Path,
    cells: &[Vec<RgbImage>],
    columns: &[String],
    rows: &[String],
    scale: u32,
) -> Result<()> {
    let cols = cells.first().map_or(0, Vec::len);
    let flat: Vec<RgbImage> = cells
        .iter()
        .flatten()
        .map(|c| heatmap::upscale(c, scale))
        .collect();
    let grid = heatmap::grid(&flat, cols.max(1), 4);
    let (top, left) = (
        if columns.is_empty() { 0 } else { 44 },
        if rows.is_empty() { 0 } else { 70 },
    );
    let mut canvas = RgbImage::from_pixel(
        grid.width() + left,
        grid.height() + top,
        Rgb([255, 255, 255]),
    );
    image::imageops::overlay(&mut canvas, &grid, left as i64, top as i64);
    if fonts() {
        let (w, h) = canvas.dimensions();
        let cell_w = (SIDE as u32 * scale + 4) as i32;
        {
            let root = BitMapBackend::with_buffer(canvas.as_mut(), (w, h)).into_drawing_area();
            let style = ("sans-serif", 13).into_font().color(&BLACK);
            for (c, title) in columns.iter().enumerate() {
                // Two lines at most: split long titles at a space near the middle.
                let x = left as i32 + 4 + c as i32 * cell_w;
                let (first, second) = split_title(title);
                root.draw_text(&first, &style, (x, 6)).ok();
                root.draw_text(&second, &style, (x, 22)).ok();
            }
            for (r, label) in rows.iter().enumerate() {
                let y = top as i32 + 4 + r as i32 * cell_w + cell_w / 2 - 8;
                root.draw_text(label, &style, (6, y)).ok();
            }
            root.present().context("drawing labels")?;
        }
    }
    canvas
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn split_title(title: &str) -> (String, String) {
    if title.len() <= 14 {
        return (title.to_string(), String::new());
    }
    let middle = title.len() / 2;
    let cut = title
        .char_indices()
        .filter(|(_, c)| *c == ' ' || *c == '-')
        .min_by_key(|(i, _)| i.abs_diff(middle))
        .map_or(title.len(), |(i, _)| i + 1);
    (
        title[..cut].trim().to_string(),
        title[cut..].trim().to_string(),
    )
}

/// Perturbation curves: the mean target score after each step, one line per method.
pub fn curves(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    let steps = series.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let has_text = fonts();
    {
        let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(14);
        if has_text {
            builder
                .caption(title, ("sans-serif", 20))
                .x_label_area_size(40)
                .y_label_area_size(60);
        }
        let mut chart =
            builder.build_cartesian_2d(0f64..(steps - 1).max(1) as f64, (lo - pad)..(hi + pad))?;
        if has_text {
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc("mean target score")
                .draw()?;
        }
        for (k, (name, values)) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let line = chart.draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                color.stroke_width(2),
            ))?;
            if has_text {
                line.label(name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            }
        }
        if has_text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()?;
        }
        root.present()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
