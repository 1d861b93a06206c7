//! The pipeline on a prepared plan: an [`Explainer`] resolved against a model and an input
//! shape once ([`PreparedExplainer`]), and what each batch's passes share ([`Prepared`]).

use burn::tensor::{Tensor, TensorData};

use super::{Explainer, Explanation, check_finite};
use crate::composite::{self, Propagation};
use crate::engine::Bounds;
use crate::engine::graph::{LrpGraph, constant_values};
use crate::engine::step::Step;
use crate::error::{Error, Result};
use crate::methods::Method;
use crate::model::lrp::Form;
use crate::model::{FeatureShape, Graph, Node, to_internal};
use crate::rules::{Bound, Rule};

/// The canonical model and what every pass over it needs, resolved once per explanation.
pub(super) struct Prepared<'a> {
    pub(super) graph: &'a Graph,
    /// Every value's per-sample shape (the input first).
    pub(super) shapes: &'a [FeatureShape],
    pub(super) classes: usize,
    /// The composite's plan and z-box bounds, for methods that run LRP.
    pub(super) lrp: Option<LrpGraph<'a>>,
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
    pub(super) explainer: Explainer,
    pub(super) graph: Graph,
    pub(super) shape: FeatureShape,
    pub(super) shapes: Vec<FeatureShape>,
    pub(super) classes: usize,
    /// The rule each node is assigned (their forms checked), when the method runs LRP.
    pub(super) rules: Option<Vec<Option<Rule>>>,
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
        let rules = self.rules.as_ref()?;
        (self.graph.nodes().iter().zip(rules).enumerate())
            .map(|(index, (node, rule))| {
                let form = composite::form(node, index, rule.as_ref()).ok()?;
                Some((node.name.clone(), form.propagation()))
            })
            .collect()
    }

    /// The steps of this batch: each node's form with the z-box bounds broadcast to it (their
    /// batch dimension is 1 or the batch's).
    pub(super) fn for_batch(&self, x: &Tensor<4>) -> Result<Prepared<'_>> {
        let lrp = match &self.rules {
            Some(rules) => {
                let steps = (self.graph.nodes().iter().zip(rules).enumerate())
                    .map(|(index, (node, rule))| self.step(index, node, rule.as_ref(), x))
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

    /// Node `index`'s step for this batch.
    fn step<'a>(
        &'a self,
        index: usize,
        node: &'a Node,
        rule: Option<&Rule>,
        x: &Tensor<4>,
    ) -> Result<Step<'a>> {
        let form = composite::form(node, index, rule)?;
        let input = self.shapes[node.inputs[0]];
        let bounds = match &form {
            Form::Rule {
                rule: Rule::ZBox { low, high },
                ..
            } => {
                let n = x.dims()[0];
                Some(Bounds {
                    low: broadcast_bound(low, "z-box low", input, n, x)?,
                    high: broadcast_bound(high, "z-box high", input, n, x)?,
                })
            }
            _ => None,
        };
        Step::new(form, bounds, input).ok_or_else(|| Error::RuleLayerMismatch {
            rule: rule.map_or("(none)", Rule::name),
            index,
            kind: node.op.kind(),
            reason: "the rule's terms read z-box bounds it does not have, or a group has no terms"
                .to_string(),
        })
    }
}

impl Prepared<'_> {
    /// `∂ Σ f(x)·R_out / ∂x`.
    pub(super) fn gradient(&self, x: Tensor<4>, r_out: &Tensor<2>) -> Tensor<4> {
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
    pub(super) fn output(&self, x: Tensor<4>) -> Tensor<2> {
        let n = x.dims()[0];
        self.graph
            .forward_internal(x, self.shapes)
            .reshape([n, self.classes])
    }

    /// The layer-wise LRP pass from the output relevance: the relevance of every value.
    pub(super) fn lrp_values(
        &self,
        lrp: &LrpGraph,
        x: Tensor<4>,
        r_out: &Tensor<2>,
    ) -> Vec<Tensor<4>> {
        let values = self.graph.values(x, self.shapes);
        let n = values[0].dims()[0];
        lrp.layer_wise(&values, r_out.clone().reshape([n, self.classes, 1, 1]))
    }
}

/// A z-box bound as a tensor of the layer input's (internal) per-sample shape, with a batch
/// dimension of 1 or of `n` (bounds given per sample).
pub(super) fn broadcast_bound(
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
