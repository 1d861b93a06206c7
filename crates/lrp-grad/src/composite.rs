//! Composites: which rule each layer gets (Zennit's `composites.py`).
//!
//! A composite maps a model's nodes to rules by name (a glob), by index, by a special first
//! layer, and by layer type, in that order of precedence (Zennit's `NameMap`, `LayerMap` and
//! `SpecialFirstLayerMap`). Whatever is left gets the base map every Zennit composite shares:
//! activations (and other element-wise or reshaping layers) pass relevance through, average
//! pooling and additions get [`Rule::Norm`], max pooling sends relevance to the winning input,
//! concatenations split it back by position and gates leave it with the gated value.

use crate::error::{Error, Result};
use crate::model::{AsGraph, Layer, Op};
use crate::rules::{Bound, DEFAULT_EPSILON, DEFAULT_GAMMA, LXT_EPSILON, LXT_PRODUCT_EPSILON, Rule};

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
}

impl LayerType {
    /// Whether a node's operation belongs to this class.
    pub fn matches(&self, op: &Op) -> bool {
        let Op::Layer(layer) = op else {
            return matches!(
                (self, op),
                (LayerType::Add, Op::Add(_))
                    | (LayerType::MatMul, Op::MatMul(_))
                    | (LayerType::Softmax, Op::Softmax(_))
                    | (LayerType::LayerNorm, Op::LayerNorm(_))
                    | (LayerType::Mean, Op::Mean(_))
                    | (LayerType::AddParam, Op::AddParam(_))
            );
        };
        match self {
            LayerType::Add
            | LayerType::MatMul
            | LayerType::Softmax
            | LayerType::LayerNorm
            | LayerType::Mean
            | LayerType::AddParam => false,
            LayerType::Dense => matches!(layer, Layer::Linear(_)),
            LayerType::Conv2d => matches!(layer, Layer::Conv2d(_)),
            LayerType::AnyLinear => matches!(layer, Layer::Linear(_) | Layer::Conv2d(_)),
            LayerType::AvgPool => {
                matches!(layer, Layer::AvgPool2d(_) | Layer::AdaptiveAvgPool2d(_))
            }
            LayerType::MaxPool => matches!(layer, Layer::MaxPool2d(_)),
            LayerType::Activation => layer.is_activation(),
        }
    }
}

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

/// Names of the built-in composites, as [`Composite::named`] takes them: the one list the
/// parser's error, the command line's help and the README are checked against.
pub const COMPOSITE_NAMES: [&str; 7] = [
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-gamma-box",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
    "attn-lrp",
    "cp-lrp",
];

/// A mapping from layers to rules.
///
/// ```
/// use lrp_grad::{Composite, LayerType, Rule};
/// // Zennit's EpsilonPlusFlat, but LRP-0 on every dense layer and w-square on layer 0.
/// let composite = Composite::epsilon_plus_flat()
///     .with_type(LayerType::Dense, Rule::Zero)
///     .with_index(0, Rule::WSquare);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Composite {
    by_name: Vec<(String, Rule)>,
    by_index: Vec<(usize, Rule)>,
    first: Vec<(LayerType, Rule)>,
    by_type: Vec<(LayerType, Rule)>,
}

impl Composite {
    /// An empty composite: only the base map (activations pass, pooling as Zennit does).
    pub fn new() -> Self {
        Self::default()
    }

    /// One rule for every dense and conv layer.
    pub fn uniform(rule: Rule) -> Self {
        Self::new().with_type(LayerType::AnyLinear, rule)
    }

    /// Assigns `rule` to the layer at `index`; this beats every other assignment.
    #[must_use]
    pub fn with_index(mut self, index: usize, rule: Rule) -> Self {
        self.by_index.retain(|(i, _)| *i != index);
        self.by_index.push((index, rule));
        self
    }

    /// Assigns `rule` to every node whose name matches the glob `pattern` (`*`, `?`, `[..]`;
    /// e.g. `layer1.*.conv2`); this beats every other assignment, and a later call wins over
    /// earlier ones. An invalid pattern is reported when the composite is resolved.
    #[must_use]
    pub fn with_name(mut self, pattern: impl Into<String>, rule: Rule) -> Self {
        self.by_name.insert(0, (pattern.into(), rule));
        self
    }

    /// Assigns `rule` to every layer of type `ty`; a later call wins over earlier ones.
    #[must_use]
    pub fn with_type(mut self, ty: LayerType, rule: Rule) -> Self {
        self.by_type.insert(0, (ty, rule));
        self
    }

