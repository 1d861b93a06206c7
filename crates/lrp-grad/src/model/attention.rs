//! The operations of attention models: products of two activations (`Q·Kᵀ`, `softmax·V`),
//! softmax, layer norm, a learned additive tensor (positional embeddings), scaling by a
//! constant, means over an axis (token pooling) and slices (a class token).
//!
//! Each is a graph node ([`super::Op`]); its LRP rule comes from the composite (AttnLRP's by
//! default, see [`crate::Composite::attn_lrp`]). Axes are per-sample, the batch axis not counted.

use super::fused::softmax;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::shape::FeatureShape;

/// The product of two activations over their last two axes, batched over the leading one:
/// `[M, K]·[K, P] = [M, P]` or `[H, M, K]·[H, K, P] = [H, M, P]` (attention scores `Q·Kᵀ`,
/// attention output `softmax·V`).
///
/// # Shapes
/// - inputs: `[M, K]` and `[K, P]`, or `[H, M, K]` and `[H, K, P]` (per sample)
/// - output: `[M, P]` or `[H, M, P]`
#[derive(Module, Debug, Copy, Default)]
pub struct MatMul;

/// The element-wise product of two activations of one shape (a gated MLP's `act(g)·u`).
///
/// # Shapes
/// - inputs: two values of one per-sample shape
/// - output: that shape
#[derive(Module, Debug, Copy, Default)]
pub struct Mul;

/// Softmax along a per-sample axis.
///
/// # Shapes
/// - input: any per-sample shape with the axis
/// - output: the input's shape
#[derive(Module, Debug, Default)]
pub struct Softmax {
    /// The per-sample axis.
    pub axis: usize,
}

/// The mean along a per-sample axis, which disappears (`[T, D]` over axis 0 gives `[D]`:
/// pooling over tokens).
///
/// # Shapes
/// - input: rank 2 or 3 per sample (e.g. `[T, D]`)
/// - output: the input's shape without the axis (e.g. `[D]`)
#[derive(Module, Debug, Default)]
pub struct Mean {
    /// The per-sample axis.
    pub axis: usize,
}

/// Multiplication by a constant (attention's `1/√d`).
///
/// # Shapes
/// - input: any per-sample shape
/// - output: the input's shape
#[derive(Module, Debug, Default)]
pub struct Scale {
    /// The constant.
    pub factor: f64,
}

/// `len` entries from `start` along a per-sample axis (a class token: axis 0, start 0, len 1).
///
/// # Shapes
/// - input: any per-sample shape with the axis, at least `start + len` long
/// - output: the input's shape with `len` along the axis
#[derive(Module, Debug, Default)]
pub struct Slice {
    /// The per-sample axis.
    pub axis: usize,
    /// The first entry kept.
    pub start: usize,
    /// How many entries are kept.
    pub len: usize,
}

/// A learned tensor of the value's own per-sample shape, added to it (positional embeddings).
///
/// # Shapes
/// - input: the tensor's per-sample shape
/// - output: the same
#[derive(Module, Debug)]
pub struct AddParam {
    /// The tensor, in the internal layout of one sample (`FeatureShape::batched(1)`).
    pub value: Param<Tensor<4>>,
}

impl AddParam {
    /// A learned tensor of per-sample shape `shape`, from its values in row-major order.
    ///
    /// # Shapes
    /// - `values`: `shape`'s dims (any rank 1 to 3, the same number of values)
    pub fn new<const D: usize>(values: Tensor<D>, shape: FeatureShape) -> Self {
        Self {
            value: Param::from_tensor(values.reshape(shape.batched(1))),
        }
    }

    /// A tensor of zeros of per-sample shape `shape` (to be trained).
    pub fn zeros(shape: FeatureShape, device: &Device) -> Self {
        Self {
            value: Param::from_tensor(Tensor::zeros(shape.batched(1), device)),
        }
    }
}

