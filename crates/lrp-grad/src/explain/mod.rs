//! The attributor: runs the model once, then walks back through the layers with the engine.
//!
//! - this module: the public API ([`Explainer`], [`Explanation`], targets and strategies);
//! - `prepared`: the pipeline on a plan resolved once per model and input shape;
//! - `lrp`: LRP's one pass and layer-wise walk;
//! - `attribution`: the gradient, SmoothGrad, Integrated Gradients and occlusion;
//! - `targets`: which output is explained, and the relevance it starts from.

mod attribution;
mod lrp;
mod prepared;
mod targets;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::composite::Composite;
use crate::error::{Error, Result};
use crate::methods::{Base, Method};
use crate::model::{AsGraph, FeatureShape};
use crate::rules::Rule;

use prepared::Prepared;
pub use prepared::PreparedExplainer;

/// The explained class of each sample (`None` for a custom output relevance).
type Targets = Option<Vec<usize>>;

/// What one attribution method gives, before the relevance takes the input's shape.
struct Explained {
    relevance: Tensor<4>,
    output: Tensor<2>,
    targets: Targets,
    layers: Vec<LayerRelevance>,
    baseline_scores: Option<Vec<f32>>,
}

impl Explained {
    fn new(relevance: Tensor<4>, output: Tensor<2>, targets: Targets) -> Self {
        Self {
            relevance,
            output,
            targets,
            layers: Vec::new(),
            baseline_scores: None,
        }
    }
}

/// Which output the explanation is about.
#[derive(Debug, Clone, Default)]
#[allow(clippy::large_enum_variant)] // one per explainer
pub enum Target {
    /// Each sample's predicted class (the arg-max of its scores).
    #[default]
    Predicted,
    /// The same class for every sample.
    Class(usize),
    /// One class per sample.
    PerSample(Vec<usize>),
    /// A custom relevance for the model output, `[N, classes]`; used as it is.
    Relevance(Tensor<2>),
}

/// How the output relevance of a class target is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputRelevance {
    /// The target's score: `R = f_target(x)` on the target, 0 elsewhere, so the input relevance
    /// sums to (about) `f_target(x)`.
    #[default]
    Logit,
    /// 1 on the target, 0 elsewhere (Zennit's usual call).
    OneHot,
}

/// How LRP is computed. Both strategies give the same relevance (to float round-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// One forward and one backward pass through every layer whose rule allows it (all but
    /// flat, w-square, z-box and non-homogeneous activations), the layer-wise step for the
    /// rest. The default; recording every layer's relevance switches to `LayerWise`.
    #[default]
    Auto,
    /// The gradient trick layer by layer: a plain forward pass, then one modified forward and
    /// backward per layer.
    LayerWise,
}

/// The relevance of one value of the model: its input, a node's output, the model output.
#[derive(Debug, Clone)]
pub struct LayerRelevance {
    /// The value: 0 for the model input, `k + 1` for node `k`'s output (for a chain, the input
    /// of layer `k + 1`); the number of nodes for the model output.
    pub index: usize,
    /// The per-sample shape of the relevance.
    pub shape: FeatureShape,
    /// The relevance in the internal rank-4 layout (see [`LayerRelevance::relevance`]).
    internal: Tensor<4>,
    /// Per-sample sum of the relevance (the conservation check).
    pub sums: Vec<f32>,
}

impl LayerRelevance {
    /// The relevance in the value's own shape `[N, ..shape]`: `D` is the per-sample rank + 1
    /// (`Tensor<2>` for a vector, `<3>` for a sequence, `<4>` for an image); `None` for another
    /// `D`.
    ///
    /// # Shapes
    /// - returns: `[N, F]`, `[N, T, D]` or `[N, C, H, W]`
    pub fn relevance<const D: usize>(&self) -> Option<Tensor<D>> {
        let n = self.internal.dims()[0];
        let dims = self.shape.with_batch(n);
        let dims: [usize; D] = dims.try_into().ok()?;
        Some(self.internal.clone().reshape(dims))
    }
}

/// The result of an explanation.
#[derive(Debug, Clone)]
pub struct Explanation<const D: usize> {
    /// Relevance of each input value, the input's shape.
    pub relevance: Tensor<D>,
    /// The model output, `[N, classes]`.
    pub output: Tensor<2>,
    /// The explained class of each sample (`None` for a custom output relevance).
    pub targets: Option<Vec<usize>>,
    /// Relevance at every layer's input and at the output, when asked for with
    /// [`Explainer::record_layers`]; empty otherwise.
    pub layers: Vec<LayerRelevance>,
    /// Integrated Gradients only: the target score at the baseline, per sample.
    pub baseline_scores: Option<Vec<f32>>,
}

impl<const D: usize> Explanation<D> {
    /// Per-sample sum of the input relevance.
    pub fn relevance_sums(&self) -> Vec<f32> {
        per_sample_sums(self.relevance.clone())
    }

    /// Integrated Gradients only: per sample, `Σ attribution − (f_t(x) − f_t(baseline))`; zero
    /// for the exact integral, shrinking as the number of steps grows.
    pub fn completeness_gap(&self) -> Option<Vec<f32>> {
        let baseline = self.baseline_scores.as_ref()?;
        let targets = self.targets.as_ref()?;
        let output = self
            .output
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .ok()?;
        let classes = output.len() / targets.len();
        Some(
            self.relevance_sums()
                .iter()
                .zip(targets.iter().enumerate())
                .zip(baseline)
                .map(|((sum, (s, t)), b)| sum - (output[s * classes + t] - b))
                .collect(),
        )
    }
}

