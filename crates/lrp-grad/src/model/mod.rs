//! Sequential models built from Burn's own layers.
//!
//! [`Sequential`] is a Burn [`Module`]: train it with Burn's optimizers, save it with Burn's
//! recorders, move it between devices. A user's `burn::nn::Linear`, `Conv2d` or `BatchNorm`
//! goes in as it is (`Layer::from(linear)`).
//!
//! Internally every activation is a rank-4 tensor: a feature vector `[N, F]` travels as
//! `[N, F, 1, 1]`. One representation keeps the engine free of rank juggling; the logical shape
//! of each activation ([`FeatureShape`]) is tracked beside it and checked before any layer runs,
//! so a wrong input gives an [`Error`] instead of a panic inside Burn.

mod canonize;
pub(crate) mod shape;

pub use shape::FeatureShape;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Dropout, Gelu, Identity, LeakyRelu, Linear, Relu, Sigmoid, Tanh};
use burn::tensor::Tensor;

use crate::engine::RuleLayer;
use crate::error::{Error, Result};

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
    /// 2-D max pooling.
    MaxPool2d(MaxPool2d),
    /// 2-D average pooling.
    AvgPool2d(AvgPool2d),
    /// 2-D adaptive average pooling.
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    /// Rectified linear unit.
    Relu(Relu),
    /// Leaky ReLU.
    LeakyRelu(LeakyRelu),
    /// Hyperbolic tangent.
    Tanh(Tanh),
    /// Logistic sigmoid.
    Sigmoid(Sigmoid),
    /// Gaussian error linear unit.
    Gelu(Gelu),
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
    MaxPool2d(MaxPool2d),
    AvgPool2d(AvgPool2d),
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    Relu(Relu),
    LeakyRelu(LeakyRelu),
    Tanh(Tanh),
    Sigmoid(Sigmoid),
    Gelu(Gelu),
    Flatten(Flatten),
    Dropout(Dropout),
    Identity(Identity),
);

impl Layer {
    /// The layer's kind as a short name (`linear`, `conv2d`, `relu`, …), as used in messages and
    /// in the interchange format.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Linear(_) => "linear",
            Layer::Conv2d(_) => "conv2d",
            Layer::BatchNorm(_) => "batch_norm",
            Layer::MaxPool2d(_) => "max_pool2d",
            Layer::AvgPool2d(_) => "avg_pool2d",
            Layer::AdaptiveAvgPool2d(_) => "adaptive_avg_pool2d",
            Layer::Relu(_) => "relu",
            Layer::LeakyRelu(_) => "leaky_relu",
            Layer::Tanh(_) => "tanh",
            Layer::Sigmoid(_) => "sigmoid",
            Layer::Gelu(_) => "gelu",
            Layer::Flatten(_) => "flatten",
            Layer::Dropout(_) => "dropout",
            Layer::Identity(_) => "identity",
        }
    }

    /// Whether the layer is an element-wise activation function.
    pub fn is_activation(&self) -> bool {
        matches!(
            self,
            Layer::Relu(_)
                | Layer::LeakyRelu(_)
                | Layer::Tanh(_)
                | Layer::Sigmoid(_)
                | Layer::Gelu(_)
        )
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }

    /// The layer's forward pass on the internal rank-4 representation. Shapes must have been
    /// checked with [`Layer::output_shape`] first.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Layer::Linear(_)
            | Layer::Conv2d(_)
            | Layer::AvgPool2d(_)
            | Layer::AdaptiveAvgPool2d(_)
            | Layer::MaxPool2d(_) => RuleLayer::new(self).expect("a rule layer").forward(x),
            Layer::BatchNorm(bn) => bn.forward(x),
            Layer::Relu(f) => f.forward(x),
            Layer::LeakyRelu(f) => f.forward(x),
            Layer::Tanh(f) => f.forward(x),
            Layer::Sigmoid(f) => f.forward(x),
            Layer::Gelu(f) => f.forward(x),
            Layer::Dropout(f) => f.forward(x),
            Layer::Flatten(_) => {
                let [n, c, h, w] = x.dims();
                x.reshape([n, c * h * w, 1, 1])
            }
            Layer::Identity(_) => x,
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
        let output = *self
            .shapes(input)?
            .last()
            .expect("shapes has the input at least");
        match output {
            FeatureShape::Vector(classes) => Ok(classes),
            other => Err(Error::OutputNotVector {
                found: other.dims(),
            }),
        }
    }

    /// Forward pass returning one score per class, `[N, classes]`, checking every shape first.
    ///
    /// The input is `[N, features]` or `[N, channels, height, width]`. Runs in whatever mode the
    /// module is in (training or validation), so it serves for training too.
    pub fn try_forward<const D: usize>(&self, input: Tensor<D>) -> Result<Tensor<2>> {
        let (x, shape) = to_internal(input)?;
        let shapes = self.shapes(shape)?;
        let classes = match shapes.last().copied() {
            Some(FeatureShape::Vector(classes)) => classes,
            Some(other) => {
                return Err(Error::OutputNotVector {
                    found: other.dims(),
                });
            }
            None => unreachable!("shapes has the input at least"),
        };
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

    /// Every layer's input and the final output, in the internal rank-4 representation; the
    /// forward pass the explanation reuses. Shapes must have been checked.
    pub(crate) fn activations(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut acts = Vec::with_capacity(self.layers.len() + 1);
        acts.push(x);
        for layer in &self.layers {
            let next = layer.forward(acts.last().expect("non-empty").clone());
            acts.push(next);
        }
        acts
    }
}

/// Converts a user tensor (rank 2 or 4) to the internal rank-4 form and its per-sample shape.
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
