//! The trait a user's operation implements (see [`super::custom`] for the graph node that holds
//! one, and `examples/custom_op.rs`).

use std::fmt::Debug;

use burn::tensor::Tensor;

use super::FeatureShape;

/// An operation of one input, defined by a user.
///
/// Values travel in the library's internal rank-4 layout (`FeatureShape::batched`: a vector
/// `[N, F]` as `[N, F, 1, 1]`, a sequence `[N, T, D]` as `[N, 1, T, D]`).
///
/// # LRP
/// [`Operation::lrp_forward`] is the operation's rule in the gradient trick's one-pass form: a
/// forward pass whose value is the output and whose input × gradient is the relevance the rule
/// gives the input, when the gradient arriving at the output is `R / output`. Relevance passed
/// through an element-wise `f` with `f(0) = 0` (Zennit's `pass`) is `x ⊙ c` with the factor
/// `c = f(x)/x` held constant (computed on the detached input). Both strategies use it: the one
/// pass directly, the layer-wise walk as `x ⊙ ∂(Σ lrp_forward(x) ⊙ R / z)/∂x`.
///
/// # Parameters
/// The operation is not a Burn module: tensors it holds are constants of the explanation (not
/// moved by `to_device`, saved in records or trained). Keep trainable parameters in your own
/// `#[derive(Module)]` struct and build the operation from their values when you build the graph.
///
/// # Shapes
/// - input: `[N, ...]` of the per-sample shape the graph gives it
/// - output: `[N, ...]` of [`Operation::output_shape`]
pub trait Operation: Debug + Send + Sync {
    /// A short name, for messages and plans.
    fn kind(&self) -> &'static str;

    /// The per-sample output shape for a per-sample input shape, or why the input does not fit.
    fn output_shape(&self, input: FeatureShape) -> Result<FeatureShape, String>;

    /// The operation.
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;

    /// The operation's LRP form (see the trait docs), on an input that may carry autodiff.
    fn lrp_forward(&self, x: Tensor<4>) -> Tensor<4>;
}
