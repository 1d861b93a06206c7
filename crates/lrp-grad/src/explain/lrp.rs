//! LRP itself: the one pass where the plan allows it, the layer-wise walk otherwise.

use burn::tensor::Tensor;

use super::{
    Explained, Explainer, LayerRelevance, OutputRelevance, Prepared, Strategy, Targets,
    per_sample_sums,
};
use crate::error::Result;

impl Explainer {
    /// LRP: the one pass where it applies (the default strategy, when no layer is recorded),
    /// the layer-wise walk otherwise.
    pub(super) fn lrp(&self, prepared: &Prepared, x: Tensor<4>) -> Result<Explained> {
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
    pub(super) fn one_pass_seed(
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
}
