//! Figures of the examples: labelled heatmap grids and perturbation curves (plotters).
//! Heatmaps themselves come from `lrp_grad::heatmap` (the CLI's code).

use std::path::Path;

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use lrp_grad::heatmap::{self, ColorMap};
use lrp_grad::plots::{self, Chart};
use plotters::prelude::*;

use crate::mnist::SIDE;

/// Registers a system TrueType font for plotters' text (`lrp_grad::plots::register_font`).
/// Returns false when none is found: figures are then drawn without text.
pub fn fonts() -> bool {
    lrp_grad::plots::register_font()
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
    let chart = Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "mean target score".into(),
        series: series.to_vec(),
        x_names: Vec::new(),
    };
    Ok(plots::write_panels(path, &[chart], 1)?)
}
