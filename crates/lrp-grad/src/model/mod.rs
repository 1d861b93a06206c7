//! Sequential models built from Burn's own layers.
//!
//! [`Sequential`] is a Burn [`Module`]: train it with Burn's optimizers, save it with Burn's
//! recorders, move it between devices. A user's `burn::nn::Linear`, `Conv2d` or `BatchNorm`
//! goes in as it is (`Layer::from(linear)`).
//!
//! Internally every activation is a rank-4 tensor: a feature vector `[N, F]` travels as
//! `[N, F, 1, 1]`, a sequence `[N, T, D]` as `[N, 1, T, D]` (row-major order kept, so reshapes
//! move no value). One representation keeps the engine free of rank juggling; the logical shape
//! of each activation ([`FeatureShape`], rank 1 to 3 per sample) is tracked beside it and
//! checked before any layer runs, so a wrong input gives an [`Error`] instead of a panic inside
//! Burn.

mod activation;
pub(crate) mod attention;
mod builder;
mod canonize;
mod custom;
pub(crate) mod fused;
pub(crate) mod graph;
pub(crate) mod lrp;
mod mask;
mod normalize;
mod operation;
pub(crate) mod operator;
mod pad;
pub(crate) mod permute;
mod rotary;
pub(crate) mod shape;
mod softcap;

pub use activation::{Activation, ActivationLayer};
pub use attention::{
    AddParam, LayerNorm, MatMul, Mean, Mul, Prepend, RmsNorm, Scale, Slice, Softmax,
};
pub use builder::{Builder, Eager, EagerValue};
pub use custom::{Custom, Operation};
pub use graph::{Add, Concat, Gate, Graph, Node, NodeId, Op, Reshape};
pub use lrp::Propagation;
pub use mask::CausalMask;
pub use normalize::Normalize;
pub use operator::LayerType;
pub use pad::Pad;
pub use permute::Permute;
pub use rotary::{Llama3Scaling, Rotary};
pub use shape::FeatureShape;
pub use softcap::Softcap;

use std::borrow::Cow;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Dropout, GroupNorm, Identity, InstanceNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, conv2d, linear, max_pool2d};

use crate::error::{Error, Result};
use crate::rules::Rule;
use lrp::{Form, Lrp, Refusal};
use operator::{Operator, ShapeError};
use shape::{avg_pool_options, conv_options, max_pool_options};

/// A dense layer `x·W + b` on the last axis, on the internal rank-4 form: a vector
/// `[N, F, 1, 1]` gives `[N, F', 1, 1]`, anything else `[N, C, H, D]` gives `[N, C, H, D']`
/// (every token of a sequence `[N, 1, T, D]`, every row of an image). The model's forward pass
/// and the engine's modified ones share it, so their outputs agree bit for bit.
///
/// # Shapes
/// - `x`: `[N, F, 1, 1]` with `F = d_in`, or `[N, C, H, d_in]`
/// - `weight`: `[d_in, d_out]`; `bias`: `[d_out]`
pub(crate) fn dense(x: Tensor<4>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [d_in, d_out] = weight.dims();
    let out = linear(x.reshape([n * c * h * w / d_in, d_in]), weight, bias);
    out.reshape(dense_output([n, c, h, w], d_in, d_out))
}

/// The internal dims of a dense layer's output for input dims `[n, c, h, w]` (see [`dense`]).
pub(crate) fn dense_output(input: [usize; 4], d_in: usize, d_out: usize) -> [usize; 4] {
    match input {
        [n, c, 1, 1] if c == d_in => [n, d_out, 1, 1],
        [n, c, h, _] => [n, c, h, d_out],
    }
}

/// A model the explainer can run: anything that describes itself as a [`Graph`].
///
/// [`Graph`] and [`Sequential`] implement it; a user's own `#[derive(Module)]` struct
/// implements it once, building the graph from its own layers (see the `resnet_struct`
/// example), and is then explained without re-typing its forward pass.
pub trait AsGraph {
    /// The model as a graph; borrowed when the model is one.
    fn as_graph(&self) -> Cow<'_, Graph>;
}

impl AsGraph for Graph {
    fn as_graph(&self) -> Cow<'_, Graph> {
        Cow::Borrowed(self)
    }
}

impl AsGraph for Sequential {
    fn as_graph(&self) -> Cow<'_, Graph> {
        Cow::Owned(Graph::from_sequential(self))
    }
}