    /// Assigns `rule` to the first layer (in model order) of type `ty`, as Zennit's
    /// `SpecialFirstLayerMapComposite`; a later call wins over earlier ones.
    #[must_use]
    pub fn with_first(mut self, ty: LayerType, rule: Rule) -> Self {
        self.first.insert(0, (ty, rule));
        self
    }

    /// The part every built-in composite shares: ε on dense layers.
    fn epsilon_on_dense() -> Self {
        Self::new().with_type(
            LayerType::Dense,
            Rule::Epsilon {
                epsilon: DEFAULT_EPSILON,
            },
        )
    }

    /// Zennit's `EpsilonPlus`: z⁺ on conv layers, ε on dense layers.
    pub fn epsilon_plus() -> Self {
        Self::epsilon_on_dense().with_type(LayerType::Conv2d, Rule::ZPlus)
    }

    /// Zennit's `EpsilonPlusFlat`: as [`Composite::epsilon_plus`], with flat on the first dense
    /// or conv layer. The default composite of [`crate::explain`].
    pub fn epsilon_plus_flat() -> Self {
        Self::epsilon_plus().with_first(LayerType::AnyLinear, Rule::Flat)
    }

    /// Zennit's `EpsilonGammaBox`: z-box on the first conv layer, γ = 0.25 on the other conv
    /// layers, ε on dense layers.
    pub fn epsilon_gamma_box(low: impl Into<Bound>, high: impl Into<Bound>) -> Result<Self> {
        Ok(Self::epsilon_on_dense()
            .with_type(
                LayerType::Conv2d,
                Rule::Gamma {
                    gamma: DEFAULT_GAMMA,
                },
            )
            .with_first(LayerType::Conv2d, Rule::z_box(low, high)?))
    }

    /// Zennit's `EpsilonAlpha2Beta1`: α2β1 on conv layers, ε on dense layers.
    pub fn epsilon_alpha2_beta1() -> Self {
        Self::epsilon_on_dense().with_type(
            LayerType::Conv2d,
            Rule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            },
        )
    }

    /// Zennit's `EpsilonAlpha2Beta1Flat`: as [`Composite::epsilon_alpha2_beta1`], with flat on
    /// the first dense or conv layer.
    pub fn epsilon_alpha2_beta1_flat() -> Self {
        Self::epsilon_alpha2_beta1().with_first(LayerType::AnyLinear, Rule::Flat)
    }

    /// AttnLRP (Achtibat et al., ICML 2024) with LXT's stabilizers (`lxt.explicit.functional`):
    /// ε = 1e-6 added without the sign on dense and conv layers, layer norms (through
    /// `x − mean`, the `1/std` factor held constant) and means; ε = 1e-8 on sums of activations,
    /// learned additive tensors and products of activations (each factor half: the uniform
    /// rule); Deep Taylor on softmax (`a ⊙ (R − s·ΣR)`); element-wise activations pass
    /// relevance unchanged (the identity rule). Combine with first-layer maps as with CNNs
    /// (`.with_first(LayerType::Conv2d, …)` for a ViT's patch embedding).
    pub fn attn_lrp() -> Self {
        let linear = Rule::LxtEpsilon {
            epsilon: LXT_EPSILON,
        };
        let product = Rule::LxtEpsilon {
            epsilon: LXT_PRODUCT_EPSILON,
        };
        Self::new()
            .with_type(LayerType::AnyLinear, linear.clone())
            .with_type(LayerType::LayerNorm, linear.clone())
            .with_type(LayerType::Mean, linear)
            .with_type(LayerType::Add, product.clone())
            .with_type(LayerType::AddParam, product.clone())
            .with_type(LayerType::MatMul, product)
            .with_type(LayerType::Softmax, Rule::Gradient)
    }

    /// CP-LRP (Ali et al., ICML 2022), as LXT ships it: [`Composite::attn_lrp`] with no
    /// relevance through the softmax, so attention weights are constants and a product
    /// `softmax·V` gives all its relevance to `V`.
    pub fn cp_lrp() -> Self {
        Self::attn_lrp().with_type(LayerType::Softmax, Rule::Block)
    }

    /// A built-in composite by name (see [`COMPOSITE_NAMES`]); `bounds` are z-box's low and
    /// high, needed by `epsilon-gamma-box` only.
    pub fn named(name: &str, bounds: Option<(Bound, Bound)>) -> Result<Self> {
        match name {
            "epsilon-plus" => Ok(Self::epsilon_plus()),
            "epsilon-plus-flat" => Ok(Self::epsilon_plus_flat()),
            "epsilon-alpha2-beta1" => Ok(Self::epsilon_alpha2_beta1()),
            "epsilon-alpha2-beta1-flat" => Ok(Self::epsilon_alpha2_beta1_flat()),
            "attn-lrp" => Ok(Self::attn_lrp()),
            "cp-lrp" => Ok(Self::cp_lrp()),
            "epsilon-gamma-box" => match bounds {
                Some((low, high)) => Self::epsilon_gamma_box(low, high),
                None => Err(Error::InvalidRule {
                    rule: "z-box",
                    reason: "epsilon-gamma-box needs the input bounds low and high".into(),
                }),
            },
            other => Err(Error::UnknownComposite {
                name: other.to_string(),
                expected: COMPOSITE_NAMES.join(", "),
            }),
        }
    }

    /// Resolves the composite against a model: how relevance crosses each node (in
    /// topological order; for a [`Sequential`](crate::Sequential) model, each layer). Checks
    /// every rule's parameters and that each rule makes sense for its node.
    pub fn plan(&self, model: &(impl AsGraph + ?Sized)) -> Result<Vec<Propagation>> {
        let graph = model.as_graph();
        let nodes = graph.nodes();
        if let Some(&(index, _)) = self.by_index.iter().find(|(i, _)| *i >= nodes.len()) {
            return Err(Error::NoSuchLayer {
                index,
                layers: nodes.len(),
            });
        }
        let patterns = self
            .by_name
            .iter()
            .map(|(pattern, rule)| {
                glob::Pattern::new(pattern)
                    .map(|p| (p, rule))
                    .map_err(|e| Error::InvalidPattern {
                        pattern: pattern.clone(),
                        reason: e.msg.to_string(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut first_seen = false;
        nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let by_name = patterns
                    .iter()
                    .find(|(p, _)| p.matches(&node.name))
                    .map(|(_, r)| *r);
                let by_index = self
                    .by_index
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, r)| r);
                let first = match self.first.iter().find(|(ty, _)| ty.matches(&node.op)) {
                    Some((_, rule)) if !first_seen => {
                        first_seen = true;
                        Some(rule)
                    }
                    _ => None,
                };
                let by_type = || {
                    self.by_type
                        .iter()
                        .find(|(ty, _)| ty.matches(&node.op))
                        .map(|(_, r)| r)
                };
                match by_name.or(by_index).or(first).or_else(by_type) {
                    Some(rule) => pair(rule, &node.op, index),
                    None => base(&node.op, index),
                }
            })
            .collect()
    }
}

