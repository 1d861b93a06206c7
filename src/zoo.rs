//! The fixed models of the examples and benchmarks.

use std::borrow::Cow;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNormConfig, Gelu, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Distribution, Tensor};
use lrp_grad::{
    AddParam, AsGraph, Builder, Eager, FeatureShape, Flatten, Graph, LayerNorm, Sequential,
};

/// MNIST's per-sample input shape.
pub const MNIST_INPUT: FeatureShape = FeatureShape::image(1, 28, 28);

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

/// torchvision's `resnet18` layout as a [`Graph`]: 7×7/2 stem, 3×3/2 max pool, four stages of
/// two basic blocks (64, 128, 256, 512 channels; a 1×1 downsampling branch where the shape
/// changes), batch norm after every conv, global average pooling, `Linear(512, classes)`.
pub fn resnet18(classes: usize, device: &Device) -> Graph {
    let conv = |c_in: usize, c_out: usize, kernel: usize, stride: usize| {
        let pad = kernel / 2;
        Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .init(device)
    };
    let bn = |c: usize| BatchNormConfig::new(c).init(device);
    let mut g = Graph::new();
    let x = g.input();
    let h = g.layer("conv1", conv(3, 64, 7, 2), x);
    let h = g.layer("bn1", bn(64), h);
    let h = g.layer("relu", Relu::new(), h);
    let pool = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    let mut h = g.layer("maxpool", pool, h);
    let mut c_in = 64;
    for (stage, c) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let name = |part: &str| format!("layer{}.{block}.{part}", stage + 1);
            let b = g.layer(name("conv1"), conv(c_in, c, 3, stride), h);
            let b = g.layer(name("bn1"), bn(c), b);
            let b = g.layer(name("relu"), Relu::new(), b);
            let b = g.layer(name("conv2"), conv(c, c, 3, 1), b);
            let b = g.layer(name("bn2"), bn(c), b);
            let shortcut = if stride != 1 || c_in != c {
                let s = g.layer(name("downsample.0"), conv(c_in, c, 1, stride), h);
                g.layer(name("downsample.1"), bn(c), s)
            } else {
                h
            };
            let sum = g.add(name("add"), [shortcut, b]);
            h = g.layer(name("relu2"), Relu::new(), sum);
            c_in = c;
        }
    }
    let h = g.layer("avgpool", AdaptiveAvgPool2dConfig::new([1, 1]).init(), h);
    let h = g.layer("flatten", Flatten, h);
    g.layer("fc", LinearConfig::new(512, classes).init(device), h);
    g
}

/// The ViT's shape, for messages.
pub const MNIST_VIT: &str = "2 blocks, 4 heads, width 64, 16 patches of 7x7";

const PATCH: usize = 7;
const TOKENS: usize = (crate::mnist::SIDE / PATCH) * (crate::mnist::SIDE / PATCH);
const DIM: usize = 64;
const HEADS: usize = 4;
const DEPTH: usize = 2;

/// One pre-norm block: `x + attention(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Module, Debug)]
pub struct VitBlock {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl VitBlock {
    fn new(device: &Device) -> Self {
        let dense = |i, o| LinearConfig::new(i, o).init(device);
        VitBlock {
            ln1: LayerNorm::new(DIM, 1e-5, device),
            q: dense(DIM, DIM),
            k: dense(DIM, DIM),
            v: dense(DIM, DIM),
            o: dense(DIM, DIM),
            ln2: LayerNorm::new(DIM, 1e-5, device),
            fc1: dense(DIM, 2 * DIM),
            fc2: dense(2 * DIM, DIM),
        }
    }

