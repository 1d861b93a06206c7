//! Element-wise activation functions, each in one place: its forward pass, what LRP needs to
//! know of it, its name in the interchange format and the ONNX operator it comes from.
//!
//! The model, the shape check, the engine and the loaders ask an [`Activation`]; none of them
//! lists activations. Adding one is a variant here, its arm in each method below (the compiler
//! finds every one that is missing), a field-carrying variant in the interchange format's
//! `LayerSpec` when it has parameters, and its tests.
//!
//! # LRP
//! Every composite gives activations the `pass` rule (Zennit's): the relevance of the output is
//! the relevance of the input. The one pass carries it as input × gradient: a positively
//! homogeneous function (`f(x) = x·f'(x)`: ReLU, leaky ReLU) does so by its own gradient; any
//! other function with `f(0) = 0` as `x ⊙ (f(x)/x)` with the factor held constant; a function
//! with `f(0) ≠ 0` (sigmoid, softplus) is routed by the layer-wise step.

use burn::module::Module;
use burn::nn::activation::{Elu, HardSwish, Mish, Relu6, SiLU, Softplus};
use burn::nn::{Gelu, HardSigmoid, LeakyRelu, Relu, Sigmoid, Tanh};
use burn::tensor::Tensor;
use burn::tensor::activation as f;

use super::Layer;

/// An element-wise activation function and its constants.
///
/// # Shapes
/// - input: any
/// - output: the input's shape
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x ≥ 0`, `slope·x` below.
    LeakyRelu {
        /// The slope below zero (PyTorch's default 0.01).
        negative_slope: f64,
    },
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^(−x))`.
    Sigmoid,
    /// `x·Φ(x)` with the exact normal CDF (`erf`).
    Gelu,
    /// GELU's tanh approximation `x/2·(1 + tanh(√(2/π)(x + 0.044715x³)))` (GPT-2, Gemma).
    GeluTanh,
    /// `min(max(x, 0), 6)` (MobileNet's clipped ReLU).
    Relu6,
    /// `x·sigmoid(x)` (swish; EfficientNet).
    Silu,
    /// `clamp(α·x + β, 0, 1)`.
    HardSigmoid {
        /// The slope α (PyTorch's 1/6).
        alpha: f64,
        /// The offset β (PyTorch's 1/2).
        beta: f64,
    },
    /// `x·relu6(x + 3)/6` (MobileNetV3).
    HardSwish,
    /// `x` for `x > 0`, `α·(eˣ − 1)` below.
    Elu {
        /// α (PyTorch's default 1).
        alpha: f64,
    },
    /// `ln(1 + e^(βx))/β`, and `x` where `βx` exceeds the threshold (as PyTorch).
    Softplus {
        /// β (PyTorch's default 1).
        beta: f64,
        /// Above `βx > threshold` the function is the identity (PyTorch's default 20).
        threshold: f64,
    },
    /// `x·tanh(softplus(x))`.
    Mish,
}