/// Flattens `[N, C, H, W]` to `[N, C·H·W]` in row-major (PyTorch) order.
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// One layer of a [`Sequential`] model: Burn's own modules, wrapped.
///
/// Every variant converts from its Burn module with `From`, so `Layer::from(linear)` or
/// `model.push(conv)` take a user's layers without conversion.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    /// Dense layer `y = x·W + b` (Burn stores `W` as `[in, out]`).
    Linear(Linear),
    /// 2-D convolution with stride, padding, dilation and groups.
    Conv2d(Conv2d),
    /// Batch normalization; merged into the preceding linear/conv layer before explanation.
    BatchNorm(BatchNorm),
    /// Group normalization (instance normalization: one group per channel); relevance passes
    /// through it unchanged (the identity rule, as LXT's for RMS norm).
    GroupNorm(GroupNorm),
    /// 2-D max pooling.
    MaxPool2d(MaxPool2d),
    /// 2-D average pooling.
    AvgPool2d(AvgPool2d),
    /// 2-D adaptive average pooling.
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    /// An element-wise activation function (ReLU, GELU, SiLU, …; see [`Activation`]).
    Activation(ActivationLayer),
    /// Flatten `[N, C, H, W]` to `[N, C·H·W]`.
    Flatten(Flatten),
    /// Dropout (the identity at inference, which is what explanations use).
    Dropout(Dropout),
    /// The identity.
    Identity(Identity),
}

macro_rules! layer_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Layer {
            fn from(layer: $ty) -> Self {
                Layer::$variant(layer)
            }
        })*
    };
}

layer_from!(
    Linear(Linear),
    Conv2d(Conv2d),
    BatchNorm(BatchNorm),
    GroupNorm(GroupNorm),
    MaxPool2d(MaxPool2d),
    AvgPool2d(AvgPool2d),
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    Flatten(Flatten),
    Dropout(Dropout),
    Identity(Identity),
);

/// Instance normalization is group normalization with one group per channel.
impl From<InstanceNorm> for Layer {
    fn from(norm: InstanceNorm) -> Self {
        Layer::GroupNorm(GroupNorm {
            gamma: norm.gamma,
            beta: norm.beta,
            num_groups: norm.num_channels,
            num_channels: norm.num_channels,
            epsilon: norm.epsilon,
            affine: norm.affine,
        })
    }
}

impl Layer {
    /// The layer's kind as a short name (`linear`, `conv2d`, `relu`, …), as used in messages and
    /// in the interchange format.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Linear(_) => "linear",
            Layer::Conv2d(_) => "conv2d",
            Layer::BatchNorm(_) => "batch_norm",
            Layer::GroupNorm(_) => "group_norm",
            Layer::MaxPool2d(_) => "max_pool2d",
            Layer::AvgPool2d(_) => "avg_pool2d",
            Layer::AdaptiveAvgPool2d(_) => "adaptive_avg_pool2d",
            Layer::Activation(a) => a.function.name(),
            Layer::Flatten(_) => "flatten",
            Layer::Dropout(_) => "dropout",
            Layer::Identity(_) => "identity",
        }
    }

    /// Whether the layer is an element-wise activation function.
    pub fn is_activation(&self) -> bool {
        matches!(self, Layer::Activation(_))
    }

    /// Whether the layer is element-wise with `f(0) = 0` and no parameters, so that
    /// `f(x) = x · (f(x)/x)` holds everywhere (0 where `x = 0`): relevance passes through it
    /// unchanged as input × a constant factor, which is how the one pass carries it.
    pub(crate) fn passes_as_factor(&self) -> bool {
        match self {
            Layer::Activation(a) => a.function.is_zero_at_zero(),
            Layer::Identity(_) | Layer::Dropout(_) | Layer::Flatten(_) => true,
            _ => false,
        }
    }

    /// Whether `f(x) = x·f'(x)` (positively homogeneous, piecewise linear through 0): the plain
    /// gradient then carries relevance through unchanged, with no factor to compute.
    pub(crate) fn is_homogeneous(&self) -> bool {
        match self {
            Layer::Activation(a) => a.function.is_homogeneous(),
            Layer::Identity(_) | Layer::Dropout(_) | Layer::Flatten(_) => true,
            _ => false,
        }
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }

    /// The layer's forward pass on the internal rank-4 representation. Shapes must have been
    /// checked with [`Layer::output_shape`] first.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        match self {
            Layer::Linear(l) => dense(x, l.weight.val(), l.bias.as_ref().map(|b| b.val())),
            Layer::Conv2d(conv) => conv2d(
                x,
                conv.weight.val(),
                conv.bias.as_ref().map(|b| b.val()),
                conv_options(conv, h, w),
            ),
            Layer::AvgPool2d(pool) => avg_pool2d(x, avg_pool_options(pool, h, w)),
            Layer::AdaptiveAvgPool2d(pool) => adaptive_avg_pool2d(x, pool.output_size),
            Layer::MaxPool2d(pool) => max_pool2d(x, max_pool_options(pool, h, w)),
            Layer::BatchNorm(bn) => bn.forward(x),
            Layer::GroupNorm(norm) => norm.forward(x),
            Layer::Activation(a) => a.function.forward(x),
            Layer::Dropout(f) => f.forward(x),
            Layer::Flatten(_) => {
                let [n, c, h, w] = x.dims();
                x.reshape([n, c * h * w, 1, 1])
            }
            Layer::Identity(_) => x,
        }
    }
}

