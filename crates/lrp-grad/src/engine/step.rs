//! A node's propagation resolved once into what the engine runs: the rule layer and its groups,
//! the z-box bounds, the stabilizer of an addition. The engine then has nothing to look up or
//! check while it runs: a resolved step cannot hold a rule without terms, a rule on a layer
//! without a linear map, or a z-box without bounds.

use burn::tensor::Tensor;

use super::{Bounds, RuleLayer};
use crate::model::lrp::{Form, Route};
use crate::model::{FeatureShape, Layer, LayerNorm, Operation};
use crate::rules::{Group, InputMod, Rule, Stabilizer};

/// How relevance crosses one node.
#[allow(clippy::large_enum_variant)] // one per node, built once per batch
pub(crate) enum Step<'a> {
    /// A rule on a linear or pooling layer.
    Rule(RuleStep<'a>),
    /// Max pooling: each output's relevance to its window's winner.
    WinnerTakesAll(RuleLayer<'a>),
    /// An element-wise or reshaping layer: relevance unchanged.
    Pass(&'a Layer),
    /// An addition: `R_i = x_i · R / stab(Σ x)`.
    Add {
        /// The stabilizer (norm 1e-6, ε, zero's 1e-9; signed or LXT's).
        stabilizer: Stabilizer,
        /// A learned tensor added as a constant summand (keeps its share).
        constant: Option<&'a Tensor<4>>,
    },
    /// Concatenation, gate, reshape, permutation: relevance routed by position.
    Route(Route<'a>),
    /// An attention operation with its AttnLRP rule (see [`super::attention`]).
    Attention(AttentionStep<'a>),
    /// A user's operation, by its own LRP form.
    Custom(&'a dyn Operation),
}

/// How relevance crosses an attention operation.
pub(crate) enum AttentionStep<'a> {
    /// A product of two activations `A·B`: ε + uniform.
    Product {
        /// The stabilizer of `n·O`.
        stabilizer: Stabilizer,
    },
    /// An element-wise product of activations: relevance split uniformly.
    Uniform,
    /// Softmax along this internal axis: input × gradient.
    Softmax {
        /// The internal axis.
        axis: usize,
    },
    /// No relevance crosses; the output is a constant.
    Block,
    /// The mean along this internal axis: `x ⊙ R / stab(Σx)`.
    Mean {
        /// The internal axis.
        axis: usize,
        /// The stabilizer of `Σx`.
        stabilizer: Stabilizer,
    },
    /// Relevance unchanged through a map of one shape (RMS norm's identity rule).
    Identity,
    /// Layer norm: the ε rule through `x − mean` (a stabilizer), or the identity (none).
    LayerNorm {
        /// The layer.
        norm: &'a LayerNorm,
        /// The ε rule's stabilizer; `None` for the identity rule.
        stabilizer: Option<Stabilizer>,
    },
}

/// A rule layer with its rule's groups.
pub(crate) struct RuleStep<'a> {
    pub layer: &'a Layer,
    pub rule_layer: RuleLayer<'a>,
    pub rule: Rule,
    pub groups: Vec<Group>,
    /// z-box's bounds (present exactly when a term reads a bound).
    pub bounds: Option<Bounds>,
}

impl<'a> RuleStep<'a> {
    /// `rule` on `layer`: its groups of terms; `None` for a layer without a rule form, a group
    /// without terms, or bounds where no term reads them (or none where one does).
    fn resolve(layer: &'a Layer, rule: Rule, bounds: Option<Bounds>) -> Option<Self> {
        let groups = rule.groups()?;
        let reads_bounds = groups
            .iter()
            .flat_map(|g| &g.terms)
            .any(|t| matches!(t.input, InputMod::Low | InputMod::High));
        if reads_bounds != bounds.is_some() || groups.iter().any(|g| g.terms.is_empty()) {
            return None;
        }
        Some(RuleStep {
            layer,
            rule_layer: RuleLayer::new(layer)?,
            rule,
            groups,
            bounds,
        })
    }
}

impl<'a> Step<'a> {
    /// The engine's step for an operation's form: its axes in the internal layout of the
    /// input's per-sample shape, a rule's groups, z-box's `bounds`. `None` when a rule's terms
    /// read bounds it does not have (or a group has no terms).
    pub fn new(form: Form<'a>, bounds: Option<Bounds>, input: FeatureShape) -> Option<Self> {
        let axis = |a: usize| input.internal_axis(a);
        Some(match form {
            Form::Rule { layer, rule } => Step::Rule(RuleStep::resolve(layer, rule, bounds)?),
            Form::WinnerTakesAll(layer) => Step::WinnerTakesAll(RuleLayer::new(layer)?),
            Form::Pass(layer) => Step::Pass(layer),
            Form::Add {
                stabilizer,
                constant,
                ..
            } => Step::Add {
                stabilizer,
                constant,
            },
            Form::Route(route) => Step::Route(route),
            Form::Product { stabilizer, .. } => {
                Step::Attention(AttentionStep::Product { stabilizer })
            }
            Form::Uniform => Step::Attention(AttentionStep::Uniform),
            Form::Softmax { axis: a } => Step::Attention(AttentionStep::Softmax { axis: axis(a) }),
            Form::Block => Step::Attention(AttentionStep::Block),
            Form::Mean {
                axis: a,
                stabilizer,
                ..
            } => Step::Attention(AttentionStep::Mean {
                axis: axis(a),
                stabilizer,
            }),
            Form::Identity => Step::Attention(AttentionStep::Identity),
            Form::LayerNorm { norm, rule } => Step::Attention(AttentionStep::LayerNorm {
                norm,
                stabilizer: rule.map(|(_, s)| s),
            }),
            Form::Custom(operation) | Form::Gradient(operation) => Step::Custom(operation),
        })
    }

    /// Whether the step has a one-pass form: its relevance is `input ⊙ (modified gradient)`.
    /// True for rules whose terms read only `a`, `a⁺` or `a⁻` (all but flat, w-square and
    /// z-box), for max pooling, additions and routing, and for passing relevance through
    /// element-wise layers with `f(0) = 0` (see [`super::one_pass_pass`]); not through sigmoid,
    /// hard sigmoid or an unmerged batch norm, whose relevance at an input of 0 is not input ×
    /// anything.
    pub fn one_pass_able(&self) -> bool {
        match self {
            Step::Pass(layer) => layer.passes_as_factor(),
            Step::Rule(step) => step.groups.iter().flat_map(|g| &g.terms).all(|t| {
                matches!(
                    t.input,
                    InputMod::Identity | InputMod::Positive | InputMod::Negative
                )
            }),
            Step::WinnerTakesAll(_)
            | Step::Add { .. }
            | Step::Route(_)
            | Step::Attention(_)
            | Step::Custom(_) => true,
        }
    }
}