impl Activation {
    /// The name: the `kind` in the interchange format, and in messages and plans.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Relu6 => "relu6",
            Activation::Silu => "silu",
            Activation::HardSigmoid { .. } => "hard_sigmoid",
            Activation::HardSwish => "hard_swish",
            Activation::Elu { .. } => "elu",
            Activation::Softplus { .. } => "softplus",
            Activation::Mish => "mish",
        }
    }

    /// The function, element by element.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match *self {
            Activation::Relu => f::relu(x),
            Activation::LeakyRelu { negative_slope } => f::leaky_relu(x, negative_slope),
            Activation::Tanh => f::tanh(x),
            Activation::Sigmoid => f::sigmoid(x),
            Activation::Gelu => f::gelu(x),
            Activation::GeluTanh => f::gelu_approximate(x),
            Activation::Relu6 => f::relu6(x),
            Activation::Silu => f::silu(x),
            Activation::HardSigmoid { alpha, beta } => f::hard_sigmoid(x, alpha, beta),
            Activation::HardSwish => f::hard_swish(x),
            Activation::Elu { alpha } => f::elu(x, alpha),
            Activation::Softplus { beta, threshold } => {
                f::softplus_with_threshold(x, beta, threshold)
            }
            Activation::Mish => f::mish(x),
        }
    }

    /// Whether `f(0) = 0`, so that `f(x) = x · (f(x)/x)` everywhere (0 where `x = 0`): the one
    /// pass then carries the relevance through as input × a constant factor.
    pub(crate) fn is_zero_at_zero(&self) -> bool {
        match self {
            Activation::Sigmoid | Activation::HardSigmoid { .. } => false,
            // The identity at 0 when the threshold is below it.
            Activation::Softplus { threshold, .. } => *threshold < 0.0,
            Activation::Relu
            | Activation::LeakyRelu { .. }
            | Activation::Tanh
            | Activation::Gelu
            | Activation::GeluTanh
            | Activation::Relu6
            | Activation::Silu
            | Activation::HardSwish
            | Activation::Elu { .. }
            | Activation::Mish => true,
        }
    }

    /// `f(x)/x` where the function is `x` times a factor: the constant factor of the identity
    /// rule's one pass, computed as the forward pass computes it, so that `x ⊙ factor` is the
    /// forward pass bit for bit; 0 where `x = 0` (no relevance there, so none may pass on —
    /// LXT's `f(x)/(x + 1e-10)` is 0 there too). `None`: the engine divides the output by the
    /// input.
    pub(crate) fn identity_factor<const D: usize>(&self, x: Tensor<D>) -> Option<Tensor<D>> {
        let zero = x.clone().equal_elem(0.0);
        let factor = match *self {
            // Burn's `silu` is `x · sigmoid(x)` and `hard_swish` `x · hard_sigmoid(x)`.
            Activation::Silu => Some(f::sigmoid(x)),
            Activation::HardSwish => Some(f::hard_sigmoid(x, 1.0 / 6.0, 0.5)),
            Activation::GeluTanh => {
                // Burn's `gelu_approximate` is `(x · (tanh(inner) + 1)) · 0.5`; halving is exact,
                // so `x · ((tanh(inner) + 1) · 0.5)` rounds the same.
                const SQRT_2_OVER_PI: f64 =
                    core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;
                let inner = x.clone() + x.powf_scalar(3.0) * 0.044715;
                Some(((inner * SQRT_2_OVER_PI).tanh() + 1) * 0.5)
            }
            _ => None,
        };
        factor.map(|f| f.mask_fill(zero, 0.0))
    }

    /// Whether `f(x) = x·f'(x)` (positively homogeneous, piecewise linear through 0): the plain
    /// gradient then carries relevance through unchanged, with no factor to compute.
    pub(crate) fn is_homogeneous(&self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu { .. })
    }

    /// Whether every output is ≥ 0 (a layer after it sees a non-negative input, so its rule's
    /// `a⁻` terms vanish).
    pub(crate) fn is_nonnegative(&self) -> bool {
        match self {
            Activation::Relu
            | Activation::Relu6
            | Activation::Sigmoid
            | Activation::HardSigmoid { .. } => true,
            // Below a negative threshold PyTorch's softplus is the identity, negative there.
            Activation::Softplus { beta, threshold } => *beta > 0.0 && *threshold >= 0.0,
            Activation::LeakyRelu { .. }
            | Activation::Tanh
            | Activation::Gelu
            | Activation::GeluTanh
            | Activation::Silu
            | Activation::HardSwish
            | Activation::Elu { .. }
            | Activation::Mish => false,
        }
    }

    /// The activation an ONNX node computes, if it is one of these (operators that arrive as
    /// patterns — GELU's `erf` form, `x·sigmoid(x)` — are recognised by the loader).
    #[cfg(feature = "onnx")]
    pub(crate) fn from_onnx(node: &onnx_ir::Node) -> Option<Activation> {
        use onnx_ir::Node as N;
        use onnx_ir::node::gelu::GeluApproximate;
        Some(match node {
            N::Relu(_) => Activation::Relu,
            N::LeakyRelu(n) => Activation::LeakyRelu {
                negative_slope: n.config.alpha,
            },
            N::Tanh(_) => Activation::Tanh,
            N::Sigmoid(_) => Activation::Sigmoid,
            N::Gelu(n) => match n.config.approximate {
                GeluApproximate::Exact => Activation::Gelu,
                GeluApproximate::Tanh => Activation::GeluTanh,
            },
            N::HardSigmoid(n) => Activation::HardSigmoid {
                alpha: n.config.alpha,
                beta: n.config.beta,
            },
            N::HardSwish(_) => Activation::HardSwish,
            N::Elu(n) => Activation::Elu {
                alpha: n.config.alpha,
            },
            // ONNX's Softplus is `ln(1 + eˣ)`; PyTorch's threshold of 20 changes it by e⁻²⁰
            // relative there (below float32's resolution) and keeps `exp` finite.
            N::Softplus(_) => Activation::Softplus {
                beta: 1.0,
                threshold: 20.0,
            },
            N::Mish(_) => Activation::Mish,
            _ => return None,
        })
    }
}

/// An [`Activation`] as a layer of a model (a Burn module without parameters).
#[derive(Module, Debug)]
pub struct ActivationLayer {
    /// The function.
    #[module(skip)]
    pub function: Activation,
}

impl From<Activation> for Layer {
    fn from(function: Activation) -> Self {
        Layer::Activation(ActivationLayer { function })
    }
}

/// Burn's activation modules convert into their [`Activation`] (`Layer::from(Relu::new())`).
macro_rules! from_burn {
    ($($ty:ty => |$m:ident| $activation:expr),* $(,)?) => {
        $(impl From<$ty> for Layer {
            fn from($m: $ty) -> Self {
                Layer::from($activation)
            }
        })*
    };
}

