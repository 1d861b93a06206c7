//! A residual graph against Zennit 1.0 itself: `tools/zennit-reference/graph.py` builds a tiny
//! ResNet in PyTorch (Zennit's `Sum` for the residual additions, a strided block with a 1×1
//! downsampling branch, batch norm after every conv, overlapping max pooling) and records
//! Zennit's relevance for three composites. This test builds the same graph from the same
//! weights, through the library's graph API, and compares — both strategies.

mod common;

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, PaddingConfig2d, Relu};
use common::zennit::{ZennitFixture, read_f32_tensors};
use common::{ConvGeometry, conv, linear, relative_error, tensor, values};
use lrp_grad::{Composite, Explainer, Flatten, Graph, NodeId, OutputRelevance, Strategy, Target};

/// The state_dict of the fixture: name → (shape, values).
struct StateDict(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl StateDict {
    fn open(path: &Path) -> Self {
        StateDict(read_f32_tensors(path))
    }

    fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.0.get(name).unwrap_or_else(|| panic!("no {name}"))
    }

    fn conv(&self, name: &str, stride: usize, padding: usize, bias: bool) -> Conv2d {
        let (shape, weight) = self.get(&format!("{name}.weight"));
        let bias = bias.then(|| self.get(&format!("{name}.bias")).1.clone());
        let g = ConvGeometry {
            in_channels: shape[1],
            out_channels: shape[0],
            kernel: [shape[2], shape[3]],
            stride: [stride, stride],
            padding: [padding, padding],
            dilation: [1, 1],
            groups: 1,
        };
        conv(g, weight, bias.as_deref())
    }

    fn batch_norm(&self, name: &str) -> BatchNorm {
        let t = |part: &str| {
            let (shape, v) = self.get(&format!("{name}.{part}"));
            tensor(v.clone(), [shape[0]])
        };
        let mut bn =
            BatchNormConfig::new(self.get(&format!("{name}.weight")).0[0]).init(&common::device());
        bn.gamma = Param::from_tensor(t("weight"));
        bn.beta = Param::from_tensor(t("bias"));
        bn.running_mean = RunningState::new(t("running_mean"));
        bn.running_var = RunningState::new(t("running_var"));
        bn
    }

    fn linear(&self, name: &str) -> Linear {
        let (shape, weight) = self.get(&format!("{name}.weight"));
        let bias = &self.get(&format!("{name}.bias")).1;
        linear(weight, Some(bias), shape[1], shape[0])
    }
}

/// A residual block of the fixture, named as its PyTorch modules.
fn block(g: &mut Graph, w: &StateDict, name: &str, stride: usize, x: NodeId) -> NodeId {
    let n = |part: &str| format!("{name}.{part}");
    let h = g.layer(n("conv1"), w.conv(&n("conv1"), stride, 1, false), x);
    let h = g.layer(n("bn1"), w.batch_norm(&n("bn1")), h);
    let h = g.layer(n("relu1"), Relu::new(), h);
    let h = g.layer(n("conv2"), w.conv(&n("conv2"), 1, 1, false), h);
    let h = g.layer(n("bn2"), w.batch_norm(&n("bn2")), h);
    let shortcut = if w.0.contains_key(&n("down_conv.weight")) {
        let s = g.layer(n("down_conv"), w.conv(&n("down_conv"), stride, 0, false), x);
        g.layer(n("down_bn"), w.batch_norm(&n("down_bn")), s)
    } else {
        x
    };
    let sum = g.add(n("sum"), [shortcut, h]);
    g.layer(n("relu2"), Relu::new(), sum)
}

fn tiny_resnet(w: &StateDict) -> Graph {
    let mut g = Graph::new();
    let x = g.input();
    let h = g.layer("stem", w.conv("stem", 1, 1, true), x);
    let h = g.layer("stem_bn", w.batch_norm("stem_bn"), h);
    let h = g.layer("stem_relu", Relu::new(), h);
    let pool = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    let h = g.layer("pool", pool, h);
    let h = block(&mut g, w, "block1", 1, h);
    let h = block(&mut g, w, "block2", 2, h);
    let h = g.layer("avgpool", AdaptiveAvgPool2dConfig::new([1, 1]).init(), h);
    let h = g.layer("flatten", Flatten, h);
    g.layer("fc", w.linear("fc"), h);
    g
}

#[test]
fn a_tiny_resnet_matches_zennit_for_every_composite_and_strategy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = ZennitFixture::open(root, "resnet-tiny");
    let weights = StateDict::open(&fixture.folder.join("weights.safetensors"));
    let model = tiny_resnet(&weights);
    let (shape, input) = fixture.get("input");
    let shape: [usize; 4] = shape.try_into().expect("an image batch");
    let output = values(model.forward(tensor(input.clone(), shape)));
    common::assert_close(&output, &fixture.get("output").1, 1e-5);
    let names = fixture.meta["cases"].as_array().expect("cases").clone();
    for name in names.iter().map(|n| n.as_str().expect("name")) {
        let composite =
            Composite::named(name, Some(((-2.5).into(), 2.5.into()))).expect("composite");
        let expected = fixture.get(&format!("relevance.{name}")).1;
        let expected64 = fixture.get(&format!("relevance64.{name}")).1;
        // Zennit's own float32-vs-float64 distance, 4× (or 1e-5 where that is larger).
        let tolerance = (4.0 * relative_error(&expected, &expected64)).max(1e-5);
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let explanation = Explainer::new()
                .composite(composite.clone())
                .strategy(strategy)
                .target(Target::PerSample(fixture.targets.clone()))
                .output_relevance(OutputRelevance::OneHot)
                .explain(&model, tensor(input.clone(), shape))
                .expect("explains");
            let error = relative_error(&values(explanation.relevance), &expected);
            println!("{name} {strategy:?}: {error:.2e} (tolerance {tolerance:.2e})");
            assert!(
                error <= tolerance,
                "{name} {strategy:?}: {error:.2e} > {tolerance:.2e} (Zennit f32 vs f64: {:.2e})",
                tolerance / 4.0
            );
        }
    }
}
