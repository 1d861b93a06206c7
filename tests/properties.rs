//! Conservation and batch consistency, on fixed networks and as property tests over random
//! shapes and weights.
//!
//! Conservation is measured relative to the relevance mass: |Σ R_layer − Σ R_out| ≤ 1e-5 · Σ|R_layer|
//! (with cancellations between positive and negative relevance, the mass is the scale that
//! float32 round-off is proportional to).

mod common;

use burn::nn::Relu;
use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig, MaxPool2dConfig};
use common::{ConvGeometry, assert_close, conv, linear, random_vec, rng, tensor, values};
use lrp_grad::{
    Composite, Explainer, Flatten, LayerType, OutputRelevance, Rule, Sequential, Target,
};
use proptest::prelude::*;

/// LRP-0's stabilizer (1e-9) keeps up to about 1e-9 of a unit's relevance when its
/// pre-activation is tiny; over a layer that stays below this.
const STABILIZER_SLACK: f32 = 1e-8;

/// Asserts that every layer's relevance sums to the output relevance `R_out = f_target(x)`, per
/// sample. (With a one-hot `R_out`, a target whose score is exactly 0 — every unit dead — has
/// nothing to distribute: the logit start is the consistent one.)
#[track_caller]
fn assert_conserved<const D: usize>(
    model: &Sequential,
    x: Vec<f32>,
    shape: [usize; D],
    rule: Rule,
) {
    // LRP-0 everywhere: average pooling too (the composites' default for pooling, `norm`,
    // stabilizes with 1e-6 and so absorbs a little relevance where activations are tiny).
    let composite = Composite::uniform(rule.clone()).with_type(LayerType::AvgPool, rule);
    let explanation = Explainer::new()
        .composite(composite)
        .output_relevance(OutputRelevance::Logit)
        .record_layers(true)
        .explain(model, tensor(x, shape))
        .unwrap();
    let n = shape[0];
    let output = values(explanation.output.clone());
    let classes = output.len() / n;
    let targets = explanation.targets.clone().unwrap();
    for layer in &explanation.layers {
        let v = match layer.shape.rank() {
            1 => values(layer.relevance::<2>().unwrap()),
            2 => values(layer.relevance::<3>().unwrap()),
            _ => values(layer.relevance::<4>().unwrap()),
        };
        let per = v.len() / n;
        for s in 0..n {
            let mass: f32 = v[s * per..(s + 1) * per].iter().map(|r| r.abs()).sum();
            let expected = output[s * classes + targets[s]];
            let err = (layer.sums[s] - expected).abs();
            assert!(
                err <= 1e-5 * (mass + expected.abs()) + STABILIZER_SLACK,
                "layer {} sample {s}: Σ R = {}, f(x) = {expected} (mass {mass})",
                layer.index,
                layer.sums[s]
            );
        }
    }
}

fn bias_free_mlp(seed: u64, dims: &[usize]) -> Sequential {
    let mut rng = rng(seed);
    let mut model = Sequential::new();
    for (k, d) in dims.windows(2).enumerate() {
        model = model.push(linear(
            &random_vec(&mut rng, d[0] * d[1], -1.0, 1.0),
            None,
            d[0],
            d[1],
        ));
        if k + 2 < dims.len() {
            model = model.push(Relu::new());
        }
    }
    model
}

fn geometry(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    padding: usize,
) -> ConvGeometry {
    ConvGeometry {
        in_channels,
        out_channels,
        kernel: [kernel, kernel],
        stride: [1, 1],
        padding: [padding, padding],
        dilation: [1, 1],
        groups: 1,
    }
}

/// conv → relu → max pool → conv → relu → avg pool → adaptive avg pool → flatten → linear, no bias.
fn bias_free_cnn(seed: u64) -> Sequential {
    let mut rng = rng(seed);
    let g1 = geometry(2, 4, 3, 1);
    let g2 = geometry(4, 5, 3, 1);
    Sequential::new()
        .push(conv(g1, &random_vec(&mut rng, 4 * 2 * 9, -1.0, 1.0), None))
        .push(Relu::new())
        .push(MaxPool2dConfig::new([2, 2]).init())
        .push(conv(g2, &random_vec(&mut rng, 5 * 4 * 9, -1.0, 1.0), None))
        .push(Relu::new())
        .push(AvgPool2dConfig::new([2, 2]).with_strides([1, 1]).init())
        .push(AdaptiveAvgPool2dConfig::new([2, 2]).init())
        .push(Flatten)
        .push(linear(
            &random_vec(&mut rng, 20 * 3, -1.0, 1.0),
            None,
            20,
            3,
        ))
}

