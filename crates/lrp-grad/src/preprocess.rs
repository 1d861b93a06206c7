//! Image files as model inputs: decode (PNG, JPEG; 8 or 16 bits; grey, RGB or RGBA), scale
//! pixels to `[0, 1]`, resize, centre-crop and normalise per channel — torchvision's
//! `Resize(N)`, `CenterCrop(N)`, `ToTensor()`, `Normalize(mean, std)` recipe.
//!
//! ```no_run
//! use lrp_grad::preprocess::Preprocess;
//!
//! let recipe = Preprocess::imagenet(); // resize 256, crop 224, ImageNet mean/std
//! let image = recipe.load("cat.jpg".as_ref(), 3).unwrap();
//! assert_eq!(image.dims, [3, 224, 224]);
//! // z-box bounds for epsilon-gamma-box: the normalised images of pixel values 0 and 1.
//! let (low, high) = recipe.bounds(3);
//! ```

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};

/// The resampling filter of [`Preprocess::resize`]: `image`'s `Triangle` (bilinear, widened
/// when shrinking so that it averages like torchvision's antialiased bilinear resize).
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// ImageNet's per-channel mean (RGB), as torchvision's pretrained models expect.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// An image file that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read or decoded.
    #[error("{file}: cannot read the image: {reason}")]
    Read {
        /// The file.
        file: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The recipe does not fit the image or the model.
    #[error("{file}: {reason}")]
    Recipe {
        /// The file.
        file: PathBuf,
        /// What does not fit.
        reason: String,
    },
}

/// One preprocessed image: `[C, H, W]` values, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `[channels, height, width]`.
    pub dims: [usize; 3],
    /// The values, channel after channel, each row-major.
    pub values: Vec<f32>,
}

/// How image files become model inputs. The default does nothing but scale pixels to `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preprocess {
    /// Resize so that the shorter side has this many pixels (aspect kept), with
    /// [`RESIZE_FILTER`].
    pub resize: Option<u32>,
    /// Then cut the central `N × N` square.
    pub crop: Option<u32>,
    /// Then subtract a mean per channel (one value for all channels, or one per channel).
    pub mean: Vec<f32>,
    /// And divide by a standard deviation per channel (one value, or one per channel).
    pub std: Vec<f32>,
}

impl Preprocess {
    /// No resize, no crop, mean 0, std 1.
    pub fn none() -> Self {
        Self::default()
    }

    /// ImageNet's recipe: resize 256, centre-crop 224, ImageNet mean and std.
    pub fn imagenet() -> Self {
        Preprocess {
            resize: Some(256),
            crop: Some(224),
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
        }
    }

    /// Reads `file` as an image of `channels` channels (1: luminance; 3: RGB, alpha dropped).
    pub fn load(&self, file: &Path, channels: usize) -> Result<Image, ImageError> {
        let read = |reason: String| ImageError::Read {
            file: file.to_path_buf(),
            reason,
        };
        let decoded = image::ImageReader::open(file)
            .map_err(|e| read(e.to_string()))?
            .with_guessed_format()
            .map_err(|e| read(e.to_string()))?
            .decode()
            .map_err(|e| read(e.to_string()))?;
        self.apply(decoded, channels)
            .map_err(|reason| ImageError::Recipe {
                file: file.to_path_buf(),
                reason,
            })
    }

    /// The recipe on a decoded image.
    pub fn apply(&self, image: DynamicImage, channels: usize) -> Result<Image, String> {
        let (mean, std) = (
            self.per_channel(&self.mean, 0.0, channels, "mean")?,
            self.per_channel(&self.std, 1.0, channels, "std")?,
        );
        if let Some(s) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
            return Err(format!(
                "std {s} per channel; expected finite, non-zero values"
            ));
        }
        let image = match self.resize {
            Some(n) => resize_shorter_side(&image, n)?,
            None => image,
        };
        let image = match self.crop {
            Some(n) => centre_crop(&image, n)?,
            None => image,
        };
        let (width, height) = image.dimensions();
        let planes = to_planes(&image, channels)?;
        let pixels = (width * height) as usize;
        let values = planes
            .chunks_exact(pixels)
            .enumerate()
            .flat_map(|(c, plane)| {
                let (m, d) = (mean[c], std[c]);
                plane.iter().map(move |v| (v - m) / d)
            })
            .collect();
        Ok(Image {
            dims: [channels, height as usize, width as usize],
            values,
        })
    }

    /// Per-channel bounds of the normalised pixel range: `((0 − mean_c)/std_c, (1 − mean_c)/std_c)`,
    /// the z-box bounds for images preprocessed with this recipe (Zennit's usual recipe).
    pub fn bounds(&self, channels: usize) -> (Vec<f32>, Vec<f32>) {
        let mean = self
            .per_channel(&self.mean, 0.0, channels, "mean")
            .unwrap_or(vec![0.0; channels]);
        let std = self
            .per_channel(&self.std, 1.0, channels, "std")
            .unwrap_or(vec![1.0; channels]);
        let low = mean.iter().zip(&std).map(|(m, s)| (0.0 - m) / s).collect();
        let high = mean.iter().zip(&std).map(|(m, s)| (1.0 - m) / s).collect();
        (low, high)
    }

    fn per_channel(
        &self,
        values: &[f32],
        default: f32,
        channels: usize,
        what: &str,
    ) -> Result<Vec<f32>, String> {
        match values.len() {
            0 => Ok(vec![default; channels]),
            1 => Ok(vec![values[0]; channels]),
            n if n == channels => Ok(values.to_vec()),
            n => Err(format!(
                "{n} {what} values for a model of {channels} channel(s); expected 1 or {channels}"
            )),
        }
    }
}

