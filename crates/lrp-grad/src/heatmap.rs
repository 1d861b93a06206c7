//! Heatmaps of relevance, colour-mapped as Zennit does (`zennit.image` / `zennit.cmap`).
//!
//! A [`ColorMap`] is built from Zennit's colour-map language: comma-separated colours in hex
//! (`f00` or `ff0000`), each optionally prefixed with its position `II:` (hex, 0–ff); colours
//! without a position are spread evenly between their neighbours. The built-in maps are Zennit's
//! ([`ColorMap::NAMES`]). [`heatmap`] sums relevance over channels, normalises it symmetrically
//! around 0 per sample (0 becomes the map's centre), and maps it through the 256-colour palette,
//! exactly as Zennit's `imgify(..., symmetric=True)`.

use image::{Rgb, RgbImage};

/// A colour map could not be built or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HeatmapError {
    /// A colour-map name that is not built in, and not valid colour-map code either.
    #[error(
        "unknown colour map `{name}`; expected one of {names} or colour-map code like `00f,80:fff,f00`: {reason}"
    )]
    UnknownColorMap {
        /// The name that came.
        name: String,
        /// The built-in names.
        names: String,
        /// Why it is not valid code.
        reason: String,
    },
    /// Relevance whose length does not match the image shape.
    #[error("relevance has {found} values; expected channels × height × width = {expected}")]
    Shape {
        /// channels × height × width.
        expected: usize,
        /// Values given.
        found: usize,
    },
}

/// A 256-colour palette from Zennit's colour-map language.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorMap {
    palette: Vec<[u8; 3]>,
}

const BUILT_IN: [(&str, &str); 11] = [
    ("gray", "000,fff"),
    ("wred", "fff,f00"),
    ("wblue", "fff,00f"),
    ("hot", "000,f00,ff0,fff"),
    ("cold", "000,00f,0ff"),
    ("coldnhot", "0ff,00f,80:000,f00,ff0,fff"),
    ("bwr", "00f,80:fff,f00"),
    ("france", "0055a4,80:fff,ef4135"),
    ("seismic", "0000d0,80:d0d0d0,d00000"),
    ("coolio", "00d0d0,80:d0d0d0,d000d0"),
    ("coleus", "00d000,80:d0d0d0,d000d0"),
];

impl ColorMap {
    /// Names of Zennit's built-in colour maps.
    pub const NAMES: [&'static str; 11] = [
        "gray", "wred", "wblue", "hot", "cold", "coldnhot", "bwr", "france", "seismic", "coolio",
        "coleus",
    ];

    /// A built-in map by name, or a map from colour-map code.
    pub fn new(name_or_code: &str) -> Result<Self, HeatmapError> {
        let code = BUILT_IN
            .iter()
            .find(|(n, _)| *n == name_or_code)
            .map_or(name_or_code, |(_, c)| c);
        Self::from_code(code).map_err(|reason| HeatmapError::UnknownColorMap {
            name: name_or_code.to_string(),
            names: Self::NAMES.join(", "),
            reason,
        })
    }

    fn from_code(code: &str) -> Result<Self, String> {
        let nodes = code_nodes(code)?;
        if nodes.len() < 2 {
            return Err("a colour map needs at least 2 colours".into());
        }
        let stops = palette_stops(&nodes)?;
        Ok(ColorMap {
            palette: palette(&stops),
        })
    }

    /// The colour of a value in [0, 1] (clipped), as Zennit's `imgify` picks it: palette entry
    /// `⌊255·v⌋`.
    pub fn color(&self, value: f32) -> [u8; 3] {
        let index = (value * 255.0).clamp(0.0, 255.0) as usize;
        self.palette[index]
    }

    /// The 256 colours.
    pub fn palette(&self) -> &[[u8; 3]] {
        &self.palette
    }
}

