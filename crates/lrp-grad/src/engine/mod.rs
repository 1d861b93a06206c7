//! The one engine: the gradient trick, applied per layer.
//!
//! For a layer with input `a` and upper relevance `R`, each term `t` of the rule evaluates the
//! layer with modified parameters on a modified input `xₜ` (a fresh autodiff leaf):
//! `zₜ = ρₜ(layer)(xₜ)`. Each group sums its terms, `z = Σ signₜ·zₜ`, and forms the constant
//! `s = scale · mask · R / stab(z)` — computed on the plain (non-autodiff) device, so it is
//! detached by construction. One backward pass of `Σₜ signₜ·Σ(zₜ ⊙ s)` gives every
//! `cₜ = ∂/∂xₜ = signₜ·ρₜ(W)ᵀ s` at once, for dense and convolutional layers alike, and the
//! relevance of the layer input is `Σₜ xₜ ⊙ cₜ`.
//!
//! No forward pass is run only to be differentiated: the unmodified layer on `a` has the known
//! output `z`, and a term whose input is the same for every sample (flat's ones, z-box's bounds)
//! is evaluated once at batch size 1. For those terms `cₜ`, which does not depend on the input,
//! comes from [`RuleLayer::input_gradient`] — the transpose autodiff would apply.
//!
//! [`one_pass_forward`] is the same rule folded into one forward pass of the whole network, so
//! that a single backward pass gives the relevance of every one-pass-able layer at once.

pub(crate) mod attention;
pub(crate) mod graph;
pub(crate) mod step;

use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::tensor::Tensor;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, conv_transpose2d, conv2d, max_pool2d};
use burn::tensor::ops::ConvTransposeOptions;

use crate::model::fused::{gradient_stabilized, stabilized_ratio};
use crate::model::lrp::Lrp;
use crate::model::shape::{avg_pool_options, conv_options, max_pool_options, padding_pairs};
use crate::model::{FeatureShape, Layer, dense};
use crate::rules::{Group, InputMod, OutputMask, ParamMod, Stabilizer, Term};
use step::RuleStep;

