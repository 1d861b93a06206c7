//! Weights in safetensors, with PyTorch `state_dict` names and layouts.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, DropoutConfig, GroupNorm, GroupNormConfig, Identity, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::LoadError;
use super::spec::{LayerSpec, ModelSpec, Pair};
use crate::model::{Flatten, Layer, Sequential};

/// Reads the tensors of a safetensors file, tracking which keys the model used.
struct Store<'a> {
    file: &'a Path,
    tensors: SafeTensors<'a>,
    used: HashSet<String>,
    device: &'a Device,
}

impl Store<'_> {
    fn take<const D: usize>(
        &mut self,
        key: String,
        shape: [usize; D],
        layer: usize,
    ) -> Result<Tensor<D>, LoadError> {
        let view = self
            .tensors
            .tensor(&key)
            .map_err(|_| LoadError::MissingTensor {
                file: self.file.to_path_buf(),
                key: key.clone(),
                layer,
            })?;
        if view.shape() != shape {
            return Err(LoadError::TensorShape {
                file: self.file.to_path_buf(),
                key,
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let Some(values) = to_f32(view.dtype(), view.data()) else {
            return Err(LoadError::TensorDtype {
                file: self.file.to_path_buf(),
                key,
                found: format!("{:?}", view.dtype()),
            });
        };
        self.used.insert(key);
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            self.device,
        ))
    }

    fn take_param<const D: usize>(
        &mut self,
        key: String,
        shape: [usize; D],
        layer: usize,
    ) -> Result<Param<Tensor<D>>, LoadError> {
        self.take(key, shape, layer).map(Param::from_tensor)
    }
}

/// Little-endian floats of any width as `f32` (F16, BF16 and F64 weights are converted, as
/// PyTorch saves half-precision and double models); `None` for other dtypes.
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    use burn::tensor::{bf16, f16};
    let halves = |f: fn(u16) -> f32| {
        bytes
            .chunks_exact(2)
            .map(|b| f(u16::from_le_bytes([b[0], b[1]])))
            .collect()
    };
    match dtype {
        Dtype::F32 => Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        Dtype::F64 => Some(
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
        ),
        Dtype::F16 => Some(halves(|h| f16::from_bits(h).to_f32())),
        Dtype::BF16 => Some(halves(|h| bf16::from_bits(h).to_f32())),
        _ => None,
    }
}