/// One sample's heatmap: relevance `[channels, height, width]` (row-major) summed over channels,
/// normalised symmetrically (`v / max|v|` mapped to [0, 1], 0 → the centre), colour-mapped.
pub fn heatmap(
    relevance: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    cmap: &ColorMap,
) -> Result<RgbImage, HeatmapError> {
    let expected = channels * height * width;
    if relevance.len() != expected {
        return Err(HeatmapError::Shape {
            expected,
            found: relevance.len(),
        });
    }
    let plane = height * width;
    let summed: Vec<f32> = (0..plane)
        .map(|p| (0..channels).map(|c| relevance[c * plane + p]).sum())
        .collect();
    let vmax = summed.iter().fold(0f32, |m, v| m.max(v.abs()));
    Ok(RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let v = summed[y as usize * width + x as usize];
        let normalised = if vmax > 0.0 {
            (v + vmax) / (2.0 * vmax)
        } else {
            0.5
        };
        Rgb(cmap.color(normalised))
    }))
}

/// Blends a heatmap over the input image (grey for one channel, RGB for three; values scaled
/// from their own min–max to [0, 255]): `alpha · heat + (1 − alpha) · input`.
pub fn overlay(heat: &RgbImage, input: &[f32], channels: usize, alpha: f32) -> RgbImage {
    let (width, height) = heat.dimensions();
    let plane = (width * height) as usize;
    let (lo, hi) = input
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        });
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    RgbImage::from_fn(width, height, |x, y| {
        let p = (y * width + x) as usize;
        let pixel = |c: usize| (input[(c.min(channels - 1)) * plane + p] - lo) * scale;
        let h = heat.get_pixel(x, y).0;
        Rgb([0, 1, 2].map(|c| {
            (alpha * h[c] as f32 + (1.0 - alpha) * pixel(if channels >= 3 { c } else { 0 })).round()
                as u8
        }))
    })
}

/// Tiles images (all of one size) into a grid with `columns` columns and `gap` white pixels
/// between cells.
pub fn grid(images: &[RgbImage], columns: usize, gap: u32) -> RgbImage {
    let columns = columns.max(1);
    let (w, h) = images.first().map_or((1, 1), |i| i.dimensions());
    let rows = images.len().div_ceil(columns).max(1);
    let mut out = RgbImage::from_pixel(
        columns as u32 * (w + gap) + gap,
        rows as u32 * (h + gap) + gap,
        Rgb([255, 255, 255]),
    );
    for (k, img) in images.iter().enumerate() {
        let (col, row) = ((k % columns) as u32, (k / columns) as u32);
        image::imageops::overlay(
            &mut out,
            img,
            (gap + col * (w + gap)) as i64,
            (gap + row * (h + gap)) as i64,
        );
    }
    out
}

/// Scales an image up by an integer factor (nearest neighbour), e.g. 28×28 digits to 112×112.
pub fn upscale(img: &RgbImage, factor: u32) -> RgbImage {
    let factor = factor.max(1);
    image::imageops::resize(
        img,
        img.width() * factor,
        img.height() * factor,
        image::imageops::FilterType::Nearest,
    )
}

/// A colour node of colour-map code: an optional position (`II:`) and an RGB colour.
type Node = (Option<usize>, [f64; 3]);

/// The `[II:]color` nodes of colour-map code.
fn code_nodes(code: &str) -> Result<Vec<Node>, String> {
    let mut nodes: Vec<Node> = Vec::new();
    for token in code.split(',').map(str::trim) {
        let (index, color) = match token.split_once(':') {
            Some((i, c)) => {
                let i = if i.len() == 1 {
                    i.repeat(2)
                } else {
                    i.to_string()
                };
                let i = (i.len() == 2)
                    .then(|| usize::from_str_radix(&i, 16).ok())
                    .flatten()
                    .ok_or_else(|| format!("bad position `{i}` (one or two hex digits)"))?;
                (Some(i), c)
            }
            None => (None, token),
        };
        let hex = |s: &str| {
            u8::from_str_radix(s, 16)
                .map(f64::from)
                .map_err(|_| format!("bad colour `{color}`"))
        };
        let rgb = match color.len() {
            3 => {
                let c: Vec<String> = color.chars().map(|ch| ch.to_string().repeat(2)).collect();
                [hex(&c[0])?, hex(&c[1])?, hex(&c[2])?]
            }
            6 => [hex(&color[0..2])?, hex(&color[2..4])?, hex(&color[4..6])?],
            _ => return Err(format!("bad colour `{color}` (3 or 6 hex digits)")),
        };
        nodes.push((index, rgb));
    }
    Ok(nodes)
}

