//! The fixed models of the examples and benchmarks.

use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::Device;
use lrp_grad::{FeatureShape, Flatten, Sequential};

/// MNIST's per-sample input shape.
pub const MNIST_INPUT: FeatureShape = FeatureShape::Image {
    channels: 1,
    height: 28,
    width: 28,
};

fn conv3x3(c_in: usize, c_out: usize, device: &Device) -> burn::nn::conv::Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// MLP 784-256-128-10 (with a leading flatten, so it takes [1, 28, 28] images).
pub fn mnist_mlp(device: &Device) -> Sequential {
    Sequential::new()
        .push(Flatten)
        .push(LinearConfig::new(784, 256).init(device))
        .push(Relu::new())
        .push(LinearConfig::new(256, 128).init(device))
        .push(Relu::new())
        .push(LinearConfig::new(128, 10).init(device))
}

/// `mnist-cnn`: Conv(1,32,3,p1) ReLU MaxPool2 Conv(32,64,3,p1) ReLU MaxPool2 Flatten
/// Linear(3136,128) ReLU Linear(128,10).
pub fn mnist_cnn(device: &Device) -> Sequential {
    Sequential::new()
        .push(conv3x3(1, 32, device))
        .push(Relu::new())
        .push(MaxPool2dConfig::new([2, 2]).init())
        .push(conv3x3(32, 64, device))
        .push(Relu::new())
        .push(MaxPool2dConfig::new([2, 2]).init())
        .push(Flatten)
        .push(LinearConfig::new(3136, 128).init(device))
        .push(Relu::new())
        .push(LinearConfig::new(128, 10).init(device))
}

/// `vgg-small` on [3, 64, 64]: two 3x3 convs per stage (64, 128, 256), max pooling after each
/// stage, adaptive average pooling to 1x1, Linear(256, 10).
pub fn vgg_small(device: &Device) -> Sequential {
    let mut model = Sequential::new();
    let mut c_in = 3;
    for c in [64, 128, 256] {
        model = model
            .push(conv3x3(c_in, c, device))
            .push(Relu::new())
            .push(conv3x3(c, c, device))
            .push(Relu::new())
            .push(MaxPool2dConfig::new([2, 2]).init());
        c_in = c;
    }
    model
        .push(AdaptiveAvgPool2dConfig::new([1, 1]).init())
        .push(Flatten)
        .push(LinearConfig::new(256, 10).init(device))
}