/// A layer the rule engine can evaluate with modified parameters and inputs: linear in its
/// input up to a bias (dense, conv, average pooling) or piecewise linear (max pooling).
#[derive(Debug, Clone, Copy)]
pub(crate) enum RuleLayer<'a> {
    Dense(&'a Linear),
    Conv(&'a Conv2d),
    AvgPool(&'a AvgPool2d),
    AdaptiveAvgPool(&'a AdaptiveAvgPool2d),
    MaxPool(&'a MaxPool2d),
}

impl<'a> RuleLayer<'a> {
    pub(crate) fn new(layer: &'a Layer) -> Option<Self> {
        Some(match layer {
            Layer::Linear(l) => Self::Dense(l),
            Layer::Conv2d(c) => Self::Conv(c),
            Layer::AvgPool2d(p) => Self::AvgPool(p),
            Layer::AdaptiveAvgPool2d(p) => Self::AdaptiveAvgPool(p),
            Layer::MaxPool2d(p) => Self::MaxPool(p),
            _ => return None,
        })
    }

    /// The layer's own forward pass.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_with(x, ParamMod::Identity, true)
    }

    /// The forward pass with every parameter modified by `params`, and the bias left out unless
    /// `bias`. Parameter-free layers ignore both.
    pub(crate) fn forward_with(&self, x: Tensor<4>, params: ParamMod, bias: bool) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        match *self {
            Self::Dense(layer) => {
                let weight = params.apply(layer.weight.val());
                let bias = bias
                    .then(|| layer.bias.as_ref().map(|b| params.apply(b.val())))
                    .flatten();
                dense(x, weight, bias)
            }
            Self::Conv(layer) => {
                let weight = params.apply(layer.weight.val());
                let bias = bias
                    .then(|| layer.bias.as_ref().map(|b| params.apply(b.val())))
                    .flatten();
                conv2d(x, weight, bias, conv_options(layer, h, w))
            }
            Self::AvgPool(pool) => avg_pool2d(x, avg_pool_options(pool, h, w)),
            Self::AdaptiveAvgPool(pool) => adaptive_avg_pool2d(x, pool.output_size),
            Self::MaxPool(pool) => max_pool2d(x, max_pool_options(pool, h, w)),
        }
    }

    /// `ρ(layer)ᵀ s`: the gradient of `Σ ρ(layer)(x) ⊙ s` with respect to an input `x` of shape
    /// `input` — the quantity the gradient trick obtains by autodiff. For a map linear in `x` it
    /// does not depend on `x`, so dense and conv layers apply their transpose directly (a
    /// matrix product; `conv_transpose2d`, which is Burn's own conv input gradient) without the
    /// forward pass autodiff would need first. Other layers take it from autodiff.
    pub(crate) fn input_gradient(
        &self,
        params: ParamMod,
        s: Tensor<4>,
        input: [usize; 4],
    ) -> Tensor<4> {
        match *self {
            Self::Dense(layer) => {
                // One row per sample (a vector) or per token (a sequence), as in `dense`.
                let weight = params.apply(layer.weight.val());
                let [_, d_out] = weight.dims();
                let rows = s.shape().num_elements() / d_out;
                s.reshape([rows, d_out])
                    .matmul(weight.transpose())
                    .reshape(input)
            }
            Self::Conv(layer) => {
                conv_input_gradient(layer, params.apply(layer.weight.val()), s, input)
            }
            _ => {
                let leaf = Tensor::<4>::zeros(input, &s.device())
                    .autodiff()
                    .require_grad();
                let gradients = (self.forward_with(leaf.clone(), params, false) * s)
                    .sum()
                    .backward();
                leaf.grad(&gradients)
                    .expect("the leaf takes part in the objective")
            }
        }
    }
}

/// `conv(·, weight)ᵀ s` for an input of dims `input`: `conv_transpose2d` (Burn's own conv input
/// gradient), with the output padding the forward pass's floor division left out; asymmetric
/// padding as the gradient of the explicitly padded input, cropped.
fn conv_input_gradient(
    layer: &Conv2d,
    weight: Tensor<4>,
    s: Tensor<4>,
    input: [usize; 4],
) -> Tensor<4> {
    let [n, c, h, w] = input;
    let [[top, bottom], [left, right]] =
        padding_pairs(&layer.padding, h, w, layer.kernel_size, layer.stride)
            .map(|(begin, end)| [begin, end]);
    // Asymmetric padding: the gradient of the explicitly padded input, cropped.
    let symmetric = top == bottom && left == right;
    let (padding, full) = if symmetric {
        ([top, left], [h, w])
    } else {
        ([0, 0], [h + top + bottom, w + left + right])
    };
    let [_, _, out_h, out_w] = s.dims();
    let out = [out_h, out_w];
    // The rows/columns the forward pass's floor division left out.
    let padding_out: [usize; 2] = std::array::from_fn(|i| {
        let reach =
            (out[i] - 1) * layer.stride[i] + layer.dilation[i] * (layer.kernel_size[i] - 1) + 1;
        full[i] + 2 * padding[i] - reach
    });
    let options = ConvTransposeOptions::new(
        layer.stride,
        padding,
        padding_out,
        layer.dilation,
        layer.groups,
    );
    let grad = conv_transpose2d(s, weight, None, options);
    if symmetric {
        grad
    } else {
        grad.slice([0..n, 0..c, top..top + h, left..left + w])
    }
}

impl InputMod {
    /// Whether the modified input depends on the sample (`a`, `a⁺`, `a⁻`), rather than being
    /// the same for every sample (ones, a bound).
    fn reads_sample(self) -> bool {
        matches!(
            self,
            InputMod::Identity | InputMod::Positive | InputMod::Negative
        )
    }
}

impl ParamMod {
    fn apply<const D: usize>(self, p: Tensor<D>) -> Tensor<D> {
        match self {
            ParamMod::Identity => p,
            ParamMod::Positive => p.clamp_min(0.0),
            ParamMod::Negative => p.clamp_max(0.0),
            ParamMod::GammaPositive(gamma) => p.clone() + p.clamp_min(0.0).mul_scalar(gamma),
            ParamMod::GammaNegative(gamma) => p.clone() + p.clamp_max(0.0).mul_scalar(gamma),
            ParamMod::Square => p.square(),
            ParamMod::Ones => p.ones_like(),
        }
    }
}

/// `stab(z)`: Zennit's `z + ε·sign(z)` with sign(0) = +1 (Burn's `sign(0)` is 0, hence the
/// mask), or LXT's `z + ε`.
pub(crate) fn stabilize(z: Tensor<4>, stabilizer: Stabilizer) -> Tensor<4> {
    let epsilon = match stabilizer {
        Stabilizer::Added(epsilon) => return z.add_scalar(epsilon),
        Stabilizer::Signed(epsilon) => epsilon,
    };
    // ±ε from the mask in two scalar passes: (z ≥ 0)·2ε − ε.
    let shift = z
        .clone()
        .greater_equal_elem(0.0)
        .float()
        .mul_scalar(2.0 * epsilon)
        .sub_scalar(epsilon);
    z + shift
}

/// `z / stab(z)`, the constant factor of an unmodified term (ε, and sums), in three passes: with
/// the signed stabilizer it is `|z| / (|z| + ε)`, bit for bit (`z − ε = −(|z| + ε)` in floating
/// point), without the sign mask's four passes — the factor the fused stabilized gradient
/// recomputes in its backward pass, one definition for both.
pub(crate) fn self_ratio(z: Tensor<4>, stabilizer: Stabilizer) -> Tensor<4> {
    stabilized_ratio(z, 1, stabilizer)
}

/// A group's semantics, shared by both strategies: `mask(z) ⊙ numerator / stab(denominator)`,
/// with `z` the layer's output and the denominator the group's summed terms. The layer-wise
/// step takes it with the upper relevance as numerator (the ratio `s` it back-propagates),
/// the one pass with `z` itself (the constant factor of its modified forward). The group's
/// scale is applied by each caller where it is cheapest.
pub(crate) fn group_ratio(
    group: &Group,
    numerator: Tensor<4>,
    denominator: Tensor<4>,
    z: &Tensor<4>,
) -> Tensor<4> {
    let numerator = match group.mask {
        OutputMask::All => numerator,
        OutputMask::Positive => numerator.mask_fill(z.clone().lower_equal_elem(0.0), 0.0),
        OutputMask::Negative => numerator.mask_fill(z.clone().greater_equal_elem(0.0), 0.0),
    };
    numerator / stabilize(denominator, group.stabilizer)
}

/// The z-box bounds, broadcast to the layer input's per-sample shape, with a batch dimension of
/// 1 (the same bound for every sample) or N.
pub(crate) struct Bounds {
    pub low: Tensor<4>,
    pub high: Tensor<4>,
}

/// Relevance of the layer input `a` for a rule given as groups of terms (see the module docs).
/// `z` is the unmodified layer output from the forward pass (used by masked groups), `r` the
/// relevance of the layer output. All three live on a plain (non-autodiff) device.
pub(crate) fn propagate(
    layer: RuleLayer<'_>,
    groups: &[Group],
    a: &Tensor<4>,
    z: &Tensor<4>,
    r: &Tensor<4>,
    bounds: Option<&Bounds>,
    nonnegative: bool,
) -> Tensor<4> {
    let mut evaluated: Vec<Evaluated> = Vec::new();
    let mut objective: Option<Tensor<1>> = None;
    for group in groups {
        let first = evaluated.len();
        let terms = live_terms(group, nonnegative);
        let (denominator, outputs) = evaluate_group(layer, &terms, a, z, bounds, &mut evaluated);
        let s = group_ratio(group, r.clone(), denominator, z);
        for (out, sign) in outputs {
            let term = (out * signed(s.clone(), sign * group.scale)).sum();
            objective = accumulate(objective, term);
        }
        for term in &mut evaluated[first..] {
            if term.leaf.is_none() {
                // ρᵀ is linear: scale the (usually smaller) gradient, not `s`.
                let c = layer.input_gradient(term.params, s.clone(), a.dims());
                term.gradient = Some(signed(c, term.sign * group.scale));
            }
        }
    }
    if let Some(objective) = objective {
        let gradients = objective.backward();
        for term in &mut evaluated {
            if let Some(leaf) = &term.leaf {
                term.gradient = leaf.grad(&gradients);
            }
        }
    }
    evaluated
        .into_iter()
        .map(|term| {
            term.input
                * term
                    .gradient
                    .expect("every term takes part in the objective")
        })
        .reduce(|acc, t| acc + t)
        .expect("a rule has at least one term")
}

/// The terms of one group evaluated (appended to `evaluated`): the group's denominator
/// `Σ signₜ·zₜ` — the terms that differ per sample summed apart from those shared by all
/// samples (at their own batch size of 1, then one broadcast addition) — and the autodiff
/// outputs of the terms on the sample's input, with their signs.
fn evaluate_group(
    layer: RuleLayer<'_>,
    terms: &[Term],
    a: &Tensor<4>,
    z: &Tensor<4>,
    bounds: Option<&Bounds>,
    evaluated: &mut Vec<Evaluated>,
) -> (Tensor<4>, Vec<(Tensor<4>, f32)>) {
    let mut per_sample = None;
    let mut shared = None;
    let mut outputs = Vec::new();
    for &term in terms {
        let evaluation = evaluate_term(layer, term, a, z, bounds);
        let value = signed(evaluation.value, term.sign);
        if evaluation.shared {
            shared = accumulate(shared, value);
        } else {
            per_sample = accumulate(per_sample, value);
        }
        if let Some(out) = evaluation.output {
            outputs.push((out, term.sign));
        }
        evaluated.push(evaluation.term);
    }
    let denominator = match (per_sample, shared) {
        (Some(per_sample), Some(shared)) => per_sample + shared,
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => unreachable!("a group has at least one term"),
    };
    (denominator, outputs)
}

/// A term of [`propagate`] evaluated on the layer: its unsigned output value, whether that value
/// is shared by every sample (batch size 1), and its autodiff output where it has one.
struct TermEvaluation {
    term: Evaluated,
    value: Tensor<4>,
    shared: bool,
    output: Option<Tensor<4>>,
}

/// Evaluates one term without a forward pass that is not needed: the unmodified layer on `a`
/// has the known output `z` (its gradient is the plain transpose `Wᵀs`, taken later); a term on
/// the sample's input (`a`, `a⁺`, `a⁻`) runs in the graph from a fresh leaf; a term on an input
/// the same for every sample (ones, a bound) runs once, plainly, at that input's batch size (its
/// gradient comes from `input_gradient`).
fn evaluate_term(
    layer: RuleLayer<'_>,
    term: Term,
    a: &Tensor<4>,
    z: &Tensor<4>,
    bounds: Option<&Bounds>,
) -> TermEvaluation {
    let input = modified_input(term.input, a, bounds);
    let (value, leaf, output, shared) = if term.is_unmodified() {
        (z.clone(), None, None, false)
    } else if term.input.reads_sample() {
        let leaf = input.clone().autodiff().require_grad();
        let out = layer.forward_with(leaf.clone(), term.params, term.bias);
        // The denominator on the plain device: `s` is a constant of the backward pass.
        (out.clone().without_autodiff(), Some(leaf), Some(out), false)
    } else {
        let value = layer.forward_with(input.clone(), term.params, term.bias);
        (value, None, None, true)
    };
    TermEvaluation {
        term: Evaluated {
            input,
            leaf,
            params: term.params,
            sign: term.sign,
            gradient: None,
        },
        value,
        shared,
        output,
    }
}

/// One evaluated term of [`propagate`]: its (plain) input, and `cₜ = signₜ·scale·ρₜ(W)ᵀ s` once
/// known — from the autodiff `leaf` for modified terms on the sample's input, else directly.
struct Evaluated {
    input: Tensor<4>,
    leaf: Option<Tensor<4>>,
    params: ParamMod,
    sign: f32,
    gradient: Option<Tensor<4>>,
}

/// Relevance routed by the layer's own gradient: `∂ Σ f(a)·R / ∂a`. For max pooling this sends
/// each output's relevance to the window's winning input.
pub(crate) fn route_by_gradient(layer: RuleLayer<'_>, a: &Tensor<4>, r: &Tensor<4>) -> Tensor<4> {
    let leaf = a.clone().autodiff().require_grad();
    let objective = (layer.forward(leaf.clone()) * r.clone()).sum();
    let gradients = objective.backward();
    leaf.grad(&gradients)
        .expect("the leaf takes part in the objective")
}

/// The terms of a group that can be non-zero: on a non-negative input `a⁻ = 0`, so terms that
/// read `a⁻` vanish (their bias is never kept, so their output is exactly 0) and `a⁺ = a`.
fn live_terms(group: &Group, nonnegative: bool) -> Vec<Term> {
    group
        .terms
        .iter()
        .filter(|t| !(nonnegative && t.input == InputMod::Negative))
        .map(|t| match t.input {
            InputMod::Positive if nonnegative => Term {
                input: InputMod::Identity,
                ..*t
            },
            _ => *t,
        })
        .collect()
}

/// The term's input: `a`, `a⁺`, `a⁻`, or an input shared by every sample (ones, a bound) with
/// a batch dimension of 1 (or a bound's own N).
fn modified_input(input: InputMod, a: &Tensor<4>, bounds: Option<&Bounds>) -> Tensor<4> {
    match input {
        InputMod::Identity => a.clone(),
        InputMod::Positive => a.clone().clamp_min(0.0),
        InputMod::Negative => a.clone().clamp_max(0.0),
        InputMod::Ones => {
            let [_, c, h, w] = a.dims();
            Tensor::ones([1, c, h, w], &a.device())
        }
        InputMod::Low => bounds
            .expect("z-box bounds are resolved before propagation")
            .low
            .clone(),
        InputMod::High => bounds
            .expect("z-box bounds are resolved before propagation")
            .high
            .clone(),
    }
}

/// One layer of the one-pass formulation, on an autodiff input `a`.
///
/// A rule layer outputs `y = Σ_groups z_ρ(a) ⊙ (scale · mask · z / stab(z_ρ))`, the factor a
/// constant: its value is (about) the layer's output `z`, its gradient
/// `∂y/∂a = ρᵀ(z / stab(z_ρ) ⊙ ·)`. With `R = z ⊙ g` above, `a ⊙ ∂y/∂a · g` is exactly the rule's
/// `a ⊙ ρᵀ(R / stab(z_ρ))`, so one backward pass through all such layers gives the relevance as
/// input × gradient. The value is then set to the model's own output `z` bit for bit
/// ([`with_value`]), so later layers see the model's true activations and a max pool
/// downstream picks the winners the model's forward pass picked, near-ties included.
pub(crate) fn one_pass_forward(step: &RuleStep<'_>, a: Tensor<4>, nonnegative: bool) -> Tensor<4> {
    let (layer, rule_layer, rule) = (step.layer, step.rule_layer, &step.rule);
    let groups: Vec<(Vec<Term>, Group)> = step
        .groups
        .iter()
        .map(|g| (live_terms(g, nonnegative), g.clone()))
        .collect();
    if let (Some(coefficient), true) = (rule.output_from_groups(), nonnegative)
        && let [(first, g1), (second, g2)] = groups.as_slice()
        && let ([t1], [_]) = (first.as_slice(), second.as_slice())
        && (g1.mask, g2.mask) == (OutputMask::Positive, OutputMask::Negative)
    {
        return one_pass_two_groups(layer, rule_layer, a, (*t1, g1), g2, coefficient);
    }
    let terms: Vec<(usize, Term)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, (terms, _))| terms.iter().map(move |t| (g, *t)))
        .collect();
    let outputs = term_outputs(rule_layer, &a, &terms);
    let values: Vec<Tensor<4>> = outputs
        .iter()
        .map(|out| out.clone().without_autodiff())
        .collect();
    let group_values = group_sums(&values, &terms, groups.len());
    // The unmodified output: a single unmodified term (zero, epsilon, norm) is it (computed by
    // the same operation as the model's forward pass); otherwise one plain forward outside
    // the graph.
    let plain_term = matches!(terms.as_slice(), [(_, t)] if t.is_unmodified() && t.sign == 1.0);
    if plain_term
        && let [(_, group)] = groups.as_slice()
        && let Some(y) = own_output(group, &outputs[0])
    {
        return y;
    }
    let z = if plain_term {
        group_values[0].clone()
    } else {
        layer.forward(a.clone().without_autodiff())
    };
    let factors: Vec<Tensor<4>> = groups
        .iter()
        .zip(group_values)
        .map(|((_, group), value)| one_pass_factor(group, value, &z, plain_term))
        .collect();
    // The values share the outputs' buffers: dropping them first lets each product below be
    // computed in place (less peak memory).
    drop(values);
    let y = outputs
        .into_iter()
        .zip(&terms)
        .map(|(out, (g, t))| out * signed(factors[*g].clone(), t.sign))
        .reduce(|acc, t| acc + t)
        .expect("a rule has at least one term");
    with_value(y, z)
}

