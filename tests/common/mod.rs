//! Shared helpers for the integration tests: tensors in and out, closeness, seeded randomness,
//! and an independent, loop-based reference implementation of every LRP rule.
#![allow(dead_code)]

pub mod reference;
pub mod zennit;

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn device() -> Device {
    Device::default()
}

pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

/// Largest |actual − expected| relative to the largest |expected|.
pub fn relative_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "length differs");
    let scale = expected
        .iter()
        .fold(0f64, |m, v| m.max(v.abs() as f64))
        .max(1e-12);
    let err = actual
        .iter()
        .zip(expected)
        .fold(0f64, |m, (a, e)| m.max((*a as f64 - *e as f64).abs()));
    err / scale
}

#[track_caller]
pub fn assert_close(actual: &[f32], expected: &[f32], rtol: f64) {
    let err = relative_error(actual, expected);
    assert!(
        err <= rtol,
        "relative error {err:.3e} > {rtol:.0e}\n actual:   {:?}\n expected: {:?}",
        &actual[..actual.len().min(12)],
        &expected[..expected.len().min(12)]
    );
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_vec(rng: &mut StdRng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(low..high)).collect()
}

/// A dense layer from a PyTorch-layout weight `[out, in]` (row-major) and an optional bias.
pub fn linear(weight_out_in: &[f32], bias: Option<&[f32]>, d_in: usize, d_out: usize) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out)
        .with_bias(bias.is_some())
        .init(&device());
    layer.weight = Param::from_tensor(tensor(weight_out_in.to_vec(), [d_out, d_in]).transpose());
    layer.bias = bias.map(|b| Param::from_tensor(tensor(b.to_vec(), [d_out])));
    layer
}

/// Random dense layers, one per `(in, out)`: a PyTorch-layout weight `[out, in]` in [-1, 1), a
/// bias in [-0.2, 0.2), and the two sizes.
pub type DenseWeights = (Vec<f32>, Vec<f32>, usize, usize);

pub fn random_dense(seed: u64, shapes: &[(usize, usize)]) -> Vec<DenseWeights> {
    let mut r = rng(seed);
    shapes
        .iter()
        .map(|&(i, o)| {
            (
                random_vec(&mut r, i * o, -1.0, 1.0),
                random_vec(&mut r, o, -0.2, 0.2),
                i,
                o,
            )
        })
        .collect()
}

/// Geometry of a test convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// A conv layer with weight `[out, in/groups, kh, kw]` (row-major) and an optional bias.
pub fn conv(g: ConvGeometry, weight: &[f32], bias: Option<&[f32]>) -> Conv2d {
    let mut layer = Conv2dConfig::new([g.in_channels, g.out_channels], g.kernel)
        .with_stride(g.stride)
        .with_padding(PaddingConfig2d::Explicit(
            g.padding[0],
            g.padding[1],
            g.padding[0],
            g.padding[1],
        ))
        .with_dilation(g.dilation)
        .with_groups(g.groups)
        .with_bias(bias.is_some())
        .init(&device());
    let shape = [
        g.out_channels,
        g.in_channels / g.groups,
        g.kernel[0],
        g.kernel[1],
    ];
    layer.weight = Param::from_tensor(tensor(weight.to_vec(), shape));
    layer.bias = bias.map(|b| Param::from_tensor(tensor(b.to_vec(), [g.out_channels])));
    layer
}
