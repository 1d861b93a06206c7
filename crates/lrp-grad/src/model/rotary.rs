//! Rotary position embeddings (RoPE), as LLaMA, Mistral, Qwen and Gemma apply them to queries
//! and keys: `x·cos + rotate_half(x)·sin`, with angles `t · θ^(−2i/d)` for position `t` and
//! pair `i`, `rotate_half([x₁, x₂]) = [−x₂, x₁]` (the halves of the head axis).
//!
//! A rotation is a linear map of `x` without a bias, so relevance crosses it by the plain
//! gradient — LRP-0 of that map (`R_x = x ⊙ Jᵀ(R / z)`), which conserves relevance; LXT's
//! efficient rules leave rotary embeddings to the gradient as well.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use super::lrp::{Form, Lrp, Refusal};
use super::operation::Operation;
use super::operator::{Operator, ShapeError};
use super::shape::FeatureShape;
use crate::rules::Rule;

/// Rotary position embeddings of a sequence of heads, positions `0..T`.
///
/// # Shapes
/// - input: `[H, T, d]` (heads, positions, head dims; `d` even) or `[T, d]`
/// - output: the input's shape
#[derive(Module, Debug)]
pub struct Rotary {
    /// The head dims `d` (the last axis).
    pub head_dim: usize,
    /// Each pair's angle per position, `θ^(−2i/d)` (or as a scaling changes it).
    pub inv_freq: Vec<f64>,
}

/// LLaMA 3's rotary scaling (`rope_scaling` with `rope_type: llama3`): low frequencies divided
/// by `factor`, high ones kept, the band between interpolated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    /// The divisor of the low frequencies.
    pub factor: f64,
    /// Wavelengths above `original_context / low_freq_factor` are scaled.
    pub low_freq_factor: f64,
    /// Wavelengths below `original_context / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// The context length the model was trained with before scaling.
    pub original_context: f64,
}

impl Rotary {
    /// Rotary embeddings of `head_dim` dims with base `θ`.
    pub fn new(head_dim: usize, base: f64) -> Self {
        let inv_freq = (0..head_dim / 2)
            .map(|i| 1.0 / base.powf(2.0 * i as f64 / head_dim as f64))
            .collect();
        Self { head_dim, inv_freq }
    }

    /// LLaMA 3's scaled rotary embeddings (as transformers' `_compute_llama3_parameters`).
    pub fn llama3(head_dim: usize, base: f64, s: Llama3Scaling) -> Self {
        let mut rotary = Self::new(head_dim, base);
        let (low_wavelen, high_wavelen) = (
            s.original_context / s.low_freq_factor,
            s.original_context / s.high_freq_factor,
        );
        for f in &mut rotary.inv_freq {
            let wavelen = 2.0 * std::f64::consts::PI / *f;
            *f = if wavelen > low_wavelen {
                *f / s.factor
            } else if wavelen < high_wavelen {
                *f
            } else {
                let smooth = (s.original_context / wavelen - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                (1.0 - smooth) * *f / s.factor + smooth * *f
            };
        }
        rotary
    }

    /// `cos` and `sin` of the angles, `[T, d]` each (each pair's angle on both halves).
    fn tables(&self, tokens: usize) -> (Vec<f32>, Vec<f32>) {
        let d = self.head_dim;
        let half = d / 2;
        let (mut cos, mut sin) = (
            Vec::with_capacity(tokens * d),
            Vec::with_capacity(tokens * d),
        );
        for t in 0..tokens {
            for k in 0..d {
                let angle = t as f64 * self.inv_freq[k % half];
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        (cos, sin)
    }

    /// The rotation on the internal layout `[N, H, T, d]` (a sequence `[N, 1, T, d]`).
    fn rotate(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, t, d] = x.dims();
        let (cos, sin) = self.tables(t);
        let device = x.device();
        let table = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, 1, t, d]), &device);
        let half = d / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * table(cos) + rotated * table(sin)
    }
}

fn rotary_shape(rotary: &Rotary, input: FeatureShape) -> Result<FeatureShape, String> {
    let fits = matches!(input.rank(), 2 | 3)
        && input.last() == rotary.head_dim
        && rotary.head_dim % 2 == 0
        && rotary.head_dim > 0
        && rotary.inv_freq.len() == rotary.head_dim / 2;
    match fits {
        true => Ok(input),
        false => Err(format!(
            "rotary embeddings of {} dims take [H, T, {0}] or [T, {0}] with an even {0}, got {input}",
            rotary.head_dim
        )),
    }
}

impl Operator for Rotary {
    fn kind(&self) -> &'static str {
        "rotary"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(rotary_shape(self, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        self.rotate(inputs.remove(0))
    }
}

/// Its LRP form: the rotation itself, whose input × gradient of `R / z` is LRP-0.
impl Operation for Rotary {
    fn kind(&self) -> &'static str {
        "rotary"
    }

    fn output_shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
        rotary_shape(self, input)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.rotate(x)
    }

    fn lrp_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.rotate(x)
    }
}

impl Lrp for Rotary {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        match rule {
            None | Some(Rule::Pass) => Ok(Form::Custom(self)),
            Some(Rule::Gradient) => Ok(Form::Gradient(self)),
            Some(_) => Err(Refusal::Mismatch(
                "rotary embeddings are a rotation: relevance crosses by the gradient (pass or gradient)",
            )),
        }
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables against the formula in f64: position 3, pair 1 of 8 dims, base 100.
    #[test]
    fn angles_are_position_times_the_pairs_frequency_on_both_halves() {
        let rotary = Rotary::new(8, 100.0);
        let (cos, sin) = rotary.tables(4);
        let angle = 3.0 * 100f64.powf(-2.0 / 8.0);
        for k in [1, 5] {
            assert!((f64::from(cos[3 * 8 + k]) - angle.cos()).abs() < 1e-6);
            assert!((f64::from(sin[3 * 8 + k]) - angle.sin()).abs() < 1e-6);
        }
    }

    #[test]
    fn an_odd_head_axis_is_refused_with_the_shape() {
        let err = rotary_shape(&Rotary::new(5, 1e4), FeatureShape::sequence(4, 5)).unwrap_err();
        assert!(err.contains("even 5"), "{err}");
    }
}