/// Builds the model described by `spec` with the weights in `file` (or, without a file, with
/// Burn's default initialization: the architecture only). Tensors of the file that no layer
/// uses are an error, or with `allow_unused` returned (sorted).
pub(super) fn load(
    spec: &ModelSpec,
    file: Option<&Path>,
    device: &Device,
    allow_unused: bool,
) -> Result<(Sequential, Vec<String>), LoadError> {
    let bytes = match file {
        Some(file) => std::fs::read(file).map_err(|error| LoadError::io(file, error))?,
        None => Vec::new(),
    };
    let mut store = match file {
        Some(file) => Some(Store {
            file,
            tensors: SafeTensors::deserialize(&bytes).map_err(|e| LoadError::Safetensors {
                file: file.to_path_buf(),
                message: e.to_string(),
            })?,
            used: HashSet::new(),
            device,
        }),
        None => None,
    };
    let mut layers = Vec::with_capacity(spec.layers.len());
    for (index, layer) in spec.layers.iter().enumerate() {
        layers.push(build_layer(layer, index, store.as_mut(), device)?);
    }
    let mut unused: Vec<String> = match &store {
        Some(store) => store
            .tensors
            .names()
            .into_iter()
            .filter(|k| !store.used.contains(*k) && !k.ends_with(".num_batches_tracked"))
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    unused.sort();
    if let (Some(store), Some(extra), false) = (&store, unused.first(), allow_unused) {
        return Err(LoadError::UnexpectedTensor {
            file: store.file.to_path_buf(),
            key: extra.to_string(),
        });
    }
    Ok((Sequential::from_layers(layers), unused))
}

/// `(top, left, bottom, right)` padding from the format's symmetric `[h, w]` pair.
fn explicit(p: Pair) -> PaddingConfig2d {
    PaddingConfig2d::Explicit(p.0[0], p.0[1], p.0[0], p.0[1])
}

/// One layer of the description, with its weights from `store` when there is one.
fn build_layer(
    layer: &LayerSpec,
    index: usize,
    store: Option<&mut Store<'_>>,
    device: &Device,
) -> Result<Layer, LoadError> {
    Ok(match layer {
        LayerSpec::Linear {
            name,
            in_features,
            out_features,
            bias,
        } => {
            let linear = LinearConfig::new(*in_features, *out_features)
                .with_bias(*bias)
                .init(device);
            with_weights(store, linear, |st, m| linear_weights(st, m, name, index))?.into()
        }
        LayerSpec::Conv2d {
            name,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => {
            let conv = Conv2dConfig::new([*in_channels, *out_channels], kernel_size.0)
                .with_stride(stride.0)
                .with_padding(explicit(*padding))
                .with_dilation(dilation.0)
                .with_groups(*groups)
                .with_bias(*bias)
                .init(device);
            with_weights(store, conv, |st, m| conv_weights(st, m, name, index))?.into()
        }
        LayerSpec::BatchNorm1d {
            name,
            num_features,
            eps,
        }
        | LayerSpec::BatchNorm2d {
            name,
            num_features,
            eps,
        } => {
            let bn = BatchNormConfig::new(*num_features)
                .with_epsilon(*eps)
                .init(device);
            with_weights(store, bn, |st, m| batch_norm_weights(st, m, name, index))?.into()
        }
        LayerSpec::GroupNorm { .. } => build_group_norm(layer, index, store, device)?,
        parameter_free => build_parameter_free(parameter_free, index)?,
    })
}

/// `module` with its tensors from the weights file when there is one (`load`), as initialised
/// otherwise (an architecture without weights).
fn with_weights<'s, M>(
    store: Option<&mut Store<'s>>,
    module: M,
    load: impl FnOnce(&mut Store<'s>, M) -> Result<M, LoadError>,
) -> Result<M, LoadError> {
    match store {
        Some(store) => load(store, module),
        None => Ok(module),
    }
}

/// A layer without weights (pooling, activations, reshapes); an error for layers with weights.
fn build_parameter_free(layer: &LayerSpec, index: usize) -> Result<Layer, LoadError> {
    if let Some(activation) = layer.activation() {
        return Ok(activation.into());
    }
    Ok(match layer {
        LayerSpec::MaxPool2d {
            kernel_size,
            stride,
            padding,
            dilation,
        } => MaxPool2dConfig::new(kernel_size.0)
            .with_strides(stride.unwrap_or(*kernel_size).0)
            .with_padding(explicit(*padding))
            .with_dilation(dilation.0)
            .init()
            .into(),
        LayerSpec::AvgPool2d {
            kernel_size,
            stride,
            padding,
        } => AvgPool2dConfig::new(kernel_size.0)
            .with_strides(stride.unwrap_or(*kernel_size).0)
            .with_padding(explicit(*padding))
            .with_count_include_pad(true)
            .init()
            .into(),
        LayerSpec::AdaptiveAvgPool2d { output_size } => {
            AdaptiveAvgPool2dConfig::new(output_size.0).init().into()
        }
        LayerSpec::Identity => Identity::new().into(),
        LayerSpec::Flatten => Flatten.into(),
        LayerSpec::Dropout { p } => DropoutConfig::new(*p).init().into(),
        // Layers with tensors (and activations, built above).
        _ => {
            return Err(LoadError::Unsupported {
                index,
                kind: "layer",
                reason: "a layer with weights reached the parameter-free builder".into(),
            });
        }
    })
}

/// A dense layer's weights: PyTorch stores `[out, in]`, Burn's weight is `[in, out]`.
fn linear_weights(
    store: &mut Store<'_>,
    mut linear: Linear,
    name: &str,
    index: usize,
) -> Result<Linear, LoadError> {
    let [d_in, d_out] = linear.weight.dims();
    let weight: Tensor<2> = store.take(format!("{name}.weight"), [d_out, d_in], index)?;
    linear.weight = Param::from_tensor(weight.transpose());
    if linear.bias.is_some() {
        linear.bias = Some(store.take_param(format!("{name}.bias"), [d_out], index)?);
    }
    Ok(linear)
}

/// A convolution's weights, `[out, in/groups, kh, kw]` as in PyTorch and Burn.
fn conv_weights(
    store: &mut Store<'_>,
    mut conv: Conv2d,
    name: &str,
    index: usize,
) -> Result<Conv2d, LoadError> {
    let shape = conv.weight.dims();
    conv.weight = store.take_param(format!("{name}.weight"), shape, index)?;
    if conv.bias.is_some() {
        conv.bias = Some(store.take_param(format!("{name}.bias"), [shape[0]], index)?);
    }
    Ok(conv)
}

/// A batch norm's scale, shift and running statistics.
fn batch_norm_weights(
    store: &mut Store<'_>,
    mut bn: BatchNorm,
    name: &str,
    index: usize,
) -> Result<BatchNorm, LoadError> {
    let [n] = bn.gamma.dims();
    bn.gamma = store.take_param(format!("{name}.weight"), [n], index)?;
    bn.beta = store.take_param(format!("{name}.bias"), [n], index)?;
    let running = |store: &mut Store<'_>, part: &str| -> Result<_, LoadError> {
        Ok(RunningState::new(store.take(
            format!("{name}.{part}"),
            [n],
            index,
        )?))
    };
    bn.running_mean = running(store, "running_mean")?;
    bn.running_var = running(store, "running_var")?;
    Ok(bn)
}

/// A group norm, with its scale and shift from `store` when it has them.
fn build_group_norm(
    layer: &LayerSpec,
    index: usize,
    store: Option<&mut Store<'_>>,
    device: &Device,
) -> Result<Layer, LoadError> {
    let LayerSpec::GroupNorm {
        name,
        num_groups,
        num_channels,
        eps,
        affine,
    } = layer
    else {
        unreachable!("called for group norms only")
    };
    let norm = GroupNormConfig::new(*num_groups, *num_channels)
        .with_epsilon(*eps)
        .with_affine(*affine)
        .init(device);
    Ok(with_weights(store, norm, |st, m| group_norm_weights(st, m, name, index))?.into())
}

/// A group norm's scale and shift (when it has them).
fn group_norm_weights(
    store: &mut Store<'_>,
    mut norm: GroupNorm,
    name: &str,
    index: usize,
) -> Result<GroupNorm, LoadError> {
    let n = norm.num_channels;
    if norm.affine {
        norm.gamma = Some(store.take_param(format!("{name}.weight"), [n], index)?);
        norm.beta = Some(store.take_param(format!("{name}.bias"), [n], index)?);
    }
    Ok(norm)
}

/// A layer's tensors under PyTorch's names with the prefix `name`.
fn layer_tensors(layer: &Layer, name: &str, put: &mut impl FnMut(String, TensorData)) {
    match layer {
        Layer::Linear(l) => {
            put(
                format!("{name}.weight"),
                l.weight.val().transpose().into_data(),
            );
            if let Some(b) = &l.bias {
                put(format!("{name}.bias"), b.val().into_data());
            }
        }
        Layer::Conv2d(c) => {
            put(format!("{name}.weight"), c.weight.val().into_data());
            if let Some(b) = &c.bias {
                put(format!("{name}.bias"), b.val().into_data());
            }
        }
        Layer::GroupNorm(norm) => {
            if let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) {
                put(format!("{name}.weight"), gamma.val().into_data());
                put(format!("{name}.bias"), beta.val().into_data());
            }
        }
        Layer::BatchNorm(bn) => {
            put(format!("{name}.weight"), bn.gamma.val().into_data());
            put(format!("{name}.bias"), bn.beta.val().into_data());
            let running = (&bn.running_mean, &bn.running_var);
            put(
                format!("{name}.running_mean"),
                running.0.value().into_data(),
            );
            put(format!("{name}.running_var"), running.1.value().into_data());
        }
        _ => {}
    }
}

/// The model's tensors as safetensors bytes, under the names of `spec`.
pub(super) fn serialize(model: &Sequential, spec: &ModelSpec) -> Result<Vec<u8>, LoadError> {
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let mut put = |key: String, t: TensorData| {
        let shape = t.shape().to_vec();
        let values = t
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("float parameters");
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.insert(key, (shape, bytes));
    };
    for (layer, layer_spec) in model.layers.iter().zip(&spec.layers) {
        if let Some(name) = layer_spec.name() {
            layer_tensors(layer, name, &mut put);
        }
    }
    let views = tensors
        .iter()
        .map(|(k, (shape, bytes))| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .expect("consistent view");
            (k.clone(), view)
        })
        .collect::<Vec<_>>();
    safetensors::serialize(views, None).map_err(|e| LoadError::Safetensors {
        file: "(weights being written)".into(),
        message: e.to_string(),
    })
}
