//! A model's forward pass written once, run two ways: on tensors (training, inference) or as
//! a [`Graph`] (explanation).
//!
//! A user's `#[derive(Module)]` struct writes its forward pass once against [`Builder`]; its
//! plain `forward` runs it with [`Eager`], its [`AsGraph`](super::AsGraph) builds the graph
//! with [`Graph`]. Both follow the same code, so the explained graph cannot drift from the
//! model (the `resnet_struct` example; its test checks the two outputs agree).
//!
//! ```
//! use std::borrow::Cow;
//! use burn::module::Module;
//! use burn::nn::{Linear, LinearConfig, Relu};
//! use burn::tensor::{Device, Tensor};
//! use lrp_grad::{AsGraph, Builder, Eager, Graph};
//!
//! #[derive(Module, Debug)]
//! struct Net {
//!     fc1: Linear,
//!     fc2: Linear,
//! }
//!
//! impl Net {
//!     /// The forward pass, once: a residual MLP.
//!     fn define<B: Builder>(&self, b: &mut B, x: B::Value) -> B::Value {
//!         let h = b.layer("fc1", self.fc1.clone(), x.clone());
//!         let h = b.layer("relu", Relu::new(), h);
//!         let y = b.add("residual", [x, h]);
//!         b.layer("fc2", self.fc2.clone(), y)
//!     }
//!
//!     fn forward(&self, x: Tensor<2>) -> Tensor<2> {
//!         Eager::run(x, |b, x| self.define(b, x))
//!     }
//! }
//!
//! impl AsGraph for Net {
//!     fn as_graph(&self) -> Cow<'_, Graph> {
//!         Cow::Owned(Graph::build(|b, x| self.define(b, x)))
//!     }
//! }
//!
//! let device = Device::default();
//! let net = Net { fc1: LinearConfig::new(4, 4).init(&device), fc2: LinearConfig::new(4, 3).init(&device) };
//! let x = Tensor::<2>::ones([2, 4], &device);
//! let same = (net.forward(x.clone()) - net.as_graph().forward(x.clone())).abs().max().into_scalar::<f32>();
//! assert!(same < 1e-6);
//! let explanation = lrp_grad::explain(&net, x)?;
//! # Ok::<(), lrp_grad::Error>(())
//! ```

use burn::tensor::Tensor;

use super::attention::{
    AddParam, LayerNorm, MatMul, Mean, Mul, Prepend, RmsNorm, Scale, Slice, Softmax,
};
use super::graph::{Add, Concat, Gate, Graph, Node, NodeId, Op, Reshape, node_shape};
use super::permute::Permute;
use super::{FeatureShape, Layer, to_internal};

/// The operations a forward pass is written in; see the module docs.
///
/// One required method, [`Builder::op`], takes any graph operation; the others name each
/// operation and are provided, so [`Graph`] and [`Eager`] cover every operation alike.
/// Per-sample axes count as the graph's do: 0 is the first axis after the batch (a vector's
/// features, a sequence's tokens, an image's channels).
pub trait Builder {
    /// A value of the model: a tensor for [`Eager`], a node for [`Graph`].
    type Value: Clone;

    /// `op` on `inputs`; `name` names the node in the graph (unique within the model).
    fn op(&mut self, name: &str, op: Op, inputs: Vec<Self::Value>) -> Self::Value;

    /// `layer(x)`.
    fn layer(&mut self, name: &str, layer: impl Into<Layer>, x: Self::Value) -> Self::Value {
        self.op(name, Op::Layer(layer.into()), vec![x])
    }

    /// The sum of the values (a residual connection).
    fn add<const K: usize>(&mut self, name: &str, values: [Self::Value; K]) -> Self::Value {
        self.op(name, Op::Add(Add), values.into())
    }

    /// The values concatenated along the per-sample `axis` (0 = channels or features).
    fn concat<const K: usize>(
        &mut self,
        name: &str,
        axis: usize,
        values: [Self::Value; K],
    ) -> Self::Value {
        self.op(name, Op::Concat(Concat { axis }), values.into())
    }

    /// `x · gate`, the gate a constant for the explanation (see [`Gate`]).
    fn gate(&mut self, name: &str, x: Self::Value, gate: Self::Value) -> Self::Value {
        self.op(name, Op::Gate(Gate), vec![x, gate])
    }

    /// `x` reshaped to the per-sample `shape` (`[F]`, `[T, D]` or `[C, H, W]`).
    fn reshape(&mut self, name: &str, shape: &[usize], x: Self::Value) -> Self::Value {
        let shape = shape.to_vec();
        self.op(name, Op::Reshape(Reshape { shape }), vec![x])
    }

    /// `x` with its per-sample axes permuted.
    fn permute(&mut self, name: &str, axes: &[usize], x: Self::Value) -> Self::Value {
        let axes = axes.to_vec();
        self.op(name, Op::Permute(Permute::new(axes)), vec![x])
    }

    /// `a·b` over the last two axes.
    fn matmul(&mut self, name: &str, a: Self::Value, b: Self::Value) -> Self::Value {
        self.op(name, Op::MatMul(MatMul), vec![a, b])
    }

    /// The element-wise product of two values of one shape.
    fn mul(&mut self, name: &str, a: Self::Value, b: Self::Value) -> Self::Value {
        self.op(name, Op::Mul(Mul), vec![a, b])
    }

    /// Softmax over the per-sample `axis`.
    fn softmax(&mut self, name: &str, axis: usize, x: Self::Value) -> Self::Value {
        self.op(name, Op::Softmax(Softmax { axis }), vec![x])
    }

    /// Layer norm over the last axis.
    fn layer_norm(&mut self, name: &str, norm: LayerNorm, x: Self::Value) -> Self::Value {
        self.op(name, Op::LayerNorm(norm), vec![x])
    }

