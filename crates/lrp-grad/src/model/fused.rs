//! Two operations whose backward pass autodiff would otherwise compose from many passes over a
//! tensor, written as single autodiff steps — LXT's efficient form (gradient scaling instead of
//! extra graph operations):
//!
//! - **softmax**: Burn's autodiff builds it from max, subtract, `exp`, sum and divide, and
//!   differentiates each (at 512 tokens a decoder's attention softmaxes took a quarter of an
//!   explanation). Here the forward is the backend's own softmax (one fused kernel on
//!   libtorch) and the backward one rule, `s ⊙ (g − Σ_axis g ⊙ s)`, from the saved output.
//! - **gradient scaling**: the value unchanged (no pass at all), the gradient times a factor —
//!   AttnLRP's uniform split of a product, which otherwise costs three passes over the value.
//! - **stabilized gradient**: the value unchanged, the gradient times `y / stab(n·y)` — the ε
//!   rule's constant factor of a layer, a sum or a product, recomputed in the backward pass from
//!   `y` itself. The composed form `y ⊙ factor` keeps the factor (one more tensor of the
//!   output's size per layer) where this keeps `y`, whose buffer the next operation (a matrix
//!   product, a gated MLP's product) mostly keeps anyway.
//!
//! They run through Burn's backend extensions on the backends flex, ndarray and libtorch and
//! their autodiff; elsewhere (Vulkan) the composed forms stand in, with the same values and
//! gradients (up to rounding in softmax's backward).

// burn-tch is deprecated upstream; it stays this crate's opt-in libtorch backend.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DispatchDevice, backend_extension};
use burn::tensor::Tensor;

use crate::rules::Stabilizer;

/// The extension (see the module docs); the default bodies are the plain (non-autodiff) forms.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    LibTorch: cfg(feature = "tch"),
    Autodiff
)]
pub trait FusedOps: Backend {
    /// Softmax along `dim`.
    fn fused_softmax(x: FloatTensor<Self>, dim: usize) -> FloatTensor<Self> {
        <Self as ActivationOps<Self>>::softmax(x, dim)
    }

    /// `x` itself; its gradient divided by `divisor`.
    fn scale_gradient(x: FloatTensor<Self>, _divisor: f32) -> FloatTensor<Self> {
        x
    }

    /// `x` itself; its gradient times `x / stab(n·x)` (see [`Stabilized`]).
    fn stabilize_gradient(x: FloatTensor<Self>, _stabilized: Stabilized) -> FloatTensor<Self> {
        x
    }
}

/// The factor `y / stab(n·y)` of a stabilized gradient: `n > 0` the product's factor count
/// (1 for a layer or a sum), `stab` Zennit's signed `z + ε·sign(z)` (then the factor is
/// `|y| / (n·|y| + ε)`, equal bit for bit) or LXT's `z + ε`.
#[derive(Debug, Clone, Copy)]
pub struct Stabilized {
    pub n: f32,
    pub epsilon: f32,
    pub signed: bool,
}

impl Stabilized {
    fn new(n: usize, stabilizer: Stabilizer) -> Self {
        let (epsilon, signed) = match stabilizer {
            Stabilizer::Signed(epsilon) => (epsilon, true),
            Stabilizer::Added(epsilon) => (epsilon, false),
        };
        Self {
            n: n as f32,
            epsilon: epsilon as f32,
            signed,
        }
    }

    /// The factor from `y`, in the backend's own operations.
    fn factor<B: Backend>(self, y: FloatTensor<B>) -> FloatTensor<B> {
        let y = if self.signed { B::float_abs(y) } else { y };
        let ny = if self.n == 1.0 {
            y.clone()
        } else {
            B::float_mul_scalar(y.clone(), self.n.into())
        };
        B::float_div(y, B::float_add_scalar(ny, self.epsilon.into()))
    }
}

#[cfg(feature = "flex")]
impl FusedOps for burn::backend::Flex {}
#[cfg(feature = "ndarray")]
impl FusedOps for burn::backend::NdArray {}
#[cfg(feature = "tch")]
impl FusedOps for burn::backend::LibTorch {}

