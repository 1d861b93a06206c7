//! What each operation says about relevance: the one place where a rule meets an operation.
//!
//! Every operation implements [`Lrp`] beside its definition: given the rule a composite
//! assigned to its node (or none), it answers with its [`Form`] — how relevance crosses it — or
//! why that rule has no meaning for it. The composite's public plan ([`Propagation`] per node)
//! and the engine's steps are both read from that one answer, so the rule × operation matrix
//! is written once, and a new operation brings its own row.

use super::operation::Operation;
use super::{FeatureShape, Layer, LayerNorm};
use burn::tensor::Tensor;

use crate::rules::{Rule, Stabilizer};

/// How relevance crosses one layer, once a composite has been resolved against a model.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per layer, built once per explanation
pub enum Propagation {
    /// The gradient trick with this rule (never [`Rule::Pass`]).
    Rule(Rule),
    /// Relevance passes unchanged (reshaped to the layer input where the layer reshapes).
    Pass,
    /// Relevance goes to the winning input of each max-pooling window (the gradient).
    WinnerTakesAll,
    /// Input × gradient of `R / z` ([`Rule::Gradient`], softmax).
    Gradient,
    /// No relevance crosses ([`Rule::Block`]): the output counts as a constant.
    Block,
    /// A product of activations: relevance split equally among the factors that are not
    /// constants (AttnLRP's uniform rule; a constant factor gets none).
    Uniform,
}

impl std::fmt::Display for Propagation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Propagation::Rule(Rule::Epsilon { epsilon }) => write!(f, "epsilon (ε = {epsilon})"),
            Propagation::Rule(Rule::Gamma { gamma }) => write!(f, "gamma (γ = {gamma})"),
            Propagation::Rule(Rule::AlphaBeta { alpha, beta }) => {
                write!(f, "alpha-beta (α = {alpha}, β = {beta})")
            }
            Propagation::Rule(Rule::LxtEpsilon { epsilon }) => {
                write!(f, "lxt-epsilon (ε = {epsilon})")
            }
            Propagation::Rule(rule) => f.write_str(rule.name()),
            Propagation::Pass => f.write_str("pass"),
            Propagation::WinnerTakesAll => f.write_str("winner-takes-all"),
            Propagation::Gradient => f.write_str("gradient"),
            Propagation::Block => f.write_str("block"),
            Propagation::Uniform => f.write_str("uniform"),
        }
    }
}

