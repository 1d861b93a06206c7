//! On convolutional graphs, the one pass and the layer-wise walk give the same relevance:
//! residual additions, concatenation, a squeeze-excitation gate and the newer activations, and
//! AlexNet-sized maps with overlapping max pools, where a one pass whose activations differ
//! from the model's by rounding once routed relevance to another winner than the model's.

mod common;

use burn::nn::activation::{HardSwish, Relu6, SiLU};
use burn::nn::pool::{AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{Relu, Sigmoid};
use common::{ConvGeometry, conv, linear, random_vec, relative_error, rng, tensor, values};
use lrp_grad::{Composite, Explainer, Flatten, Graph, NodeId, Rule, Strategy};
use rand::rngs::StdRng;

fn geometry(i: usize, o: usize, k: usize, stride: usize, padding: usize) -> ConvGeometry {
    ConvGeometry {
        in_channels: i,
        out_channels: o,
        kernel: [k, k],
        stride: [stride, stride],
        padding: [padding, padding],
        dilation: [1, 1],
        groups: 1,
    }
}

/// A conv node with random weights (and biases unless `bias_free`).
fn conv_node(
    g: &mut Graph,
    r: &mut StdRng,
    name: &str,
    geometry: ConvGeometry,
    bias_free: bool,
    x: NodeId,
) -> NodeId {
    let fan_in = geometry.in_channels * geometry.kernel[0] * geometry.kernel[1];
    let scale = (3.0 / fan_in as f32).sqrt();
    let n = geometry.out_channels * fan_in;
    let weight = random_vec(r, n, -scale, scale);
    let bias = random_vec(r, geometry.out_channels, -0.1, 0.1);
    let layer = conv(geometry, &weight, (!bias_free).then_some(&bias[..]));
    g.layer(name, layer, x)
}

fn dense_node(
    g: &mut Graph,
    r: &mut StdRng,
    name: &str,
    i: usize,
    o: usize,
    bias_free: bool,
    x: NodeId,
) -> NodeId {
    let scale = (3.0 / i as f32).sqrt();
    let weight = random_vec(r, i * o, -scale, scale);
    let bias = random_vec(r, o, -0.1, 0.1);
    g.layer(
        name,
        linear(&weight, (!bias_free).then_some(&bias[..]), i, o),
        x,
    )
}

/// A small network with every graph construct: a residual block, a concatenation, a
/// squeeze-excitation gate, SiLU, ReLU6 and hard-swish.
fn mixed(seed: u64, bias_free: bool) -> Graph {
    let r = &mut rng(seed);
    let mut g = Graph::new();
    let x = g.input();
    let stem = conv_node(&mut g, r, "stem", geometry(3, 8, 3, 1, 1), bias_free, x);
    let stem = g.layer("stem_relu", Relu::new(), stem);
    let pool = g.layer(
        "pool",
        MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
        stem,
    );
    let c1 = conv_node(
        &mut g,
        r,
        "block.conv1",
        geometry(8, 8, 3, 1, 1),
        bias_free,
        pool,
    );
    let c1 = g.layer("block.relu6", Relu6::new(), c1);
    let c2 = conv_node(
        &mut g,
        r,
        "block.conv2",
        geometry(8, 8, 3, 1, 1),
        bias_free,
        c1,
    );
    let res = g.add("block.add", [pool, c2]);
    let res = g.layer("block.silu", SiLU::new(), res);
    // Squeeze-excitation on the residual output.
    let squeeze = g.layer("se.pool", AdaptiveAvgPool2dConfig::new([1, 1]).init(), res);
    let squeeze = g.layer("se.flatten", Flatten, squeeze);
    let e = dense_node(&mut g, r, "se.fc1", 8, 4, bias_free, squeeze);
    let e = g.layer("se.relu", Relu::new(), e);
    let e = dense_node(&mut g, r, "se.fc2", 4, 8, bias_free, e);
    let gate = g.layer("se.sigmoid", Sigmoid::new(), e);
    let excited = g.gate("se.scale", res, gate);
    let branch = conv_node(
        &mut g,
        r,
        "branch",
        geometry(8, 4, 1, 1, 0),
        bias_free,
        excited,
    );
    let branch = g.layer("branch.hswish", HardSwish::new(), branch);
    let cat = g.concat("cat", 0, [excited, branch]);
    let head = g.layer(
        "head.pool",
        AdaptiveAvgPool2dConfig::new([2, 2]).init(),
        cat,
    );
    let head = g.layer("head.flatten", Flatten, head);
    dense_node(&mut g, r, "fc", 12 * 4, 5, bias_free, head);
    g
}

fn composites() -> Vec<(&'static str, Composite)> {
    vec![
        ("epsilon-plus-flat", Composite::epsilon_plus_flat()),
        (
            "epsilon-gamma-box",
            Composite::epsilon_gamma_box(-3.0, 3.0).expect("bounds"),
        ),
        ("epsilon-alpha2-beta1", Composite::epsilon_alpha2_beta1()),
        ("gamma", Composite::uniform(Rule::Gamma { gamma: 0.25 })),
        ("w-square", Composite::uniform(Rule::WSquare)),
    ]
}

fn both_strategies(
    model: &Graph,
    composite: &Composite,
    x: &[f32],
    shape: [usize; 4],
) -> (Vec<f32>, Vec<f32>) {
    let run = |strategy| {
        let explanation = Explainer::new()
            .composite(composite.clone())
            .strategy(strategy)
            .explain(model, tensor(x.to_vec(), shape))
            .expect("explains");
        values(explanation.relevance)
    };
    (run(Strategy::Auto), run(Strategy::LayerWise))
}

#[test]
fn both_strategies_agree_on_residual_concat_gate_graphs() {
    let model = mixed(21, false);
    let shape = [2, 3, 16, 16];
    let x = random_vec(&mut rng(22), shape.iter().product(), -1.0, 1.0);
    for (name, composite) in composites() {
        let (auto, layer_wise) = both_strategies(&model, &composite, &x, shape);
        let error = relative_error(&auto, &layer_wise);
        assert!(error < 1e-5, "{name}: one pass vs layer-wise {error:.2e}");
    }
}

#[test]
fn relevance_is_conserved_through_additions_concatenations_and_gates() {
    let model = mixed(31, true);
    let shape = [3, 3, 16, 16];
    let x = random_vec(&mut rng(32), shape.iter().product(), 0.0, 1.0);
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let explanation = Explainer::new()
            .composite(Composite::uniform(Rule::Zero))
            .strategy(strategy)
            .explain(&model, tensor(x.clone(), shape))
            .expect("explains");
        let targets = explanation.targets.clone().expect("targets");
        let output = values(explanation.output.clone());
        for (sample, sum) in explanation.relevance_sums().iter().enumerate() {
            let logit = output[sample * 5 + targets[sample]];
            let gap = ((sum - logit) / logit.abs().max(1e-3)).abs();
            assert!(
                gap < 1e-4,
                "{strategy:?} sample {sample}: Σ R = {sum}, logit = {logit}"
            );
        }
    }
}

