//! LRP rules as small values.
//!
//! A rule never propagates anything itself. It only describes, as Zennit's `BasicHook` does,
//! which *terms* the one engine ([`crate::engine`]) evaluates: each term feeds a modified input
//! (`x`, `x⁺`, `x⁻`, ones, a bound) through the layer with modified parameters (`W`, `W⁺`, `W⁻`,
//! `W + γW⁺`, `W²`, ones), terms are summed into groups, and each group divides the upper
//! relevance by its stabilized sum. Adding a rule is a few lines in [`Rule::groups`].

use burn::tensor::TensorData;

use crate::error::{Error, Result};

/// Zennit's default stabilizer for every rule but epsilon.
pub const DEFAULT_STABILIZER: f64 = 1e-6;
/// Default ε of the epsilon rule (Zennit's).
pub const DEFAULT_EPSILON: f64 = 1e-6;
/// The tiny stabilizer of LRP-0, only there against 0/0.
pub const ZERO_RULE_STABILIZER: f64 = 1e-9;
/// Default γ of the gamma rule (Zennit's).
pub const DEFAULT_GAMMA: f64 = 0.25;
/// LXT's ε for linear layers, layer norm and means (`lxt.explicit.functional`).
pub const LXT_EPSILON: f64 = 1e-6;
/// LXT's ε for products and sums of activations (`matmul`, `add2`).
pub const LXT_PRODUCT_EPSILON: f64 = 1e-8;

/// ε of the plain gradient (LXT's efficient mode): small enough to change no output of a
/// float32 model, there only so that an output of exactly 0 passes no relevance (0/0 := 0).
pub const PLAIN_EPSILON: f64 = 1e-30;

/// How a rule keeps its denominator `z` away from zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stabilizer {
    /// Zennit's `z + ε·sign(z)`, sign(0) = +1.
    Signed(f64),
    /// LXT's `z + ε`, without the sign.
    Added(f64),
}

impl Stabilizer {
    /// ε.
    pub fn epsilon(self) -> f64 {
        match self {
            Stabilizer::Signed(e) | Stabilizer::Added(e) => e,
        }
    }
}

impl From<f64> for Stabilizer {
    /// Zennit's signed stabilizer.
    fn from(epsilon: f64) -> Self {
        Stabilizer::Signed(epsilon)
    }
}

/// A bound of the z-box rule: one number, or a tensor (see [`Rule::z_box`] for accepted shapes).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// The same bound for every input value.
    Scalar(f64),
    /// Per-value bounds, broadcast to the layer input.
    Tensor(TensorData),
}

impl From<f64> for Bound {
    fn from(value: f64) -> Self {
        Bound::Scalar(value)
    }
}

impl From<f32> for Bound {
    fn from(value: f32) -> Self {
        Bound::Scalar(value as f64)
    }
}

impl From<TensorData> for Bound {
    fn from(value: TensorData) -> Self {
        Bound::Tensor(value)
    }
}