/// A learned tensor placed before the value along a per-sample axis (a class token:
/// `[cls; x]` along the tokens); relevance that reaches it is not passed on.
///
/// # Shapes
/// - input: `[.., T, ..]` along the axis
/// - output: `[.., t + T, ..]` with the tensor's `t` entries first
#[derive(Module, Debug)]
pub struct Prepend {
    /// The per-sample axis.
    pub axis: usize,
    /// The tensor, in the internal layout of one sample of its per-sample shape.
    pub value: Param<Tensor<4>>,
    /// Its per-sample dims (the value's, but `axis` may differ).
    pub dims: Vec<usize>,
}

impl Prepend {
    /// `values` of per-sample `shape`, placed before the value along `axis`.
    pub fn new<const D: usize>(values: Tensor<D>, shape: FeatureShape, axis: usize) -> Self {
        Self {
            axis,
            value: Param::from_tensor(values.reshape(shape.batched(1))),
            dims: shape.dims(),
        }
    }

    /// The forward pass on the internal layout; `input` is the value's per-sample shape.
    pub(crate) fn forward_internal(&self, x: Tensor<4>, input: FeatureShape) -> Tensor<4> {
        let n = x.dims()[0];
        let mut dims = self.value.dims();
        dims[0] = n;
        let value = self.value.val().expand(dims);
        Tensor::cat(vec![value, x], input.internal_axis(self.axis))
    }
}

pub(crate) fn prepend_shape(prepend: &Prepend, input: FeatureShape) -> ShapeResult {
    axis_check(prepend.axis, input)?;
    let dims = input.dims();
    let fits = prepend.dims.len() == dims.len()
        && dims
            .iter()
            .zip(&prepend.dims)
            .enumerate()
            .all(|(i, (a, b))| i == prepend.axis || a == b);
    if !fits {
        return Err(format!(
            "the learned tensor {:?} cannot be placed before per-sample shape {input} along axis {}",
            prepend.dims, prepend.axis
        ));
    }
    let mut out = dims;
    out[prepend.axis] += prepend.dims[prepend.axis];
    FeatureShape::new(&out).map_err(|e| e.to_string())
}

/// Layer normalization over the last per-sample axis: `(x − mean)/√(var + ε)·γ + β`.
///
/// lrp-grad's own module (Burn's `LayerNorm` keeps its ε private, and the rules need it): train
/// it like any Burn module.
///
/// # Shapes
/// - input: any per-sample shape whose last axis is `d_model`
/// - output: the input's shape
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale γ, one per feature.
    pub gamma: Param<Tensor<1>>,
    /// Shift β, one per feature.
    pub beta: Option<Param<Tensor<1>>>,
    /// ε under the square root.
    pub epsilon: f64,
}

impl LayerNorm {
    /// γ = 1, β = 0 over `d_model` features.
    pub fn new(d_model: usize, epsilon: f64, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d_model], device)),
            beta: Some(Param::from_tensor(Tensor::zeros([d_model], device))),
            epsilon,
        }
    }

    /// The number of features it normalizes.
    pub fn d_model(&self) -> usize {
        self.gamma.dims()[0]
    }

    /// `(x − mean)` and `√(var + ε)` along the internal `axis`.
    pub(crate) fn centred_and_std(&self, x: Tensor<4>, axis: usize) -> (Tensor<4>, Tensor<4>) {
        let mean = x.clone().mean_dim(axis);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(axis);
        (centred, var.add_scalar(self.epsilon).sqrt())
    }

    /// `normalized·γ + β`, γ and β along the internal `axis`.
    pub(crate) fn affine(&self, normalized: Tensor<4>, axis: usize) -> Tensor<4> {
        let mut dims = [1; 4];
        dims[axis] = self.d_model();
        let out = normalized * self.gamma.val().reshape(dims);
        match &self.beta {
            Some(beta) => out + beta.val().reshape(dims),
            None => out,
        }
    }

    /// The forward pass on the internal layout, normalizing the internal `axis`.
    pub(crate) fn forward_axis(&self, x: Tensor<4>, axis: usize) -> Tensor<4> {
        let (centred, std) = self.centred_and_std(x, axis);
        self.affine(centred / std, axis)
    }
}

