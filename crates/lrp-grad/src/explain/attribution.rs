//! The other attribution methods of [`Method`]: the gradient (× input), SmoothGrad,
//! Integrated Gradients and occlusion, each on LRP or the gradient as its base.

use burn::tensor::Tensor;

use super::prepared::broadcast_bound;
use super::{Explained, Explainer, OutputRelevance, Prepared, Targets, per_sample_sums};
use crate::error::Result;
use crate::methods::{self, Base, Baseline, Method};
use crate::model::FeatureShape;
use crate::rules::Bound;

impl Explainer {
    /// The gradient, or gradient × input: one forward pass in the graph gives the output (for
    /// the targets) and the gradient.
    pub(super) fn gradient(&self, prepared: &Prepared, x: Tensor<4>) -> Result<Explained> {
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
    pub(super) fn base_relevance(
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
    pub(super) fn base_at(
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
    pub(super) fn smooth_grad(
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
    pub(super) fn integrated_gradients(
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
    pub(super) fn score_weights(
        &self,
        output: &Tensor<2>,
        n: usize,
        classes: usize,
    ) -> Result<(Targets, Tensor<2>)> {
        self.initial_relevance(output, n, classes, OutputRelevance::OneHot)
    }

    /// Occlusion: how much the target score drops when each window is filled.
    pub(super) fn occlusion(
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
}
