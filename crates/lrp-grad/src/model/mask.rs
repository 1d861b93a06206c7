//! The causal (and sliding-window) mask of decoder attention: attention scores of a query at
//! position `i` for keys after `i` (or more than `window` positions before it) are set to the
//! lowest float, so softmax gives them weight 0 — as Hugging Face's eager attention adds its
//! mask of `finfo.min`.
//!
//! The mask is a constant added to the scores: relevance crosses it unchanged (the gradient;
//! masked scores receive none, as their softmax weight is exactly 0).

use burn::module::Module;
use burn::tensor::{Bool, Tensor, TensorData};

use super::lrp::{Form, Lrp, Refusal, Route, route};
use super::operator::{Operator, ShapeError};
use super::shape::FeatureShape;
use crate::rules::Rule;

/// A causal mask on attention scores, optionally limited to a sliding window.
///
/// # Shapes
/// - input: scores `[H, T, T]` (heads, queries, keys) or `[T, T]`
/// - output: the input's shape
#[derive(Module, Debug, Default)]
pub struct CausalMask {
    /// Keys more than `window − 1` positions before the query are masked too (Mistral's and
    /// Gemma's local layers); `None`: every earlier key is seen.
    pub window: Option<usize>,
}

impl CausalMask {
    /// Whether query `i` sees key `j`.
    fn sees(&self, i: usize, j: usize) -> bool {
        j <= i && self.window.is_none_or(|w| i - j < w)
    }

    /// The masked scores on the internal layout `[N, H, T, T]`.
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, t, s] = x.dims();
        let hidden: Vec<bool> = (0..t)
            .flat_map(|i| (0..s).map(move |j| (i, j)))
            .map(|(i, j)| !self.sees(i, j))
            .collect();
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(hidden, [1, 1, t, s]), &x.device());
        x.mask_fill(mask, f32::MIN)
    }
}

fn mask_shape(input: FeatureShape) -> Result<FeatureShape, String> {
    let dims = input.dims();
    match dims[..] {
        [.., t, s] if t == s && dims.len() >= 2 => Ok(input),
        _ => Err(format!(
            "a causal mask takes scores [H, T, T] or [T, T] (queries × keys), got {input}"
        )),
    }
}

impl Operator for CausalMask {
    fn kind(&self) -> &'static str {
        "causal_mask"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(mask_shape(inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        self.apply(inputs.remove(0))
    }
}

impl Lrp for CausalMask {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        // A constant summand: relevance unchanged, as for a scaling by a constant.
        route(rule, Route::Scale)
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_sees_itself_and_earlier_keys_within_the_window() {
        let full = CausalMask { window: None };
        assert!(full.sees(3, 0) && full.sees(3, 3) && !full.sees(3, 4));
        let local = CausalMask { window: Some(2) };
        assert!(local.sees(3, 2) && local.sees(3, 3) && !local.sees(3, 1));
    }

    #[test]
    fn scores_that_are_not_square_are_refused() {
        let err = mask_shape(FeatureShape::image(2, 3, 4)).unwrap_err();
        assert!(err.contains("[H, T, T]"), "{err}");
    }
}