/// The palette's stops `(position, colour)` from the nodes, as Zennit's `_make_palette` places
/// them, with a sentinel at 256.
fn palette_stops(nodes: &[Node]) -> Result<Vec<(usize, [f64; 3])>, String> {
    // Positions as Zennit's `_make_palette`: first at 0, last at 255, unpositioned colours
    // spread evenly (truncated) between their positioned neighbours.
    let mut stops: Vec<(usize, [f64; 3])> = Vec::new();
    let (first_index, first) = nodes[0];
    stops.push((0, first));
    if let Some(i) = first_index.filter(|i| *i > 0) {
        stops.push((i, first));
    }
    let rest = &nodes[1..];
    let mut pending: Vec<[f64; 3]> = Vec::new();
    for (n, &(index, color)) in rest.iter().enumerate() {
        let index = match index {
            None if n + 1 < rest.len() => {
                pending.push(color);
                continue;
            }
            None => 255,
            Some(i) if i < stops.last().expect("non-empty").0 => {
                return Err("positions must ascend".into());
            }
            Some(i) => i,
        };
        let last = stops.last().expect("non-empty").0 as f64;
        let count = pending.len();
        for (k, color) in pending.drain(..).enumerate() {
            let alpha = (k + 1) as f64 / (count + 1) as f64;
            stops.push((
                (last * (1.0 - alpha) + index as f64 * alpha) as usize,
                color,
            ));
        }
        stops.push((index, color));
    }
    let last = *stops.last().expect("non-empty");
    stops.push((256, last.1));
    Ok(stops)
}

/// 256 colours for `x = i / 255`, linear between the stops.
fn palette(stops: &[(usize, [f64; 3])]) -> Vec<[u8; 3]> {
    // The palette: 256 colours for x = i / 255, linear between stops.
    (0..256)
        .map(|i| {
            let x = (i as f64 / 255.0) * 255.0;
            let k = stops[..stops.len() - 1]
                .iter()
                .filter(|(index, _)| (*index as f64) <= x)
                .count();
            let (i0, c0) = stops[k - 1];
            let (i1, c1) = stops[k];
            let alpha = (x - i0 as f64) / (i1 as f64 - i0 as f64);
            // Zennit: `(x * 255).round(12).clip(0, 255).astype(uint8)`, i.e. truncation.
            let mix = |ch: usize| {
                let v = (c0[ch] * (1.0 - alpha) + c1[ch] * alpha) / 255.0 * 255.0;
                ((v * 1e12).round() / 1e12).clamp(0.0, 255.0) as u8
            };
            [mix(0), mix(1), mix(2)]
        })
        .collect()
}

/// Height in pixels of a caption strip ([`captioned`]).
pub const CAPTION_HEIGHT: u32 = 10;

/// `img` with `text` written in a white strip below it (an 8×8 bitmap font, `font8x8`, so no
/// system font is needed); characters beyond the width, or outside ASCII, are left out.
///
/// # Shapes
/// - `img`: `W × H`; returns `W × (H + CAPTION_HEIGHT)`
pub fn captioned(img: &RgbImage, text: &str) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = RgbImage::from_pixel(w, h + CAPTION_HEIGHT, Rgb([255, 255, 255]));
    image::imageops::replace(&mut out, img, 0, 0);
    let fits = (w / 8) as usize;
    for (i, ch) in text.chars().filter(char::is_ascii).take(fits).enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY[ch as usize];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    out.put_pixel(i as u32 * 8 + col, h + 1 + row as u32, Rgb([0, 0, 0]));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod caption_tests {
    use super::*;

    #[test]
    fn a_caption_adds_a_strip_with_the_glyphs_of_the_text() {
        let img = RgbImage::from_pixel(24, 5, Rgb([9, 9, 9]));
        let out = captioned(&img, "1|");
        assert_eq!(out.dimensions(), (24, 5 + CAPTION_HEIGHT));
        assert_eq!(out.get_pixel(0, 0), &Rgb([9, 9, 9]));
        let black = |x0: u32| {
            (x0..x0 + 8)
                .flat_map(|x| (5..5 + CAPTION_HEIGHT).map(move |y| (x, y)))
                .filter(|&(x, y)| out.get_pixel(x, y) == &Rgb([0, 0, 0]))
                .count()
        };
        // '1' and '|' have ink; the third cell (no character) has none.
        assert!(black(0) > 5 && black(8) > 5);
        assert_eq!(black(16), 0);
    }
}
