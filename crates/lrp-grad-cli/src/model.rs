//! The model a command works on: an ONNX file, or the JSON + safetensors interchange format.

use std::path::Path;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use lrp_grad::interchange::{self, ModelSpec};
use lrp_grad::{FeatureShape, Graph, Layer, Op};

/// A loaded model, whatever its file format.
pub(crate) struct CliModel {
    /// The model as a graph (a chain for the interchange format).
    pub graph: Graph,
    /// The per-sample input shape.
    pub input_shape: FeatureShape,
    /// The interchange description, for the JSON format.
    pub spec: Option<ModelSpec>,
    /// The final softmax an ONNX model ended in (dropped: the logits are explained).
    pub dropped_softmax: Option<String>,
    /// A text model's embedding table: token ids `[N, T]` → the graph's input `[N, T, D]`.
    pub embedding: Option<burn::nn::Embedding>,
}

impl CliModel {
    /// The per-sample shape of an input file: `[T]` token ids for a text model, else the
    /// graph's input shape.
    pub(crate) fn file_shape(&self) -> FeatureShape {
        match self.embedding {
            Some(_) => FeatureShape::vector(self.input_shape.dims()[0]),
            None => self.input_shape,
        }
    }
}

/// Whether `path` is a Hugging Face checkpoint directory (it holds a `config.json`).
pub(crate) fn is_checkpoint(path: &Path) -> bool {
    path.is_dir() && path.join("config.json").is_file()
}

/// A checkpoint directory's causal LM on `tokens` positions: token ids `[N, T]` in, the last
/// position's logits out.
pub(crate) fn load_checkpoint(dir: &Path, tokens: usize, device: &Device) -> Result<CliModel> {
    checkpoint_model(dir, &lrp_grad::hf::load(dir, device)?, tokens)
}

/// A loaded checkpoint's causal LM on `tokens` positions.
pub(crate) fn checkpoint_model(
    dir: &Path,
    model: &lrp_grad::hf::HfModel,
    tokens: usize,
) -> Result<CliModel> {
    if tokens == 0 {
        bail!("{}: the token ids hold no position", dir.display());
    }
    if let Some(most) = model.max_tokens().filter(|&most| tokens > most) {
        bail!(
            "{}: the token ids hold {tokens} positions; the model learned {most}",
            dir.display()
        );
    }
    Ok(CliModel {
        graph: model.graph(tokens)?,
        input_shape: FeatureShape::sequence(tokens, model.config().hidden_size),
        spec: None,
        dropped_softmax: None,
        embedding: Some(model.embedding().clone()),
    })
}

/// Whether `path` names an ONNX model (by its extension).
pub(crate) fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Loads `model`: an `.onnx` file (weights inside it or beside it, so no `weights`), or a JSON
/// description with its safetensors `weights` (`None` for the architecture alone, where the
/// command allows it).
pub(crate) fn load(
    model: &Path,
    weights: Option<&Path>,
    allow_unused: bool,
    device: &Device,
) -> Result<CliModel> {
    if is_onnx(model) {
        if let Some(weights) = weights {
            bail!(
                "--weights {}: {} is an ONNX model, which holds its own weights; drop --weights",
                weights.display(),
                model.display()
            );
        }
        let onnx = lrp_grad::onnx::load(model, device)?;
        return Ok(CliModel {
            graph: onnx.graph,
            input_shape: onnx.input_shape,
            spec: None,
            dropped_softmax: onnx.dropped_softmax,
            embedding: onnx.embedding,
        });
    }
    let loaded = match (weights, allow_unused) {
        (Some(weights), false) => interchange::load(model, weights, device)?,
        (Some(weights), true) => interchange::load_allowing_unused(model, weights, device)?,
        (None, _) => interchange::load_architecture(model, device)?,
    };
    if !loaded.unused_weights.is_empty() {
        eprintln!(
            "note: {} tensor(s) of the weights file unused: {}",
            loaded.unused_weights.len(),
            loaded.unused_weights.join(", ")
        );
    }
    Ok(CliModel {
        graph: Graph::from_sequential(&loaded.model),
        input_shape: loaded.input_shape,
        spec: Some(loaded.spec),
        dropped_softmax: None,
        embedding: None,
    })
}

/// The weights a command that runs the model needs: required for the JSON format, refused
/// (by [`load`]) for ONNX.
pub(crate) fn require_weights<'a>(
    model: &Path,
    weights: Option<&'a Path>,
) -> Result<Option<&'a Path>> {
    if is_checkpoint(model) {
        if let Some(weights) = weights {
            bail!(
                "--weights {}: {} is a checkpoint directory, which holds its own weights; drop --weights",
                weights.display(),
                model.display()
            );
        }
        return Ok(None);
    }
    if weights.is_none() && !is_onnx(model) {
        bail!(
            "{} is a JSON model description: give its weights with --weights W.safetensors (or use an .onnx model)",
            model.display()
        );
    }
    Ok(weights)
}

/// Parameters and buffers (batch-norm running statistics) of a node, counted apart.
pub(crate) fn parameters_and_buffers(op: &Op) -> (usize, usize) {
    match op {
        Op::Layer(Layer::BatchNorm(bn)) => {
            let [n] = bn.gamma.dims();
            (2 * n, 2 * n)
        }
        other => (other.num_params(), 0),
    }
}
