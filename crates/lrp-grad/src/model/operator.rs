//! What a graph asks of each operation: its name, how many inputs it reads, its shape rule,
//! its forward pass, which class of layers it belongs to — and, through [`Lrp`], how relevance
//! crosses it. Each operation implements [`Operator`] beside its definition; [`Op::operator`]
//! is the one dispatch on an operation's kind, and the graph, the composites and the engine
//! only ask through it.
//!
//! [`Op::operator`]: super::Op::operator

use burn::tensor::Tensor;

use super::FeatureShape;
use super::lrp::Lrp;
use crate::error::Error;

/// A class of layers that a composite assigns a rule to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerType {
    /// Dense (`Linear`) layers.
    Dense,
    /// 2-D convolutions.
    Conv2d,
    /// Dense or convolutional layers (Zennit's `Linear` type).
    AnyLinear,
    /// Average pooling, plain or adaptive.
    AvgPool,
    /// Max pooling.
    MaxPool,
    /// Element-wise activations.
    Activation,
    /// Additions of activations (residual connections).
    Add,
    /// Products of two activations (attention's `Q·Kᵀ` and `softmax·V`).
    MatMul,
    /// Softmax.
    Softmax,
    /// Layer normalization.
    LayerNorm,
    /// Means over an axis (token pooling).
    Mean,
    /// Learned tensors added to an activation (positional embeddings).
    AddParam,
    /// Element-wise products of two activations (a gated MLP's `act(gate) · up`).
    Mul,
    /// Logit softcaps `cap · tanh(x / cap)`.
    Softcap,
}

impl LayerType {
    /// Every class with its name (as the command line's `--layer-rule TYPE=RULE` takes it):
    /// the one list names are parsed from and listed by.
    pub const ALL: [(LayerType, &'static str); 14] = [
        (LayerType::Dense, "dense"),
        (LayerType::Conv2d, "conv"),
        (LayerType::AnyLinear, "linear"),
        (LayerType::AvgPool, "avg-pool"),
        (LayerType::MaxPool, "max-pool"),
        (LayerType::Activation, "activation"),
        (LayerType::Add, "add"),
        (LayerType::MatMul, "matmul"),
        (LayerType::Softmax, "softmax"),
        (LayerType::LayerNorm, "layer-norm"),
        (LayerType::Mean, "mean"),
        (LayerType::AddParam, "add-param"),
        (LayerType::Mul, "mul"),
        (LayerType::Softcap, "softcap"),
    ];

    /// The class's name.
    pub fn name(self) -> &'static str {
        let (_, name) = Self::ALL
            .iter()
            .find(|(ty, _)| *ty == self)
            .expect("every class is listed");
        name
    }

    /// The class of a name, or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(ty, _)| *ty)
    }
}

/// How many inputs an operation reads: in words (for messages) and as a check.
pub(crate) struct Arity(pub &'static str, pub fn(usize) -> bool);

/// One input.
pub(crate) const ONE: Arity = Arity("one input", |n| n == 1);
/// Two inputs.
pub(crate) const TWO: Arity = Arity("two inputs", |n| n == 2);

/// Why inputs do not fit an operation: a reason (the graph names the node), or a layer's own
/// error (which names it already).
pub(crate) enum ShapeError {
    /// The reason.
    Reason(String),
    /// The layer's error.
    Layer(Error),
}

impl From<String> for ShapeError {
    fn from(reason: String) -> Self {
        ShapeError::Reason(reason)
    }
}

/// An operation of a graph (see the module docs).
pub(crate) trait Operator: Lrp {
    /// A short name (`conv2d`, `add`, `matmul`, …), for messages and plans.
    fn kind(&self) -> &'static str;

    /// How many inputs it reads.
    fn arity(&self) -> Arity {
        ONE
    }

    /// The per-sample output shape for the inputs' (their number checked), node `index`.
    fn output_shape(
        &self,
        index: usize,
        inputs: &[FeatureShape],
    ) -> Result<FeatureShape, ShapeError>;

    /// The forward pass on the internal rank-4 layout; `input` is the first input's
    /// per-sample shape (shapes checked).
    fn forward(&self, inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4>;

    /// Whether it belongs to a class of layers a composite names.
    fn is(&self, _ty: LayerType) -> bool {
        false
    }
}