/// An LRP rule, as defined by Zennit 0.5 (`zennit.rules`).
///
/// With `a` the layer input, `z = W·a + b` its output, `R` the upper relevance and
/// `stab(z) = z + ε·sign(z)` (sign(0) = +1):
///
/// | rule | relevance of the layer input |
/// |---|---|
/// | `Zero` | `a ⊙ Wᵀ(R / stab(z))`, ε = 1e-9 |
/// | `Epsilon` | the same with ε (default 1e-6) |
/// | `Gamma` | sign-split: positive outputs use `(W + γW⁺)` on `a⁺`, `(W + γW⁻)` on `a⁻`; negative outputs the mirror |
/// | `AlphaBeta` | `α·R⁺ − β·R⁻`, with `R⁺` from `W⁺a⁺ + W⁻a⁻` and `R⁻` from `W⁻a⁺ + W⁺a⁻` |
/// | `ZPlus` | relevance by `W⁺a⁺ + W⁻a⁻` (α = 1, β = 0) |
/// | `ZBox` | `z = Wa − W⁺l − W⁻h`; `R = a⊙c − l⊙c⁺ − h⊙c⁻` |
/// | `Flat` | spread uniformly over the receptive field (W = 1, a = 1, no bias) |
/// | `WSquare` | spread by `W²` (a = 1, bias squared) |
/// | `Pass` | unchanged (element-wise layers) |
/// | `Norm` | `a ⊙ Pᵀ(R / stab(P a))` for a parameter-free linear map `P` (pooling) |
/// | `LxtEpsilon` | LRP-ε with LXT's stabilizer `z + ε` (AttnLRP's rule for linear maps, layer norm, means, sums and products of activations) |
/// | `Gradient` | `a ⊙ Jᵀ(R / z)`: AttnLRP's softmax rule (Deep Taylor with bias: `a ⊙ (R − s·ΣR)`) |
/// | `Block` | nothing: the node is a constant (CP-LRP's softmax) |
///
/// Bias treatment follows Zennit: kept where the weight is kept, positive/negative part with
/// the clamped weights, squared in w-square, zeroed in flat, cancelled in z-box.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// LRP-0: the plain redistribution, with a stabilizer of 1e-9 only against 0/0.
    Zero,
    /// LRP-ε.
    Epsilon {
        /// ε ≥ 0, added with the sign of `z`.
        epsilon: f64,
    },
    /// Generalized LRP-γ (Zennit's sign-split form).
    Gamma {
        /// γ ≥ 0: how much the same-signed contributions are favoured.
        gamma: f64,
    },
    /// LRP-αβ with `α − β = 1`.
    AlphaBeta {
        /// Weight of positive contributions, ≥ 0.
        alpha: f64,
        /// Weight of negative contributions, ≥ 0.
        beta: f64,
    },
    /// LRP-z⁺.
    ZPlus,
    /// LRP-zᴮ for bounded inputs (usually the first layer).
    ZBox {
        /// Lowest possible input value(s).
        low: Bound,
        /// Highest possible input value(s).
        high: Bound,
    },
    /// Flat: uniform over the receptive field.
    Flat,
    /// W²: by the squared weights.
    WSquare,
    /// Pass the relevance through unchanged.
    Pass,
    /// Normalize by the layer's own output (for pooling layers).
    Norm,
    /// LRP-ε as LXT computes it: the stabilizer adds ε without the sign of `z`.
    LxtEpsilon {
        /// ε ≥ 0, added as it is.
        epsilon: f64,
    },
    /// Input × gradient of `R / z`: AttnLRP's rule for softmax (relevance
    /// `a ⊙ (R − s·ΣR)`, with `−∞` inputs counted as 0).
    Gradient,
    /// No relevance crosses the node: its output counts as a constant (CP-LRP's softmax).
    Block,
    /// A rule defined outside the library from the engine's building blocks (see
    /// [`CustomRule`]).
    Custom(CustomRule),
}

/// A user-defined rule: groups of [`Term`]s, as Zennit's `BasicHook` takes input modifiers,
/// parameter modifiers and a stabilizer. The engine evaluates it like any built-in rule, in
/// both strategies (the one pass where every term reads `a`, `a⁺` or `a⁻`).
///
/// ```
/// use lrp_grad::{CustomRule, Group, InputMod, ParamMod, Rule, Term};
/// // z⁺ with a larger stabilizer, written from the building blocks.
/// let z_plus = Rule::Custom(CustomRule::new(
///     "z-plus-0.01",
///     vec![Group::new(
///         vec![
///             Term::new(InputMod::Positive, ParamMod::Positive),
///             Term::new(InputMod::Negative, ParamMod::Negative).without_bias(),
///         ],
///         0.01,
///     )],
/// ));
/// assert!(z_plus.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CustomRule {
    /// A name for messages and plans.
    pub name: String,
    /// The groups; the relevance of the layer input is the sum over groups.
    pub groups: Vec<Group>,
}

impl CustomRule {
    /// A rule of these groups.
    pub fn new(name: impl Into<String>, groups: Vec<Group>) -> Self {
        Self {
            name: name.into(),
            groups,
        }
    }
}

impl Rule {
    /// LRP-ε, checking `ε ≥ 0` and finite.
    pub fn epsilon(epsilon: f64) -> Result<Rule> {
        let rule = Rule::Epsilon { epsilon };
        rule.validate()?;
        Ok(rule)
    }

    /// LRP-γ, checking `γ ≥ 0` and finite.
    pub fn gamma(gamma: f64) -> Result<Rule> {
        let rule = Rule::Gamma { gamma };
        rule.validate()?;
        Ok(rule)
    }

    /// LRP-αβ, checking `α, β ≥ 0` and `α − β = 1`.
    pub fn alpha_beta(alpha: f64, beta: f64) -> Result<Rule> {
        let rule = Rule::AlphaBeta { alpha, beta };
        rule.validate()?;
        Ok(rule)
    }