/// How relevance crosses one operation: what the operation answers for a rule (see the
/// module docs). Axes are per sample; the engine maps them to its internal layout.
#[derive(Debug)]
pub(crate) enum Form<'a> {
    /// A rule on a layer with a linear map (dense, conv, pooling): the gradient trick.
    Rule {
        /// The layer.
        layer: &'a Layer,
        /// Its rule.
        rule: Rule,
    },
    /// Max pooling: each window's relevance to its winner.
    WinnerTakesAll(&'a Layer),
    /// An element-wise or reshaping layer: relevance unchanged.
    Pass(&'a Layer),
    /// A sum of activations (or of an activation and a learned tensor):
    /// `R_i = x_i · R / stab(Σ x)`.
    Add {
        /// The rule (a stabilizer only).
        rule: Rule,
        /// Its stabilizer.
        stabilizer: Stabilizer,
        /// A learned tensor added as a constant summand (no relevance passes into it).
        constant: Option<&'a Tensor<4>>,
    },
    /// Relevance moved with the values.
    Route(Route<'a>),
    /// A product of two activations `A·B`: ε, then split uniformly.
    Product {
        /// The rule (a stabilizer only).
        rule: Rule,
        /// Its stabilizer.
        stabilizer: Stabilizer,
    },
    /// An element-wise product of activations: relevance split uniformly.
    Uniform,
    /// Softmax along a per-sample axis: input × gradient.
    Softmax {
        /// The per-sample axis.
        axis: usize,
    },
    /// No relevance crosses; the output is a constant.
    Block,
    /// The mean along a per-sample axis: `x ⊙ R / stab(Σx)`.
    Mean {
        /// The per-sample axis.
        axis: usize,
        /// The rule (a stabilizer only).
        rule: Rule,
        /// Its stabilizer.
        stabilizer: Stabilizer,
    },
    /// Relevance unchanged through a map of one shape (RMS norm's identity rule).
    Identity,
    /// Layer norm: the ε rule through `x − mean`, or the identity rule (`None`).
    LayerNorm {
        /// The layer.
        norm: &'a LayerNorm,
        /// The ε rule and its stabilizer.
        rule: Option<(Rule, Stabilizer)>,
    },
    /// A user's operation, by its own LRP form.
    Custom(&'a dyn Operation),
    /// An operation crossed by its plain gradient (input × gradient of `R / z`): its own
    /// forward is its LRP form (a softcap in LXT's efficient mode).
    Gradient(&'a dyn Operation),
}

/// How a routing operation moves relevance back to its inputs (per-sample axes).
#[derive(Debug)]
pub(crate) enum Route<'a> {
    /// Split along the axis by the inputs' sizes.
    Concat(usize),
    /// All to the gated value, none to the gate.
    Gate,
    /// Reshaped to the input.
    Reshape,
    /// The inverse permutation.
    Permute(&'a super::Permute),
    /// Unchanged (multiplication by a constant).
    Scale,
    /// The part after the learned tensor's `skip` entries along the axis.
    Prepend {
        /// The axis.
        axis: usize,
        /// How many entries the learned tensor holds along it.
        skip: usize,
    },
    /// Put back at `start` along the axis, zeros elsewhere.
    Slice {
        /// The axis.
        axis: usize,
        /// The first entry the slice kept.
        start: usize,
    },
}

impl Form<'_> {
    /// The form as the public plan shows it.
    pub fn propagation(&self) -> Propagation {
        match self {
            Form::Rule { rule, .. }
            | Form::Add { rule, .. }
            | Form::Product { rule, .. }
            | Form::Mean { rule, .. }
            | Form::LayerNorm {
                rule: Some((rule, _)),
                ..
            } => Propagation::Rule(rule.clone()),
            Form::WinnerTakesAll(_) => Propagation::WinnerTakesAll,
            Form::Pass(_)
            | Form::Route(_)
            | Form::Identity
            | Form::LayerNorm { rule: None, .. }
            | Form::Custom(_) => Propagation::Pass,
            Form::Uniform => Propagation::Uniform,
            Form::Softmax { .. } | Form::Gradient(_) => Propagation::Gradient,
            Form::Block => Propagation::Block,
        }
    }
}

/// Why an operation takes no form for a rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// The operation needs a rule and none was assigned.
    Missing,
    /// The rule has no meaning for the operation, and why.
    Mismatch(&'static str),
}

/// An operation's knowledge of relevance (see the module docs).
pub(crate) trait Lrp {
    /// The form for the rule a composite assigned (`None`: the operation's default).
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal>;

    /// For an operation of one input whose identity rule has a closed form (`f(x) = x ⊙ c(x)`):
    /// the factor `c` of the plain input `x` (internal layout; `input` its per-sample shape),
    /// computed so that `x ⊙ c` is the forward pass bit for bit. The one pass then multiplies
    /// the input by it, held constant. `None`: the engine divides the output by the input.
    fn identity_factor(&self, _x: Tensor<4>, _input: FeatureShape) -> Option<Tensor<4>> {
        None
    }

    /// Whether the output is non-negative, given whether the first input and all inputs are
    /// (lets z⁺ rules skip the negative half where no negative value can arrive).
    fn keeps_nonnegative(&self, first: bool, all: bool) -> bool;
}

/// The stabilizer of a rule that is a stabilizer only (norm, ε, LXT's ε, zero): what sums,
/// means and products of activations take.
pub(crate) fn stabilizer_only(rule: &Rule) -> Option<Stabilizer> {
    let only = matches!(
        rule,
        Rule::Zero | Rule::Epsilon { .. } | Rule::LxtEpsilon { .. } | Rule::Norm
    );
    only.then(|| Some(rule.groups()?.first()?.stabilizer))
        .flatten()
}

/// The refusal of a sum, mean or product of activations for another rule.
pub(crate) const STABILIZER_ONLY: &str = "sums, means and products of activations take norm, epsilon, lxt-epsilon or zero (a stabilizer only)";

/// A routing operation's form: `pass` (or none) routes, anything else is refused.
pub(crate) fn route<'a>(rule: Option<&Rule>, route: Route<'a>) -> Result<Form<'a>, Refusal> {
    match rule {
        None | Some(Rule::Pass) => Ok(Form::Route(route)),
        Some(_) => Err(Refusal::Mismatch(
            "concatenations, gates, reshapes, permutations, slices, scalings and RMS norms (the identity rule) take only pass",
        )),
    }
}