/// RMS normalization over the last per-sample axis: `x / √(mean(x²) + ε) · γ` (LLaMA's). Its
/// AttnLRP rule is the identity (LXT's `rms_norm_identity`).
///
/// # Shapes
/// - input: any per-sample shape whose last axis is the norm's width
/// - output: the input's shape
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Scale γ, one per feature.
    pub gamma: Param<Tensor<1>>,
    /// ε under the square root.
    pub epsilon: f64,
}

impl RmsNorm {
    /// γ = 1 over `d_model` features.
    pub fn new(d_model: usize, epsilon: f64, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d_model], device)),
            epsilon,
        }
    }

    /// The number of features it normalizes.
    pub fn d_model(&self) -> usize {
        self.gamma.dims()[0]
    }

    /// The forward pass on the internal layout, normalizing the internal `axis`: `x ⊙ factor`.
    pub(crate) fn forward_axis(&self, x: Tensor<4>, axis: usize) -> Tensor<4> {
        x.clone() * self.factor(x, axis)
    }

    /// `γ / √(mean(x²) + ε)`, what the norm multiplies `x` by: held constant, it is the identity
    /// rule's factor (LXT's `rms_norm_identity`, the `rsqrt` detached).
    fn factor(&self, x: Tensor<4>, axis: usize) -> Tensor<4> {
        let rms = x.square().mean_dim(axis).add_scalar(self.epsilon).sqrt();
        let mut dims = [1; 4];
        dims[axis] = self.d_model();
        self.gamma.val().reshape(dims) / rms
    }
}

pub(crate) fn rms_norm_shape(norm: &RmsNorm, input: FeatureShape) -> ShapeResult {
    last_axis_norm_shape("RMS norm", norm.d_model(), input)
}

/// A norm over the last axis keeps the shape; its width must be that axis's.
fn last_axis_norm_shape(kind: &str, d_model: usize, input: FeatureShape) -> ShapeResult {
    if input.last() != d_model {
        return Err(format!(
            "{kind} over {d_model} features does not fit per-sample shape {input}"
        ));
    }
    Ok(input)
}

/// `A·B` on the internal layout (`[N, 1, M, K]·[N, 1, K, P]` or `[N, H, M, K]·[N, H, K, P]`).
pub(crate) fn matmul(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    a.matmul(b)
}

/// The forward passes of the one-input attention operations on the internal layout.
pub(crate) fn softmax_internal(x: Tensor<4>, axis: usize, input: FeatureShape) -> Tensor<4> {
    softmax(x, input.internal_axis(axis))
}

pub(crate) fn mean_internal(x: Tensor<4>, axis: usize, input: FeatureShape) -> Tensor<4> {
    let n = x.dims()[0];
    let out = mean_shape(axis, input).expect("checked with the shapes");
    x.mean_dim(input.internal_axis(axis))
        .reshape(out.batched(n))
}

pub(crate) fn slice_internal(x: Tensor<4>, slice: &Slice, input: FeatureShape) -> Tensor<4> {
    x.narrow(input.internal_axis(slice.axis), slice.start, slice.len)
}

/// The internal axis a layer norm normalizes: the last per-sample axis.
pub(crate) fn last_axis(input: FeatureShape) -> usize {
    input.internal_axis(input.rank() - 1)
}

type ShapeResult = std::result::Result<FeatureShape, String>;

pub(crate) fn matmul_shape(a: FeatureShape, b: FeatureShape) -> ShapeResult {
    let (da, db) = (a.dims(), b.dims());
    let r = da.len();
    let fits = r >= 2 && db.len() == r && da[..r - 2] == db[..r - 2] && da[r - 1] == db[r - 2];
    if !fits {
        return Err(format!(
            "a product A·B needs [M, K]·[K, P] or [H, M, K]·[H, K, P], got {a} and {b}"
        ));
    }
    let mut out = da.clone();
    out[r - 1] = db[r - 1];
    FeatureShape::new(&out).map_err(|e| e.to_string())
}

