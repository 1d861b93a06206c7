//! A Burn user's own model — a small ResNet for MNIST as a `#[derive(Module)]` struct with a
//! residual forward pass — trained with Burn and explained with LRP, without re-typing it.
//!
//! The forward pass is written once, against `lrp_grad::Builder`: `forward` runs it on tensors
//! (training, inference), `AsGraph` builds the graph the explainer runs. The program checks that
//! both give the same logits on real digits, then writes `resnet-struct.png` (digits and their
//! LRP heatmaps under two composites).
//!
//! `MNIST_DIR=../shared/data/mnist cargo run --release --example resnet_struct`

use std::borrow::Cow;
use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use lrp_grad::heatmap::ColorMap;
use lrp_grad::{AsGraph, Builder, Composite, Eager, Explainer, Flatten, Graph};
use lrp_grad_suite::figures::{digit, labelled_grid, relevance_map};
use lrp_grad_suite::mnist::{self, PIXELS, SIDE};
use lrp_grad_suite::{floats, train::images};

/// Two residual blocks on a conv stem; batch norm after every conv (merged by the canonizer).
#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<Block>,
    fc: Linear,
}

/// `relu(x + bn(conv(relu(bn(conv(x))))))`.
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
}

const WIDTH: usize = 16;

impl ResNet {
    pub fn new(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let bn = || BatchNormConfig::new(WIDTH).init(device);
        Self {
            stem: conv(1, WIDTH),
            stem_bn: bn(),
            blocks: (0..2)
                .map(|_| Block {
                    conv1: conv(WIDTH, WIDTH),
                    bn1: bn(),
                    conv2: conv(WIDTH, WIDTH),
                    bn2: bn(),
                })
                .collect(),
            fc: LinearConfig::new(WIDTH * 4, 10).init(device),
        }
    }

    /// The forward pass, written once for both tensors and graphs.
    fn define<B: Builder>(&self, b: &mut B, x: B::Value) -> B::Value {
        let x = b.layer("stem", self.stem.clone(), x);
        let x = b.layer("stem_bn", self.stem_bn.clone(), x);
        let x = b.layer("stem_relu", Relu::new(), x);
        let mut x = b.layer(
            "stem_pool",
            MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            x,
        );
        for (i, block) in self.blocks.iter().enumerate() {
            let name = |part: &str| format!("block{i}.{part}");
            let h = b.layer(&name("conv1"), block.conv1.clone(), x.clone());
            let h = b.layer(&name("bn1"), block.bn1.clone(), h);
            let h = b.layer(&name("relu1"), Relu::new(), h);
            let h = b.layer(&name("conv2"), block.conv2.clone(), h);
            let h = b.layer(&name("bn2"), block.bn2.clone(), h);
            let sum = b.add(&name("add"), [x, h]);
            x = b.layer(&name("relu2"), Relu::new(), sum);
        }
        let x = b.layer("pool", AdaptiveAvgPool2dConfig::new([2, 2]).init(), x);
        let x = b.layer("flatten", Flatten, x);
        b.layer("fc", self.fc.clone(), x)
    }

    /// Logits `[N, 10]` for images `[N, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        Eager::run(images, |b, x| self.define(b, x))
    }
}

impl AsGraph for ResNet {
    fn as_graph(&self) -> Cow<'_, Graph> {
        Cow::Owned(Graph::build(|b, x| self.define(b, x)))
    }
}

#[derive(Parser)]
struct Args {
    /// Directory with the four MNIST IDX files (default: $MNIST_DIR).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Train on the first N training digits.
    #[arg(long, default_value_t = 12_000)]
    limit: usize,
    /// Where to write the figure.
    #[arg(long, default_value = "mnist-output")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data = mnist::data_dir(args.data)?;
    let train = mnist::load(&data, "train")?.truncate(args.limit);
    let test = mnist::load(&data, "t10k")?;
    std::fs::create_dir_all(&args.out)?;

    // Training, as any Burn user trains: an autodiff device, Adam, cross-entropy.
    let device = Device::default().autodiff();
    device.seed(1);
    let mut model = ResNet::new(&device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optimizer = AdamConfig::new().init();
    let order: Vec<usize> = (0..train.len()).collect();
    for chunk in order.chunks(64) {
        let labels: Vec<i64> = chunk.iter().map(|i| train.labels[*i] as i64).collect();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [chunk.len()]), &device);
        let loss = loss_fn.forward(model.forward(images(&train, chunk, &device)), labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
    }
    let model = model.valid();

    // The explained graph is the struct's own forward pass: same logits on real digits.
    let indices: Vec<usize> = (0..10u8)
        .filter_map(|d| test.labels.iter().position(|l| *l == d))
        .collect();
    let plain = Device::default();
    let batch = images(&test, &indices, &plain);
    let own = floats(model.forward(batch.clone()));
    let graph = floats(model.as_graph().forward(batch.clone()));
    let gap = own
        .iter()
        .zip(&graph)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    anyhow::ensure!(gap < 1e-4, "graph and struct disagree by {gap}");
    let all: Vec<usize> = (0..2000).collect();
    let predicted = floats(model.forward(images(&test, &all, &plain)).argmax(1).float());
    let correct = all
        .iter()
        .zip(&predicted)
        .filter(|(i, p)| test.labels[**i] as f32 == **p)
        .count();
    println!(
        "trained on {} digits: {:.1} % of the first 2,000 test digits right; graph = struct to {gap:.1e}",
        train.len(),
        correct as f64 / 20.0
    );

    let cmap = ColorMap::new("bwr")?;
    let composites = [
        ("epsilon-plus-flat", Composite::epsilon_plus_flat()),
        ("epsilon-gamma-box", Composite::epsilon_gamma_box(0.0, 1.0)?),
    ];
    let mut rows: Vec<Vec<image::RgbImage>> = indices
        .iter()
        .map(|i| vec![digit(test.image(*i))])
        .collect();
    for (_, composite) in &composites {
        let explanation = Explainer::new()
            .composite(composite.clone())
            .explain(&model, batch.clone())?;
        let relevance = floats(explanation.relevance);
        for (row, cells) in rows.iter_mut().enumerate() {
            cells.push(relevance_map(
                &relevance[row * PIXELS..(row + 1) * PIXELS],
                &cmap,
            ));
        }
    }
    let columns: Vec<String> = std::iter::once("input".to_string())
        .chain(composites.iter().map(|(n, _)| format!("LRP {n}")))
        .collect();
    let labels: Vec<String> = indices
        .iter()
        .map(|i| format!("#{i}: {}", test.labels[*i]))
        .collect();
    let path = args.out.join("resnet-struct.png");
    labelled_grid(&path, &rows, &columns, &labels, 3)?;
    println!("wrote {} ({SIDE}x{SIDE} digits)", path.display());
    Ok(())
}
