//! The attributor: runs the model once, then walks back through the layers with the engine.

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};

use crate::composite::{Composite, Propagation};
use crate::engine::{self, Bounds, RuleLayer};
use crate::error::{Error, Result};
use crate::methods::{self, Base, Baseline, Method};
use crate::model::{FeatureShape, Layer, Sequential, to_internal};
use crate::rules::{Bound, Rule};

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

/// The relevance at the input of one layer (or at the model output).
#[derive(Debug, Clone)]
pub struct LayerRelevance {
    /// The layer whose input this relevance belongs to; the number of layers for the output.
    pub index: usize,
    /// The per-sample shape of the relevance.
    pub shape: FeatureShape,
    /// The relevance in the internal rank-4 form (`[N, F, 1, 1]` for vectors).
    pub relevance: Tensor<4>,
    /// Per-sample sum of the relevance (the conservation check).
    pub sums: Vec<f32>,
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

/// The explained class of each sample (`None` for a custom output relevance).
type Targets = Option<Vec<usize>>;

/// From the model output: the targets, the output relevance `R_out`, and the one-hot seed when
/// `R_out` is the target's logit (`R_out = output ⊙ one_hot`).
type InitialRelevance = (Targets, Tensor<2>, Option<Tensor<2>>);

/// The canonical model and what every pass over it needs.
struct Prepared {
    model: Sequential,

    shapes: Vec<FeatureShape>,
    classes: usize,
    /// The composite's plan and z-box bounds, for methods that run LRP.
    lrp: Option<(Vec<Propagation>, Vec<Option<Bounds>>)>,
}

impl Prepared {
    /// `∂ Σ f(x)·R_out / ∂x`.
    fn gradient(&self, x: Tensor<4>, r_out: &Tensor<2>) -> Tensor<4> {
        let [n, ..] = x.dims();
        let leaf = x.autodiff().require_grad();
        let out = self
            .model
            .forward_internal(leaf.clone())
            .reshape([n, self.classes]);
        let gradients = (out * r_out.clone()).sum().backward();
        leaf.grad(&gradients)
            .expect("the input takes part in the output")
    }

    /// The LRP pass over given activations: input relevance and, if asked, every layer's.
    fn lrp(
        &self,
        acts: &[Tensor<4>],
        r_out: &Tensor<2>,
        record_layers: bool,
    ) -> (Tensor<4>, Vec<LayerRelevance>) {
        let (plan, bounds) = self
            .lrp
            .as_ref()
            .expect("LRP methods resolve the composite");
        let n = acts[0].dims()[0];
        let mut r = r_out.clone().reshape([n, self.classes, 1, 1]);
        let mut layers = Vec::new();
        let mut record = |index: usize, r: &Tensor<4>| {
            if record_layers {
                layers.push(LayerRelevance {
                    index,
                    shape: self.shapes[index],
                    relevance: r.clone(),
                    sums: per_sample_sums(r.clone()),
                });
            }
        };
        record(self.model.len(), &r);
        let nonnegative = nonnegative_inputs(&self.model, &acts[0]);
        for index in (0..self.model.len()).rev() {
            r = self.step(plan, bounds, index, acts, r, &nonnegative);
            record(index, &r);
        }
        layers.reverse();
        (r, layers)
    }

    /// The layer-wise step: relevance of layer `index`'s input from that of its output.
    fn step(
        &self,
        plan: &[Propagation],
        bounds: &[Option<Bounds>],
        index: usize,
        acts: &[Tensor<4>],
        r: Tensor<4>,
        nonnegative: &[bool],
    ) -> Tensor<4> {
        let layer = &self.model.layers[index];
        let a = &acts[index];
        match &plan[index] {
            Propagation::Pass => r.reshape(a.dims()),
            Propagation::WinnerTakesAll => {
                let layer = RuleLayer::new(layer).expect("max pooling is a rule layer");
                engine::route_by_gradient(layer, a, &r)
            }
            Propagation::Rule(rule) => {
                let layer =
                    RuleLayer::new(layer).expect("composites give rules only to rule layers");
                let groups = rule
                    .groups()
                    .expect("Pass is resolved to Propagation::Pass");
                engine::propagate(
                    layer,
                    &groups,
                    a,
                    &acts[index + 1],
                    &r,
                    bounds[index].as_ref(),
                    nonnegative[index],
                )
            }
        }
    }

