//! The interchange format: a JSON model description plus PyTorch `state_dict` weights in
//! safetensors, so a PyTorch `nn.Sequential` saved with `safetensors.torch.save_file` loads as
//! it is.
//!
//! ```json
//! {"input_shape": [1, 28, 28],
//!  "layers": [{"kind": "conv2d", "name": "0", "in_channels": 1, "out_channels": 8,
//!              "kernel_size": [3, 3], "padding": [1, 1]},
//!             {"kind": "relu"}, {"kind": "flatten"},
//!             {"kind": "linear", "name": "3", "in_features": 6272, "out_features": 10}]}
//! ```
//! `name` is the prefix of the layer's tensors: `<name>.weight`, `<name>.bias`, and for batch
//! norm `<name>.running_mean`, `<name>.running_var` (`num_batches_tracked` is ignored).
//! Linear weights are `[out, in]`, conv weights `[out, in/groups, kh, kw]`, all float32.

pub(crate) mod error;
mod spec;
mod weights;

pub use error::LoadError;
pub use spec::{LayerSpec, ModelSpec, Pair};

use std::path::Path;

use burn::tensor::Device;

use crate::Error;
use crate::model::{FeatureShape, Sequential};

/// A model read from the interchange format, with its per-sample input shape.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The model.
    pub model: Sequential,
    /// The per-sample input shape from the description.
    pub input_shape: FeatureShape,
    /// The description it was built from.
    pub spec: ModelSpec,
    /// Tensors of the weights file that no layer uses (only with [`load_allowing_unused`]).
    pub unused_weights: Vec<String>,
}

/// Reads a model description (JSON) and its weights (safetensors) onto `device`.
pub fn load(model_json: &Path, weights: &Path, device: &Device) -> Result<LoadedModel, LoadError> {
    build(model_json, Some(weights), device, false)
}

/// As [`load`], but tensors of the weights file that no layer uses (a full `state_dict`
/// serving part of a model) are allowed and listed in [`LoadedModel::unused_weights`].
pub fn load_allowing_unused(
    model_json: &Path,
    weights: &Path,
    device: &Device,
) -> Result<LoadedModel, LoadError> {
    build(model_json, Some(weights), device, true)
}

/// Reads a model description alone: the architecture, with Burn's default initialization.
pub fn load_architecture(model_json: &Path, device: &Device) -> Result<LoadedModel, LoadError> {
    build(model_json, None, device, false)
}

fn build(
    model_json: &Path,
    weights: Option<&Path>,
    device: &Device,
    allow_unused: bool,
) -> Result<LoadedModel, LoadError> {
    if let Some(weights) = weights
        && weights
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pt") || e.eq_ignore_ascii_case("pth"))
    {
        return Err(LoadError::Safetensors {
            file: weights.to_path_buf(),
            message: "a PyTorch pickle (.pt/.pth), which lrp-grad does not read; save the weights with `safetensors.torch.save_file(model.state_dict(), \"w.safetensors\")`, or export the model with `torch.onnx.export` and pass the .onnx file".into(),
        });
    }
    let spec = ModelSpec::read(model_json)?;
    let (model, unused_weights) = weights::load(&spec, weights, device, allow_unused)?;
    let input_shape = spec.input_feature_shape(model_json)?;
    // Shapes across layers (e.g. `in_features` against the previous layer's output).
    model
        .num_classes(input_shape)
        .map_err(|e| LoadError::Invalid {
            file: model_json.to_path_buf(),
            path: match &e {
                Error::ShapeMismatch { index, .. } | Error::UnsupportedLayer { index, .. } => {
                    format!("layers[{index}]")
                }
                _ => "layers".into(),
            },
            message: e.to_string(),
        })?;
    Ok(LoadedModel {
        model,
        input_shape,
        spec,
        unused_weights,
    })
}

/// Writes `model` as a description (JSON) and weights (safetensors, PyTorch names and layouts).
///
/// Each file is written to a temporary file beside it and renamed at the end, so no
/// half-written file is left behind.
pub fn save(
    model: &Sequential,
    input_shape: FeatureShape,
    model_json: &Path,
    weights: &Path,
) -> Result<(), LoadError> {
    let spec = ModelSpec::from_model(model, input_shape)?;
    let text = serde_json::to_string_pretty(&spec).expect("a model spec serializes") + "\n";
    let bytes = weights::serialize(model, &spec)?;
    write_atomically(weights, &bytes)?;
    write_atomically(model_json, text.as_bytes())
}

impl LoadError {
    /// An I/O error on `file`.
    pub(crate) fn io(file: &Path, error: std::io::Error) -> Self {
        LoadError::Io {
            file: file.to_path_buf(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// Writes `bytes` to a temporary file next to `path`, then renames it into place.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let io = |error| LoadError::io(path, error);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
