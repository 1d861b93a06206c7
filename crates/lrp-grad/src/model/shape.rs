//! Shape inference: every layer's output shape is computed (and checked) before any tensor
//! operation runs, so bad input becomes an [`Error`] rather than a panic inside Burn.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};

use super::Layer;
use crate::error::{Error, Result};

/// The shape of one sample's activation, the batch axis not counted: rank 1 to 3 — a feature
/// vector `[F]`, a sequence `[T, D]` (tokens × features; also a one-channel image `[H, W]`) or
/// an image `[C, H, W]`.
///
/// Layers read it as PyTorch does: a linear layer maps the last axis (every token of a sequence,
/// every row of an image), convolutions and pools take `[C, H, W]` and read `[H, W]` as one
/// channel, batch norm normalises axis 0 of a vector or an image.
///
/// # Shapes
/// Batched tensors have rank 2 to 4: `[N, F]`, `[N, T, D]`, `[N, C, H, W]`. Inside the crate
/// every activation is a rank-4 tensor ([`FeatureShape::batched`]): `[N, F, 1, 1]`,
/// `[N, 1, T, D]`, `[N, C, H, W]` — each keeps the sample's row-major order, so a reshape
/// between ranks moves no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeatureShape {
    rank: u8,
    dims: [usize; 3],
}

impl FeatureShape {
    /// The largest per-sample rank (batched tensors have rank 4 at most).
    pub const MAX_RANK: usize = 3;

    /// A feature vector `[F]`.
    pub const fn vector(features: usize) -> Self {
        Self {
            rank: 1,
            dims: [features, 1, 1],
        }
    }

    /// A sequence `[T, D]`: `tokens` rows of `features` (or a one-channel image `[H, W]`).
    pub const fn sequence(tokens: usize, features: usize) -> Self {
        Self {
            rank: 2,
            dims: [tokens, features, 1],
        }
    }

    /// An image `[C, H, W]`.
    pub const fn image(channels: usize, height: usize, width: usize) -> Self {
        Self {
            rank: 3,
            dims: [channels, height, width],
        }
    }

    /// The shape of these per-sample dims (rank 1 to 3).
    pub fn new(dims: &[usize]) -> Result<Self> {
        match *dims {
            [f] => Ok(Self::vector(f)),
            [t, d] => Ok(Self::sequence(t, d)),
            [c, h, w] => Ok(Self::image(c, h, w)),
            _ => Err(Error::UnsupportedRank {
                found: dims.len() + 1,
            }),
        }
    }

    /// The per-sample shape of a batched tensor's dims: `[N, F]`, `[N, T, D]` (also a
    /// one-channel image `[N, H, W]`, as MNIST loaders give it) or `[N, C, H, W]`.
    pub fn from_batched(dims: &[usize]) -> Result<Self> {
        match dims {
            [_, sample @ ..] if !sample.is_empty() => Self::new(sample),
            _ => Err(Error::UnsupportedRank { found: dims.len() }),
        }
    }

    /// The per-sample dims: `[F]`, `[T, D]` or `[C, H, W]`.
    pub fn dims(&self) -> Vec<usize> {
        self.dims[..self.rank()].to_vec()
    }

    /// The per-sample rank (1 to 3).
    pub fn rank(&self) -> usize {
        usize::from(self.rank)
    }

    /// The batched dims `[n, ..dims]`.
    pub fn with_batch(&self, n: usize) -> Vec<usize> {
        [&[n][..], &self.dims[..self.rank()]].concat()
    }

    /// The internal rank-4 dims for a batch of `n`: `[n, F, 1, 1]`, `[n, 1, T, D]` or
    /// `[n, C, H, W]`.
    pub fn batched(&self, n: usize) -> [usize; 4] {
        let [a, b, c] = self.dims;
        match self.rank {
            1 => [n, a, 1, 1],
            2 => [n, 1, a, b],
            _ => [n, a, b, c],
        }
    }

    /// The internal (rank-4) axis of per-sample `axis` (`axis < rank`).
    pub(crate) fn internal_axis(&self, axis: usize) -> usize {
        match self.rank {
            1 => 1,
            2 => axis + 2,
            _ => axis + 1,
        }
    }

    /// Number of values per sample.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// The size of the last axis (what a linear layer maps).
    pub fn last(&self) -> usize {
        self.dims[self.rank() - 1]
    }

    /// Channels: a vector's features, an image's `C`, 1 for `[H, W]`.
    pub fn channels(&self) -> usize {
        match self.rank {
            2 => 1,
            _ => self.dims[0],
        }
    }

    /// The features of a vector.
    pub fn as_vector(&self) -> Option<usize> {
        (self.rank == 1).then_some(self.dims[0])
    }

    /// `(C, H, W)` of an image; `[H, W]` reads as one channel.
    pub fn as_image(&self) -> Option<(usize, usize, usize)> {
        let [a, b, c] = self.dims;
        match self.rank {
            2 => Some((1, a, b)),
            3 => Some((a, b, c)),
            _ => None,
        }
    }
}