    /// LRP with the one-pass formulation where it applies: the longest suffix of one-pass-able
    /// layers runs as one forward and one backward pass; the layers before it (e.g. a first
    /// layer with flat or z-box) take the layer-wise step. Returns the input relevance, the
    /// model output and the targets, or `None` when the one pass does not apply (no suffix, or
    /// a zero model output that carries relevance).
    fn lrp_one_pass(
        &self,
        x: Tensor<4>,
        initial: impl Fn(&Tensor<2>) -> Result<InitialRelevance>,
    ) -> Result<Option<(Tensor<4>, Tensor<2>, Targets)>> {
        let (plan, bounds) = self
            .lrp
            .as_ref()
            .expect("LRP methods resolve the composite");
        let layers = &self.model.layers;
        let start = plan
            .iter()
            .zip(layers)
            .rposition(|(p, l)| !engine::one_pass_able(l, p))
            .map_or(0, |k| k + 1);
        if start == layers.len() {
            return Ok(None);
        }
        let n = x.dims()[0];
        let nonnegative = nonnegative_inputs(&self.model, &x);
        let mut acts = vec![x];
        for layer in &layers[..start] {
            let next = layer.forward(acts.last().expect("non-empty").clone());
            acts.push(next);
        }
        let leaf = acts[start].clone().autodiff().require_grad();
        let y = (start..layers.len())
            .fold(leaf.clone(), |a, i| {
                engine::one_pass_forward(&layers[i], &plan[i], a, nonnegative[i])
            })
            .reshape([n, self.classes]);
        let output = y.clone().without_autodiff();
        let (targets, r_out, one_hot) = initial(&output)?;
        // The backward seed g with R_out = output ⊙ g: the one-hot itself when R_out is the
        // logit, otherwise R_out / output (not defined where the output is 0 but R_out is not).
        let seed = match one_hot {
            Some(one_hot) => one_hot,
            None => {
                let zero = output.clone().equal_elem(0.0);
                let carries = r_out.clone().not_equal_elem(0.0);
                if zero.clone().bool_and(carries).any().into_scalar::<bool>() {
                    return Ok(None);
                }
                (r_out / output.clone().mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0)
            }
        };
        let gradients = (y * seed).sum().backward();
        let g = leaf
            .grad(&gradients)
            .expect("the leaf takes part in the output");
        let mut r = acts[start].clone() * g;
        for index in (0..start).rev() {
            r = self.step(plan, bounds, index, &acts, r, &nonnegative);
        }
        Ok(Some((r, output, targets)))
    }
}

/// Explains `model` on `input` with the defaults: composite `epsilon-plus-flat`, each sample's
/// predicted class, output relevance = the target's logit.
///
/// `input` is `[N, features]` or `[N, channels, height, width]` on any Burn device.
pub fn explain<const D: usize>(model: &Sequential, input: Tensor<D>) -> Result<Explanation<D>> {
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

    /// Explains `model` on `input` (`[N, features]` or `[N, channels, height, width]`).
    ///
    /// The model is not changed: explanations use its inference behaviour (batch norm with
    /// running statistics, merged into the layer before it; dropout off).
    pub fn explain<const D: usize>(
        &self,
        model: &Sequential,
        input: Tensor<D>,
    ) -> Result<Explanation<D>> {
        let input_dims = input.dims();
        let (x, shape) = to_internal(input.without_autodiff())?;
        check_finite(&x)?;
        self.method.validate()?;
        let model = model.valid().canonize()?;
        let shapes = model.shapes(shape)?;
        let classes = model.num_classes(shape)?;
        let n = input_dims[0];
        let uses_lrp = match &self.method {
            Method::Lrp => true,
            Method::SmoothGrad { base, .. } | Method::IntegratedGradients { base, .. } => {
                *base == Base::Lrp
            }
            _ => false,
        };
        let lrp = if uses_lrp {
            let plan = self.composite.plan(&model)?;
            let bounds = plan
                .iter()
                .zip(&shapes)
                .map(|(step, shape)| match step {
                    Propagation::Rule(Rule::ZBox { low, high }) => Ok(Some(Bounds {
                        low: broadcast_bound(low, "z-box low", *shape, n, &x)?,
                        high: broadcast_bound(high, "z-box high", *shape, n, &x)?,
                    })),
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>>>()?;
            Some((plan, bounds))
        } else {
            None
        };
        let prepared = Prepared {
            model,
            shapes,
            classes,
            lrp,
        };

        if matches!(self.method, Method::Lrp)
            && self.strategy == Strategy::Auto
            && !self.record_layers
        {
            let initial = |output: &Tensor<2>| {
                // One target lookup: the one-hot is the backward seed when R_out is the logit.
                let (targets, one_hot) =
                    self.initial_relevance(output, n, classes, OutputRelevance::OneHot)?;
                Ok(match (&targets, self.output_relevance) {
                    (Some(_), OutputRelevance::Logit) => {
                        (targets, one_hot.clone() * output.clone(), Some(one_hot))
                    }
                    _ => (targets, one_hot, None),
                })
            };
            if let Some((relevance, output, targets)) = prepared.lrp_one_pass(x.clone(), initial)? {
                return Ok(Explanation {
                    relevance: relevance.reshape(input_dims),
                    output,
                    targets,
                    layers: Vec::new(),
                    baseline_scores: None,
                });
            }
        }
        if let Method::Gradient | Method::GradientTimesInput = self.method {
            // One forward pass in the graph gives the output (for the targets) and the gradient.
            let leaf = x.clone().autodiff().require_grad();
            let out = prepared
                .model
                .forward_internal(leaf.clone())
                .reshape([n, classes]);
            let output = out.clone().without_autodiff();
            let (targets, r) =
                self.initial_relevance(&output, n, classes, OutputRelevance::OneHot)?;
            let g = leaf
                .grad(&(out * r).sum().backward())
                .expect("the input takes part in the output");
            let relevance = match self.method {
                Method::GradientTimesInput => g * x,
                _ => g,
            };
            return Ok(Explanation {
                relevance: relevance.reshape(input_dims),
                output,
                targets,
                layers: Vec::new(),
                baseline_scores: None,
            });
        }
        let acts = prepared.model.activations(x.clone());
        let output = acts
            .last()
            .expect("activations hold the output")
            .clone()
            .reshape([n, classes]);
        let (targets, r_out) =
            self.initial_relevance(&output, n, classes, self.output_relevance)?;
        // Gradient-based methods differentiate the target score: one-hot, unless custom.
        let gradient_r_out = || -> Result<Tensor<2>> {
            Ok(match &self.target {
                Target::Relevance(_) => r_out.clone(),
                _ => {
                    self.initial_relevance(&output, n, classes, OutputRelevance::OneHot)?
                        .1
                }
            })
        };
        let base = |base: Base, point: Tensor<4>, r: &Tensor<2>| match base {
            Base::Gradient => prepared.gradient(point, r),
            Base::Lrp => {
                let acts = prepared.model.activations(point);
                prepared.lrp(&acts, r, false).0
            }
        };
        let base_r_out = |b: Base| -> Result<Tensor<2>> {
            match b {
                Base::Gradient => gradient_r_out(),
                Base::Lrp => Ok(r_out.clone()),
            }
        };

        let mut layers = Vec::new();
        let mut baseline_scores = None;
        let relevance = match &self.method {
            Method::Lrp => {
                let (r, recorded) = prepared.lrp(&acts, &r_out, self.record_layers);
                layers = recorded;
                r
            }
            Method::Gradient | Method::GradientTimesInput => {
                unreachable!("answered above with one forward pass")
            }
            Method::SmoothGrad {
                samples,
                noise,
                seed,
                base: b,
            } => {
                let r = base_r_out(*b)?;
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
                    sum = sum + base(*b, point, &r);
                }
                sum.div_scalar(*samples as f64)
            }
            Method::IntegratedGradients {
                steps,
                baseline,
                base: b,
            } => {
                let r = base_r_out(*b)?;
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
                    sum = sum + base(*b, start.clone() + delta.clone().mul_scalar(alpha), &r);
                }
                let start_scores = prepared.model.forward_internal(start).reshape([n, classes])
                    * gradient_r_out()?;
                baseline_scores = Some(per_sample_sums(start_scores));
                sum.div_scalar(*steps as f64) * delta
            }
            Method::Occlusion {
                window,
                stride,
                fill,
            } => {
                let r = gradient_r_out()?;
                let score =
                    |out: Tensor<2>| (out * r.clone()).sum_dim(1).reshape([n as i64, 1, 1, 1]);
                let clean = score(output.clone());
                // Windows slide over height and width (covering all channels); a feature vector
                // is a single row, so windows slide along its features.
                let dims = x.dims();
                let plane = match shape {
                    FeatureShape::Vector(f) => [n, 1, 1, f],
                    image => image.batched(n),
                };
                let xs = x.clone().reshape(plane);
                let [_, c, h, w] = plane;
                let mut result = xs.zeros_like();
                for (top, left, wh, ww) in methods::windows(h, w, *window, *stride) {
                    let ranges = [0..n, 0..c, top..top + wh, left..left + ww];
                    let patch = Tensor::<4>::full([n, c, wh, ww], *fill, &x.device());
                    let occluded = xs.clone().slice_assign(ranges.clone(), patch).reshape(dims);
                    let drop = clean.clone()
                        - score(
                            prepared
                                .model
                                .forward_internal(occluded)
                                .reshape([n, classes]),
                        );
                    let region = xs
                        .zeros_like()
                        .slice_assign(ranges, Tensor::<4>::ones([n, c, wh, ww], &x.device()));
                    result = result + region * drop;
                }
                result.reshape(dims)
            }
        };
        Ok(Explanation {
            relevance: relevance.reshape(input_dims),
            output,
            targets,
            layers,
            baseline_scores,
        })
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

/// Which layer inputs are non-negative: the model input if all its values are (one number read
/// back), and every input after a ReLU, carried through pooling and reshaping layers.
fn nonnegative_inputs(model: &Sequential, x: &Tensor<4>) -> Vec<bool> {
    let mut known = vec![x.clone().min().into_scalar::<f32>() >= 0.0];
    for layer in &model.layers {
        let previous = *known.last().expect("non-empty");
        known.push(match layer {
            Layer::Relu(_) => true,
            Layer::MaxPool2d(_)
            | Layer::AvgPool2d(_)
            | Layer::AdaptiveAvgPool2d(_)
            | Layer::Flatten(_)
            | Layer::Dropout(_)
            | Layer::Identity(_) => previous,
            _ => false,
        });
    }
    known
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
    let per_sample_shape = match FeatureShape::from_batched(&[&[batch][..], per_sample].concat()) {
        Ok(s) => s,
        Err(_) => return Err(error()),
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
