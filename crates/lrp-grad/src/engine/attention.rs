//! AttnLRP's rules for the operations of attention models, each in both forms: the layer-wise
//! step (relevance of the inputs from the output's) and the one-pass forward (built so that
//! input × gradient is that relevance). The formulas are LXT's (`lxt.explicit.functional`):
//!
//! | operation | relevance of the inputs |
//! |---|---|
//! | `O = A·B` (ε + uniform) | `S = R / stab(n·O)`, `R_A = A ⊙ (S·Bᵀ)`, `R_B = B ⊙ (Aᵀ·S)`; `n` factors that are not constants (2, or 1 when the other is) |
//! | `a ⊙ b` (uniform) | `R / n` to each factor that is not a constant |
//! | softmax (Deep Taylor with bias) | `x ⊙ (R − s ⊙ Σ R)`, `−∞` inputs counted as 0 |
//! | mean over an axis (ε) | `x ⊙ R / stab(Σ x)` |
//! | layer norm (ε, `1/std` constant) | `x ⊙ Jᵀ(R / stab(y))`, `J` the Jacobian with the std held constant |
//! | layer norm (identity) | `R` |

use crate::model::fused::{gradient_scaled, gradient_stabilized, softmax};
use burn::tensor::Tensor;

use super::{self_ratio, stabilize, with_value};
use crate::model::FeatureShape;
use crate::model::LayerNorm;
use crate::model::attention::last_axis;
use crate::rules::Stabilizer;

/// The relevance of `A` and `B` in `O = A·B` (`None` for a constant factor).
pub(crate) fn propagate_product(
    (a, b): (&Tensor<4>, &Tensor<4>),
    z: &Tensor<4>,
    r: &Tensor<4>,
    stabilizer: Stabilizer,
    constant: [bool; 2],
) -> [Option<Tensor<4>>; 2] {
    let n = constant.iter().filter(|c| !**c).count();
    if n == 0 {
        return [None, None];
    }
    let s = r.clone() / stabilize(z.clone().mul_scalar(n as f64), stabilizer);
    let r_a = (!constant[0]).then(|| a.clone() * s.clone().matmul(b.clone().swap_dims(2, 3)));
    let r_b = (!constant[1]).then(|| b.clone() * a.clone().swap_dims(2, 3).matmul(s));
    [r_a, r_b]
}

/// `A·B` in the one pass: the product `O` with its gradient times `O / stab(n·O)`, so that
/// `A ⊙ gradient` is the relevance above. Constant factors are detached.
pub(crate) fn one_pass_product(
    a: Tensor<4>,
    b: Tensor<4>,
    stabilizer: Stabilizer,
    constant: [bool; 2],
) -> Tensor<4> {
    let n = constant.iter().filter(|c| !**c).count().max(1);
    let detach = |t: Tensor<4>, c: bool| if c { t.without_autodiff() } else { t };
    let (a, b) = (detach(a, constant[0]), detach(b, constant[1]));
    // The plain gradient (LXT's efficient mode): the factor is 1/n, so one product in the
    // graph, its gradient scaled (a second product for the value would double the cost) — at
    // the output or at the factors that are not constants, whichever holds fewer numbers
    // (attention's `Q·Kᵀ` holds `T/(2d)` times as many as `Q` and `K` at `T` tokens of head
    // width `d`).
    if stabilizer.epsilon() <= crate::rules::PLAIN_EPSILON {
        let live = |t: &Tensor<4>, c: bool| if c { 0 } else { t.shape().num_elements() };
        let ([n0, n1, rows, _], [m0, m1, _, columns]) = (a.dims(), b.dims());
        let output = n0.max(m0) * n1.max(m1) * rows * columns;
        if live(&a, constant[0]) + live(&b, constant[1]) < output {
            let scaled = |t: Tensor<4>, c: bool| match c {
                true => t,
                false => gradient_scaled(t, n),
            };
            return scaled(a, constant[0]).matmul(scaled(b, constant[1]));
        }
        return gradient_scaled(a.matmul(b), n);
    }
    gradient_stabilized(a.matmul(b), n, stabilizer)
}

/// `a ⊙ b` in the one pass: the product scaled by `1/n` in the gradient only.
pub(crate) fn one_pass_uniform(a: Tensor<4>, b: Tensor<4>, constant: [bool; 2]) -> Tensor<4> {
    let n = constant.iter().filter(|c| !**c).count().max(1);
    let detach = |t: Tensor<4>, c: bool| if c { t.without_autodiff() } else { t };
    gradient_scaled(detach(a, constant[0]) * detach(b, constant[1]), n)
}

