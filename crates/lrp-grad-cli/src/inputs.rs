//! `--input`: one `.npy` array, or image files and directories of them, preprocessed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use lrp_grad::FeatureShape;
use lrp_grad::preprocess::Preprocess;

use crate::npy;

const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub(crate) enum Preset {
    /// No resize, no crop, mean 0, std 1 (pixels in [0, 1]).
    None,
    /// Resize 256, centre crop 224, ImageNet mean and std.
    Imagenet,
}

/// How image inputs are preprocessed (torchvision's recipe).
#[derive(Args, Clone)]
pub(crate) struct PreprocessArgs {
    /// Images: a preset recipe; --resize, --crop, --mean, --std override its parts.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Images: resize so that the shorter side has N pixels (aspect kept; bilinear, antialiased).
    #[arg(long, value_name = "N")]
    resize: Option<u32>,
    /// Images: then cut the central N×N square.
    #[arg(long, value_name = "N")]
    crop: Option<u32>,
    /// Images: per-channel mean to subtract (one value, or one per channel: 0.485,0.456,0.406).
    #[arg(
        long,
        value_name = "M",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    mean: Option<Vec<f32>>,
    /// Images: per-channel standard deviation to divide by (one value, or one per channel).
    #[arg(long, value_name = "S", value_delimiter = ',')]
    std: Option<Vec<f32>>,
}

impl PreprocessArgs {
    fn given(&self) -> Option<&'static str> {
        [
            (self.preset.is_some(), "--preset"),
            (self.resize.is_some(), "--resize"),
            (self.crop.is_some(), "--crop"),
            (self.mean.is_some(), "--mean"),
            (self.std.is_some(), "--std"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    pub(crate) fn recipe(&self) -> Preprocess {
        let mut recipe = match self.preset {
            Some(Preset::Imagenet) => Preprocess::imagenet(),
            Some(Preset::None) | None => Preprocess::none(),
        };
        recipe.resize = self.resize.or(recipe.resize);
        recipe.crop = self.crop.or(recipe.crop);
        if let Some(mean) = &self.mean {
            recipe.mean = mean.clone();
        }
        if let Some(std) = &self.std {
            recipe.std = std.clone();
        }
        recipe
    }
}

/// The samples to explain.
pub(crate) struct Inputs {
    /// `[N, *input_shape]` values.
    pub data: Vec<f32>,
    /// Number of samples.
    pub n: usize,
    /// A name per sample: the image file's name, or `<file.npy>[i]`.
    pub names: Vec<String>,
    /// Per sample, a file stem for per-sample outputs (`--heatmap-dir`).
    pub stems: Vec<String>,
    /// The shape the relevance `.npy` gets (the array's own, or `[N, C, H, W]` for images).
    pub shape: Vec<usize>,
    /// The preprocessing recipe, for image inputs.
    pub recipe: Option<Preprocess>,
    /// Whether the `.npy` held integers (token ids).
    pub integer: bool,
}

/// Reads `paths` for a model taking per-sample `shape`.
pub(crate) fn read(
    paths: &[PathBuf],
    shape: FeatureShape,
    preprocess: &PreprocessArgs,
    model: &Path,
) -> Result<Inputs> {
    if let [path] = paths
        && is_npy(path)
    {
        if let Some(flag) = preprocess.given() {
            bail!(
                "{flag} applies to image inputs; {} is an array",
                path.display()
            );
        }
        return read_npy(path, shape, model);
    }
    if let Some(npy) = paths.iter().find(|p| is_npy(p)) {
        bail!(
            "{}: an .npy array goes alone; give either one .npy or image files and directories",
            npy.display()
        );
    }
    read_images(&image_files(paths)?, shape, &preprocess.recipe())
}

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The image files of `paths`: files as given, directories as their image files sorted by name.
fn image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            if inside.is_empty() {
                bail!(
                    "{}: no .png, .jpg or .jpeg files in this directory",
                    path.display()
                );
            }
            inside.sort();
            files.extend(inside);
        } else if is_image(path) {
            files.push(path.clone());
        } else {
            bail!(
                "{}: expected an .npy array, an image (.png, .jpg, .jpeg) or a directory of images",
                path.display()
            );
        }
    }
    Ok(files)
}

fn read_images(files: &[PathBuf], shape: FeatureShape, recipe: &Preprocess) -> Result<Inputs> {
    let Some((channels, height, width)) = shape.as_image() else {
        bail!(
            "image inputs need an image model; this one takes {:?}",
            shape.dims()
        );
    };
    let mut data = Vec::with_capacity(files.len() * shape.numel());
    for file in files {
        let image = recipe.load(file, channels)?;
        if image.dims != [channels, height, width] {
            bail!(
                "{}: preprocessed to {:?}, but the model takes {:?} (use --resize/--crop or --preset)",
                file.display(),
                image.dims,
                shape.dims()
            );
        }
        data.extend(image.values);
    }
    let name = |f: &PathBuf| {
        f.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into())
    };
    let stem = |f: &PathBuf| {
        f.file_stem()
            .map_or(String::new(), |n| n.to_string_lossy().into())
    };
    Ok(Inputs {
        data,
        n: files.len(),
        names: files.iter().map(name).collect(),
        stems: files.iter().map(stem).collect(),
        shape: vec![files.len(), channels, height, width],
        recipe: Some(recipe.clone()),
        integer: false,
    })
}

fn read_npy(path: &Path, shape: FeatureShape, model: &Path) -> Result<Inputs> {
    let input = npy::read(path)?;
    let sample_dims = shape.dims();
    // [N, *input_shape] or input_shape alone (then N = 1).
    let n = if input.shape == sample_dims {
        1
    } else if input.shape.len() == sample_dims.len() + 1 && input.shape[1..] == sample_dims[..] {
        input.shape[0]
    } else {
        let dims: Vec<String> = sample_dims.iter().map(|d| d.to_string()).collect();
        bail!(
            "{}: shape {:?} does not fit the model {} (input_shape {:?}); expected [N, {}] or {:?}",
            path.display(),
            input.shape,
            model.display(),
            sample_dims,
            dims.join(", "),
            sample_dims
        );
    };
    if n == 0 {
        bail!(
            "{}: shape {:?} holds no sample",
            path.display(),
            input.shape
        );
    }
    let file = path
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into());
    let stem = path
        .file_stem()
        .map_or(String::new(), |f| f.to_string_lossy().into());
    Ok(Inputs {
        data: input.data,
        n,
        names: (0..n).map(|i| format!("{file}[{i}]")).collect(),
        stems: (0..n).map(|i| format!("{stem}-{i}")).collect(),
        shape: input.shape,
        recipe: None,
        integer: input.integer,
    })
}