    /// LRP-zᴮ with bounds: scalars, or tensors whose shape is the layer input's per-sample shape
    /// (`[F]` or `[C, H, W]`), that shape with a leading batch dimension of 1 or N, or a
    /// broadcastable shape of the same rank (e.g. `[C, 1, 1]` for per-channel bounds).
    pub fn z_box(low: impl Into<Bound>, high: impl Into<Bound>) -> Result<Rule> {
        let rule = Rule::ZBox {
            low: low.into(),
            high: high.into(),
        };
        rule.validate()?;
        Ok(rule)
    }

    /// The rule's name, as used in messages and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Zero => "zero",
            Rule::Epsilon { .. } => "epsilon",
            Rule::Gamma { .. } => "gamma",
            Rule::AlphaBeta { .. } => "alpha-beta",
            Rule::ZPlus => "z-plus",
            Rule::ZBox { .. } => "z-box",
            Rule::Flat => "flat",
            Rule::WSquare => "w-square",
            Rule::Pass => "pass",
            Rule::Norm => "norm",
            Rule::LxtEpsilon { .. } => "lxt-epsilon",
            Rule::Gradient => "gradient",
            Rule::Block => "block",
            Rule::Custom(_) => "custom",
        }
    }

    /// Checks the rule's parameters.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidRule {
                rule: self.name(),
                reason,
            })
        };
        match self {
            Rule::Epsilon { epsilon } | Rule::LxtEpsilon { epsilon }
                if !(epsilon.is_finite() && *epsilon >= 0.0) =>
            {
                invalid(format!("epsilon must be finite and >= 0, got {epsilon}"))
            }
            Rule::Gamma { gamma } if !(gamma.is_finite() && *gamma >= 0.0) => {
                invalid(format!("gamma must be finite and >= 0, got {gamma}"))
            }
            Rule::AlphaBeta { alpha, beta } => {
                if !(alpha.is_finite() && beta.is_finite() && *alpha >= 0.0 && *beta >= 0.0) {
                    invalid(format!(
                        "alpha and beta must be finite and >= 0, got alpha = {alpha}, beta = {beta}"
                    ))
                } else if alpha - beta != 1.0 {
                    invalid(format!(
                        "alpha - beta must equal 1 (relevance is conserved only then), got alpha = {alpha}, beta = {beta}"
                    ))
                } else {
                    Ok(())
                }
            }
            Rule::ZBox { low, high } => validate_bounds(low, high).or_else(invalid),
            Rule::Custom(custom) => custom.validate().map_err(|reason| Error::InvalidRule {
                rule: "custom",
                reason: format!("`{}`: {reason}", custom.name),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the rule reads (and modifies) the layer's weights; such rules need a layer with
    /// parameters (linear or conv).
    pub fn needs_parameters(&self) -> bool {
        match self {
            Rule::Zero
            | Rule::Epsilon { .. }
            | Rule::LxtEpsilon { .. }
            | Rule::Norm
            | Rule::Pass
            | Rule::Gradient
            | Rule::Block => false,
            Rule::Custom(custom) => custom
                .groups
                .iter()
                .flat_map(|g| &g.terms)
                .any(|t| t.params != ParamMod::Identity),
            _ => true,
        }
    }

    /// A coefficient `c` with `z = c · Σ_g z_ρ,g` when the layer input is non-negative (every
    /// `a⁻` term vanishes): γ's second group then follows from the layer's own output and the
    /// first group's, `(W + γW⁺) + (W + γW⁻) = (2 + γ)·W`, which saves a forward pass. (αβ has
    /// the same identity, `W⁺ + W⁻ = W`, but its β group is often a small difference of large
    /// outputs: derived that way it lost precision, 1.7e-5 against Zennit, so αβ does not use it.)
    pub(crate) fn output_from_groups(&self) -> Option<f64> {
        match *self {
            Rule::Gamma { gamma } => Some(1.0 / (2.0 + gamma)),
            _ => None,
        }
    }

    /// The terms the engine evaluates for this rule; `None` for [`Rule::Pass`],
    /// [`Rule::Gradient`] and [`Rule::Block`], which evaluate no modified layer.
    pub fn groups(&self) -> Option<Vec<Group>> {
        use InputMod as I;
        use ParamMod as P;
        let plain = || vec![Term::new(I::Identity, P::Identity)];
        // `a⁺` through one parameter modifier, `a⁻` through another (its bias left out).
        let split = |positive: ParamMod, negative: ParamMod| {
            vec![
                Term::new(I::Positive, positive),
                Term::new(I::Negative, negative).without_bias(),
            ]
        };
        let eps = DEFAULT_STABILIZER;
        Some(match self {
            Rule::Zero => vec![Group::new(plain(), ZERO_RULE_STABILIZER)],
            Rule::Epsilon { epsilon } => vec![Group::new(plain(), *epsilon)],
            Rule::Norm => vec![Group::new(plain(), eps)],
            Rule::LxtEpsilon { epsilon } => {
                vec![Group::new(plain(), Stabilizer::Added(*epsilon))]
            }
            Rule::ZPlus => vec![Group::new(split(P::Positive, P::Negative), eps)],
            Rule::AlphaBeta { alpha, beta } => vec![
                Group::new(split(P::Positive, P::Negative), eps).scaled(*alpha as f32),
                Group::new(split(P::Negative, P::Positive), eps).scaled(-*beta as f32),
            ],
            Rule::Gamma { gamma } => {
                let (up, down) = (
                    P::GammaPositive(*gamma as f32),
                    P::GammaNegative(*gamma as f32),
                );
                vec![
                    Group::new(split(up, down), eps).masked(OutputMask::Positive),
                    Group::new(split(down, up), eps).masked(OutputMask::Negative),
                ]
            }
            Rule::ZBox { .. } => vec![Group::new(
                vec![
                    Term::new(I::Identity, P::Identity),
                    Term::new(I::Low, P::Positive).negated(),
                    Term::new(I::High, P::Negative).negated(),
                ],
                eps,
            )],
            Rule::Flat => vec![Group::new(
                vec![Term::new(I::Ones, P::Ones).without_bias()],
                eps,
            )],
            Rule::WSquare => vec![Group::new(vec![Term::new(I::Ones, P::Square)], eps)],
            Rule::Custom(custom) => custom.groups.clone(),
            Rule::Pass | Rule::Gradient | Rule::Block => return None,
        })
    }
}

/// z-box's bounds: float values, finite, and `low ≤ high` when both are scalars.
fn validate_bounds(low: &Bound, high: &Bound) -> std::result::Result<(), String> {
    for (which, bound) in [("low", low), ("high", high)] {
        let finite = match bound {
            Bound::Scalar(v) => v.is_finite(),
            Bound::Tensor(data) => match data.clone().convert::<f32>().try_to_vec::<f32>() {
                Ok(values) => values.iter().all(|v| v.is_finite()),
                Err(_) => return Err(format!("bound `{which}` must hold float values")),
            },
        };
        if !finite {
            return Err(format!("bound `{which}` must be finite"));
        }
    }
    match (low, high) {
        (Bound::Scalar(l), Bound::Scalar(h)) if l > h => Err(format!(
            "low must not exceed high, got low = {l}, high = {h}"
        )),
        _ => Ok(()),
    }
}

/// How a term modifies the layer input `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputMod {
    /// `a`.
    Identity,
    /// `a⁺ = max(a, 0)`.
    Positive,
    /// `a⁻ = min(a, 0)`.
    Negative,
    /// Ones (flat, w-square): the same for every sample.
    Ones,
    /// z-box's lower bound (built-in z-box only: a custom rule has no bounds).
    Low,
    /// z-box's upper bound (built-in z-box only).
    High,
}

/// How a term modifies the layer's weight and bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamMod {
    /// Unchanged.
    Identity,
    /// `p⁺ = max(p, 0)`.
    Positive,
    /// `p⁻ = min(p, 0)`.
    Negative,
    /// `p + γ·p⁺`
    GammaPositive(f32),
    /// `p + γ·p⁻`
    GammaNegative(f32),
    /// `p²`.
    Square,
    /// Ones.
    Ones,
}