/// A layer's own output `z` as its one-pass form when its single group is `z / stab(z)`
/// unscaled: the factor goes into the gradient, recomputed there from `z` rather than kept
/// beside it; for the plain gradient (LRP-0 with ε ≤ `PLAIN_EPSILON`, LXT's efficient rule) it
/// is 1.
fn own_output(group: &Group, z: &Tensor<4>) -> Option<Tensor<4>> {
    if group.mask != OutputMask::All || group.scale != 1.0 {
        return None;
    }
    let z = z.clone();
    Some(
        match group.stabilizer.epsilon() <= crate::rules::PLAIN_EPSILON {
            true => z,
            false => gradient_stabilized(z, 1, group.stabilizer),
        },
    )
}

/// A group's constant factor in the one pass, `scale · mask(z) · z / stab(z_ρ)`; for the
/// layer's own single term (`plain`), `z / stab(z)` in three passes ([`self_ratio`]).
fn one_pass_factor(group: &Group, value: Tensor<4>, z: &Tensor<4>, plain: bool) -> Tensor<4> {
    let factor = if plain && group.mask == OutputMask::All {
        self_ratio(value, group.stabilizer)
    } else {
        group_ratio(group, z.clone(), value, z)
    };
    if group.scale == 1.0 {
        factor
    } else {
        factor.mul_scalar(group.scale)
    }
}