pub(crate) fn axis_check(axis: usize, input: FeatureShape) -> std::result::Result<(), String> {
    if axis >= input.rank() {
        return Err(format!(
            "axis {axis} is out of range for per-sample shape {input}"
        ));
    }
    Ok(())
}

pub(crate) fn mean_shape(axis: usize, input: FeatureShape) -> ShapeResult {
    axis_check(axis, input)?;
    let mut dims = input.dims();
    if dims.len() == 1 {
        return Err(format!(
            "the mean of a vector {input} over its only axis leaves no per-sample value"
        ));
    }
    dims.remove(axis);
    FeatureShape::new(&dims).map_err(|e| e.to_string())
}

pub(crate) fn slice_shape(slice: &Slice, input: FeatureShape) -> ShapeResult {
    axis_check(slice.axis, input)?;
    let mut dims = input.dims();
    let end = slice.start.checked_add(slice.len);
    if slice.len == 0 || end.is_none_or(|end| end > dims[slice.axis]) {
        let end = end.map_or("∞".to_string(), |e| e.to_string());
        return Err(format!(
            "entries {}..{end} do not fit axis {} of per-sample shape {input}",
            slice.start, slice.axis
        ));
    }
    dims[slice.axis] = slice.len;
    FeatureShape::new(&dims).map_err(|e| e.to_string())
}

pub(crate) fn layer_norm_shape(norm: &LayerNorm, input: FeatureShape) -> ShapeResult {
    last_axis_norm_shape("layer norm", norm.d_model(), input)
}

pub(crate) fn add_param_shape(add: &AddParam, input: FeatureShape) -> ShapeResult {
    let [_, a, b, c] = add.value.dims();
    if [a, b, c] != input.batched(1)[1..] {
        return Err(format!(
            "the learned tensor (internal dims [{a}, {b}, {c}]) does not have per-sample shape {input}"
        ));
    }
    Ok(input)
}

// What each operation answers the graph (see `super::operator`).

use super::operator::{Arity, LayerType, Operator, ShapeError, TWO};

impl Operator for MatMul {
    fn kind(&self) -> &'static str {
        "matmul"
    }

    fn arity(&self) -> Arity {
        TWO
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(matmul_shape(inputs[0], inputs[1])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        let b = inputs.pop().expect("two inputs");
        matmul(inputs.remove(0), b)
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::MatMul
    }
}

impl Operator for Mul {
    fn kind(&self) -> &'static str {
        "mul"
    }

    fn arity(&self) -> Arity {
        TWO
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        match inputs[1] == inputs[0] {
            true => Ok(inputs[0]),
            false => Err(format!(
                "multiplied values must have one shape, got {} and {}",
                inputs[0], inputs[1]
            )
            .into()),
        }
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        let b = inputs.pop().expect("two inputs");
        inputs.remove(0) * b
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::Mul
    }
}

impl Operator for Softmax {
    fn kind(&self) -> &'static str {
        "softmax"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        axis_check(self.axis, inputs[0])?;
        Ok(inputs[0])
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        softmax_internal(inputs.remove(0), self.axis, input)
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::Softmax
    }
}