// What a layer answers the graph (see `operator`).

impl Operator for Layer {
    fn kind(&self) -> &'static str {
        Layer::kind(self)
    }

    fn output_shape(
        &self,
        index: usize,
        inputs: &[FeatureShape],
    ) -> std::result::Result<FeatureShape, ShapeError> {
        Layer::output_shape(self, index, inputs[0]).map_err(ShapeError::Layer)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        Layer::forward(self, inputs.remove(0))
    }

    fn is(&self, ty: LayerType) -> bool {
        match ty {
            LayerType::Dense => matches!(self, Layer::Linear(_)),
            LayerType::Conv2d => matches!(self, Layer::Conv2d(_)),
            LayerType::AnyLinear => matches!(self, Layer::Linear(_) | Layer::Conv2d(_)),
            LayerType::AvgPool => matches!(self, Layer::AvgPool2d(_) | Layer::AdaptiveAvgPool2d(_)),
            LayerType::MaxPool => matches!(self, Layer::MaxPool2d(_)),
            LayerType::Activation => self.is_activation(),
            _ => false,
        }
    }
}

// How relevance crosses a layer (see `lrp`): a rule on a linear map or a pool, unchanged
// through everything else.

impl Lrp for Layer {
    fn form(&self, rule: Option<&Rule>) -> std::result::Result<Form<'_>, Refusal> {
        match self {
            Layer::Linear(_) | Layer::Conv2d(_) => self.linear_form(rule),
            Layer::AvgPool2d(_) | Layer::AdaptiveAvgPool2d(_) | Layer::MaxPool2d(_) => {
                self.pool_form(rule)
            }
            _ => match rule {
                None | Some(Rule::Pass) => Ok(Form::Pass(self)),
                Some(_) => Err(Refusal::Mismatch(
                    "element-wise and reshaping layers only take pass (LRP rules are for linear and pooling layers)",
                )),
            },
        }
    }

    fn identity_factor(&self, x: Tensor<4>, _input: FeatureShape) -> Option<Tensor<4>> {
        match self {
            Layer::Activation(a) => a.function.identity_factor(x),
            _ => None,
        }
    }

    fn keeps_nonnegative(&self, first: bool, _all: bool) -> bool {
        match self {
            Layer::Activation(a) => a.function.is_nonnegative(),
            Layer::MaxPool2d(_)
            | Layer::AvgPool2d(_)
            | Layer::AdaptiveAvgPool2d(_)
            | Layer::Flatten(_)
            | Layer::Dropout(_)
            | Layer::Identity(_) => first,
            _ => false,
        }
    }
}

impl Layer {
    /// A dense or conv layer: any LRP rule, and one must be assigned.
    fn linear_form(&self, rule: Option<&Rule>) -> std::result::Result<Form<'_>, Refusal> {
        match rule {
            None => Err(Refusal::Missing),
            Some(Rule::Gradient | Rule::Block) => Err(Refusal::Mismatch(
                "gradient and block are for softmax; use zero, epsilon or another LRP rule",
            )),
            Some(Rule::Pass) => Err(Refusal::Mismatch(
                "pass keeps relevance as it is, but this layer maps its input to another shape; use zero, epsilon or another LRP rule",
            )),
            Some(rule) => Ok(Form::Rule {
                layer: self,
                rule: rule.clone(),
            }),
        }
    }

    /// A pool: norm (average) or winner-takes-all (max) by default, or a rule without
    /// parameters.
    fn pool_form(&self, rule: Option<&Rule>) -> std::result::Result<Form<'_>, Refusal> {
        match rule {
            None if matches!(self, Layer::MaxPool2d(_)) => Ok(Form::WinnerTakesAll(self)),
            None => Ok(Form::Rule {
                layer: self,
                rule: Rule::Norm,
            }),
            Some(Rule::Pass) => Err(Refusal::Mismatch(
                "pass keeps relevance as it is, but pooling changes its shape; use norm",
            )),
            Some(Rule::Gradient | Rule::Block) => Err(Refusal::Mismatch(
                "gradient and block are for softmax; pooling takes norm, zero or epsilon",
            )),
            Some(rule) if rule.needs_parameters() => Err(Refusal::Mismatch(
                "the rule modifies weights, and pooling has none; use norm, zero or epsilon",
            )),
            Some(rule) => Ok(Form::Rule {
                layer: self,
                rule: rule.clone(),
            }),
        }
    }
}