impl std::fmt::Display for FeatureShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

/// Resolves Burn's padding config to `((top, bottom), (left, right))`, as Burn's own layers do.
pub(crate) fn padding_pairs(
    padding: &PaddingConfig2d,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    // "Same" padding as burn-nn computes it (that helper is private to burn-nn).
    let same = |k: usize, s: usize, size: usize| {
        let out = size.div_ceil(s);
        let total = if out > 0 {
            ((out - 1) * s + k).saturating_sub(size)
        } else {
            0
        };
        (total / 2, total - total / 2)
    };
    match *padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => [
            same(kernel[0], stride[0], height),
            same(kernel[1], stride[1], width),
        ],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    }
}

pub(crate) fn conv_options(conv: &Conv2d, height: usize, width: usize) -> ConvOptions<2> {
    let padding = padding_pairs(&conv.padding, height, width, conv.kernel_size, conv.stride);
    ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups)
}

pub(crate) fn max_pool_options(pool: &MaxPool2d, height: usize, width: usize) -> MaxPoolOptions<2> {
    let padding = padding_pairs(&pool.padding, height, width, pool.kernel_size, pool.stride);
    MaxPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs(padding)
        .with_dilation(pool.dilation)
        .with_ceil_mode(pool.ceil_mode)
}

pub(crate) fn avg_pool_options(pool: &AvgPool2d, height: usize, width: usize) -> AvgPoolOptions<2> {
    let padding = padding_pairs(&pool.padding, height, width, pool.kernel_size, pool.stride);
    AvgPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs(padding)
        .with_count_include_pad(pool.count_include_pad)
        .with_ceil_mode(pool.ceil_mode)
}

/// Output length of a sliding window, or `None` when the window does not fit. With `ceil`
/// (pooling's `ceil_mode`) a last partial window counts, unless it would start in the right
/// padding (PyTorch's rule).
fn window_out(
    size: usize,
    pad: (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
    ceil: bool,
) -> Option<usize> {
    let span = dilation * (kernel.checked_sub(1)?) + 1;
    let padded = size + pad.0 + pad.1;
    if stride == 0 || padded < span {
        return None;
    }
    let steps = padded - span;
    if !ceil {
        return Some(steps / stride + 1);
    }
    let out = steps.div_ceil(stride) + 1;
    Some(if (out - 1) * stride >= size + pad.0 {
        out - 1
    } else {
        out
    })
}

impl Layer {
    /// The per-sample output shape for a per-sample input shape, or why the input does not fit.
    pub fn output_shape(&self, index: usize, input: FeatureShape) -> Result<FeatureShape> {
        let check = Check {
            index,
            kind: self.kind(),
            input,
        };
        match self {
            Layer::Linear(linear) => check.linear(linear.weight.dims()),
            Layer::Conv2d(conv) => check.conv(conv),
            Layer::MaxPool2d(pool) => {
                let (channels, h, w) = check.image("max pooling")?;
                let window = Window {
                    kernel: pool.kernel_size,
                    stride: pool.stride,
                    dilation: pool.dilation,
                    padding: &pool.padding,
                    ceil: pool.ceil_mode,
                };
                check.window(channels, [h, w], window)
            }
            Layer::AvgPool2d(pool) => {
                let (channels, h, w) = check.image("average pooling")?;
                let window = Window {
                    kernel: pool.kernel_size,
                    stride: pool.stride,
                    dilation: [1, 1],
                    padding: &pool.padding,
                    ceil: pool.ceil_mode,
                };
                check.window(channels, [h, w], window)
            }
            Layer::AdaptiveAvgPool2d(pool) => {
                let (channels, _, _) = check.image("adaptive average pooling")?;
                let [height, width] = pool.output_size;
                if height == 0 || width == 0 {
                    return Err(check.unsupported("output size 0"));
                }
                Ok(FeatureShape::image(channels, height, width))
            }
            Layer::BatchNorm(bn) => check.batch_norm(bn.gamma.dims()[0]),
            Layer::GroupNorm(norm) => check.group_norm(norm.num_channels, norm.num_groups),
            Layer::Flatten(_) => Ok(FeatureShape::vector(input.numel())),
            Layer::Activation(_) | Layer::Dropout(_) | Layer::Identity(_) => Ok(input),
        }
    }
}

/// One layer's shape check: its place, kind and input, for the messages.
struct Check {
    index: usize,
    kind: &'static str,
    input: FeatureShape,
}

/// A sliding window's geometry (convolutions and pools share the output-size arithmetic).
struct Window<'a> {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: &'a PaddingConfig2d,
    ceil: bool,
}