impl<B: Backend, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_softmax(x: FloatTensor<Self>, dim: usize) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SoftmaxBackward;

        impl<B: Backend> Backward<B, 1> for SoftmaxBackward {
            type State = (FloatTensor<B>, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (s, dim) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    let gs = B::float_mul(g, s.clone());
                    let total = B::float_sum_dim(gs.clone(), dim);
                    B::float_sub(gs, B::float_mul(s, total))
                });
            }
        }

        let (primitive, node) = x.into_parts();
        match SoftmaxBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let s = B::softmax(primitive, dim);
                prep.finish((s.clone(), dim), s)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::softmax(primitive, dim)),
        }
    }

    fn scale_gradient(x: FloatTensor<Self>, divisor: f32) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct ScaleBackward;

        impl<B: Backend> Backward<B, 1> for ScaleBackward {
            type State = f32;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let divisor = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    B::float_div_scalar(g, divisor.into())
                });
            }
        }

        let (primitive, node) = x.into_parts();
        match ScaleBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(divisor, primitive),
            OpsKind::UnTracked(prep) => prep.finish(primitive),
        }
    }

    fn stabilize_gradient(x: FloatTensor<Self>, stabilized: Stabilized) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct StabilizedBackward;

        impl<B: Backend> Backward<B, 1> for StabilizedBackward {
            type State = (FloatTensor<B>, Stabilized);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (y, stabilized) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    B::float_mul(g, stabilized.factor::<B>(y))
                });
            }
        }

        let (primitive, node) = x.into_parts();
        match StabilizedBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((primitive.clone(), stabilized), primitive),
            OpsKind::UnTracked(prep) => prep.finish(primitive),
        }
    }
}