/// Each term's output on `a`, `a⁺` or `a⁻` (each clamped input computed once), in the graph.
/// (Stacking the terms on one input into one convolution was 5–8 % faster for γ but raised peak
/// memory by a third: measured and left out.)
fn term_outputs(
    rule_layer: RuleLayer<'_>,
    a: &Tensor<4>,
    terms: &[(usize, Term)],
) -> Vec<Tensor<4>> {
    let clamped = |input: InputMod, clamp: fn(Tensor<4>) -> Tensor<4>| {
        terms
            .iter()
            .any(|(_, t)| t.input == input)
            .then(|| clamp(a.clone()))
    };
    let positive = clamped(InputMod::Positive, |a| a.clamp_min(0.0));
    let negative = clamped(InputMod::Negative, |a| a.clamp_max(0.0));
    terms
        .iter()
        .map(|(_, t)| {
            let x = match (t.input, &positive, &negative) {
                (InputMod::Positive, Some(positive), _) => positive.clone(),
                (InputMod::Negative, _, Some(negative)) => negative.clone(),
                _ => a.clone(),
            };
            rule_layer.forward_with(x, t.params, t.bias)
        })
        .collect()
}

/// Each group's signed sum of its terms' values (`terms` are `(group, term)` pairs; every group
/// has at least one live term, since only `a⁻` terms of a non-negative input are dropped and no
/// group consists of those alone).
fn group_sums(values: &[Tensor<4>], terms: &[(usize, Term)], groups: usize) -> Vec<Tensor<4>> {
    (0..groups)
        .map(|g| {
            terms
                .iter()
                .zip(values)
                .filter(|((group, _), _)| *group == g)
                .map(|((_, t), value)| signed(value.clone(), t.sign))
                .reduce(|acc, t| acc + t)
                .expect("a group has at least one live term")
        })
        .collect()
}

