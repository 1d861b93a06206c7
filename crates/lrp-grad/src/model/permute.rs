//! A permutation of each sample's axes; relevance moves with the values.
//!
//! Exports permute views of more axes than a graph value holds (Swin's and MaxViT's window
//! partitions, `[8, 7, 8, 7, C]` → `[8, 8, 7, 7, C]`): a permutation may act on a `view` of up
//! to [`MAX_VIEW_RANK`] per-sample axes of its input's values, its output then held as the
//! permuted dims with the leading ones merged down to three.

use burn::module::Module;
use burn::tensor::Tensor;

use super::lrp::{Form, Lrp, Refusal, Route, route};
use super::operator::{Operator, ShapeError};
use super::shape::FeatureShape;
use crate::rules::Rule;

/// The most per-sample axes a view may have.
pub const MAX_VIEW_RANK: usize = 6;

/// A permutation of each sample's axes (an image's `[C, H, W]`: `[1, 2, 0]` gives `[H, W, C]`;
/// a sequence's `[T, D]`: `[1, 0]` gives `[D, T]`), or of a view of them.
///
/// # Shapes
/// - input: a per-sample shape of rank `axes.len()`, or any holding `Π view` values
/// - output: its axes (the view's) in the order `axes`; of a view of more than three axes,
///   the permuted dims with the leading ones merged (`[a, b, c, d]` → `[a·b, c, d]`)
#[derive(Module, Debug, Default)]
pub struct Permute {
    /// Output axis `i` is input axis `axes[i]` (per sample, the batch axis not counted).
    pub axes: Vec<usize>,
    /// The per-sample dims the axes refer to, when not the input's own (empty: the input's).
    pub view: Vec<usize>,
}

impl Permute {
    /// A permutation of the input's own per-sample axes.
    pub fn new(axes: Vec<usize>) -> Self {
        Self {
            axes,
            view: Vec::new(),
        }
    }

    /// A permutation of the axes of `view`, a row-major view of each sample's values.
    pub fn viewed(view: Vec<usize>, axes: Vec<usize>) -> Self {
        Self { axes, view }
    }

    /// The dims the axes refer to.
    fn dims(&self, input: FeatureShape) -> Vec<usize> {
        match self.view.is_empty() {
            true => input.dims(),
            false => self.view.clone(),
        }
    }

    /// The output's per-sample shape, or why the permutation does not fit the input.
    pub(crate) fn shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
        let dims = self.dims(input);
        if dims.iter().product::<usize>() != input.numel() || dims.len() > MAX_VIEW_RANK {
            return Err(format!(
                "a view {dims:?} of per-sample shape {input} (it must hold its {} values in at most {MAX_VIEW_RANK} axes)",
                input.numel()
            ));
        }
        let mut sorted = self.axes.clone();
        sorted.sort_unstable();
        if sorted != (0..dims.len()).collect::<Vec<_>>() {
            return Err(format!(
                "axes {:?} are not a permutation of the {} axes of {dims:?}",
                self.axes,
                dims.len()
            ));
        }
        let permuted: Vec<usize> = self.axes.iter().map(|&a| dims[a]).collect();
        FeatureShape::new(&merge_leading(&permuted)).map_err(|e| e.to_string())
    }

    /// `x` (internal layout of per-sample shape `input`) permuted.
    pub(crate) fn apply(&self, x: Tensor<4>, input: FeatureShape) -> Tensor<4> {
        let out = self.shape(input).expect("checked with the shapes");
        permute_dims(x, &self.dims(input), &self.axes, out)
    }

    /// The output's relevance `r` moved back to the input's places (the inverse permutation).
    pub(crate) fn route_back(&self, r: Tensor<4>, input: FeatureShape) -> Tensor<4> {
        let dims = self.dims(input);
        let permuted: Vec<usize> = self.axes.iter().map(|&a| dims[a]).collect();
        let mut inverse = vec![0; self.axes.len()];
        for (i, &p) in self.axes.iter().enumerate() {
            inverse[p] = i;
        }
        permute_dims(r, &permuted, &inverse, input)
    }
}

/// Dims of more than three axes with the leading ones merged into one.
fn merge_leading(dims: &[usize]) -> Vec<usize> {
    match dims.len() {
        0..=3 => dims.to_vec(),
        k => {
            let lead: usize = dims[..k - 2].iter().product();
            vec![lead, dims[k - 2], dims[k - 1]]
        }
    }
}

/// `x`, whose samples hold row-major `dims`, with those axes in the order `axes`, laid out as
/// `out`. (Each shape's internal layout is its row-major order padded with ones.)
fn permute_dims(x: Tensor<4>, dims: &[usize], axes: &[usize], out: FeatureShape) -> Tensor<4> {
    let n = x.dims()[0];
    let mut full = [1; MAX_VIEW_RANK + 1];
    full[0] = n;
    full[1..=dims.len()].copy_from_slice(dims);
    let mut order: [isize; MAX_VIEW_RANK + 1] = std::array::from_fn(|k| k as isize);
    for (i, &a) in axes.iter().enumerate() {
        order[i + 1] = a as isize + 1;
    }
    x.reshape(full).permute(order).reshape(out.batched(n))
}

impl Operator for Permute {
    fn kind(&self) -> &'static str {
        "permute"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(self.shape(inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        self.apply(inputs.remove(0), input)
    }
}

impl Lrp for Permute {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        route(rule, Route::Permute(self))
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// Swin's window partition of a `[4, 6, 2]` map into 2×3 windows: `[2, 2, 2, 3, 2]`
    /// → `[2, 2, 2, 3, 2]` with axes `[0, 2, 1, 3, 4]`, checked value by value, and back.
    #[test]
    fn a_view_of_five_axes_permutes_each_sample_and_routes_back() {
        let device = Device::default();
        let input = FeatureShape::new(&[4, 6, 2]).unwrap();
        let p = Permute::viewed(vec![2, 2, 2, 3, 2], vec![0, 2, 1, 3, 4]);
        let out = p.shape(input).unwrap();
        assert_eq!(out.dims(), vec![8, 3, 2]);
        let n = 2;
        let values: Vec<f32> = (0..n * 48).map(|v| v as f32).collect();
        let x = Tensor::<1>::from_data(TensorData::new(values.clone(), [n * 48]), &device)
            .reshape(input.batched(n));
        let y = p.apply(x, input);
        let got = y.clone().into_data().try_to_vec::<f32>().unwrap();
        // Output [s, i, j, k, l, c] (i, j window rows and columns) reads input
        // [s, i·2 + k, j·3 + l, c] of the [4, 6, 2] map.
        for (o, &v) in got.iter().enumerate() {
            let (s, r) = (o / 48, o % 48);
            let (i, j, k, l, c) = (r / 24, r / 12 % 2, r / 6 % 2, r / 2 % 3, r % 2);
            let at = s * 48 + (i * 2 + k) * 12 + (j * 3 + l) * 2 + c;
            assert_eq!(v, values[at], "output {o}");
        }
        let back = p
            .route_back(y, input)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn a_view_must_hold_the_samples_values() {
        let input = FeatureShape::new(&[4, 6]).unwrap();
        let err = Permute::viewed(vec![2, 2, 5], vec![0, 1, 2])
            .shape(input)
            .unwrap_err();
        assert!(err.contains("must hold its 24 values"), "{err}");
    }
}