impl Operator for LayerNorm {
    fn kind(&self) -> &'static str {
        "layer_norm"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(layer_norm_shape(self, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        self.forward_axis(inputs.remove(0), last_axis(input))
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::LayerNorm
    }
}

impl Operator for RmsNorm {
    fn kind(&self) -> &'static str {
        "rms_norm"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(rms_norm_shape(self, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        self.forward_axis(inputs.remove(0), last_axis(input))
    }
}

impl Operator for AddParam {
    fn kind(&self) -> &'static str {
        "add_param"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(add_param_shape(self, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        inputs.remove(0) + self.value.val()
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::AddParam
    }
}

impl Operator for Scale {
    fn kind(&self) -> &'static str {
        "scale"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(inputs[0])
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        inputs.remove(0).mul_scalar(self.factor)
    }
}

impl Operator for Mean {
    fn kind(&self) -> &'static str {
        "mean"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(mean_shape(self.axis, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        mean_internal(inputs.remove(0), self.axis, input)
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::Mean
    }
}

impl Operator for Slice {
    fn kind(&self) -> &'static str {
        "slice"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(slice_shape(self, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        slice_internal(inputs.remove(0), self, input)
    }
}

impl Operator for Prepend {
    fn kind(&self) -> &'static str {
        "prepend"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(prepend_shape(self, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        self.forward_internal(inputs.remove(0), input)
    }
}

// How relevance crosses each operation (see `super::lrp`): AttnLRP's rules by default.

use super::lrp::{Form, Lrp, Refusal, Route, STABILIZER_ONLY, route, stabilizer_only};
use crate::rules::{LXT_PRODUCT_EPSILON, Rule};

/// A sum-like operation (sum, mean, product): its rule (norm by default), with its stabilizer.
fn stabilized(
    rule: Option<&Rule>,
    default: Rule,
) -> Result<(Rule, crate::rules::Stabilizer), Refusal> {
    let rule = rule.cloned().unwrap_or(default);
    let stabilizer = stabilizer_only(&rule).ok_or(Refusal::Mismatch(STABILIZER_ONLY))?;
    Ok((rule, stabilizer))
}

impl Lrp for MatMul {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let default = Rule::LxtEpsilon {
            epsilon: LXT_PRODUCT_EPSILON,
        };
        let (rule, stabilizer) = stabilized(rule, default)?;
        Ok(Form::Product { rule, stabilizer })
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}

impl Lrp for Mul {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        match rule {
            None => Ok(Form::Uniform),
            // The second factor held constant (CP-LRP's detached gate): all to the first.
            Some(Rule::Block) => Ok(Form::Route(Route::Gate)),
            Some(_) => Err(Refusal::Mismatch(
                "an element-wise product of activations splits relevance uniformly (no rule), or gives it all to its first factor (block: the second, a gate, held constant)",
            )),
        }
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Lrp for Softmax {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        match rule {
            None | Some(Rule::Gradient) => Ok(Form::Softmax { axis: self.axis }),
            Some(Rule::Block) => Ok(Form::Block),
            Some(_) => Err(Refusal::Mismatch(
                "softmax takes gradient (AttnLRP) or block (CP-LRP)",
            )),
        }
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        true
    }
}

impl Lrp for Mean {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let (rule, stabilizer) = stabilized(rule, Rule::Norm)?;
        Ok(Form::Mean {
            axis: self.axis,
            rule,
            stabilizer,
        })
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Lrp for AddParam {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let (rule, stabilizer) = stabilized(rule, Rule::Norm)?;
        Ok(Form::Add {
            rule,
            stabilizer,
            constant: Some(&*self.value),
        })
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}

impl Lrp for Scale {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        route(rule, Route::Scale)
    }

    fn keeps_nonnegative(&self, first: bool, _all: bool) -> bool {
        first && self.factor >= 0.0
    }
}

impl Lrp for Slice {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let slice = Route::Slice {
            axis: self.axis,
            start: self.start,
        };
        route(rule, slice)
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Lrp for Prepend {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let prepend = Route::Prepend {
            axis: self.axis,
            skip: self.dims[self.axis],
        };
        route(rule, prepend)
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}

impl Lrp for LayerNorm {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let rule = match rule {
            None | Some(Rule::Pass) => None,
            Some(rule) => match stabilizer_only(rule) {
                Some(stabilizer) => Some((rule.clone(), stabilizer)),
                None => {
                    return Err(Refusal::Mismatch(
                        "layer norm takes pass (the identity rule) or norm, epsilon, lxt-epsilon, zero (through x − mean, 1/std constant)",
                    ));
                }
            },
        };
        Ok(Form::LayerNorm { norm: self, rule })
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}

impl Lrp for RmsNorm {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        route(rule, Route::Reshape).map(|_| Form::Identity)
    }

    fn identity_factor(&self, x: Tensor<4>, input: FeatureShape) -> Option<Tensor<4>> {
        Some(self.factor(x, last_axis(input)))
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}
