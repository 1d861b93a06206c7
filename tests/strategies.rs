//! The one-pass strategy and the layer-wise strategy give the same relevance: every rule and
//! composite, both output-relevance modes, custom output relevance, non-homogeneous
//! activations (which fall back to layer-wise steps) and an output of exactly zero.

mod common;

use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{LeakyReluConfig, Relu, Tanh};
use common::reference::all_rules;
use common::{ConvGeometry, conv, linear, random_vec, relative_error, rng, tensor, values};
use lrp_grad::{Composite, Explainer, Flatten, OutputRelevance, Sequential, Strategy, Target};

/// The leaky-ReLU variant's second conv is grouped (in the one pass, where several terms of a
/// rule share one input); with tanh, the layers before it take layer-wise steps.
fn cnn(seed: u64, activation_tanh: bool) -> Sequential {
    let mut r = rng(seed);
    let g = |i, o, groups| ConvGeometry {
        in_channels: i,
        out_channels: o,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups,
    };
    let groups = if activation_tanh { 1 } else { 2 };
    let model = Sequential::new()
        .push(conv(
            g(2, 4, 1),
            &random_vec(&mut r, 4 * 2 * 9, -1.0, 1.0),
            Some(&random_vec(&mut r, 4, -0.2, 0.2)),
        ))
        .push(Relu::new())
        .push(MaxPool2dConfig::new([2, 2]).init())
        .push(conv(
            g(4, 6, groups),
            &random_vec(&mut r, 6 * 4 / groups * 9, -1.0, 1.0),
            Some(&random_vec(&mut r, 6, -0.2, 0.2)),
        ));
    let model = if activation_tanh {
        model.push(Tanh::new())
    } else {
        model.push(LeakyReluConfig::new().init())
    };
    model
        .push(AvgPool2dConfig::new([2, 2]).init())
        .push(Flatten)
        .push(linear(
            &random_vec(&mut r, 24 * 8, -1.0, 1.0),
            Some(&random_vec(&mut r, 8, -0.2, 0.2)),
            24,
            8,
        ))
        .push(Relu::new())
        .push(linear(
            &random_vec(&mut r, 8 * 3, -1.0, 1.0),
            Some(&random_vec(&mut r, 3, -0.2, 0.2)),
            8,
            3,
        ))
}

fn both(explainer: Explainer, model: &Sequential, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let run = |s: Strategy| {
        values(
            explainer
                .clone()
                .strategy(s)
                .explain(model, tensor(x.to_vec(), [3, 2, 8, 8]))
                .unwrap()
                .relevance,
        )
    };
    (run(Strategy::Auto), run(Strategy::LayerWise))
}

#[test]
fn one_pass_equals_layer_wise_for_every_rule_composite_and_mode() {
    let x = random_vec(&mut rng(2), 3 * 2 * 8 * 8, -1.0, 1.0);
    for tanh in [false, true] {
        let model = cnn(1, tanh);
        let mut explainers: Vec<(String, Explainer)> = all_rules()
            .into_iter()
            .map(|r| (format!("{r:?}"), Explainer::new().rule(r)))
            .collect();
        for name in lrp_grad::COMPOSITE_NAMES {
            let c = Composite::named(name, Some(((-1.0).into(), 1.0.into()))).unwrap();
            explainers.push((name.to_string(), Explainer::new().composite(c)));
        }
        for (name, explainer) in explainers {
            for mode in [OutputRelevance::Logit, OutputRelevance::OneHot] {
                let (auto, layer_wise) = both(explainer.clone().output_relevance(mode), &model, &x);
                let err = relative_error(&auto, &layer_wise);
                assert!(err < 1e-5, "{name} {mode:?} (tanh: {tanh}): {err:.2e}");
            }
        }
        let custom = Target::Relevance(tensor(random_vec(&mut rng(3), 9, -1.0, 1.0), [3, 3]));
        let (auto, layer_wise) = both(Explainer::new().target(custom), &model, &x);
        assert!(relative_error(&auto, &layer_wise) < 1e-5);
    }
}

#[test]
fn a_zero_output_with_relevance_falls_back_to_the_layer_wise_steps() {
    // All weights zero: every output is exactly the (zero) bias; a custom R_out of 1 has no
    // activation to divide by, which the layer-wise path's stabilizer handles.
    let model = Sequential::new()
        .push(Flatten)
        .push(linear(&[0.0; 4 * 2], None, 4, 2));
    let x = tensor(vec![1.0f32; 4], [1, 1, 2, 2]);
    let r = Target::Relevance(tensor(vec![1.0, 0.5], [1, 2]));
    let run = |s: Strategy| {
        values(
            Explainer::new()
                .strategy(s)
                .target(r.clone())
                .explain(&model, x.clone())
                .unwrap()
                .relevance,
        )
    };
    assert_eq!(run(Strategy::Auto), run(Strategy::LayerWise));
}