/// `y`'s gradient with the value `z`, bit for bit: `(y − y) + z`, the first part a zero in the
/// graph. (`y + (z − y)` rounds, and a later max pool could then pick another winner.)
pub(crate) fn with_value(y: Tensor<4>, z: Tensor<4>) -> Tensor<4> {
    let value = y.clone().without_autodiff();
    (y - value) + z
}

/// γ on a non-negative input, where each group has one live term: `t₁` and `t₂` with
/// `ρ₁ + ρ₂ = W / coefficient` (`(W + γW⁺) + (W + γW⁻) = (2 + γ)W`).
/// The second term's output is then `z / coefficient − out₁`, so the layer itself takes its
/// place in the graph: `y = f ⊙ (out₁ where z > 0, z / coefficient − out₁ where z < 0)`, with
/// `f` the two groups' factors on their disjoint outputs. Two convolutions, as two terms would
/// cost, and the model's own output `z` comes with them bit for bit (a max pool downstream
/// routes by it).
fn one_pass_two_groups(
    layer: &Layer,
    rule_layer: RuleLayer<'_>,
    a: Tensor<4>,
    (t1, g1): (Term, &Group),
    g2: &Group,
    coefficient: f64,
) -> Tensor<4> {
    let out1 = rule_layer.forward_with(a.clone(), t1.params, t1.bias);
    let z_graph = layer.forward(a);
    let z = z_graph.clone().without_autodiff();
    let v1 = out1.clone().without_autodiff();
    let v2 = z.clone().div_scalar(coefficient) - v1.clone();
    let factor = |group: &Group, value: Tensor<4>| {
        signed(group_ratio(group, z.clone(), value, &z), group.scale)
    };
    // The groups explain disjoint outputs (γ: `z > 0` and `z < 0`), so one factor tensor holds
    // both, and the backward pass keeps it and a mask instead of two factor tensors.
    let factor = factor(g1, v1) + factor(g2, v2);
    let second = z_graph.div_scalar(coefficient) - out1.clone();
    let y = out1.mask_where(z.clone().lower_elem(0.0), second) * factor;
    with_value(y, z)
}