    /// Rotary position embeddings (`[H, T, d]` or `[T, d]`).
    fn rotary(&mut self, name: &str, rotary: super::Rotary, x: Self::Value) -> Self::Value {
        self.op(name, Op::Rotary(rotary), vec![x])
    }

    /// Attention scores `[H, T, T]` with later keys (and keys outside `window`) masked.
    fn causal_mask(&mut self, name: &str, window: Option<usize>, x: Self::Value) -> Self::Value {
        self.op(name, Op::CausalMask(super::CausalMask { window }), vec![x])
    }

    /// `cap · tanh(x / cap)`, element-wise (a logit softcap).
    fn softcap(&mut self, name: &str, cap: f64, x: Self::Value) -> Self::Value {
        self.op(name, Op::Softcap(super::Softcap { cap }), vec![x])
    }

    /// RMS norm over the last axis.
    fn rms_norm(&mut self, name: &str, norm: RmsNorm, x: Self::Value) -> Self::Value {
        self.op(name, Op::RmsNorm(norm), vec![x])
    }

    /// `x` plus a learned tensor (a positional embedding).
    fn add_param(&mut self, name: &str, value: AddParam, x: Self::Value) -> Self::Value {
        self.op(name, Op::AddParam(value), vec![x])
    }

    /// `factor · x`.
    fn scale(&mut self, name: &str, factor: f64, x: Self::Value) -> Self::Value {
        self.op(name, Op::Scale(Scale { factor }), vec![x])
    }

    /// The mean over the per-sample `axis` (dropped).
    fn mean(&mut self, name: &str, axis: usize, x: Self::Value) -> Self::Value {
        self.op(name, Op::Mean(Mean { axis }), vec![x])
    }

    /// `len` entries of the per-sample `axis` from `start`.
    fn slice(
        &mut self,
        name: &str,
        axis: usize,
        [start, len]: [usize; 2],
        x: Self::Value,
    ) -> Self::Value {
        self.op(name, Op::Slice(Slice { axis, start, len }), vec![x])
    }

    /// A user's operation on `x` (see [`Operation`](super::Operation)).
    fn custom(
        &mut self,
        name: &str,
        operation: impl super::Operation + 'static,
        x: Self::Value,
    ) -> Self::Value {
        self.op(name, Op::Custom(super::Custom::new(operation)), vec![x])
    }

    /// A learned tensor put before `x` along an axis (a class token).
    fn prepend(&mut self, name: &str, value: Prepend, x: Self::Value) -> Self::Value {
        self.op(name, Op::Prepend(value), vec![x])
    }
}

impl Builder for Graph {
    type Value = NodeId;

    fn op(&mut self, name: &str, op: Op, inputs: Vec<NodeId>) -> NodeId {
        self.push(name, op, inputs)
    }
}

impl Graph {
    /// The graph of a forward pass written against [`Builder`]. The value `define` returns is
    /// the graph's output (an identity node `(output)` reads it when it is not the last node
    /// built, so that the explained graph computes what the eager forward pass returns).
    pub fn build(define: impl FnOnce(&mut Graph, NodeId) -> NodeId) -> Graph {
        let mut graph = Graph::new();
        let input = graph.input();
        let output = define(&mut graph, input);
        if output.index() != graph.nodes().len() {
            graph.layer("(output)", burn::nn::Identity::new(), output);
        }
        graph
    }
}

/// Runs a forward pass written against [`Builder`] on tensors (in the library's internal
/// rank-4 layout, each value with its per-sample shape, as the graph computes them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Eager;

/// A value of an [`Eager`] forward pass: the tensor in the internal rank-4 layout (a feature
/// vector `[N, F]` travels as `[N, F, 1, 1]`, a sequence `[N, T, D]` as `[N, 1, T, D]`) and its
/// per-sample shape.
#[derive(Debug, Clone)]
pub struct EagerValue {
    /// The tensor.
    pub tensor: Tensor<4>,
    /// Its per-sample shape.
    pub shape: FeatureShape,
}

impl Eager {
    /// The forward pass on `input` (`[N, F]`, `[N, T, D]` or `[N, C, H, W]`), returning
    /// `[N, classes]`, in whatever mode the layers are in (training or inference).
    ///
    /// # Panics
    /// When the input's rank is not 2, 3 or 4, or a shape does not fit an operation (as Burn's
    /// own layers do); [`Graph::try_forward`] checks shapes first.
    pub fn run<const D: usize>(
        input: Tensor<D>,
        define: impl FnOnce(&mut Eager, EagerValue) -> EagerValue,
    ) -> Tensor<2> {
        let (tensor, shape) = match to_internal(input) {
            Ok(converted) => converted,
            Err(error) => panic!("{error}"),
        };
        let out = define(&mut Eager, EagerValue { tensor, shape }).tensor;
        let [n, c, h, w] = out.dims();
        out.reshape([n, c * h * w])
    }
}

impl Builder for Eager {
    type Value = EagerValue;

    /// The operation's output shape by the graph's own shape rule, then its forward pass.
    fn op(&mut self, name: &str, op: Op, inputs: Vec<EagerValue>) -> EagerValue {
        let shapes: Vec<FeatureShape> = inputs.iter().map(|v| v.shape).collect();
        let node = Node {
            name: name.to_string(),
            op,
            inputs: Vec::new(),
        };
        let shape = match node_shape(&node, 0, &shapes) {
            Ok(shape) => shape,
            Err(error) => panic!("{error}"),
        };
        let tensors = inputs.into_iter().map(|v| v.tensor).collect();
        EagerValue {
            tensor: node.op.forward(tensors, shapes[0]),
            shape,
        }
    }
}
