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

use super::graph::{Concat, Gate, Graph, NodeId, Op};
use super::{Layer, to_internal};

/// The operations a forward pass is written in; see the module docs.
pub trait Builder {
    /// A value of the model: a tensor for [`Eager`], a node for [`Graph`].
    type Value: Clone;

    /// `layer(x)`; `name` names the node in the graph (unique within the model).
    fn layer(&mut self, name: &str, layer: impl Into<Layer>, x: Self::Value) -> Self::Value;

    /// The sum of the values (a residual connection).
    fn add<const K: usize>(&mut self, name: &str, values: [Self::Value; K]) -> Self::Value;

    /// The values concatenated along the per-sample `axis` (0 = channels or features).
    fn concat<const K: usize>(
        &mut self,
        name: &str,
        axis: usize,
        values: [Self::Value; K],
    ) -> Self::Value;

    /// `x · gate`, the gate a constant for the explanation (see [`Gate`]).
    fn gate(&mut self, name: &str, x: Self::Value, gate: Self::Value) -> Self::Value;
}

impl Builder for Graph {
    type Value = NodeId;

    fn layer(&mut self, name: &str, layer: impl Into<Layer>, x: NodeId) -> NodeId {
        Graph::layer(self, name, layer, x)
    }

    fn add<const K: usize>(&mut self, name: &str, values: [NodeId; K]) -> NodeId {
        Graph::add(self, name, values)
    }

    fn concat<const K: usize>(&mut self, name: &str, axis: usize, values: [NodeId; K]) -> NodeId {
        Graph::concat(self, name, axis, values)
    }

    fn gate(&mut self, name: &str, x: NodeId, gate: NodeId) -> NodeId {
        Graph::gate(self, name, x, gate)
    }
}

impl Graph {
    /// The graph of a forward pass written against [`Builder`].
    pub fn build(define: impl FnOnce(&mut Graph, NodeId) -> NodeId) -> Graph {
        let mut graph = Graph::new();
        let input = graph.input();
        define(&mut graph, input);
        graph
    }
}

/// Runs a forward pass written against [`Builder`] on tensors (in the library's internal
/// rank-4 layout: a feature vector `[N, F]` travels as `[N, F, 1, 1]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Eager;

impl Eager {
    /// The forward pass on `input` (`[N, F]`, `[N, H, W]` or `[N, C, H, W]`), returning
    /// `[N, classes]`, in whatever mode the layers are in (training or inference).
    ///
    /// # Panics
    /// When the input's rank is not 2, 3 or 4, or a shape does not fit a layer (as Burn's own
    /// layers do); [`Graph::try_forward`] checks shapes first.
    pub fn run<const D: usize>(
        input: Tensor<D>,
        define: impl FnOnce(&mut Eager, Tensor<4>) -> Tensor<4>,
    ) -> Tensor<2> {
        let (x, _) = match to_internal(input) {
            Ok(converted) => converted,
            Err(error) => panic!("{error}"),
        };
        let out = define(&mut Eager, x);
        let [n, c, h, w] = out.dims();
        out.reshape([n, c * h * w])
    }
}

impl Builder for Eager {
    type Value = Tensor<4>;

    fn layer(&mut self, _name: &str, layer: impl Into<Layer>, x: Tensor<4>) -> Tensor<4> {
        layer.into().forward(x)
    }

    fn add<const K: usize>(&mut self, _name: &str, values: [Tensor<4>; K]) -> Tensor<4> {
        let shape = eager_shape(&values[0]);
        Op::Add(super::graph::Add).forward(values.into(), shape)
    }

    fn concat<const K: usize>(
        &mut self,
        _name: &str,
        axis: usize,
        values: [Tensor<4>; K],
    ) -> Tensor<4> {
        let shape = eager_shape(&values[0]);
        Op::Concat(Concat { axis }).forward(values.into(), shape)
    }

    fn gate(&mut self, _name: &str, x: Tensor<4>, gate: Tensor<4>) -> Tensor<4> {
        let shape = eager_shape(&x);
        Op::Gate(Gate).forward(vec![x, gate], shape)
    }
}

/// Eager values are vectors and images: their per-sample axes count as `[C, H, W]` (a vector
/// `[F, 1, 1]`), so a concatenation's axis 0 is the channels or features.
fn eager_shape(x: &Tensor<4>) -> super::FeatureShape {
    let [_, c, h, w] = x.dims();
    super::FeatureShape::image(c, h, w)
}