/// A layer that passes relevance unchanged, in the one pass. A homogeneous layer
/// (`f(x) = x·f'(x)`: ReLU, identity, …) is its own one-pass form; another element-wise layer
/// with `f(0) = 0` becomes `x ⊙ (f(x)/x)` with the factor constant (0 where `x = 0`), so that
/// input × gradient is its output relevance; `input` is its per-sample shape. Where the layer
/// names that factor in closed form (SiLU's `sigmoid(x)`), it is used as it is.
pub(crate) fn one_pass_pass(layer: &Layer, a: Tensor<4>, input: FeatureShape) -> Tensor<4> {
    if layer.is_homogeneous() || matches!(layer, Layer::MaxPool2d(_)) {
        return layer.forward(a);
    }
    let x = a.clone().without_autodiff();
    if let Some(factor) = layer.identity_factor(x.clone(), input) {
        return a * factor;
    }
    let z = layer.forward(x.clone());
    let zero = x.clone().equal_elem(0.0);
    let factor = (z.clone() / x.mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0);
    with_value(a * factor, z)
}

/// An addition with a stabilizer-only rule (norm, ε, zero), in the one pass: the sum `z` with
/// its gradient times `z / stab(z)`, so `xᵢ ⊙ gradient = xᵢ·R / stab(z)`.
pub(crate) fn one_pass_add(inputs: Vec<Tensor<4>>, stabilizer: Stabilizer) -> Tensor<4> {
    let sum = inputs
        .into_iter()
        .reduce(|acc, t| acc + t)
        .expect("an addition has inputs");
    // The plain gradient (LXT's efficient mode): the factor is 1.
    if stabilizer.epsilon() <= crate::rules::PLAIN_EPSILON {
        return sum;
    }
    gradient_stabilized(sum, 1, stabilizer)
}