impl Check {
    /// Group normalization of an image: channels as the norm's, divisible into its groups.
    fn group_norm(&self, channels: usize, groups: usize) -> Result<FeatureShape> {
        // Images only: Burn's group norm needs more than one value per group and sample.
        let (found, _, _) = self.image(&format!("{channels} channels"))?;
        if found != channels {
            return Err(self.mismatch(format!("[N, {channels}, H, W] ({channels} channels)")));
        }
        if self.input.numel() <= 2 {
            return Err(self.unsupported("group norm needs more than two values per sample"));
        }
        if groups == 0 || channels % groups != 0 {
            return Err(self.unsupported(&format!(
                "{channels} channels do not divide into {groups} groups"
            )));
        }
        Ok(self.input)
    }

    /// A convolution: `[N, C_in, H, W]` in, `[N, C_out, H', W']` out.
    fn conv(&self, conv: &Conv2d) -> Result<FeatureShape> {
        let [c_out, c_in_group, _, _] = conv.weight.dims();
        let c_in = c_in_group * conv.groups;
        let (channels, h, w) = self.image(&format!("{c_in} channels"))?;
        if channels != c_in {
            return Err(self.mismatch(format!("[N, {c_in}, H, W] ({c_in} input channels)")));
        }
        let window = Window {
            kernel: conv.kernel_size,
            stride: conv.stride,
            dilation: conv.dilation,
            padding: &conv.padding,
            ceil: false,
        };
        self.window(c_out, [h, w], window)
    }

    fn mismatch(&self, expected: String) -> Error {
        Error::ShapeMismatch {
            index: self.index,
            kind: self.kind,
            expected,
            found: self.input.dims(),
        }
    }

    fn unsupported(&self, reason: &str) -> Error {
        Error::UnsupportedLayer {
            index: self.index,
            kind: self.kind,
            reason: reason.to_string(),
        }
    }

    /// `(C, H, W)` of an image input (`[H, W]` as one channel), or why it is not one.
    fn image(&self, what: &str) -> Result<(usize, usize, usize)> {
        self.input
            .as_image()
            .ok_or_else(|| self.mismatch(format!("an image [N, C, H, W] ({what})")))
    }

    /// A dense layer `[d_in, d_out]` on the last axis.
    fn linear(&self, [d_in, d_out]: [usize; 2]) -> Result<FeatureShape> {
        let input = self.input;
        if input.last() != d_in {
            return Err(self.mismatch(format!(
                "{d_in} features on the last axis ([N, {d_in}] or [N, .., {d_in}])"
            )));
        }
        if input.rank() > 1 && input.numel() == 1 {
            // [N, 1, 1] and [N, 1] share one memory layout with no axis to tell them apart; a
            // single value goes in as a vector.
            return Err(self.mismatch("a vector [N, 1] for a single value (flatten it)".into()));
        }
        let mut dims = input.dims();
        *dims.last_mut().expect("rank 1 or more") = d_out;
        FeatureShape::new(&dims)
    }

    fn batch_norm(&self, features: usize) -> Result<FeatureShape> {
        if self.input.rank() == 2 {
            return Err(self.mismatch(format!(
                "a vector [N, {features}] or an image [N, {features}, H, W] (batch norm of a sequence is not supported)"
            )));
        }
        if self.input.channels() != features {
            return Err(self.mismatch(format!("{features} channels (features)")));
        }
        Ok(self.input)
    }

    /// The output of a sliding window over an `[h, w]` image with `channels` out.
    fn window(&self, channels: usize, [h, w]: [usize; 2], win: Window<'_>) -> Result<FeatureShape> {
        let (kernel, stride, dilation) = (win.kernel, win.stride, win.dilation);
        let pad = padding_pairs(win.padding, h, w, kernel, stride);
        match (
            window_out(h, pad[0], kernel[0], stride[0], dilation[0], win.ceil),
            window_out(w, pad[1], kernel[1], stride[1], dilation[1], win.ceil),
        ) {
            (Some(height), Some(width)) if height > 0 && width > 0 => {
                Ok(FeatureShape::image(channels, height, width))
            }
            _ => Err(self.mismatch(format!(
                "an image at least as large as its {}x{} window (dilation {:?}, padding {:?})",
                kernel[0], kernel[1], dilation, pad
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::window_out;

    #[test]
    fn ceil_mode_counts_a_last_partial_window_unless_it_starts_in_the_padding() {
        // 3 pixels, 2×2 windows, stride 2: floor gives 1 window, ceil 2 (the last one partial).
        assert_eq!(window_out(3, (0, 0), 2, 2, 1, false), Some(1));
        assert_eq!(window_out(3, (0, 0), 2, 2, 1, true), Some(2));
        // 5 pixels padded by 1 on each side: ceil would give 4, but the 4th window would start
        // at 6, in the right padding (5 + 1), so PyTorch drops it.
        assert_eq!(window_out(5, (1, 1), 2, 2, 1, true), Some(3));
        // SqueezeNet's 3×3/2 pools: 15 → 7.
        assert_eq!(window_out(15, (0, 0), 3, 2, 1, true), Some(7));
        assert_eq!(window_out(14, (0, 0), 3, 2, 1, true), Some(7));
    }
}