from_burn!(
    Relu => |_m| Activation::Relu,
    LeakyRelu => |m| Activation::LeakyRelu { negative_slope: m.negative_slope },
    Tanh => |_m| Activation::Tanh,
    Sigmoid => |_m| Activation::Sigmoid,
    Gelu => |m| if m.approximate { Activation::GeluTanh } else { Activation::Gelu },
    Relu6 => |_m| Activation::Relu6,
    SiLU => |_m| Activation::Silu,
    HardSigmoid => |m| Activation::HardSigmoid { alpha: m.alpha, beta: m.beta },
    HardSwish => |_m| Activation::HardSwish,
    Elu => |m| Activation::Elu { alpha: m.alpha },
    Softplus => |m| Activation::Softplus { beta: m.beta, threshold: m.threshold },
    Mish => |_m| Activation::Mish,
);

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    /// `erf` by its series (|x| ≤ 3 here), for GELU's exact form.
    fn erf(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..60 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// Each function in f64, from its textbook definition.
    fn reference(activation: Activation, x: f64) -> f64 {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let softplus = |x: f64, beta: f64| (1.0 + (beta * x).exp()).ln() / beta;
        match activation {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { negative_slope } => {
                if x >= 0.0 {
                    x
                } else {
                    negative_slope * x
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Gelu => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
            Activation::GeluTanh => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x.powi(3))).tanh())
            }
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Silu => x * sigmoid(x),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * (x.exp() - 1.0)
                }
            }
            Activation::Softplus { beta, threshold } => {
                if beta * x > threshold {
                    x
                } else {
                    softplus(x, beta)
                }
            }
            Activation::Mish => x * softplus(x, 1.0).tanh(),
        }
    }

    const EVERY: [Activation; 14] = [
        Activation::Relu,
        Activation::LeakyRelu {
            negative_slope: 0.1,
        },
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Relu6,
        Activation::Silu,
        Activation::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        Activation::HardSwish,
        Activation::Elu { alpha: 0.7 },
        Activation::Softplus {
            beta: 2.0,
            threshold: 4.0,
        },
        // The identity below a negative threshold: negative outputs.
        Activation::Softplus {
            beta: 1.0,
            threshold: -1.0,
        },
        Activation::Mish,
    ];

    /// The forward pass against the f64 definitions, on both sides of 0 and the kinks.
    #[test]
    fn every_activation_computes_its_definition() {
        let xs: Vec<f32> = (-30..=30).map(|i| i as f32 * 0.1).collect();
        let x = Tensor::<1>::from_floats(xs.as_slice(), &Device::default());
        for activation in EVERY {
            let ys = activation
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (&xi, &yi) in xs.iter().zip(&ys) {
                let expected = reference(activation, xi as f64);
                assert!(
                    (yi as f64 - expected).abs() <= 2e-6 * (1.0 + expected.abs()),
                    "{}({xi}) = {yi}, expected {expected}",
                    activation.name()
                );
            }
        }
    }

    /// Where an activation names its identity factor, input × factor is its forward pass bit
    /// for bit (the one pass's value is then the model's own), and the factor is `f(x)/x`
    /// (0 at 0).
    #[test]
    fn identity_factors_rebuild_the_forward_pass_exactly() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.0173).collect();
        assert!(xs.contains(&0.0));
        let x = Tensor::<1>::from_floats(xs.as_slice(), &Device::default());
        let mut named = 0;
        for activation in EVERY {
            let Some(factor) = activation.identity_factor(x.clone()) else {
                continue;
            };
            named += 1;
            let rebuilt = (x.clone() * factor.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let forward = activation
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(rebuilt, forward, "{}", activation.name());
            let factor = factor.into_data().try_to_vec::<f32>().unwrap();
            for (&xi, &fi) in xs.iter().zip(&factor) {
                let expected = match xi {
                    0.0 => 0.0,
                    _ => reference(activation, xi as f64) / xi as f64,
                };
                assert!(
                    (fi as f64 - expected).abs() < 1e-5,
                    "{}({xi})",
                    activation.name()
                );
            }
        }
        assert_eq!(named, 3, "silu, hard swish, GELU's tanh form");
    }

    /// The properties LRP relies on, checked against the f64 definitions rather than listed.
    #[test]
    fn properties_hold_for_the_definitions() {
        let xs: Vec<f64> = (-60..=60).map(|i| i as f64 * 0.1).collect();
        for activation in EVERY {
            let f = |x| reference(activation, x);
            let name = activation.name();
            assert_eq!(activation.is_zero_at_zero(), f(0.0) == 0.0, "{name}: f(0)");
            assert_eq!(
                activation.is_nonnegative(),
                xs.iter().all(|&x| f(x) >= 0.0),
                "{name}: non-negative"
            );
            // f(x) = x·f'(x), with a central difference away from 0.
            let homogeneous = xs.iter().filter(|x| x.abs() > 0.05).all(|&x| {
                let slope = (f(x + 1e-6) - f(x - 1e-6)) / 2e-6;
                (f(x) - x * slope).abs() < 1e-6
            });
            assert_eq!(
                activation.is_homogeneous(),
                homogeneous,
                "{name}: homogeneous"
            );
        }
    }
}