#[test]
fn lrp_0_conserves_relevance_layer_by_layer_in_a_bias_free_relu_mlp() {
    let model = bias_free_mlp(21, &[10, 16, 12, 8, 4]);
    let x = random_vec(&mut rng(22), 3 * 10, -1.0, 1.0);
    assert_conserved(&model, x, [3, 10], Rule::Zero);
}

#[test]
fn lrp_0_and_tiny_epsilon_conserve_relevance_in_a_bias_free_cnn_with_max_and_average_pooling() {
    let model = bias_free_cnn(31);
    let x = random_vec(&mut rng(32), 2 * 2 * 8 * 8, 0.0, 1.0);
    assert_conserved(&model, x.clone(), [2, 2, 8, 8], Rule::Zero);
    assert_conserved(&model, x, [2, 2, 8, 8], Rule::Epsilon { epsilon: 1e-9 });
}

#[test]
fn explaining_a_batch_equals_explaining_each_sample_alone() {
    let model = bias_free_cnn(41);
    let batch = 4;
    let x = random_vec(&mut rng(42), batch * 2 * 8 * 8, -1.0, 1.0);
    let composite = Composite::epsilon_gamma_box(-1.0, 1.0).unwrap();
    let explainer = Explainer::new().composite(composite);
    let together = explainer
        .explain(&model, tensor(x.clone(), [batch, 2, 8, 8]))
        .unwrap();
    let targets = together.targets.clone().unwrap();
    let together = values(together.relevance);
    let per = 2 * 8 * 8;
    for s in 0..batch {
        let alone = explainer
            .clone()
            .target(Target::Class(targets[s]))
            .explain(
                &model,
                tensor(x[s * per..(s + 1) * per].to_vec(), [1, 2, 8, 8]),
            )
            .unwrap();
        assert_close(
            &values(alone.relevance),
            &together[s * per..(s + 1) * per],
            1e-6,
        );
    }
}

/// 32 cases from a fixed seed: the same cases on every run, so CI is reproducible.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x1f2e_3d4c),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lrp_0_conserves_relevance_for_random_bias_free_mlps(
        seed in any::<u64>(),
        dims in prop::collection::vec(1usize..9, 2..5),
        batch in 1usize..4,
    ) {
        let model = bias_free_mlp(seed, &dims);
        let x = random_vec(&mut rng(seed ^ 1), batch * dims[0], -1.0, 1.0);
        assert_conserved(&model, x, [batch, dims[0]], Rule::Zero);
    }

    #[test]
    fn lrp_0_conserves_relevance_for_random_bias_free_cnns(
        seed in any::<u64>(),
        channels in 1usize..4,
        hidden in 1usize..5,
        kernel in 1usize..4,
        size in 4usize..8,
        max_pool in any::<bool>(),
    ) {
        let mut r = rng(seed);
        let g = geometry(channels, hidden, kernel, kernel / 2);
        let pooled = size + 2 * (kernel / 2) - kernel + 1 - 1; // 2x2 window, stride 1
        let pool: lrp_grad::Layer = if max_pool {
            MaxPool2dConfig::new([2, 2]).with_strides([1, 1]).init().into()
        } else {
            AvgPool2dConfig::new([2, 2]).with_strides([1, 1]).init().into()
        };
        let features = hidden * pooled * pooled;
        let model = Sequential::new()
            .push(conv(g, &random_vec(&mut r, hidden * channels * kernel * kernel, -1.0, 1.0), None))
            .push(Relu::new())
            .push(pool)
            .push(Flatten)
            .push(linear(&random_vec(&mut r, features * 3, -1.0, 1.0), None, features, 3));
        let x = random_vec(&mut r, 2 * channels * size * size, -1.0, 1.0);
        assert_conserved(&model, x, [2, channels, size, size], Rule::Zero);
    }
}