/// Softmax's relevance: `x ⊙ (R − s ⊙ Σ_axis R)`, with `−∞` inputs (masks) counted as 0.
pub(crate) fn propagate_softmax(
    x: &Tensor<4>,
    s: &Tensor<4>,
    r: &Tensor<4>,
    axis: usize,
) -> Tensor<4> {
    let x = x
        .clone()
        .mask_fill(x.clone().equal_elem(f32::NEG_INFINITY), 0.0);
    let total = r.clone().sum_dim(axis);
    x * (r.clone() - s.clone() * total)
}

/// Softmax in the one pass: the plain softmax, whose gradient is that rule.
pub(crate) fn one_pass_softmax(x: Tensor<4>, axis: usize) -> Tensor<4> {
    softmax(x, axis)
}

/// The relevance of `x` in `mean_axis(x)`: `x ⊙ R / stab(Σ x)`. `r` comes in the output's
/// layout; `keep` is the input's internal dims with the axis set to 1 (the same order).
pub(crate) fn propagate_mean(
    x: &Tensor<4>,
    r: &Tensor<4>,
    axis: usize,
    stabilizer: Stabilizer,
) -> Tensor<4> {
    let total = x.clone().sum_dim(axis);
    let r = r.clone().reshape(total.dims());
    x.clone() * (r / stabilize(total, stabilizer))
}

/// The mean in the one pass: `mean(x) ⊙ Σx / stab(Σx)` with the factor constant, the value the
/// plain mean, reshaped to the output's layout `out`.
pub(crate) fn one_pass_mean(
    x: Tensor<4>,
    axis: usize,
    stabilizer: Stabilizer,
    out: [usize; 4],
) -> Tensor<4> {
    let plain = x.clone().without_autodiff();
    let total = plain.clone().sum_dim(axis);
    let factor = self_ratio(total, stabilizer);
    let mean = plain.mean_dim(axis);
    with_value(x.mean_dim(axis) * factor, mean).reshape(out)
}

/// Layer norm as a function of `x` with its standard deviation held at `std`.
fn layer_norm_fixed_std(norm: &LayerNorm, x: Tensor<4>, std: Tensor<4>, axis: usize) -> Tensor<4> {
    let centred = x.clone() - x.mean_dim(axis);
    norm.affine(centred / std, axis)
}

/// Layer norm's ε rule: `x ⊙ Jᵀ(R / stab(y))` with the std held constant (autodiff of the
/// layer with the std detached, as LXT computes it).
pub(crate) fn propagate_layer_norm(
    norm: &LayerNorm,
    (x, y): (&Tensor<4>, &Tensor<4>),
    r: &Tensor<4>,
    stabilizer: Stabilizer,
    shape: FeatureShape,
) -> Tensor<4> {
    let axis = last_axis(shape);
    let (_, std) = norm.centred_and_std(x.clone(), axis);
    let s = r.clone() / stabilize(y.clone(), stabilizer);
    let leaf = x.clone().autodiff().require_grad();
    let objective = (layer_norm_fixed_std(norm, leaf.clone(), std, axis) * s).sum();
    let gradients = objective.backward();
    let c = leaf
        .grad(&gradients)
        .expect("the leaf takes part in the objective");
    x.clone() * c
}

/// Layer norm's ε rule in the one pass: the layer with the std detached, times the constant
/// `y / stab(y)`, with the layer's own value `y`.
pub(crate) fn one_pass_layer_norm(
    norm: &LayerNorm,
    x: Tensor<4>,
    stabilizer: Stabilizer,
    shape: FeatureShape,
) -> Tensor<4> {
    let axis = last_axis(shape);
    let plain = x.clone().without_autodiff();
    let (_, std) = norm.centred_and_std(plain.clone(), axis);
    let y = norm.forward_axis(plain, axis);
    let factor = self_ratio(y.clone(), stabilizer);
    with_value(layer_norm_fixed_std(norm, x, std, axis) * factor, y)
}

/// The identity rule in the one pass for any map `x ↦ y` of one shape: `x ⊙ (y / x)` with the
/// factor constant (0 where `x = 0`), the value `y`, so that relevance passes unchanged.
pub(crate) fn one_pass_identity(x: Tensor<4>, y: Tensor<4>) -> Tensor<4> {
    let plain = x.clone().without_autodiff();
    let zero = plain.clone().equal_elem(0.0);
    let factor = (y.clone() / plain.mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0);
    with_value(x * factor, y)
}