/// A sequential model: layers applied one after the other, like PyTorch's `nn.Sequential`.
///
/// ```
/// use burn::nn::{LinearConfig, Relu};
/// use burn::tensor::{Device, Tensor};
/// use lrp_grad::Sequential;
///
/// let device = Device::default();
/// let model = Sequential::new()
///     .push(LinearConfig::new(4, 8).init(&device))
///     .push(Relu::new())
///     .push(LinearConfig::new(8, 3).init(&device));
/// let logits = model.forward(Tensor::<2>::ones([5, 4], &device));
/// assert_eq!(logits.dims(), [5, 3]);
/// ```
#[derive(Module, Debug)]
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model.
    pub fn new() -> Self {
        Self { layers: Vec::new() }
    }

    /// A model from a list of layers.
    pub fn from_layers(layers: Vec<Layer>) -> Self {
        Self { layers }
    }

    /// Append a layer (anything that converts into a [`Layer`]).
    #[must_use]
    pub fn push(mut self, layer: impl Into<Layer>) -> Self {
        self.layers.push(layer.into());
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the model has no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The per-sample shape after each layer for a given per-sample input shape: entry `i` is
    /// the input shape of layer `i`, the last entry the model's output shape.
    pub fn shapes(&self, input: FeatureShape) -> Result<Vec<FeatureShape>> {
        let mut shapes = Vec::with_capacity(self.layers.len() + 1);
        shapes.push(input);
        for (index, layer) in self.layers.iter().enumerate() {
            let next = layer.output_shape(index, shapes[index])?;
            shapes.push(next);
        }
        Ok(shapes)
    }

    /// The number of classes (outputs) for a given per-sample input shape, or an error when the
    /// input does not fit or the model does not end in one score per class.
    pub fn num_classes(&self, input: FeatureShape) -> Result<usize> {
        graph::output_classes(&self.shapes(input)?)
    }

    /// Forward pass returning one score per class, `[N, classes]`, checking every shape first.
    ///
    /// The input is `[N, features]` or `[N, channels, height, width]`. Runs in whatever mode the
    /// module is in (training or validation), so it serves for training too.
    pub fn try_forward<const D: usize>(&self, input: Tensor<D>) -> Result<Tensor<2>> {
        let (x, shape) = to_internal(input)?;
        let shapes = self.shapes(shape)?;
        let classes = graph::output_classes(&shapes)?;
        let n = x.dims()[0];
        let out = self.forward_internal(x);
        Ok(out.reshape([n, classes]))
    }

    /// Forward pass returning `[N, classes]`, for training loops and inference.
    ///
    /// # Panics
    /// When the input does not fit the model; use [`Sequential::try_forward`] for a typed error.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        match self.try_forward(input) {
            Ok(output) => output,
            Err(error) => panic!("{error}"),
        }
    }

    /// The forward pass on the internal rank-4 representation (shapes checked beforehand).
    pub(crate) fn forward_internal(&self, x: Tensor<4>) -> Tensor<4> {
        self.layers.iter().fold(x, |x, layer| layer.forward(x))
    }
}

/// Converts a user tensor (rank 2, 3 or 4) to the internal rank-4 form and its per-sample shape.
pub(crate) fn to_internal<const D: usize>(input: Tensor<D>) -> Result<(Tensor<4>, FeatureShape)> {
    let dims = input.dims();
    let shape = FeatureShape::from_batched(&dims)?;
    if dims.contains(&0) {
        return Err(Error::EmptyBatch {
            shape: dims.to_vec(),
        });
    }
    let batched = shape.batched(dims[0]);
    Ok((input.reshape(batched), shape))
}