/// Explains `model` on `input` with the defaults: composite `epsilon-plus-flat`, each sample's
/// predicted class, output relevance = the target's logit.
///
/// `input` is `[N, features]` or `[N, channels, height, width]` on any Burn device.
pub fn explain<const D: usize>(
    model: &(impl AsGraph + ?Sized),
    input: Tensor<D>,
) -> Result<Explanation<D>> {
    Explainer::new().explain(model, input)
}

/// Builder for explanations with other composites, rules or targets.
///
/// ```
/// use burn::nn::{LinearConfig, Relu};
/// use burn::tensor::{Device, Tensor};
/// use lrp_grad::{Composite, Explainer, OutputRelevance, Sequential, Target};
///
/// let device = Device::default();
/// let model = Sequential::new()
///     .push(LinearConfig::new(4, 8).init(&device))
///     .push(Relu::new())
///     .push(LinearConfig::new(8, 3).init(&device));
/// let input = Tensor::<2>::ones([2, 4], &device);
/// let explanation = Explainer::new()
///     .composite(Composite::epsilon_plus())
///     .target(Target::Class(1))
///     .output_relevance(OutputRelevance::OneHot)
///     .explain(&model, input)?;
/// assert_eq!(explanation.relevance.dims(), [2, 4]);
/// # Ok::<(), lrp_grad::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Explainer {
    composite: Composite,
    method: Method,
    target: Target,
    output_relevance: OutputRelevance,
    record_layers: bool,
    strategy: Strategy,
}

impl Default for Explainer {
    fn default() -> Self {
        Self::new()
    }
}

impl Explainer {
    /// The defaults of [`explain`].
    pub fn new() -> Self {
        Self {
            composite: Composite::epsilon_plus_flat(),
            method: Method::Lrp,
            target: Target::Predicted,
            output_relevance: OutputRelevance::Logit,
            record_layers: false,
            strategy: Strategy::Auto,
        }
    }

    /// Use this composite.
    #[must_use]
    pub fn composite(mut self, composite: Composite) -> Self {
        self.composite = composite;
        self
    }

    /// One rule for every dense and conv layer (pooling and activations as in the composites).
    #[must_use]
    pub fn rule(self, rule: Rule) -> Self {
        self.composite(Composite::uniform(rule))
    }

    /// Explain this target.
    #[must_use]
    pub fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Initialise the output relevance this way (for class targets).
    #[must_use]
    pub fn output_relevance(mut self, output_relevance: OutputRelevance) -> Self {
        self.output_relevance = output_relevance;
        self
    }

    /// Keep every layer's relevance and its per-sample sum in the result.
    #[must_use]
    pub fn record_layers(mut self, record: bool) -> Self {
        self.record_layers = record;
        self
    }

    /// How LRP is computed (default: [`Strategy::Auto`]).
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Use this attribution method (default: [`Method::Lrp`]).
    #[must_use]
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Explains `model` (a [`Graph`], a [`Sequential`](crate::Sequential) or a user's model
    /// that implements [`AsGraph`]) on `input` (`[N, features]`, `[N, height, width]` or
    /// `[N, channels, height, width]`).
    ///
    /// The model is not changed: explanations use its inference behaviour (batch norm with
    /// running statistics, merged into the layer before it; dropout off). To explain many
    /// batches, [`Explainer::prepare`] once and explain each batch with the result.
    pub fn explain<const D: usize>(
        &self,
        model: &(impl AsGraph + ?Sized),
        input: Tensor<D>,
    ) -> Result<Explanation<D>> {
        let shape = FeatureShape::from_batched(&input.dims())?;
        self.prepare(model, shape)?.explain(input)
    }

    /// Resolves this explainer against `model` for inputs of the per-sample shape
    /// `input_shape`: canonizes the model, checks every shape, validates the method and plans
    /// the composite (for methods that run LRP), once for every batch to come.
    pub fn prepare(
        &self,
        model: &(impl AsGraph + ?Sized),
        input_shape: FeatureShape,
    ) -> Result<PreparedExplainer> {
        self.method.validate()?;
        let graph = model.as_graph().valid().canonize();
        let shapes = graph.shapes(input_shape)?;
        let classes = graph.num_classes(input_shape)?;
        let uses_lrp = match &self.method {
            Method::Lrp => true,
            Method::SmoothGrad { base, .. } | Method::IntegratedGradients { base, .. } => {
                *base == Base::Lrp
            }
            _ => false,
        };
        let rules = if uses_lrp {
            let rules = self.composite.assign(&graph)?;
            for (index, (node, rule)) in graph.nodes().iter().zip(&rules).enumerate() {
                crate::composite::form(node, index, rule.as_ref())?;
            }
            Some(rules)
        } else {
            None
        };
        Ok(PreparedExplainer {
            explainer: self.clone(),
            graph,
            shape: input_shape,
            shapes,
            classes,
            rules,
        })
    }
}

fn per_sample_sums<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let n = t.dims()[0];
    t.reshape([n as i64, -1])
        .sum_dim(1)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float sums")
}

fn check_finite(x: &Tensor<4>) -> Result<()> {
    let bad = x.clone().is_finite().bool_not();
    if !bad.clone().any().into_scalar::<bool>() {
        return Ok(());
    }
    let flags = bad.into_data().try_to_vec::<bool>().expect("bool data");
    Err(Error::NonFiniteInput {
        count: flags.iter().filter(|b| **b).count(),
        first_index: flags.iter().position(|b| *b).unwrap_or(0),
    })
}
