//! The JSON model description.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::LoadError;
use crate::model::{Activation, FeatureShape, Layer, Sequential};

/// A model description: the per-sample input shape and the layers of an `nn.Sequential`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Per-sample input shape: `[features]`, `[tokens, features]` or `[channels, height, width]`.
    pub input_shape: Vec<usize>,
    /// The layers, in order.
    pub layers: Vec<LayerSpec>,
}

/// A pair of sizes (height, width); JSON takes `3` or `[3, 3]`, as PyTorch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pair(pub [usize; 2]);

impl Serialize for Pair {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a size or a pair of sizes [height, width]")]
        enum Either {
            One(usize),
            Two([usize; 2]),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::One(v) => Pair([v, v]),
            Either::Two(v) => Pair(v),
        })
    }
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn ones() -> Pair {
    Pair([1, 1])
}
fn batch_norm_eps() -> f64 {
    1e-5
}
fn leaky_slope() -> f64 {
    0.01
}
fn dropout_p() -> f64 {
    0.5
}
fn unit() -> f64 {
    1.0
}
fn softplus_threshold() -> f64 {
    20.0
}

/// One layer of the description, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// `nn.Linear`.
    Linear {
        /// Prefix of the layer's tensors.
        name: String,
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether the layer has a bias (default true).
        #[serde(default = "yes")]
        bias: bool,
    },
    /// `nn.Conv2d`.
    Conv2d {
        /// Prefix of the layer's tensors.
        name: String,
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel size.
        kernel_size: Pair,
        /// Stride (default 1).
        #[serde(default = "ones")]
        stride: Pair,
        /// Zero padding on each side (default 0).
        #[serde(default)]
        padding: Pair,
        /// Dilation (default 1).
        #[serde(default = "ones")]
        dilation: Pair,
        /// Groups (default 1).
        #[serde(default = "one")]
        groups: usize,
        /// Whether the layer has a bias (default true).
        #[serde(default = "yes")]
        bias: bool,
    },
    /// `nn.BatchNorm2d`.
    BatchNorm2d {
        /// Prefix of the layer's tensors.
        name: String,
        /// Channels.
        num_features: usize,
        /// ε (default 1e-5).
        #[serde(default = "batch_norm_eps")]
        eps: f64,
    },
    /// `nn.BatchNorm1d`.
    BatchNorm1d {
        /// Prefix of the layer's tensors.
        name: String,
        /// Features.
        num_features: usize,
        /// ε (default 1e-5).
        #[serde(default = "batch_norm_eps")]
        eps: f64,
    },
    /// `nn.GroupNorm` (an instance norm is one group per channel).
    GroupNorm {
        /// Prefix of the layer's tensors (`weight`, `bias` when `affine`).
        name: String,
        /// Groups.
        num_groups: usize,
        /// Channels.
        num_channels: usize,
        /// ε (default 1e-5).
        #[serde(default = "batch_norm_eps")]
        eps: f64,
        /// Whether the layer has a learned scale and shift (default true).
        #[serde(default = "yes")]
        affine: bool,
    },
    /// `nn.MaxPool2d`.
    MaxPool2d {
        /// Window size.
        kernel_size: Pair,
        /// Stride (default: the kernel size).
        #[serde(default)]
        stride: Option<Pair>,
        /// Padding (default 0).
        #[serde(default)]
        padding: Pair,
        /// Dilation (default 1).
        #[serde(default = "ones")]
        dilation: Pair,
    },
    /// `nn.AvgPool2d` (padding counted in the average, as PyTorch's default).
    AvgPool2d {
        /// Window size.
        kernel_size: Pair,
        /// Stride (default: the kernel size).
        #[serde(default)]
        stride: Option<Pair>,
        /// Padding (default 0).
        #[serde(default)]
        padding: Pair,
    },
    /// `nn.AdaptiveAvgPool2d`.
    AdaptiveAvgPool2d {
        /// Output size.
        output_size: Pair,
    },
    /// `nn.ReLU`.
    Relu,
    /// `nn.LeakyReLU`.
    LeakyRelu {
        /// Slope for negative inputs (default 0.01).
        #[serde(default = "leaky_slope")]
        negative_slope: f64,
    },
    /// `nn.Tanh`.
    Tanh,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.GELU` (exact).
    Gelu,
    /// `nn.GELU(approximate="tanh")`.
    GeluTanh,
    /// `nn.ReLU6`.
    Relu6,
    /// `nn.SiLU`.
    Silu,
    /// `nn.Hardsigmoid` (`clamp(x/6 + 1/2, 0, 1)`).
    HardSigmoid,
    /// `nn.Hardswish`.
    HardSwish,
    /// `nn.ELU`.
    Elu {
        /// α (default 1).
        #[serde(default = "unit")]
        alpha: f64,
    },
    /// `nn.Softplus`.
    Softplus {
        /// β (default 1).
        #[serde(default = "unit")]
        beta: f64,
        /// The identity above `βx > threshold` (default 20).
        #[serde(default = "softplus_threshold")]
        threshold: f64,
    },
    /// `nn.Mish`.
    Mish,
    /// `nn.Identity`.
    Identity,
    /// `nn.Flatten`.
    Flatten,
    /// `nn.Dropout` (the identity at inference).
    Dropout {
        /// Drop probability (default 0.5).
        #[serde(default = "dropout_p")]
        p: f64,
    },
}

impl LayerSpec {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::BatchNorm2d { .. } => "batch_norm2d",
            LayerSpec::BatchNorm1d { .. } => "batch_norm1d",
            LayerSpec::GroupNorm { .. } => "group_norm",
            LayerSpec::MaxPool2d { .. } => "max_pool2d",
            LayerSpec::AvgPool2d { .. } => "avg_pool2d",
            LayerSpec::AdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
            LayerSpec::Identity => "identity",
            LayerSpec::Flatten => "flatten",
            LayerSpec::Dropout { .. } => "dropout",
            // Every other kind is an activation, named by its `Activation`.
            other => other.activation().map_or("activation", |a| a.name()),
        }
    }

    /// The layer's tensor-name prefix, for layers with tensors.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::Linear { name, .. }
            | LayerSpec::Conv2d { name, .. }
            | LayerSpec::BatchNorm2d { name, .. }
            | LayerSpec::BatchNorm1d { name, .. }
            | LayerSpec::GroupNorm { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The activation function of an activation layer (the one place the format's activation
    /// kinds meet [`Activation`]).
    pub fn activation(&self) -> Option<Activation> {
        Some(match *self {
            LayerSpec::Relu => Activation::Relu,
            LayerSpec::LeakyRelu { negative_slope } => Activation::LeakyRelu { negative_slope },
            LayerSpec::Tanh => Activation::Tanh,
            LayerSpec::Sigmoid => Activation::Sigmoid,
            LayerSpec::Gelu => Activation::Gelu,
            LayerSpec::GeluTanh => Activation::GeluTanh,
            LayerSpec::Relu6 => Activation::Relu6,
            LayerSpec::Silu => Activation::Silu,
            LayerSpec::HardSigmoid => Activation::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
            LayerSpec::HardSwish => Activation::HardSwish,
            LayerSpec::Elu { alpha } => Activation::Elu { alpha },
            LayerSpec::Softplus { beta, threshold } => Activation::Softplus { beta, threshold },
            LayerSpec::Mish => Activation::Mish,
            _ => return None,
        })
    }

    /// An activation as the format writes it, or why PyTorch's module cannot express it.
    fn from_activation(activation: Activation) -> Result<LayerSpec, &'static str> {
        Ok(match activation {
            Activation::Relu => LayerSpec::Relu,
            Activation::LeakyRelu { negative_slope } => LayerSpec::LeakyRelu { negative_slope },
            Activation::Tanh => LayerSpec::Tanh,
            Activation::Sigmoid => LayerSpec::Sigmoid,
            Activation::Gelu => LayerSpec::Gelu,
            Activation::GeluTanh => LayerSpec::GeluTanh,
            Activation::Relu6 => LayerSpec::Relu6,
            Activation::Silu => LayerSpec::Silu,
            Activation::HardSigmoid { alpha, beta }
                if (alpha - 1.0 / 6.0).abs() > 1e-12 || beta != 0.5 =>
            {
                return Err("alpha/beta other than PyTorch's 1/6 and 1/2");
            }
            Activation::HardSigmoid { .. } => LayerSpec::HardSigmoid,
            Activation::HardSwish => LayerSpec::HardSwish,
            Activation::Elu { alpha } => LayerSpec::Elu { alpha },
            Activation::Softplus { beta, threshold } => LayerSpec::Softplus { beta, threshold },
            Activation::Mish => LayerSpec::Mish,
        })
    }
}

impl ModelSpec {
    /// Reads and checks a description; errors name the file and the field.
    pub fn read(file: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(file).map_err(|error| LoadError::io(file, error))?;
        Self::parse(&text, file)
    }

    /// Parses and checks a description given as text (`file` names it in messages).
    pub fn parse(text: &str, file: &Path) -> Result<Self, LoadError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let spec: ModelSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            LoadError::Json {
                file: file.to_path_buf(),
                path: if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            }
        })?;
        spec.check(file)?;
        Ok(spec)
    }

    /// The per-sample input shape.
    pub fn input_feature_shape(&self, file: &Path) -> Result<FeatureShape, LoadError> {
        let positive = !self.input_shape.contains(&0);
        match FeatureShape::new(&self.input_shape) {
            Ok(shape) if positive => Ok(shape),
            _ => Err(LoadError::Invalid {
                file: file.to_path_buf(),
                path: "input_shape".into(),
                message: format!(
                    "expected [features], [tokens, features] or [channels, height, width] with positive sizes, got {:?}",
                    self.input_shape
                ),
            }),
        }
    }

    /// Checks every value's range; shapes across layers are checked once the model is built.
    fn check(&self, file: &Path) -> Result<(), LoadError> {
        self.input_feature_shape(file)?;
        let invalid = |index: usize, field: &str, message: String| LoadError::Invalid {
            file: file.to_path_buf(),
            path: format!("layers[{index}].{field}"),
            message,
        };
        let mut names = std::collections::HashSet::new();
        for (index, layer) in self.layers.iter().enumerate() {
            if let Some(name) = layer.name()
                && !names.insert(name)
            {
                return Err(invalid(
                    index,
                    "name",
                    format!("`{name}` is used by an earlier layer; names must be unique"),
                ));
            }
            layer.check_fields(&|field: &str, message: String| invalid(index, field, message))?;
        }
        Ok(())
    }

    /// The description of a model (names are the layer indices, as in `nn.Sequential`).
    pub fn from_model(model: &Sequential, input_shape: FeatureShape) -> Result<Self, LoadError> {
        let shapes = model
            .shapes(input_shape)
            .map_err(|e| LoadError::Unsupported {
                index: 0,
                kind: "model",
                reason: e.to_string(),
            })?;
        let layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| layer_spec(index, layer, shapes[index]))
            .collect::<Result<Vec<_>, LoadError>>()?;
        Ok(ModelSpec {
            input_shape: input_shape.dims(),
            layers,
        })
    }
}

impl LayerSpec {
    /// Checks this layer's fields: positive sizes here, the rest in `check_values`;
    /// `invalid(field, message)` makes the error.
    fn check_fields(&self, invalid: &dyn Fn(&str, String) -> LoadError) -> Result<(), LoadError> {
        for (field, values) in self.sizes() {
            if values.contains(&0) {
                return Err(invalid(
                    field,
                    format!("expected positive sizes, got {values:?}"),
                ));
            }
        }
        self.check_values(invalid)
    }

    /// The layer's size fields (each must be positive), by name.
    fn sizes(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self {
            LayerSpec::Linear {
                in_features,
                out_features,
                ..
            } => vec![
                ("in_features", vec![*in_features]),
                ("out_features", vec![*out_features]),
            ],
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel_size,
                stride,
                dilation,
                groups,
                ..
            } => vec![
                ("in_channels", vec![*in_channels]),
                ("out_channels", vec![*out_channels]),
                ("kernel_size", kernel_size.0.to_vec()),
                ("stride", stride.0.to_vec()),
                ("dilation", dilation.0.to_vec()),
                ("groups", vec![*groups]),
            ],
            LayerSpec::BatchNorm1d { num_features, .. }
            | LayerSpec::BatchNorm2d { num_features, .. } => {
                vec![("num_features", vec![*num_features])]
            }
            LayerSpec::GroupNorm {
                num_groups,
                num_channels,
                ..
            } => vec![
                ("num_groups", vec![*num_groups]),
                ("num_channels", vec![*num_channels]),
            ],
            pool => pool.pool_sizes(),
        }
    }

    /// A pooling layer's size fields, by name (none for other layers).
    fn pool_sizes(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self {
            LayerSpec::MaxPool2d {
                kernel_size,
                stride,
                dilation,
                ..
            } => vec![
                ("kernel_size", kernel_size.0.to_vec()),
                ("stride", stride.unwrap_or(*kernel_size).0.to_vec()),
                ("dilation", dilation.0.to_vec()),
            ],
            LayerSpec::AvgPool2d {
                kernel_size,
                stride,
                ..
            } => vec![
                ("kernel_size", kernel_size.0.to_vec()),
                ("stride", stride.unwrap_or(*kernel_size).0.to_vec()),
            ],
            LayerSpec::AdaptiveAvgPool2d { output_size } => {
                vec![("output_size", output_size.0.to_vec())]
            }
            _ => Vec::new(),
        }
    }

    /// Checks the fields that are not sizes: groups that divide the channels, a positive eps, a
    /// finite slope, a dropout probability in [0, 1).
    fn check_values(&self, invalid: &dyn Fn(&str, String) -> LoadError) -> Result<(), LoadError> {
        match self {
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                groups,
                ..
            } if in_channels % groups != 0 || out_channels % groups != 0 => Err(invalid(
                "groups",
                format!(
                    "{groups} groups must divide in_channels ({in_channels}) and out_channels ({out_channels})"
                ),
            )),
            LayerSpec::GroupNorm {
                num_groups,
                num_channels,
                ..
            } if num_channels % num_groups != 0 => Err(invalid(
                "num_groups",
                format!("{num_groups} groups must divide num_channels ({num_channels})"),
            )),
            LayerSpec::BatchNorm1d { eps, .. }
            | LayerSpec::BatchNorm2d { eps, .. }
            | LayerSpec::GroupNorm { eps, .. }
                if !(eps.is_finite() && *eps > 0.0) =>
            {
                Err(invalid(
                    "eps",
                    format!("expected a finite eps > 0, got {eps}"),
                ))
            }
            LayerSpec::LeakyRelu { negative_slope } if !negative_slope.is_finite() => Err(invalid(
                "negative_slope",
                format!("expected a finite number, got {negative_slope}"),
            )),
            LayerSpec::Elu { alpha } if !alpha.is_finite() => Err(invalid(
                "alpha",
                format!("expected a finite number, got {alpha}"),
            )),
            LayerSpec::Softplus { beta, .. } if !(beta.is_finite() && *beta > 0.0) => Err(invalid(
                "beta",
                format!("expected a finite beta > 0, got {beta}"),
            )),
            LayerSpec::Softplus { threshold, .. } if threshold.is_nan() => {
                Err(invalid("threshold", "expected a number, got NaN".into()))
            }
            LayerSpec::Dropout { p } if !(p.is_finite() && (0.0..1.0).contains(p)) => {
                Err(invalid("p", format!("expected 0 <= p < 1, got {p}")))
            }
            _ => Ok(()),
        }
    }
}

/// Layer `index` (whose input has per-sample shape `input`) as the interchange format writes
/// it, or why PyTorch has no equivalent.
fn layer_spec(index: usize, layer: &Layer, input: FeatureShape) -> Result<LayerSpec, LoadError> {
    let unsupported = |reason: &str| LoadError::Unsupported {
        index,
        kind: layer.kind(),
        reason: reason.to_string(),
    };
    let name = index.to_string();
    Ok(match layer {
        Layer::Linear(l) => {
            let [in_features, out_features] = l.weight.dims();
            LayerSpec::Linear {
                name,
                in_features,
                out_features,
                bias: l.bias.is_some(),
            }
        }
        Layer::Conv2d(c) => conv_spec(name, c, &unsupported)?,
        Layer::BatchNorm(bn) => batch_norm_spec(name, bn, input),
        Layer::GroupNorm(norm) => LayerSpec::GroupNorm {
            name,
            num_groups: norm.num_groups,
            num_channels: norm.num_channels,
            eps: norm.epsilon,
            affine: norm.affine,
        },
        Layer::MaxPool2d(p) if p.ceil_mode => return Err(unsupported("ceil_mode")),
        Layer::MaxPool2d(p) => LayerSpec::MaxPool2d {
            kernel_size: Pair(p.kernel_size),
            stride: Some(Pair(p.stride)),
            padding: symmetric(&p.padding, &unsupported)?,
            dilation: Pair(p.dilation),
        },
        Layer::AvgPool2d(p) if p.ceil_mode || !p.count_include_pad => {
            return Err(unsupported("ceil_mode or count_include_pad = false"));
        }
        Layer::AvgPool2d(p) => LayerSpec::AvgPool2d {
            kernel_size: Pair(p.kernel_size),
            stride: Some(Pair(p.stride)),
            padding: symmetric(&p.padding, &unsupported)?,
        },
        Layer::AdaptiveAvgPool2d(p) => LayerSpec::AdaptiveAvgPool2d {
            output_size: Pair(p.output_size),
        },
        Layer::Activation(a) => LayerSpec::from_activation(a.function).map_err(unsupported)?,
        Layer::Flatten(_) => LayerSpec::Flatten,
        Layer::Dropout(d) => LayerSpec::Dropout { p: d.prob },
        Layer::Identity(_) => LayerSpec::Identity,
    })
}

/// Burn's padding as PyTorch's symmetric `(height, width)` padding.
fn symmetric(
    padding: &burn::nn::PaddingConfig2d,
    unsupported: &dyn Fn(&str) -> LoadError,
) -> Result<Pair, LoadError> {
    match *padding {
        burn::nn::PaddingConfig2d::Valid => Ok(Pair([0, 0])),
        burn::nn::PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == bottom && left == right =>
        {
            Ok(Pair([top, left]))
        }
        _ => Err(unsupported(
            "only symmetric explicit padding has a PyTorch equivalent",
        )),
    }
}

fn conv_spec(
    name: String,
    c: &burn::nn::conv::Conv2d,
    unsupported: &dyn Fn(&str) -> LoadError,
) -> Result<LayerSpec, LoadError> {
    let [out_channels, in_group, _, _] = c.weight.dims();
    Ok(LayerSpec::Conv2d {
        name,
        in_channels: in_group * c.groups,
        out_channels,
        kernel_size: Pair(c.kernel_size),
        stride: Pair(c.stride),
        padding: symmetric(&c.padding, unsupported)?,
        dilation: Pair(c.dilation),
        groups: c.groups,
        bias: c.bias.is_some(),
    })
}

/// `BatchNorm1d` after a vector, `BatchNorm2d` after an image.
fn batch_norm_spec(name: String, bn: &burn::nn::BatchNorm, input: FeatureShape) -> LayerSpec {
    let [num_features] = bn.gamma.dims();
    let eps = bn.epsilon;
    match input.as_vector() {
        Some(_) => LayerSpec::BatchNorm1d {
            name,
            num_features,
            eps,
        },
        None => LayerSpec::BatchNorm2d {
            name,
            num_features,
            eps,
        },
    }
}