    /// The block's forward pass, once, for tokens `[TOKENS, DIM]`; `name` prefixes its nodes.
    fn define<B: Builder>(&self, b: &mut B, name: &str, x: B::Value) -> B::Value {
        let name = |part: &str| format!("{name}.{part}");
        let dh = DIM / HEADS;
        let h = b.layer_norm(&name("ln1"), self.ln1.clone(), x.clone());
        let heads = |b: &mut B, part: &str, dense: &Linear| {
            let y = b.layer(&name(part), dense.clone(), h.clone());
            let y = b.reshape(&name(&format!("{part}.heads")), &[TOKENS, HEADS, dh], y);
            b.permute(&name(&format!("{part}.by_head")), &[1, 0, 2], y)
        };
        let (q, k, v) = (
            heads(b, "q", &self.q),
            heads(b, "k", &self.k),
            heads(b, "v", &self.v),
        );
        let kt = b.permute(&name("kt"), &[0, 2, 1], k);
        let scores = b.matmul(&name("scores"), q, kt);
        let scores = b.scale(&name("scale"), 1.0 / (dh as f64).sqrt(), scores);
        let attention = b.softmax(&name("softmax"), 2, scores);
        let context = b.matmul(&name("context"), attention, v);
        let context = b.permute(&name("merge"), &[1, 0, 2], context);
        let context = b.reshape(&name("merged"), &[TOKENS, DIM], context);
        let o = b.layer(&name("o"), self.o.clone(), context);
        let x = b.add(&name("residual1"), [x, o]);
        let h = b.layer_norm(&name("ln2"), self.ln2.clone(), x.clone());
        let m = b.layer(&name("fc1"), self.fc1.clone(), h);
        let m = b.layer(&name("gelu"), Gelu::new(), m);
        let m = b.layer(&name("fc2"), self.fc2.clone(), m);
        b.add(&name("residual2"), [x, m])
    }
}

/// A small vision transformer for MNIST, as a Burn `#[derive(Module)]` struct whose forward
/// pass is written once against [`Builder`]: patches (a strided 7×7 conv) → tokens `[16, 64]`
/// + learned positions → 2 pre-norm blocks with 4-head attention → layer norm → token mean →
/// classifier. [`MnistVit::forward`] runs it on tensors (training), its [`AsGraph`] builds the
/// graph that is explained.
#[derive(Module, Debug)]
pub struct MnistVit {
    patch: Conv2d,
    pos: AddParam,
    blocks: Vec<VitBlock>,
    ln: LayerNorm,
    head: Linear,
}

impl MnistVit {
    /// The forward pass, once.
    pub fn define<B: Builder>(&self, b: &mut B, x: B::Value) -> B::Value {
        let x = b.layer("patch", self.patch.clone(), x);
        let x = b.reshape("tokens", &[DIM, TOKENS], x);
        let x = b.permute("to_tokens", &[1, 0], x);
        let mut x = b.add_param("pos", self.pos.clone(), x);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.define(b, &format!("block{i}"), x);
        }
        let x = b.layer_norm("ln", self.ln.clone(), x);
        let x = b.mean("pool", 0, x);
        b.layer("head", self.head.clone(), x)
    }

    /// Logits `[N, 10]` of images `[N, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        Eager::run(images, |b, x| self.define(b, x))
    }
}

impl AsGraph for MnistVit {
    fn as_graph(&self) -> Cow<'_, Graph> {
        Cow::Owned(Graph::build(|b, x| self.define(b, x)))
    }
}

/// The MNIST ViT with random weights (see [`MnistVit`]).
pub fn mnist_vit(device: &Device) -> MnistVit {
    let patch = Conv2dConfig::new([1, DIM], [PATCH, PATCH])
        .with_stride([PATCH, PATCH])
        .init(device);
    let pos = Tensor::<2>::random([TOKENS, DIM], Distribution::Normal(0.0, 0.02), device);
    MnistVit {
        patch,
        pos: AddParam::new(pos, FeatureShape::sequence(TOKENS, DIM)),
        blocks: (0..DEPTH).map(|_| VitBlock::new(device)).collect(),
        ln: LayerNorm::new(DIM, 1e-5, device),
        head: LinearConfig::new(DIM, 10).init(device),
    }
}
