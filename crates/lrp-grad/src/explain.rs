//! The attributor: runs the model once, then walks back through the layers with the engine.

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};

use crate::composite::{Composite, Propagation};
use crate::engine::Bounds;
use crate::engine::graph::{LrpGraph, constant_values};
use crate::engine::step::Step;
use crate::error::{Error, Result};
use crate::methods::{self, Base, Baseline, Method};
use crate::model::{AsGraph, FeatureShape, Graph, to_internal};
use crate::rules::{Bound, Rule};

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

/// The canonical model and what every pass over it needs, resolved once per explanation.
struct Prepared<'a> {
    graph: &'a Graph,
    /// Every value's per-sample shape (the input first).
    shapes: &'a [FeatureShape],
    classes: usize,
    /// The composite's plan and z-box bounds, for methods that run LRP.
    lrp: Option<LrpGraph<'a>>,
}

/// An [`Explainer`] resolved against a model and a per-sample input shape, reused across
/// batches: the model canonized (batch norms merged), every shape checked and the composite
/// planned once (see [`Explainer::prepare`]).
///
/// ```
/// use burn::nn::{LinearConfig, Relu};
/// use burn::tensor::{Device, Tensor};
/// use lrp_grad::{Explainer, FeatureShape, Sequential};
///
/// let device = Device::default();
/// let model = Sequential::new()
///     .push(LinearConfig::new(4, 8).init(&device))
///     .push(Relu::new())
///     .push(LinearConfig::new(8, 3).init(&device));
/// let prepared = Explainer::new().prepare(&model, FeatureShape::vector(4))?;
/// for batch in 0..3 {
///     let input = Tensor::<2>::ones([batch + 1, 4], &device);
///     assert_eq!(prepared.explain(input)?.relevance.dims(), [batch + 1, 4]);
/// }
/// for (node, rule) in prepared.plan().unwrap_or_default() {
///     println!("{node}: {rule}");
/// }
/// # Ok::<(), lrp_grad::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PreparedExplainer {
    explainer: Explainer,
    graph: Graph,
    shape: FeatureShape,
    shapes: Vec<FeatureShape>,
    classes: usize,
    plan: Option<Vec<Propagation>>,
}

impl PreparedExplainer {
    /// Explains a batch whose per-sample shape is the prepared one.
    pub fn explain<const D: usize>(&self, input: Tensor<D>) -> Result<Explanation<D>> {
        let input_dims = input.dims();
        let (x, shape) = to_internal(input.without_autodiff())?;
        if shape != self.shape {
            return Err(Error::PreparedShape {
                expected: self.shape.dims(),
                found: shape.dims(),
            });
        }
        check_finite(&x)?;
        let prepared = self.for_batch(&x)?;
        let explainer = &self.explainer;
        let explained = match &explainer.method {
            Method::Lrp => explainer.lrp(&prepared, x),
            Method::Gradient | Method::GradientTimesInput => explainer.gradient(&prepared, x),
            Method::SmoothGrad {
                samples,
                noise,
                seed,
                base,
            } => explainer.smooth_grad(&prepared, x, (*samples, *noise, *seed), *base),
            Method::IntegratedGradients {
                steps,
                baseline,
                base,
            } => explainer.integrated_gradients(&prepared, x, shape, (*steps, baseline), *base),
            Method::Occlusion {
                window,
                stride,
                fill,
            } => explainer.occlusion(&prepared, x, shape, (*window, *stride, *fill)),
        }?;
        Ok(Explanation {
            relevance: explained.relevance.reshape(input_dims),
            output: explained.output,
            targets: explained.targets,
            layers: explained.layers,
            baseline_scores: explained.baseline_scores,
        })
    }

    /// Each node's name and how relevance crosses it, for methods that run LRP.
    pub fn plan(&self) -> Option<Vec<(String, Propagation)>> {
        let plan = self.plan.as_ref()?;
        Some(
            self.graph
                .nodes()
                .iter()
                .map(|n| n.name.clone())
                .zip(plan.iter().cloned())
                .collect(),
        )
    }