/// Which outputs of the unmodified layer a group explains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputMask {
    /// Every output.
    All,
    /// Outputs with `z > 0`.
    Positive,
    /// Outputs with `z < 0`.
    Negative,
}

/// One modified forward pass of the layer: `sign · ρ(layer)(input)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    /// The input modifier.
    pub input: InputMod,
    /// The parameter modifier.
    pub params: ParamMod,
    /// Whether the (modified) bias takes part.
    pub bias: bool,
    /// Sign of this term in the group's sum.
    pub sign: f32,
}

impl Term {
    /// A term with the bias, sign +1.
    pub fn new(input: InputMod, params: ParamMod) -> Self {
        Self {
            input,
            params,
            bias: true,
            sign: 1.0,
        }
    }

    /// The same term without the bias.
    #[must_use]
    pub fn without_bias(self) -> Self {
        Self {
            bias: false,
            ..self
        }
    }

    /// The same term, subtracted.
    #[must_use]
    pub fn negated(self) -> Self {
        Self {
            sign: -self.sign,
            ..self
        }
    }

    /// Whether this term is the layer itself on its input (`a`, `W`, with the bias).
    pub(crate) fn is_unmodified(&self) -> bool {
        self.input == InputMod::Identity && self.params == ParamMod::Identity && self.bias
    }
}

