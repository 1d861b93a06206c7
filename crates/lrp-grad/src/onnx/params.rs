//! ONNX constants (initializers) to Burn modules: the weights of convolutions, dense layers and
//! batch norms.

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Tensor, TensorData};
use onnx_ir::ir::Argument;

/// A float constant as `(dims, values)`; any float or integer type converts to `f32`.
#[derive(Clone)]
pub(super) struct Constant {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

impl Constant {
    /// One number, as `[1]`.
    pub fn scalar(value: f32) -> Self {
        Constant {
            dims: vec![1],
            values: vec![value],
        }
    }

    /// The same values as a vector (a per-channel `[C, 1, 1]` as `[C]`).
    pub fn flat(self) -> Self {
        Constant {
            dims: vec![self.values.len()],
            values: self.values,
        }
    }

    pub fn from_data(data: TensorData) -> Result<Self, String> {
        let dims = data.shape().to_vec();
        let values = data
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| format!("cannot read the constant as float32: {e:?}"))?;
        Ok(Constant { dims, values })
    }

    fn tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), self.dims.clone()),
            device,
        )
    }

    fn expect_dims(&self, what: &str, dims: &[usize]) -> Result<(), String> {
        if self.dims == dims {
            Ok(())
        } else {
            Err(format!(
                "{what} has shape {:?}; expected {dims:?}",
                self.dims
            ))
        }
    }
}

/// The geometry of a convolution, as ONNX gives it (padding resolved per side).
pub(super) struct ConvGeometry {
    pub stride: [usize; 2],
    /// `(top, left, bottom, right)`.
    pub padding: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// A convolution from its ONNX weight `[out, in/groups, kh, kw]` and optional bias `[out]`.
pub(super) fn conv2d(
    weight: &Constant,
    bias: Option<&Constant>,
    geometry: &ConvGeometry,
    device: &Device,
) -> Result<Conv2d, String> {
    let [out, per_group, kh, kw] = weight.dims[..] else {
        return Err(format!(
            "the weight has shape {:?}; expected [out, in/groups, kh, kw]",
            weight.dims
        ));
    };
    if let Some(bias) = bias {
        bias.expect_dims("the bias", &[out])?;
    }
    let [top, left, bottom, right] = geometry.padding;
    let mut conv = Conv2dConfig::new([per_group * geometry.groups, out], [kh, kw])
        .with_stride(geometry.stride)
        .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
        .with_dilation(geometry.dilation)
        .with_groups(geometry.groups)
        .with_bias(bias.is_some())
        .init(device);
    conv.weight = Param::from_tensor(weight.tensor(device));
    conv.bias = bias.map(|b| Param::from_tensor(b.tensor(device)));
    Ok(conv)
}

/// A dense layer from its ONNX weight (`[out, in]` when `transposed`, as `Gemm` with
/// `transB = 1` stores it; `[in, out]` as `MatMul` does) and optional bias `[out]`.
pub(super) fn linear(
    weight: &Constant,
    bias: Option<&Constant>,
    transposed: bool,
    device: &Device,
) -> Result<Linear, String> {
    let [a, b] = weight.dims[..] else {
        return Err(format!(
            "the weight has shape {:?}; expected a matrix",
            weight.dims
        ));
    };
    let (inputs, outputs) = if transposed { (b, a) } else { (a, b) };
    if let Some(bias) = bias {
        bias.expect_dims("the bias", &[outputs])?;
    }
    let mut linear = LinearConfig::new(inputs, outputs)
        .with_bias(bias.is_some())
        .init(device);
    let w: Tensor<2> = weight.tensor(device);
    linear.weight = Param::from_tensor(if transposed { w.transpose() } else { w });
    linear.bias = bias.map(|b| Param::from_tensor(b.tensor(device)));
    Ok(linear)
}

/// A batch norm from ONNX's scale, bias, mean and variance (each `[C]`).
pub(super) fn batch_norm(
    [scale, bias, mean, var]: [&Constant; 4],
    epsilon: f64,
    device: &Device,
) -> Result<BatchNorm, String> {
    let n = batch_norm_channels([scale, bias, mean, var])?;
    let mut bn = BatchNormConfig::new(n).with_epsilon(epsilon).init(device);
    bn.gamma = Param::from_tensor(scale.tensor(device));
    bn.beta = Param::from_tensor(bias.tensor(device));
    bn.running_mean = RunningState::new(mean.tensor(device));
    bn.running_var = RunningState::new(var.tensor(device));
    Ok(bn)
}

/// The channels `C` of a batch norm: its scale's values, which its bias, mean and variance
/// must match as `[C]`.
pub(super) fn batch_norm_channels(
    [scale, bias, mean, var]: [&Constant; 4],
) -> Result<usize, String> {
    let n = scale.values.len();
    for (what, c) in [("bias", bias), ("mean", mean), ("variance", var)] {
        c.expect_dims(what, &[n])?;
    }
    Ok(n)
}

/// A layer norm from its ONNX scale `[D]`, optional bias `[D]` and ε.
pub(super) fn layer_norm(
    gamma: &Constant,
    beta: Option<&Constant>,
    epsilon: f64,
    device: &Device,
) -> Result<crate::model::LayerNorm, String> {
    let [d] = gamma.dims[..] else {
        return Err(format!(
            "the scale has shape {:?}; expected [D]",
            gamma.dims
        ));
    };
    if let Some(beta) = beta {
        beta.expect_dims("the bias", &[d])?;
    }
    let mut norm = crate::model::LayerNorm::new(d, epsilon, device);
    norm.gamma = Param::from_tensor(gamma.tensor(device));
    norm.beta = beta.map(|b| Param::from_tensor(b.tensor(device)));
    Ok(norm)
}

/// A group norm of `groups` groups from its scale `[C]` and bias `[C]` (ONNX's
/// InstanceNormalization: one group per channel).
pub(super) fn group_norm(
    gamma: &Constant,
    beta: &Constant,
    groups: usize,
    epsilon: f64,
    device: &Device,
) -> Result<GroupNorm, String> {
    let [c] = gamma.dims[..] else {
        return Err(format!(
            "the scale has shape {:?}; expected [C]",
            gamma.dims
        ));
    };
    beta.expect_dims("the bias", &[c])?;
    if groups == 0 || c % groups != 0 {
        return Err(format!("{c} channels do not divide into {groups} groups"));
    }
    let mut norm = GroupNormConfig::new(groups, c)
        .with_epsilon(epsilon)
        .init(device);
    norm.gamma = Some(Param::from_tensor(gamma.tensor(device)));
    norm.beta = Some(Param::from_tensor(beta.tensor(device)));
    Ok(norm)
}

/// A constant single number.
pub(super) fn scalar(arg: &Argument) -> Option<f32> {
    let c = Constant::from_data(arg.value()?).ok()?;
    match c.values[..] {
        [v] => Some(v),
        _ => None,
    }
}
