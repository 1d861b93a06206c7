//! ONNX models (e.g. from `torch.onnx.export`) as [`Graph`]s, parsed at run time with the
//! [`onnx-ir`](https://docs.rs/onnx-ir) crate.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use burn::tensor::{Device, Tensor};
//! use lrp_grad::{Composite, Explainer};
//!
//! let device = Device::default();
//! let model = lrp_grad::onnx::load("resnet18.onnx".as_ref(), &device)?;
//! let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
//! let explanation = Explainer::new()
//!     .composite(Composite::epsilon_plus_flat())
//!     .explain(&model.graph, x)?;
//! # Ok(())
//! # }
//! ```
//!
//! Both of PyTorch's exporters work: `dynamo=True` (opset 18, weights in `model.onnx.data`
//! beside the model) and `dynamo=False` (TorchScript, one file). Batch norms that the exporter
//! did not fold into a convolution stay batch norms (merged by the canonizer where a conv or
//! dense layer feeds them alone, [`Rule::Pass`](crate::Rule::Pass) elsewhere). A final
//! `Softmax` is dropped: the logits before it are explained (LRP explains scores that are
//! sums of evidence, which the logits are and normalised probabilities are not).
//! `x · sigmoid(x)` becomes one SiLU activation (and GELU's erf pattern one GELU); a product of
//! two activations of one shape is a uniform [`Mul`](crate::Mul), one of a broadcast factor a
//! [`Gate`](crate::Gate). Every other operator is translated one to one, or refused
//! with an [`OnnxError`] naming the node, before anything runs.
//!
//! The batch axis is free: a model exported with a batch of 2 explains any batch size. Exports
//! that move the batch (sequence-first attention) or fold it into another axis (the heads of
//! SDPA's `[N·H, T, dh]`) load too: each value knows where its batch is (`layout.rs`), and
//! moves of it become per-sample permutes and reshapes.
//!
//! Text models whose input is token ids (`int64 [N, T]`) read by an embedding lookup
//! (`Gather` of a constant table) load too: the lookup becomes [`OnnxModel::embedding`] and
//! the graph starts at the embeddings `[N, T, D]`; relevance per token is the sum over `D`
//! ([`crate::tokens`]).

mod adaptive_pool;
mod broadcast;
mod constant_scale;
mod constants;
mod convert;
mod einsum;
pub(crate) mod error;
mod fold;
mod layout;
mod moves;
mod normalize;
mod params;
mod patterns;
mod shapes;

pub use error::OnnxError;

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};
use onnx_ir::ir::ArgType;
use onnx_ir::{Node as OnnxNode, OnnxGraph, OnnxGraphBuilder};

use crate::model::{FeatureShape, Graph};

/// A loaded ONNX model.
#[derive(Debug)]
pub struct OnnxModel {
    /// The model as a graph. Nodes are named as the parser names them, by operator and order
    /// in the file (`conv2d1`, `conv2d2`, …, `add1`): the exporter's own names do not survive
    /// `onnx-ir`, so name maps of composites match these (`lrp-grad info` lists them).
    pub graph: Graph,
    /// The per-sample input shape (the ONNX input's dims after the batch axis).
    pub input_shape: FeatureShape,
    /// The ONNX input's name.
    pub input_name: String,
    /// The final softmax that was dropped (its node name), if the model ended in one.
    pub dropped_softmax: Option<String>,
    /// For a model on token ids: its embedding table, which maps ids `[N, T]` to the graph's
    /// input `[N, T, D]` (`input_shape` is then `[T, D]`).
    pub embedding: Option<burn::nn::Embedding>,
}