/// AlexNet's layout (11×11/4 stem, overlapping 3×3/2 max pools, torchvision's channel counts
/// but one 3×3 conv fewer).
fn alexnet_like(seed: u64) -> Graph {
    let r = &mut rng(seed);
    let pool = || MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    let mut g = Graph::new();
    let x = g.input();
    // (name, in, out, kernel, stride, padding, then a max pool?)
    let layers = [
        (0, 3, 64, 11, 4, 2, true),
        (3, 64, 192, 5, 1, 2, true),
        (6, 192, 256, 3, 1, 1, false),
        (8, 256, 256, 3, 1, 1, true),
    ];
    let mut c = x;
    for (index, i, o, k, stride, padding, pooled) in layers {
        c = conv_node(
            &mut g,
            r,
            &format!("features.{index}"),
            geometry(i, o, k, stride, padding),
            false,
            c,
        );
        c = g.layer(format!("features.{}", index + 1), Relu::new(), c);
        if pooled {
            c = g.layer(format!("features.{}", index + 2), pool(), c);
        }
    }
    let c = g.layer("flatten", Flatten, c);
    dense_node(&mut g, r, "classifier", 256 * 6 * 6, 10, false, c);
    g
}

#[test]
fn max_pools_route_to_the_models_own_winners_in_both_strategies() {
    let model = alexnet_like(41);
    let shape = [2, 3, 224, 224];
    let x = random_vec(&mut rng(42), shape.iter().product(), -2.0, 2.0);
    for (name, composite) in [
        (
            "epsilon-gamma-box",
            Composite::epsilon_gamma_box(-3.0, 3.0).expect("bounds"),
        ),
        ("gamma", Composite::uniform(Rule::Gamma { gamma: 0.25 })),
        (
            "alpha2-beta1",
            Composite::uniform(Rule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            }),
        ),
    ] {
        let (auto, layer_wise) = both_strategies(&model, &composite, &x, shape);
        let error = relative_error(&auto, &layer_wise);
        assert!(error < 1e-5, "{name}: one pass vs layer-wise {error:.2e}");
    }
}

/// A near-tie made on purpose: 0.22868146 and the next float above it. γ's one pass once
/// derived a conv's output from its two groups (`(1.25·a + a) / 2.25`), which rounds both to
/// the same value, so the max pool took the first input where the model takes the second.
/// Relevance must go where the model's own forward pass sent the maximum.
#[test]
fn a_max_pool_near_tie_goes_the_models_way() {
    let low = 0.228_681_46_f32;
    let high = f32::from_bits(low.to_bits() + 1);
    let one_by_one = geometry(1, 1, 1, 1, 0);
    let model = lrp_grad::Sequential::new()
        .push(conv(one_by_one, &[1.0], None))
        .push(MaxPool2dConfig::new([1, 2]).with_strides([1, 2]).init())
        .push(Flatten)
        .push(linear(&[1.0], None, 1, 1));
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let explanation = Explainer::new()
            .rule(Rule::Gamma { gamma: 0.25 })
            .strategy(strategy)
            .explain(&model, tensor(vec![low, high], [1, 1, 1, 2]))
            .expect("explains");
        let r = values(explanation.relevance);
        assert_eq!(
            r[0], 0.0,
            "{strategy:?}: relevance went to the smaller input: {r:?}"
        );
        // All of the logit, less what the γ stabilizers (1e-6) absorb at two layers.
        assert!((r[1] - high).abs() < 1e-5, "{strategy:?}: {r:?}");
    }
}
