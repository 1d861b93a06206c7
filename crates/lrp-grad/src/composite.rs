//! Composites: which rule each layer gets (Zennit's `composites.py`).
//!
//! A composite maps a model's nodes to rules by name (a glob), by index, by a special first
//! layer, and by layer type, in that order of precedence (Zennit's `NameMap`, `LayerMap` and
//! `SpecialFirstLayerMap`). Whatever is left gets the base map every Zennit composite shares:
//! activations (and other element-wise or reshaping layers) pass relevance through, average
//! pooling and additions get [`Rule::Norm`], max pooling sends relevance to the winning input,
//! concatenations split it back by position and gates leave it with the gated value.

use crate::error::{Error, Result};
use crate::model::lrp::{Form, Refusal};
use crate::model::{AsGraph, Graph, Node, Op};
pub use crate::model::{LayerType, Propagation};
use crate::rules::{
    Bound, DEFAULT_EPSILON, DEFAULT_GAMMA, LXT_EPSILON, LXT_PRODUCT_EPSILON, PLAIN_EPSILON, Rule,
};

impl LayerType {
    /// Whether a node's operation belongs to this class (the operation answers).
    pub fn matches(&self, op: &Op) -> bool {
        op.operator().is(*self)
    }
}

/// Names of the built-in composites, as [`Composite::named`] takes them: the one list the
/// parser's error, the command line's help and the README are checked against.
pub const COMPOSITE_NAMES: [&str; 9] = [
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-gamma-box",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
    "attn-lrp",
    "cp-lrp",
    "attn-lrp-efficient",
    "cp-lrp-efficient",
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

    /// The part Zennit's composites share: ε on dense layers — and on layer norms, through
    /// `x − mean` with `1/std` held constant (AttnLRP's treatment; Zennit has no rule for
    /// them). Passing a layer norm's relevance unchanged instead hands its output's relevance
    /// to an input that can be near 0 where the output is not (the norm's shift and bias),
    /// and the residual sum before it divides by that input: on timm's MLP-Mixer B/16 the
    /// relevance reached 1e18 for a logit of 0.37; with ε it sums to the logit.
    fn zennit_base() -> Self {
        let epsilon = Rule::Epsilon {
            epsilon: DEFAULT_EPSILON,
        };
        (Self::new())
            .with_type(LayerType::Dense, epsilon.clone())
            .with_type(LayerType::LayerNorm, epsilon)
    }

    /// Zennit's `EpsilonPlus`: z⁺ on conv layers, ε on dense layers.
    pub fn epsilon_plus() -> Self {
        Self::zennit_base().with_type(LayerType::Conv2d, Rule::ZPlus)
    }

    /// Zennit's `EpsilonPlusFlat`: as [`Composite::epsilon_plus`], with flat on the first dense
    /// or conv layer. The default composite of [`crate::explain`].
    pub fn epsilon_plus_flat() -> Self {
        Self::epsilon_plus().with_first(LayerType::AnyLinear, Rule::Flat)
    }

    /// Zennit's `EpsilonGammaBox`: z-box on the first conv layer, γ = 0.25 on the other conv
    /// layers, ε on dense layers.
    pub fn epsilon_gamma_box(low: impl Into<Bound>, high: impl Into<Bound>) -> Result<Self> {
        Ok(Self::zennit_base()
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
        Self::zennit_base().with_type(
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

    /// AttnLRP as LXT 2.1's efficient mode computes it (`lxt.efficient`): the plain gradient
    /// through every linear map, sum and product — LRP-0, no ε — with the uniform split of
    /// products (LXT divides the gradient of q and k by 4 and of v by 2, and of a gated MLP's
    /// product by 2: the same split), the identity rule through activations and norms (their
    /// `rsqrt`/`std` detached), and the gradient of softmax and of logit softcaps (LXT leaves
    /// them unpatched). [`Composite::attn_lrp`] is LXT's explicit rule set (ε-LRP with
    /// `z + ε`); the two differ by those ε, and at softcaps (the identity rule there).
    pub fn attn_lrp_efficient() -> Self {
        // LRP-0 with an ε that only keeps 0/0 at 0: LXT's plain gradient (Zennit's zero rule
        // adds 1e-9, which moves outputs near 0 by up to 1e-5 relative).
        let plain = Rule::Epsilon {
            epsilon: PLAIN_EPSILON,
        };
        Self::new()
            .with_type(LayerType::AnyLinear, plain.clone())
            .with_type(LayerType::LayerNorm, plain.clone())
            .with_type(LayerType::Mean, plain.clone())
            .with_type(LayerType::Add, plain.clone())
            .with_type(LayerType::AddParam, plain.clone())
            .with_type(LayerType::MatMul, plain)
            .with_type(LayerType::Softmax, Rule::Gradient)
            .with_type(LayerType::Softcap, Rule::Gradient)
    }

    /// CP-LRP as LXT 2.1's efficient mode computes it: [`Composite::attn_lrp_efficient`] with q
    /// and k detached (no relevance through the softmax, so `softmax·V` gives all of it to `V`)
    /// and a gated MLP's gate detached (`act(gate) · up`: all to `up`, no split).
    pub fn cp_lrp_efficient() -> Self {
        Self::attn_lrp_efficient()
            .with_type(LayerType::Softmax, Rule::Block)
            .with_type(LayerType::Mul, Rule::Block)
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
            "attn-lrp-efficient" => Ok(Self::attn_lrp_efficient()),
            "cp-lrp-efficient" => Ok(Self::cp_lrp_efficient()),
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
        let rules = self.assign(&graph)?;
        (graph.nodes().iter().zip(&rules).enumerate())
            .map(|(index, (node, rule))| Ok(form(node, index, rule.as_ref())?.propagation()))
            .collect()
    }

    /// The rule each node is assigned (`None`: its operation's default), by name, index,
    /// first layer of a type and type, in that order; each assigned rule's parameters checked.
    pub(crate) fn assign(&self, graph: &Graph) -> Result<Vec<Option<Rule>>> {
        let nodes = graph.nodes();
        if let Some(&(index, _)) = self.by_index.iter().find(|(i, _)| *i >= nodes.len()) {
            return Err(Error::NoSuchLayer {
                index,
                layers: nodes.len(),
            });
        }
        let patterns = self.patterns()?;
        let mut first_seen = false;
        let mut rules = Vec::with_capacity(nodes.len());
        for (index, node) in nodes.iter().enumerate() {
            let by_name = patterns.iter().find(|(p, _)| p.matches(&node.name));
            let by_index = self.by_index.iter().find(|(i, _)| *i == index);
            let first = match self.first.iter().find(|(ty, _)| ty.matches(&node.op)) {
                Some((_, rule)) if !first_seen => {
                    first_seen = true;
                    Some(rule)
                }
                _ => None,
            };
            let by_type = || self.by_type.iter().find(|(ty, _)| ty.matches(&node.op));
            let rule = (by_name.map(|(_, r)| *r))
                .or(by_index.map(|(_, r)| r))
                .or(first)
                .or_else(|| by_type().map(|(_, r)| r));
            if let Some(rule) = rule {
                rule.validate()?;
            }
            rules.push(rule.cloned());
        }
        Ok(rules)
    }

    /// The name patterns, compiled.
    fn patterns(&self) -> Result<Vec<(glob::Pattern, &Rule)>> {
        (self.by_name.iter())
            .map(|(pattern, rule)| {
                glob::Pattern::new(pattern)
                    .map(|p| (p, rule))
                    .map_err(|e| Error::InvalidPattern {
                        pattern: pattern.clone(),
                        reason: e.msg.to_string(),
                    })
            })
            .collect()
    }
}

/// The node's form for its assigned rule (what its operation answers; see
/// [`crate::model::lrp`]), a refusal as an error naming the node.
pub(crate) fn form<'a>(node: &'a Node, index: usize, rule: Option<&Rule>) -> Result<Form<'a>> {
    node.op
        .operator()
        .form(rule)
        .map_err(|refusal| match refusal {
            Refusal::Missing => Error::MissingRule {
                index,
                kind: node.op.kind(),
            },
            Refusal::Mismatch(reason) => Error::RuleLayerMismatch {
                rule: rule.map_or("(none)", Rule::name),
                index,
                kind: node.op.kind(),
                reason: reason.to_string(),
            },
        })
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