/// Reads an ONNX model onto `device`. Every error names the file, and the node or input at
/// fault; nothing runs before the whole model is translated and its shapes checked.
pub fn load(path: &Path, device: &Device) -> Result<OnnxModel, OnnxError> {
    let onnx = parse(path)?;
    let interface = |reason: String| OnnxError::Interface {
        file: path.to_path_buf(),
        reason,
    };
    let (input_name, input_dims, dtype) = input(&onnx).map_err(interface)?;
    let (output, dropped_softmax) = output(&onnx).map_err(interface)?;
    let mut nodes = needed_nodes(&onnx, &output);
    // Token ids: the embedding lookup is taken out, and the graph starts at its output.
    let (graph_input, input_shape, embedding) = if dtype == DType::F32 {
        let batched: Vec<usize> = std::iter::once(1).chain(input_dims).collect();
        let shape = FeatureShape::from_batched(&batched)
            .map_err(|e| interface(format!("input `{input_name}`: {e}")))?;
        (input_name.clone(), shape, None)
    } else {
        let (lookup, embedding, shape) =
            embedding_lookup(&nodes, &input_name, &input_dims, device).map_err(interface)?;
        nodes.retain(|n| n.name() != lookup.0);
        (lookup.1, shape, Some(embedding))
    };
    let mut converter = convert::Converter::new(
        path,
        device,
        (&graph_input, input_shape),
        export_batch(&onnx),
    );
    converter.find_patterns(&nodes);
    for node in &nodes {
        converter.node(node)?;
    }
    if let Some(layout) = converter.values.get(&output).map(|v| &v.layout)
        && !layout.is_standard()
    {
        return Err(interface(format!(
            "the output `{output}` is laid out as {}; expected the batch first",
            layout.describe()
        )));
    }
    let last = converter.graph.len();
    if converter.value_of(&output).map(|id| id.index()) != Some(last) || last == 0 {
        return Err(interface(format!(
            "the output `{output}` is not computed from the input by the translated nodes"
        )));
    }
    let graph = converter.graph;
    graph
        .num_classes(input_shape)
        .map_err(|e| interface(format!("the translated graph does not fit its input: {e}")))?;
    Ok(OnnxModel {
        graph,
        input_shape,
        input_name,
        dropped_softmax,
        embedding,
    })
}

fn parse(path: &Path) -> Result<OnnxGraph, OnnxError> {
    if let Err(source) = std::fs::metadata(path) {
        return Err(OnnxError::Read {
            file: path.to_path_buf(),
            reason: source.to_string(),
        });
    }
    // Constant subgraphs onnx-ir cannot type are folded first (`fold.rs`).
    let folded = (fold::worth_folding(path))
        .then(|| std::fs::read(path).ok())
        .flatten()
        .and_then(|bytes| fold::fold(&bytes, path.parent()));
    // The parser panics on some malformed files: a panic becomes an error naming the file.
    let parsed = std::panic::catch_unwind(|| {
        let builder = OnnxGraphBuilder::new()
            .with_custom_op_inference(std::sync::Arc::new(adaptive_pool::PoolTypes));
        match &folded {
            Some(bytes) => builder.parse_bytes(bytes),
            None => builder.parse_file(path),
        }
    });
    let reason = match parsed {
        Ok(Ok(graph)) => return Ok(graph),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the parser failed on this file (is it an ONNX model, complete?)".to_string(),
    };
    if let Some(data) = missing_external_data(path, &reason) {
        return Err(OnnxError::MissingExternalData {
            file: path.to_path_buf(),
            data,
        });
    }
    Err(OnnxError::Read {
        file: path.to_path_buf(),
        reason,
    })
}