fn resize_shorter_side(image: &DynamicImage, n: u32) -> Result<DynamicImage, String> {
    let (w, h) = image.dimensions();
    if n == 0 {
        return Err("resize to 0 pixels".into());
    }
    // torchvision's Resize(int): the shorter side becomes n, the longer one n·long/short,
    // rounded down.
    let (nw, nh) = if w <= h {
        (n, ((n as u64 * h as u64) / w as u64) as u32)
    } else {
        (((n as u64 * w as u64) / h as u64) as u32, n)
    };
    Ok(image.resize_exact(nw, nh, RESIZE_FILTER))
}

fn centre_crop(image: &DynamicImage, n: u32) -> Result<DynamicImage, String> {
    let (w, h) = image.dimensions();
    if n == 0 || n > w || n > h {
        return Err(format!(
            "a centre crop of {n}×{n} from a {w}×{h} image; expected a crop no larger than the image (resize first)"
        ));
    }
    // torchvision rounds the offsets as Python does, half to even: int(round((size - n) / 2)).
    let left = ((w - n) as f64 / 2.0).round_ties_even() as u32;
    let top = ((h - n) as f64 / 2.0).round_ties_even() as u32;
    Ok(image.crop_imm(left, top, n, n))
}

/// The image's pixels in `[0, 1]` as `channels` planes.
fn to_planes(image: &DynamicImage, channels: usize) -> Result<Vec<f32>, String> {
    match channels {
        1 => Ok(image.to_luma32f().into_raw()),
        3 => {
            let rgb = image.to_rgb32f();
            let raw = rgb.as_raw();
            Ok((0..3)
                .flat_map(|c| raw.iter().skip(c).step_by(3).copied())
                .collect())
        }
        n => Err(format!(
            "the model takes {n} channels; images give 1 (grey) or 3 (RGB)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn gradient_image(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 10) as u8, (y * 10) as u8, 200])
        }))
    }

    #[test]
    fn pixels_become_channel_planes_in_zero_one() {
        let image = Preprocess::none().apply(gradient_image(3, 2), 3).unwrap();
        assert_eq!(image.dims, [3, 2, 3]);
        // Red plane: x·10/255, row-major.
        let red: Vec<f32> = [0, 10, 20, 0, 10, 20]
            .iter()
            .map(|v| *v as f32 / 255.0)
            .collect();
        assert_eq!(&image.values[..6], &red[..]);
        assert!(
            image.values[12..]
                .iter()
                .all(|v| (*v - 200.0 / 255.0).abs() < 1e-7)
        );
    }

    #[test]
    fn normalisation_and_its_bounds_are_per_channel() {
        let recipe = Preprocess {
            mean: vec![0.5, 0.25, 0.0],
            std: vec![0.5, 0.25, 2.0],
            ..Preprocess::none()
        };
        let image = recipe.apply(gradient_image(1, 1), 3).unwrap();
        let expected = [
            (0.0 - 0.5) / 0.5,
            (0.0 - 0.25) / 0.25,
            (200.0 / 255.0) / 2.0,
        ];
        for (v, e) in image.values.iter().zip(expected) {
            assert!((v - e).abs() < 1e-6, "{v} vs {e}");
        }
        assert_eq!(
            recipe.bounds(3),
            (vec![-1.0, -1.0, 0.0], vec![1.0, 3.0, 0.5])
        );
    }

    #[test]
    fn resize_keeps_the_aspect_and_crop_takes_the_centre() {
        let recipe = Preprocess {
            resize: Some(4),
            crop: Some(4),
            ..Preprocess::none()
        };
        let image = recipe.apply(gradient_image(16, 8), 1).unwrap();
        assert_eq!(image.dims, [1, 4, 4]);
        // 2×2 from 5×3: columns from round(1.5) = 2, rows from round(0.5) = 0 (half to even).
        let only_crop = Preprocess {
            crop: Some(2),
            ..Preprocess::none()
        };
        let cut = only_crop.apply(gradient_image(5, 3), 3).unwrap();
        let red: Vec<f32> = [20, 30, 20, 30].iter().map(|v| *v as f32 / 255.0).collect();
        assert_eq!(&cut.values[..4], &red[..]);
    }

    #[test]
    fn a_crop_larger_than_the_image_or_a_wrong_channel_count_is_an_error() {
        let crop = Preprocess {
            crop: Some(9),
            ..Preprocess::none()
        };
        assert!(
            crop.apply(gradient_image(4, 4), 3)
                .unwrap_err()
                .contains("no larger")
        );
        let mean = Preprocess {
            mean: vec![0.1, 0.2],
            ..Preprocess::none()
        };
        assert!(
            mean.apply(gradient_image(4, 4), 3)
                .unwrap_err()
                .contains("2 mean values")
        );
        assert!(
            Preprocess::none()
                .apply(gradient_image(4, 4), 2)
                .unwrap_err()
                .contains("2 channels")
        );
    }
}
