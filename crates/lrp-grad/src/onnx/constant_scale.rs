//! Multiplication by a constant tensor broadcast over the value (ConvNeXt's layer scale
//! `x · γ[C, 1, 1]`), as an [`Operation`]: relevance passes through it unchanged
//! (`x·c · R / (x·c) = R`), which its own forward pass gives as input × gradient.

use burn::tensor::{Tensor, TensorData};

use super::params::Constant;
use crate::model::{FeatureShape, Operation};

/// `x · c`, `c` in the internal layout of one sample (`[1, ..]`), broadcast over the batch.
#[derive(Debug)]
pub(super) struct ConstantScale {
    values: Vec<f32>,
    dims: [usize; 4],
}

impl ConstantScale {
    /// `c` (ONNX's broadcasting: aligned on the last axis, with or without the batch axis) for a
    /// value of per-sample shape `shape`; `invert` divides instead.
    pub fn new(c: &Constant, shape: FeatureShape, invert: bool) -> Result<Self, String> {
        let sample = shape.dims();
        let mut dims = c.dims.clone();
        if dims.len() == sample.len() + 1 && dims[0] == 1 {
            dims.remove(0);
        }
        let fits = dims.len() <= sample.len()
            && dims
                .iter()
                .rev()
                .zip(sample.iter().rev())
                .all(|(d, s)| *d == 1 || d == s);
        if !fits {
            return Err(format!(
                "multiplies by a constant of shape {:?}, which does not broadcast over the per-sample shape {sample:?}",
                c.dims
            ));
        }
        let padded: Vec<usize> = std::iter::repeat_n(1, sample.len() - dims.len())
            .chain(dims)
            .collect();
        let per_sample = FeatureShape::new(&padded).map_err(|e| e.to_string())?;
        let values = match invert {
            true => c.values.iter().map(|v| 1.0 / v).collect(),
            false => c.values.clone(),
        };
        Ok(ConstantScale {
            values,
            dims: per_sample.batched(1),
        })
    }
}

impl Operation for ConstantScale {
    fn kind(&self) -> &'static str {
        "constant_scale"
    }

    fn output_shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
        Ok(input)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = Tensor::from_data(TensorData::new(self.values.clone(), self.dims), &x.device());
        x * c
    }

    fn lrp_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(dims: &[usize]) -> Constant {
        Constant {
            dims: dims.to_vec(),
            values: vec![2.0; dims.iter().product()],
        }
    }

    #[test]
    fn a_constant_broadcasts_over_the_sample_by_onnx_rules() {
        let image = FeatureShape::image(4, 6, 6);
        for dims in [&[4, 1, 1][..], &[1, 4, 1, 1], &[6], &[1, 1, 6]] {
            let scale = ConstantScale::new(&constant(dims), image, false).unwrap();
            assert_eq!(scale.dims[0], 1, "{dims:?}");
        }
        assert_eq!(
            ConstantScale::new(&constant(&[4, 1, 1]), image, true)
                .unwrap()
                .values,
            vec![0.5; 4]
        );
        let sequence = FeatureShape::sequence(3, 8);
        let scale = ConstantScale::new(&constant(&[8]), sequence, false).unwrap();
        assert_eq!(scale.dims, [1, 1, 1, 8]);
    }

    #[test]
    fn a_constant_that_does_not_broadcast_is_an_error_naming_both_shapes() {
        let image = FeatureShape::image(4, 6, 6);
        for dims in [&[5, 1, 1][..], &[2, 4, 1, 1], &[4, 6, 6, 1]] {
            let error = ConstantScale::new(&constant(dims), image, false).unwrap_err();
            assert!(
                error.contains(&format!("{dims:?}")) && error.contains("[4, 6, 6]"),
                "{error}"
            );
        }
    }
}