/// The base map for nodes no assignment covers.
fn base(op: &Op, index: usize) -> Result<Propagation> {
    let layer = match op {
        Op::Layer(layer) => layer,
        Op::Add(_) | Op::AddParam(_) | Op::Mean(_) => return Ok(Propagation::Rule(Rule::Norm)),
        Op::Concat(_)
        | Op::Gate(_)
        | Op::Reshape(_)
        | Op::Permute(_)
        | Op::Scale(_)
        | Op::Slice(_)
        | Op::Prepend(_)
        | Op::LayerNorm(_)
        | Op::RmsNorm(_)
        | Op::Custom(_) => {
            return Ok(Propagation::Pass);
        }
        Op::MatMul(_) => {
            return Ok(Propagation::Rule(Rule::LxtEpsilon {
                epsilon: LXT_PRODUCT_EPSILON,
            }));
        }
        Op::Mul(_) => return Ok(Propagation::Uniform),
        Op::Softmax(_) => return Ok(Propagation::Gradient),
    };
    match layer {
        Layer::Linear(_) | Layer::Conv2d(_) => Err(Error::MissingRule {
            index,
            kind: layer.kind(),
        }),
        Layer::AvgPool2d(_) | Layer::AdaptiveAvgPool2d(_) => Ok(Propagation::Rule(Rule::Norm)),
        Layer::MaxPool2d(_) => Ok(Propagation::WinnerTakesAll),
        _ => Ok(Propagation::Pass),
    }
}

/// Checks that `rule` makes sense for the node's operation.
fn pair(rule: &Rule, op: &Op, index: usize) -> Result<Propagation> {
    rule.validate()?;
    let mismatch = |reason: &str| Error::RuleLayerMismatch {
        rule: rule.name(),
        index,
        kind: op.kind(),
        reason: reason.to_string(),
    };
    pair_op(rule, op, &mismatch)
}