/// The external data file a failed parse was looking for, if it is missing.
fn missing_external_data(path: &Path, reason: &str) -> Option<PathBuf> {
    if !reason.contains("external") && !reason.contains("No such file") {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let candidate = dir.join(format!("{}.data", path.file_name()?.to_string_lossy()));
    (!candidate.exists()).then_some(candidate)
}

/// The one input: its name, per-sample dims and type (float32, or integer token ids).
/// The batch size the model was exported with (1 when the export left it symbolic).
fn export_batch(onnx: &OnnxGraph) -> usize {
    let input = onnx.inputs.iter().find(|a| !a.is_constant());
    let dims = input.and_then(|a| match &a.ty {
        ArgType::Tensor(t) => t.static_shape.clone(),
        _ => None,
    });
    (dims.and_then(|d| d.first().copied().flatten()))
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

fn input(onnx: &OnnxGraph) -> Result<(String, Vec<usize>, DType), String> {
    let inputs: Vec<_> = onnx.inputs.iter().filter(|a| !a.is_constant()).collect();
    let [input] = inputs[..] else {
        return Err(format!(
            "the model has {} inputs; expected one (the batch of samples)",
            inputs.len()
        ));
    };
    let ArgType::Tensor(t) = &input.ty else {
        return Err(format!("input `{}` is not a tensor", input.name));
    };
    if !matches!(t.dtype, DType::F32 | DType::I64 | DType::I32) {
        return Err(format!(
            "input `{}` is {:?}; expected float32 (or integer token ids read by an embedding)",
            input.name, t.dtype
        ));
    }
    let dims = convert::per_sample_dims(input).ok_or_else(|| {
        format!(
            "input `{}` has no fixed per-sample shape ({}); export with a fixed input size",
            input.name, input.ty
        )
    })?;
    Ok((input.name.clone(), dims, t.dtype))
}

/// The embedding lookup that reads integer input `ids` of per-sample dims `[T]`: a `Gather` of
/// a constant table `[V, D]` along axis 0. Returns the lookup's (node, output) names, the table
/// and the graph's input shape `[T, D]`.
fn embedding_lookup(
    nodes: &[&OnnxNode],
    ids: &str,
    dims: &[usize],
    device: &Device,
) -> Result<((String, String), burn::nn::Embedding, FeatureShape), String> {
    let not_ids = || {
        format!(
            "input `{ids}` is integer, but not token ids [N, T] read by one embedding lookup (a Gather of a constant table)"
        )
    };
    let &[tokens] = dims else {
        return Err(not_ids());
    };
    let readers: Vec<_> = nodes
        .iter()
        .filter(|n| n.inputs().iter().any(|i| i.name == ids))
        .collect();
    let [OnnxNode::Gather(gather)] = readers[..] else {
        return Err(not_ids());
    };
    let table = gather.inputs[0].value().ok_or_else(not_ids)?;
    let table = params::Constant::from_data(table)?;
    let &[vocab, d] = &table.dims[..] else {
        return Err(format!(
            "the embedding table has shape {:?}; expected [V, D]",
            table.dims
        ));
    };
    if gather.config.axis != 0 || gather.inputs[1].name != ids {
        return Err(not_ids());
    }
    let mut embedding = burn::nn::EmbeddingConfig::new(vocab, d).init(device);
    embedding.weight = burn::module::Param::from_tensor(burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(table.values, [vocab, d]),
        device,
    ));
    let names = (gather.name.clone(), gather.outputs[0].name.clone());
    Ok((names, embedding, FeatureShape::sequence(tokens, d)))
}

/// The output to explain: the model's one output, or the input of its final softmax.
fn output(onnx: &OnnxGraph) -> Result<(String, Option<String>), String> {
    let [output] = &onnx.outputs[..] else {
        return Err(format!(
            "the model has {} outputs; expected one (the class scores)",
            onnx.outputs.len()
        ));
    };
    let producer = onnx
        .nodes
        .iter()
        .find(|n| n.outputs().iter().any(|o| o.name == output.name));
    match producer {
        Some(OnnxNode::Softmax(s)) => Ok((s.inputs[0].name.clone(), Some(s.name.clone()))),
        _ => Ok((output.name.clone(), None)),
    }
}

/// The nodes the output depends on, in the file's (topological) order.
fn needed_nodes<'g>(onnx: &'g OnnxGraph, output: &str) -> Vec<&'g OnnxNode> {
    let mut wanted = std::collections::HashSet::from([output.to_string()]);
    let mut needed = Vec::new();
    for node in onnx.nodes.iter().rev() {
        if node.outputs().iter().any(|o| wanted.contains(&o.name)) {
            wanted.extend(node.inputs().iter().map(|i| i.name.clone()));
            needed.push(node);
        }
    }
    needed.reverse();
    needed
}