/// Whether the extension serves the device (a CPU backend of this build, or its autodiff).
fn served(device: &DispatchDevice) -> bool {
    match device {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        DispatchDevice::NdArray(_) => true,
        #[cfg(feature = "tch")]
        DispatchDevice::LibTorch(_) => true,
        DispatchDevice::Autodiff(inner) => served(inner),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Softmax along `dim`, one autodiff step (see the module docs).
pub(crate) fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    if !served(x.device().as_dispatch()) {
        return burn::tensor::activation::softmax(x, dim);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::fused_softmax(
        x.into_dispatch(),
        dim,
    ))
}

/// `y` with its gradient divided by `n`, the value unchanged bit for bit.
pub(crate) fn gradient_scaled<const D: usize>(y: Tensor<D>, n: usize) -> Tensor<D> {
    if n == 1 || !y.is_autodiff() {
        return y;
    }
    if !served(y.device().as_dispatch()) {
        let z = y.clone().without_autodiff();
        let scaled = y.div_scalar(n as f64);
        let value = scaled.clone().without_autodiff();
        return (scaled - value) + z;
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::scale_gradient(
        y.into_dispatch(),
        n as f32,
    ))
}

/// `y` with its gradient times `y / stab(n·y)` (the ε rule's constant factor; see
/// [`Stabilized`]), the value unchanged bit for bit.
pub(crate) fn gradient_stabilized<const D: usize>(
    y: Tensor<D>,
    n: usize,
    stabilizer: Stabilizer,
) -> Tensor<D> {
    if !y.is_autodiff() {
        return y;
    }
    if !served(y.device().as_dispatch()) {
        let z = y.clone().without_autodiff();
        let scaled = y * stabilized_ratio(z.clone(), n, stabilizer);
        let value = scaled.clone().without_autodiff();
        return (scaled - value) + z;
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::stabilize_gradient(
        y.into_dispatch(),
        Stabilized::new(n, stabilizer),
    ))
}

/// The factor `z / stab(n·z)` itself (see [`Stabilized`]), of a plain tensor.
pub(crate) fn stabilized_ratio<const D: usize>(
    z: Tensor<D>,
    n: usize,
    stabilizer: Stabilizer,
) -> Tensor<D> {
    let factor =
        Stabilized::new(n, stabilizer).factor::<burn::backend::Dispatch>(z.into_dispatch());
    Tensor::from_dispatch(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// Rows of logits, one with a masked (−∞) entry, and weights for `Σ w ⊙ softmax(x)`.
    fn case() -> ([[f32; 4]; 3], [[f32; 4]; 3]) {
        let x = [
            [0.3, -1.2, 2.5, 0.0],
            [4.0, 4.0, -3.5, 1.25],
            [1.5, f32::NEG_INFINITY, -0.5, 0.75],
        ];
        let w = [
            [1.0, -2.0, 0.5, 3.0],
            [-1.5, 0.25, 2.0, -0.75],
            [0.5, 7.0, -1.0, 2.0],
        ];
        (x, w)
    }

    /// Softmax's value and its gradient `s_j (w_j − Σ_i w_i s_i)`, in f64 loops.
    fn reference(x: &[f32; 4], w: &[f32; 4]) -> ([f64; 4], [f64; 4]) {
        let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let e: Vec<f64> = x.iter().map(|&v| (v as f64 - max).exp()).collect();
        let total: f64 = e.iter().sum();
        let s: [f64; 4] = std::array::from_fn(|j| e[j] / total);
        let ws: f64 = (0..4).map(|i| w[i] as f64 * s[i]).sum();
        (s, std::array::from_fn(|j| s[j] * (w[j] as f64 - ws)))
    }

    #[test]
    fn softmax_value_and_gradient_are_softmax_and_its_jacobian() {
        let device = Device::default();
        let (x, w) = case();
        let leaf = Tensor::<2>::from_floats(x, &device)
            .autodiff()
            .require_grad();
        let s = softmax(leaf.clone(), 1);
        let weights = Tensor::<2>::from_floats(w, &device);
        let grad = leaf.grad(&(s.clone() * weights).sum().backward()).unwrap();
        let (s, grad) = (values(s.without_autodiff()), values(grad));
        for row in 0..3 {
            let (s_ref, g_ref) = reference(&x[row], &w[row]);
            for j in 0..4 {
                let k = row * 4 + j;
                assert!((s[k] as f64 - s_ref[j]).abs() < 1e-6, "s[{row}][{j}]");
                assert!((grad[k] as f64 - g_ref[j]).abs() < 1e-5, "grad[{row}][{j}]");
            }
        }
    }

    #[test]
    fn gradient_scaling_keeps_the_value_and_divides_the_gradient() {
        let device = Device::default();
        let x = Tensor::<2>::from_floats([[0.1, -3.0, 7.25], [2.0, 0.0, -0.5]], &device);
        let leaf = x.clone().autodiff().require_grad();
        let y = gradient_scaled(leaf.clone() * leaf.clone(), 4);
        assert_eq!(
            values(y.clone().without_autodiff()),
            values(x.clone() * x.clone())
        );
        let grad = values(leaf.grad(&y.sum().backward()).unwrap());
        let expected: Vec<f32> = values(x).iter().map(|v| 2.0 * v / 4.0).collect();
        assert_eq!(grad, expected);
    }

    #[test]
    fn a_stabilized_gradient_keeps_the_value_and_multiplies_the_gradient_by_y_over_stab_ny() {
        let device = Device::default();
        let x = [[0.5f32, -3.0, 0.0], [1e-7, -2e-7, 4.25]];
        let w = [[1.0f32, -2.0, 3.0], [0.5, 7.0, -1.5]];
        for (stabilizer, signed) in [
            (Stabilizer::Signed(1e-6), true),
            (Stabilizer::Added(1e-6), false),
        ] {
            for n in [1usize, 2] {
                let leaf = Tensor::<2>::from_floats(x, &device)
                    .autodiff()
                    .require_grad();
                let y = gradient_stabilized(leaf.clone(), n, stabilizer);
                assert_eq!(
                    values(y.clone().without_autodiff()),
                    values(leaf.clone().without_autodiff())
                );
                let weights = Tensor::<2>::from_floats(w, &device);
                let grad = values(leaf.grad(&(y * weights).sum().backward()).unwrap());
                for k in 0..6 {
                    let (v, wk) = (x[k / 3][k % 3] as f64, w[k / 3][k % 3] as f64);
                    let nv = n as f64 * v;
                    // Zennit's sign(0) = +1; LXT adds ε unsigned.
                    let stab = if signed {
                        nv + if nv >= 0.0 { 1e-6 } else { -1e-6 }
                    } else {
                        nv + 1e-6
                    };
                    let expected = wk * v / stab;
                    let error = (grad[k] as f64 - expected).abs();
                    assert!(
                        error <= 1e-6 * expected.abs().max(1e-3),
                        "{stabilizer:?} n={n} [{k}]: {} vs {expected}",
                        grad[k]
                    );
                }
            }
        }
    }
}