/// [`pair`] by the kind of operation.
fn pair_op(rule: &Rule, op: &Op, mismatch: &dyn Fn(&str) -> Error) -> Result<Propagation> {
    let stabilizer_only = matches!(
        rule,
        Rule::Zero | Rule::Epsilon { .. } | Rule::LxtEpsilon { .. } | Rule::Norm
    );
    match op {
        Op::Layer(layer) => pair_layer(rule, layer, mismatch),
        Op::Add(_) | Op::AddParam(_) | Op::Mean(_) | Op::MatMul(_) => match stabilizer_only {
            true => Ok(Propagation::Rule(rule.clone())),
            false => Err(mismatch(
                "sums, means and products of activations take norm, epsilon, lxt-epsilon or zero (a stabilizer only)",
            )),
        },
        Op::LayerNorm(_) => match rule {
            Rule::Pass => Ok(Propagation::Pass),
            _ if stabilizer_only => Ok(Propagation::Rule(rule.clone())),
            _ => Err(mismatch(
                "layer norm takes pass (the identity rule) or epsilon, lxt-epsilon, zero (through x − mean, 1/std constant)",
            )),
        },
        Op::Softmax(_) => match rule {
            Rule::Gradient => Ok(Propagation::Gradient),
            Rule::Block => Ok(Propagation::Block),
            _ => Err(mismatch(
                "softmax takes gradient (AttnLRP) or block (CP-LRP)",
            )),
        },
        Op::Mul(_) => Err(mismatch(
            "an element-wise product of activations splits relevance uniformly; it takes no rule",
        )),
        Op::Custom(_) => match rule {
            Rule::Pass => Ok(Propagation::Pass),
            _ => Err(mismatch(
                "a user's operation takes pass: its own LRP form (`Operation::lrp_forward`)",
            )),
        },
        Op::Concat(_)
        | Op::Gate(_)
        | Op::Reshape(_)
        | Op::Permute(_)
        | Op::Scale(_)
        | Op::Slice(_)
        | Op::Prepend(_)
        | Op::RmsNorm(_) => match rule {
            Rule::Pass => Ok(Propagation::Pass),
            _ => Err(mismatch(
                "concatenations, gates, reshapes, permutations, slices, scalings and RMS norms (the identity rule) take only pass",
            )),
        },
    }
}

/// [`pair`] for layers.
fn pair_layer(rule: &Rule, layer: &Layer, mismatch: &dyn Fn(&str) -> Error) -> Result<Propagation> {
    match layer {
        Layer::Linear(_) | Layer::Conv2d(_) => match rule {
            Rule::Gradient | Rule::Block => Err(mismatch(
                "gradient and block are for softmax; use zero, epsilon or another LRP rule",
            )),
            Rule::Pass => Err(mismatch(
                "pass keeps relevance as it is, but this layer maps its input to another shape; use zero, epsilon or another LRP rule",
            )),
            _ => Ok(Propagation::Rule(rule.clone())),
        },
        Layer::AvgPool2d(_) | Layer::AdaptiveAvgPool2d(_) | Layer::MaxPool2d(_) => {
            if matches!(rule, Rule::Pass) {
                Err(mismatch(
                    "pass keeps relevance as it is, but pooling changes its shape; use norm",
                ))
            } else if rule.needs_parameters() {
                Err(mismatch(
                    "the rule modifies weights, and pooling has none; use norm, zero or epsilon",
                ))
            } else {
                Ok(Propagation::Rule(rule.clone()))
            }
        }
        _ => match rule {
            Rule::Pass => Ok(Propagation::Pass),
            _ => Err(mismatch(
                "element-wise and reshaping layers only take pass (LRP rules are for linear and pooling layers)",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed name builds a composite (epsilon-gamma-box given its bounds), and an unknown
    /// name's error lists exactly the built-in names.
    #[test]
    fn every_listed_name_is_a_composite_and_the_error_lists_them_all() {
        for name in COMPOSITE_NAMES {
            let bounds = (name == "epsilon-gamma-box").then(|| (Bound::from(0.0), 1.0.into()));
            assert!(Composite::named(name, bounds).is_ok(), "{name}");
        }
        let message = Composite::named("epsilon-nope", None)
            .unwrap_err()
            .to_string();
        let listed = message.split("expected one of ").nth(1).unwrap();
        assert_eq!(listed.split(", ").collect::<Vec<_>>(), COMPOSITE_NAMES);
    }
}