/// The layer-wise step of an addition: `R_i = x_i ⊙ R / stab(Σ x)`.
pub(crate) fn propagate_add(
    inputs: &[&Tensor<4>],
    z: &Tensor<4>,
    r: &Tensor<4>,
    stabilizer: Stabilizer,
) -> Vec<Tensor<4>> {
    let s = r.clone() / stabilize(z.clone(), stabilizer);
    inputs.iter().map(|x| (*x).clone() * s.clone()).collect()
}

/// `sign · t`, without a pass over `t` when the sign is +1.
fn signed<const D: usize>(t: Tensor<D>, sign: f32) -> Tensor<D> {
    if sign == 1.0 { t } else { t.mul_scalar(sign) }
}

/// `acc + t`, starting from nothing.
fn accumulate<const D: usize>(acc: Option<Tensor<D>>, t: Tensor<D>) -> Option<Tensor<D>> {
    Some(match acc {
        Some(acc) => acc + t,
        None => t,
    })
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{LinearConfig, PaddingConfig2d};
    use burn::tensor::{Device, Distribution};

    use super::*;

    /// The three-pass `|z| / (|z| + ε)` is the five-pass `z / stab(z)` bit for bit, on signs,
    /// zero, values far below and far above ε.
    #[test]
    fn self_ratio_is_the_stabilized_ratio_exactly() {
        let device = Device::default();
        let values = vec![
            -3.7f32, -1e-7, -0.0, 0.0, 1e-9, 2.5e-7, 0.3, 1.0, -1.0, 7e5, -1e-30, 123.456,
        ];
        let z = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 1, 3, 4]);
        for stabilizer in [Stabilizer::Signed(1e-6), Stabilizer::Signed(0.25)] {
            let fast = self_ratio(z.clone(), stabilizer)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let slow = (z.clone() / stabilize(z.clone(), stabilizer))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
                // ±0 agree as values (a factor of −0 or +0 multiplies alike).
                assert!(f == s, "z = {}: {f} against {s}", values[i]);
                assert_eq!(f.to_bits() & 0x7fff_ffff, s.to_bits() & 0x7fff_ffff);
            }
        }
    }

    /// The autodiff gradient of `Σ ρ(layer)(x) ⊙ s`: the gradient trick itself.
    fn autodiff_gradient(
        layer: RuleLayer<'_>,
        params: ParamMod,
        s: &Tensor<4>,
        x: &Tensor<4>,
    ) -> Tensor<4> {
        let leaf = x.clone().autodiff().require_grad();
        let gradients = (layer.forward_with(leaf.clone(), params, true) * s.clone())
            .sum()
            .backward();
        leaf.grad(&gradients).expect("leaf in the graph")
    }

    fn max_abs_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn the_direct_transpose_equals_the_autodiff_gradient() {
        let device = Device::default();
        device.seed(7);
        let random =
            |dims: [usize; 4]| Tensor::<4>::random(dims, Distribution::Uniform(-1.0, 1.0), &device);
        // (padding, kernel, stride, dilation, groups): symmetric, asymmetric, "same" with an
        // even kernel (asymmetric), and strides whose floor division drops rows/columns.
        let geometries = [
            (
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                [3, 3],
                [1, 1],
                [1, 1],
                1,
            ),
            (
                PaddingConfig2d::Explicit(2, 0, 1, 3),
                [3, 2],
                [2, 1],
                [1, 2],
                1,
            ),
            (PaddingConfig2d::Same, [2, 4], [1, 1], [1, 1], 2),
            (PaddingConfig2d::Valid, [3, 3], [2, 3], [1, 1], 2),
            (
                PaddingConfig2d::Explicit(0, 1, 2, 1),
                [2, 3],
                [3, 2],
                [2, 1],
                1,
            ),
        ];
        let x = random([2, 4, 9, 8]);
        for (padding, kernel, stride, dilation, groups) in geometries {
            let conv = Conv2dConfig::new([4, 6], kernel)
                .with_padding(padding.clone())
                .with_stride(stride)
                .with_dilation(dilation)
                .with_groups(groups)
                .init(&device);
            let layer = RuleLayer::Conv(&conv);
            let s = random(layer.forward(x.clone()).dims());
            for params in [ParamMod::Identity, ParamMod::Positive, ParamMod::Ones] {
                let direct = layer.input_gradient(params, s.clone(), x.dims());
                assert_eq!(direct.dims(), x.dims());
                let error = max_abs_difference(direct, autodiff_gradient(layer, params, &s, &x));
                assert!(
                    error < 1e-5,
                    "{padding:?} {kernel:?} {stride:?} {params:?}: {error:e}"
                );
            }
        }
    }

    /// The same for a dense layer (a matrix product with the transposed weight).
    #[test]
    fn the_direct_transpose_equals_the_autodiff_gradient_for_a_dense_layer() {
        let device = Device::default();
        device.seed(7);
        let random =
            |dims: [usize; 4]| Tensor::<4>::random(dims, Distribution::Uniform(-1.0, 1.0), &device);
        let dense = LinearConfig::new(12, 5).init(&device);
        let layer = RuleLayer::Dense(&dense);
        let x = random([3, 12, 1, 1]);
        let s = random([3, 5, 1, 1]);
        let direct = layer.input_gradient(ParamMod::Negative, s.clone(), x.dims());
        let error =
            max_abs_difference(direct, autodiff_gradient(layer, ParamMod::Negative, &s, &x));
        assert!(error < 1e-5, "dense: {error:e}");
    }
}