/// Terms whose stabilized sum `z` normalizes the upper relevance:
/// the group contributes `scale · Σ_t input_t ⊙ ρ_tᵀ(mask · R / stab(z))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The terms, summed (with their signs) into the group's denominator.
    pub terms: Vec<Term>,
    /// `stab(z)`: Zennit's `z + ε·sign(z)` or LXT's `z + ε`.
    pub stabilizer: Stabilizer,
    /// Which outputs the group explains.
    pub mask: OutputMask,
    /// Weight of this group's relevance (α, −β; 1 otherwise).
    pub scale: f32,
}

impl Group {
    /// A group over every output, scale 1; a bare `f64` stabilizer is Zennit's signed one.
    pub fn new(terms: Vec<Term>, stabilizer: impl Into<Stabilizer>) -> Self {
        Group {
            terms,
            stabilizer: stabilizer.into(),
            mask: OutputMask::All,
            scale: 1.0,
        }
    }

    /// The same group, explaining only the outputs `mask` selects.
    #[must_use]
    pub fn masked(self, mask: OutputMask) -> Self {
        Self { mask, ..self }
    }

    /// The same group, its relevance weighted by `scale`.
    #[must_use]
    pub fn scaled(self, scale: f32) -> Self {
        Self { scale, ..self }
    }
}

impl CustomRule {
    /// Checks the groups: at least one, each with terms, finite stabilizers and scales, no
    /// bound inputs (z-box's bounds belong to the built-in rule).
    fn validate(&self) -> std::result::Result<(), String> {
        if self.groups.is_empty() {
            return Err("a rule needs at least one group".into());
        }
        for (g, group) in self.groups.iter().enumerate() {
            if group.terms.is_empty() {
                return Err(format!("group {g} has no term"));
            }
            let epsilon = group.stabilizer.epsilon();
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                return Err(format!(
                    "group {g}: the stabilizer must be finite and >= 0, got {epsilon}"
                ));
            }
            if !group.scale.is_finite() {
                return Err(format!("group {g}: the scale must be finite"));
            }
            if group
                .terms
                .iter()
                .any(|t| matches!(t.input, InputMod::Low | InputMod::High))
            {
                return Err(format!(
                    "group {g}: bound inputs are for the built-in z-box rule only"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn alpha_beta_must_differ_by_one() {
        assert!(Rule::alpha_beta(2.0, 1.0).is_ok());
        assert!(Rule::alpha_beta(1.0, 0.0).is_ok());
        let err = Rule::alpha_beta(2.0, 0.5).unwrap_err();
        assert!(
            err.to_string().contains("alpha - beta must equal 1"),
            "{err}"
        );
    }

    #[test]
    fn negative_parameters_are_rejected() {
        assert!(matches!(
            Rule::epsilon(-1.0),
            Err(Error::InvalidRule {
                rule: "epsilon",
                ..
            })
        ));
        assert!(matches!(
            Rule::gamma(f64::NAN),
            Err(Error::InvalidRule { rule: "gamma", .. })
        ));
        assert!(matches!(
            Rule::z_box(1.0, -1.0),
            Err(Error::InvalidRule { rule: "z-box", .. })
        ));
    }

    /// One of each built-in rule (the tests of the rules and of their text forms share it).
    pub(crate) fn every_built_in_rule() -> Vec<Rule> {
        vec![
            Rule::Zero,
            Rule::Epsilon { epsilon: 0.1 },
            Rule::Gamma { gamma: 0.25 },
            Rule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            },
            Rule::ZPlus,
            Rule::ZBox {
                low: Bound::Scalar(0.0),
                high: Bound::Scalar(1.0),
            },
            Rule::Flat,
            Rule::WSquare,
            Rule::Pass,
            Rule::Norm,
            Rule::LxtEpsilon { epsilon: 0.1 },
            Rule::Gradient,
            Rule::Block,
        ]
    }

    #[test]
    fn every_rule_but_pass_has_terms() {
        let routed = |r: &Rule| matches!(r, Rule::Pass | Rule::Gradient | Rule::Block);
        for rule in every_built_in_rule().into_iter().filter(|r| !routed(r)) {
            let groups = rule.groups().expect("terms");
            assert!(groups.iter().all(|g| !g.terms.is_empty()), "{rule:?}");
        }
        assert!(Rule::Pass.groups().is_none());
    }
}
