//! # lrp-grad
//!
//! Layer-wise Relevance Propagation (LRP) for [Burn](https://burn.dev) models, computed with
//! the gradient trick and matching [Zennit](https://github.com/chr5tphr/zennit) rule for rule.
//!
//! ```
//! use burn::nn::{LinearConfig, Relu};
//! use burn::tensor::{Device, Tensor};
//! use lrp_grad::{explain, Sequential};
//!
//! let device = Device::default();
//! let model = Sequential::new()
//!     .push(LinearConfig::new(4, 16).init(&device))
//!     .push(Relu::new())
//!     .push(LinearConfig::new(16, 3).init(&device));
//! let input = Tensor::<2>::random([8, 4], burn::tensor::Distribution::Default, &device);
//! let explanation = explain(&model, input)?;
//! assert_eq!(explanation.relevance.dims(), [8, 4]);
//! # Ok::<(), lrp_grad::Error>(())
//! ```
//!
//! ## The gradient trick
//! For a layer with input `a`, output `z = ρ(W)·a (+ b)` and upper relevance `R`, the constant
//! `s = R / stab(z)` (detached) gives `c = ∂ Σ(z ⊙ s) / ∂a = ρ(W)ᵀ s` for any linear map, dense
//! or convolutional, and `R_prev = a ⊙ c`. Every rule is a choice of `ρ`, input modifiers and
//! stabilizer ([`Rule`]); one engine evaluates them all.
//!
//! ## Architecture
//!
//! ```text
//!  operations              graph               plan                   engine
//!  model/operator.rs  ->   model/graph.rs  ->  composite.rs       ->  engine/step.rs (a Step per
//!  (Operator: kind,        Graph, Node, Op     (a rule per node;       node from its Form),
//!   shapes, forward)       (Op::operator:       the node's Form        engine/mod.rs (rules on a
//!  model/lrp.rs            the one dispatch)    = the plan)            layer), engine/graph.rs
//!  (Lrp: a rule -> Form)   Builder, AsGraph                            (layer-wise walk, one pass)
//!  model/attention.rs,                                                       |
//!  activation.rs, custom.rs (each op's home)                          explain/ (API, targets,
//!        ^                                                              methods) -> Explanation
//!  loaders: interchange/ (JSON + safetensors), onnx/ (onnx-ir; layout.rs: where the batch is),
//!  hf/ (Hugging Face checkpoint directories: config.json + safetensors, built as graphs)
//!  text.rs (names), heatmap.rs, preprocess.rs (images), tokens.rs
//! ```
//!
//! An operation answers everything the rest asks of it in one place: its shape rule and
//! forward pass (`model/operator.rs`), which rules it takes and how relevance crosses
//! it for each (`Lrp::form`). The composite only assigns rules; its public plan and the
//! engine's steps are both read from the operation's answer.
//!
//! ## Concepts
//! - [`Graph`]: a model as named nodes (layers, additions, concatenations, gates, reshapes,
//!   attention operations, a user's [`Operation`]s), a Burn module; [`Sequential`] / [`Layer`]
//!   is the chain case. A user's own `#[derive(Module)]` struct writes its forward pass once
//!   against [`Builder`] and implements [`AsGraph`].
//! - [`Rule`]: a small value describing one LRP rule; [`CustomRule`] builds new ones from the
//!   engine's [`Term`]s and [`Group`]s.
//! - [`Composite`]: which rule each node gets, by name, index, first layer and type (Zennit's
//!   composites included).
//! - [`Graph::canonize`]: merges batch norm into the layer that feeds it (by data flow).
//! - [`explain`] / [`Explainer`]: runs it all and returns an [`Explanation`];
//!   [`Explainer::prepare`] resolves it once for many batches ([`PreparedExplainer`]).

#![warn(missing_docs)]

mod composite;
mod engine;
mod error;
mod explain;
#[cfg(feature = "heatmap")]
pub mod heatmap;
#[cfg(feature = "hf")]
pub mod hf;
#[cfg(feature = "interchange")]
pub mod interchange;
mod methods;
pub mod metrics;
mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "plots")]
pub mod plots;
#[cfg(feature = "images")]
pub mod preprocess;
mod rules;
pub mod text;
pub mod tokens;

pub use composite::{COMPOSITE_NAMES, Composite, LayerType, Propagation};
pub use error::{Error, Result};
pub use explain::{
    Explainer, Explanation, LayerRelevance, OutputRelevance, PreparedExplainer, Strategy, Target,
    explain,
};
pub use methods::{
    Base, Baseline, DEFAULT_NOISE_LEVEL, DEFAULT_OCCLUSION_WINDOW, DEFAULT_SAMPLES, Method,
};
pub use model::{
    Activation, ActivationLayer, Add, AddParam, AsGraph, Builder, CausalMask, Concat, Custom,
    Eager, EagerValue, FeatureShape, Flatten, Gate, Graph, Layer, LayerNorm, Llama3Scaling, MatMul,
    Mean, Mul, Node, NodeId, Normalize, Op, Operation, Pad, Permute, Prepend, Reshape, RmsNorm,
    Rotary, Scale, Sequential, Slice, Softcap, Softmax,
};
pub use rules::{
    Bound, CustomRule, DEFAULT_EPSILON, DEFAULT_GAMMA, DEFAULT_STABILIZER, Group, InputMod,
    LXT_EPSILON, LXT_PRODUCT_EPSILON, OutputMask, PLAIN_EPSILON, ParamMod, Rule, Stabilizer, Term,
    ZERO_RULE_STABILIZER,
};

/// Burn, re-exported so users build models against the same version.
pub use burn;