    /// The steps of this batch: the plan with the z-box bounds broadcast to it (their batch
    /// dimension is 1 or the batch's).
    fn for_batch(&self, x: &Tensor<4>) -> Result<Prepared<'_>> {
        let n = x.dims()[0];
        let lrp = match &self.plan {
            Some(plan) => {
                let steps = plan
                    .iter()
                    .zip(self.graph.nodes())
                    .enumerate()
                    .map(|(index, (propagation, node))| {
                        let bounds = match propagation {
                            Propagation::Rule(Rule::ZBox { low, high }) => {
                                let shape = self.shapes[node.inputs[0]];
                                Some(Bounds {
                                    low: broadcast_bound(low, "z-box low", shape, n, x)?,
                                    high: broadcast_bound(high, "z-box high", shape, n, x)?,
                                })
                            }
                            _ => None,
                        };
                        let input = self.shapes[node.inputs[0]];
                        Step::resolve(&node.op, propagation, bounds, input).ok_or_else(|| {
                            Error::RuleLayerMismatch {
                                rule: "(plan)",
                                index,
                                kind: node.op.kind(),
                                reason: format!("{propagation} has no meaning for this node"),
                            }
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(LrpGraph {
                    graph: &self.graph,
                    constant: constant_values(&self.graph, &steps),
                    steps,
                    shapes: &self.shapes,
                })
            }
            None => None,
        };
        Ok(Prepared {
            graph: &self.graph,
            shapes: &self.shapes,
            classes: self.classes,
            lrp,
        })
    }
}

impl Prepared<'_> {
    /// `∂ Σ f(x)·R_out / ∂x`.
    fn gradient(&self, x: Tensor<4>, r_out: &Tensor<2>) -> Tensor<4> {
        let [n, ..] = x.dims();
        let leaf = x.autodiff().require_grad();
        let out = self
            .graph
            .forward_internal(leaf.clone(), self.shapes)
            .reshape([n, self.classes]);
        let gradients = (out * r_out.clone()).sum().backward();
        leaf.grad(&gradients)
            .expect("the input takes part in the output")
    }

    /// The model output `[N, classes]` on the internal representation's input.
    fn output(&self, x: Tensor<4>) -> Tensor<2> {
        let n = x.dims()[0];
        self.graph
            .forward_internal(x, self.shapes)
            .reshape([n, self.classes])
    }

    /// The layer-wise LRP pass from the output relevance: the relevance of every value.
    fn lrp_values(&self, lrp: &LrpGraph, x: Tensor<4>, r_out: &Tensor<2>) -> Vec<Tensor<4>> {
        let values = self.graph.values(x, self.shapes);
        let n = values[0].dims()[0];
        lrp.layer_wise(&values, r_out.clone().reshape([n, self.classes, 1, 1]))
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
        let plan = if uses_lrp {
            Some(self.composite.plan(&graph)?)
        } else {
            None
        };
        Ok(PreparedExplainer {
            explainer: self.clone(),
            graph,
            shape: input_shape,
            shapes,
            classes,
            plan,
        })
    }

    /// LRP: the one pass where it applies (the default strategy, when no layer is recorded),
    /// the layer-wise walk otherwise.
    fn lrp(&self, prepared: &Prepared, x: Tensor<4>) -> Result<Explained> {
        let lrp = prepared
            .lrp
            .as_ref()
            .expect("LRP methods resolve the composite");
        let (n, classes) = (x.dims()[0], prepared.classes);
        if self.strategy == Strategy::Auto && !self.record_layers {
            let mut targets = None;
            let seed = |output: &Tensor<4>| -> Result<Option<Tensor<4>>> {
                let output = output.clone().reshape([n, classes]);
                let (found, g) = self.one_pass_seed(&output, n, classes)?;
                targets = found;
                Ok(g.map(|g| g.reshape([n, classes, 1, 1])))
            };
            if let Some((relevance, output)) = lrp.one_pass(x.clone(), seed)? {
                return Ok(Explained::new(
                    relevance,
                    output.reshape([n, classes]),
                    targets,
                ));
            }
        }
        let values = prepared.graph.values(x, prepared.shapes);
        let output = values
            .last()
            .expect("values hold the output")
            .clone()
            .reshape([n, classes]);
        let (targets, r_out) =
            self.initial_relevance(&output, n, classes, self.output_relevance)?;
        let relevances = lrp.layer_wise(&values, r_out.reshape([n, classes, 1, 1]));
        let layers = if self.record_layers {
            relevances
                .iter()
                .enumerate()
                .map(|(index, r)| LayerRelevance {
                    index,
                    shape: lrp.shapes[index],
                    internal: r.clone(),
                    sums: per_sample_sums(r.clone()),
                })
                .collect()
        } else {
            Vec::new()
        };
        let relevance = relevances
            .into_iter()
            .next()
            .expect("the input's relevance");
        Ok(Explained {
            layers,
            ..Explained::new(relevance, output, targets)
        })
    }

    /// The backward seed `g` of the one pass, with `R_out = output ⊙ g`: the one-hot itself
    /// when `R_out` is the logit, otherwise `R_out / output` (`None` where the output is 0 but
    /// `R_out` is not: the one pass does not apply).
    fn one_pass_seed(
        &self,
        output: &Tensor<2>,
        n: usize,
        classes: usize,
    ) -> Result<(Targets, Option<Tensor<2>>)> {
        // One target lookup: the one-hot is the backward seed when R_out is the logit.
        let (targets, one_hot) =
            self.initial_relevance(output, n, classes, OutputRelevance::OneHot)?;
        if targets.is_some() && self.output_relevance == OutputRelevance::Logit {
            return Ok((targets, Some(one_hot)));
        }
        let r_out = one_hot;
        let zero = output.clone().equal_elem(0.0);
        let carries = r_out.clone().not_equal_elem(0.0);
        if zero.clone().bool_and(carries).any().into_scalar::<bool>() {
            return Ok((targets, None));
        }
        let g = (r_out / output.clone().mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0);
        Ok((targets, Some(g)))
    }

    /// The gradient, or gradient × input: one forward pass in the graph gives the output (for
    /// the targets) and the gradient.
    fn gradient(&self, prepared: &Prepared, x: Tensor<4>) -> Result<Explained> {
        let (n, classes) = (x.dims()[0], prepared.classes);
        let leaf = x.clone().autodiff().require_grad();
        let out = prepared
            .graph
            .forward_internal(leaf.clone(), prepared.shapes)
            .reshape([n, classes]);
        let output = out.clone().without_autodiff();
        let (targets, r) = self.initial_relevance(&output, n, classes, OutputRelevance::OneHot)?;
        let g = leaf
            .grad(&(out * r).sum().backward())
            .expect("the input takes part in the output");
        let relevance = match self.method {
            Method::GradientTimesInput => g * x,
            _ => g,
        };
        Ok(Explained::new(relevance, output, targets))
    }

    /// The output, the targets and the output relevance of a method built on `base`: the
    /// target score (one-hot) for gradients, the configured output relevance for LRP.
    fn base_relevance(
        &self,
        prepared: &Prepared,
        x: &Tensor<4>,
        base: Base,
    ) -> Result<(Tensor<2>, Targets, Tensor<2>)> {
        let (n, classes) = (x.dims()[0], prepared.classes);
        let output = prepared.output(x.clone());
        let mode = match base {
            Base::Lrp => self.output_relevance,
            Base::Gradient => OutputRelevance::OneHot,
        };
        let (targets, r) = self.initial_relevance(&output, n, classes, mode)?;
        Ok((output, targets, r))
    }

    /// The base attribution (gradient or layer-wise LRP) at one point.
    fn base_at(
        &self,
        prepared: &Prepared,
        base: Base,
        point: Tensor<4>,
        r: &Tensor<2>,
    ) -> Tensor<4> {
        match base {
            Base::Gradient => prepared.gradient(point, r),
            Base::Lrp => {
                let lrp = prepared
                    .lrp
                    .as_ref()
                    .expect("LRP bases resolve the composite");
                prepared.lrp_values(lrp, point, r).swap_remove(0)
            }
        }
    }

    /// SmoothGrad: the base averaged over noisy copies of the input.
    fn smooth_grad(
        &self,
        prepared: &Prepared,
        x: Tensor<4>,
        (samples, noise, seed): (usize, f64, u64),
        base: Base,
    ) -> Result<Explained> {
        let (samples, noise, seed, base) = (&samples, &noise, &seed, &base);
        let (output, targets, r) = self.base_relevance(prepared, &x, *base)?;
        let sigma = methods::value_range(&x).mul_scalar(*noise);
        let mut sum = x.zeros_like();
        for k in 0..*samples {
            // As Zennit: the last sample is noise-free, so one sample is the base itself.
            let point = if k + 1 == *samples {
                x.clone()
            } else {
                x.clone()
                    + methods::normal_noise(x.dims(), seed.wrapping_add(k as u64), &x)
                        * sigma.clone()
            };
            sum = sum + self.base_at(prepared, *base, point, &r);
        }
        Ok(Explained::new(
            sum.div_scalar(*samples as f64),
            output,
            targets,
        ))
    }

    /// Integrated Gradients: the base averaged along the straight path from the baseline,
    /// times the input's difference to it.
    fn integrated_gradients(
        &self,
        prepared: &Prepared,
        x: Tensor<4>,
        shape: FeatureShape,
        (steps, baseline): (usize, &Baseline),
        base: Base,
    ) -> Result<Explained> {
        let (steps, base) = (&steps, &base);
        let n = x.dims()[0];
        let (output, targets, r) = self.base_relevance(prepared, &x, *base)?;
        let start = match baseline {
            Baseline::Zero => x.zeros_like(),
            Baseline::Tensor(data) => broadcast_bound(
                &Bound::Tensor(data.clone()),
                "integrated-gradients baseline",
                shape,
                n,
                &x,
            )?
            .expand(shape.batched(n)),
        };
        let delta = x.clone() - start.clone();
        let mut sum = x.zeros_like();
        for k in 1..=*steps {
            let alpha = k as f64 / *steps as f64;
            let point = start.clone() + delta.clone().mul_scalar(alpha);
            sum = sum + self.base_at(prepared, *base, point, &r);
        }
        let (_, one_hot) = self.score_weights(&output, n, prepared.classes)?;
        let start_scores = prepared.output(start) * one_hot;
        Ok(Explained {
            baseline_scores: Some(per_sample_sums(start_scores)),
            ..Explained::new(sum.div_scalar(*steps as f64) * delta, output, targets)
        })
    }

    /// The weights of the target score: the one-hot, or the custom output relevance.
    fn score_weights(
        &self,
        output: &Tensor<2>,
        n: usize,
        classes: usize,
    ) -> Result<(Targets, Tensor<2>)> {
        self.initial_relevance(output, n, classes, OutputRelevance::OneHot)
    }

    /// Occlusion: how much the target score drops when each window is filled.
    fn occlusion(
        &self,
        prepared: &Prepared,
        x: Tensor<4>,
        shape: FeatureShape,
        (window, stride, fill): ([usize; 2], [usize; 2], f32),
    ) -> Result<Explained> {
        let (window, stride, fill) = (&window, &stride, &fill);
        let n = x.dims()[0];
        let output = prepared.output(x.clone());
        let (targets, r) = self.score_weights(&output, n, prepared.classes)?;
        let score = |out: Tensor<2>| (out * r.clone()).sum_dim(1).reshape([n as i64, 1, 1, 1]);
        let clean = score(output.clone());
        // Windows slide over height and width (covering all channels); a feature vector is a
        // single row, so windows slide along its features.
        let dims = x.dims();
        let plane = match shape.as_vector() {
            Some(f) => [n, 1, 1, f],
            None => shape.batched(n),
        };
        let xs = x.clone().reshape(plane);
        let [_, c, h, w] = plane;
        let mut result = xs.zeros_like();
        for (top, left, wh, ww) in methods::windows(h, w, *window, *stride) {
            let ranges = [0..n, 0..c, top..top + wh, left..left + ww];
            let patch = Tensor::<4>::full([n, c, wh, ww], *fill, &x.device());
            let occluded = xs.clone().slice_assign(ranges.clone(), patch).reshape(dims);
            let drop = clean.clone() - score(prepared.output(occluded));
            let region = xs
                .zeros_like()
                .slice_assign(ranges, Tensor::<4>::ones([n, c, wh, ww], &x.device()));
            result = result + region * drop;
        }
        Ok(Explained::new(result.reshape(dims), output, targets))
    }

    /// The output relevance `[N, classes]` and the explained classes.
    fn initial_relevance(
        &self,
        output: &Tensor<2>,
        n: usize,
        classes: usize,
        mode: OutputRelevance,
    ) -> Result<(Option<Vec<usize>>, Tensor<2>)> {
        let targets = match &self.target {
            Target::Relevance(relevance) => {
                if relevance.dims() != [n, classes] {
                    return Err(Error::OutputRelevanceShape {
                        expected: vec![n, classes],
                        found: relevance.dims().to_vec(),
                    });
                }
                let relevance = relevance
                    .clone()
                    .without_autodiff()
                    .to_device(&output.device());
                return Ok((None, relevance));
            }
            Target::Predicted => {
                let predicted: Tensor<2, Int> = output.clone().argmax(1);
                predicted
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .expect("argmax gives integers")
                    .into_iter()
                    .map(|c| c as usize)
                    .collect()
            }
            Target::Class(class) => vec![*class; n],
            Target::PerSample(classes) => classes.clone(),
        };
        if targets.len() != n {
            return Err(Error::TargetCountMismatch {
                expected: n,
                found: targets.len(),
            });
        }
        if let Some((sample, &class)) = targets.iter().enumerate().find(|(_, c)| **c >= classes) {
            return Err(Error::TargetOutOfRange {
                sample,
                class,
                classes,
            });
        }
        let mut one_hot = vec![0.0f32; n * classes];
        for (sample, class) in targets.iter().enumerate() {
            one_hot[sample * classes + class] = 1.0;
        }
        let one_hot =
            Tensor::<2>::from_data(TensorData::new(one_hot, [n, classes]), &output.device());
        let relevance = match mode {
            OutputRelevance::OneHot => one_hot,
            OutputRelevance::Logit => one_hot * output.clone(),
        };
        Ok((Some(targets), relevance))
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

/// A z-box bound as a tensor of the layer input's (internal) per-sample shape, with a batch
/// dimension of 1 or of `n` (bounds given per sample).
fn broadcast_bound(
    bound: &Bound,
    which: &'static str,
    shape: FeatureShape,
    n: usize,
    like: &Tensor<4>,
) -> Result<Tensor<4>> {
    let device = like.device();
    let data = match bound {
        Bound::Scalar(value) => return Ok(Tensor::<4>::full(shape.batched(1), *value, &device)),
        Bound::Tensor(data) => data,
    };
    let sample = shape.dims();
    let found = data.shape().to_vec();
    let error = || Error::BoundShape {
        which,
        expected: sample.clone(),
        found: found.clone(),
    };
    // Accept [..sample], [1 | N, ..sample], or a same-rank broadcastable shape like [C, 1, 1].
    let (batch, per_sample): (usize, &[usize]) =
        if found.len() == sample.len() + 1 && (found[0] == 1 || found[0] == n) {
            (found[0], &found[1..])
        } else if found.len() == sample.len() {
            (1, &found[..])
        } else {
            return Err(error());
        };
    if per_sample
        .iter()
        .zip(&sample)
        .any(|(b, s)| *b != *s && *b != 1)
    {
        return Err(error());
    }
    let Ok(per_sample_shape) = FeatureShape::new(per_sample) else {
        return Err(error());
    };
    let values = data
        .clone()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|_| error())?;
    let tensor = Tensor::<4>::from_data(
        TensorData::new(values, per_sample_shape.batched(batch)),
        &device,
    );
    Ok(tensor.expand(shape.batched(batch)))
}
