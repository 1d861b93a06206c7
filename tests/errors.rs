//! Every library error: the right kind, and a message that says what was expected and what came.

mod common;

use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig};
use burn::nn::{BatchNormConfig, LinearConfig, Relu};
use burn::tensor::{Tensor, TensorData};
use common::{device, tensor, values};
use lrp_grad::{
    Composite, Error, Explainer, Flatten, LayerType, Rule, Sequential, Target, explain,
};

fn mlp() -> Sequential {
    let d = device();
    Sequential::new()
        .push(LinearConfig::new(4, 5).init(&d))
        .push(Relu::new())
        .push(LinearConfig::new(5, 3).init(&d))
}

fn input() -> Tensor<2> {
    tensor(vec![0.5; 8], [2, 4])
}

#[track_caller]
fn message_contains(error: &Error, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "`{message}` lacks `{part}`");
    }
}

#[test]
fn input_of_the_wrong_rank() {
    let err = explain(&mlp(), tensor(vec![0.5; 8], [2, 2, 1, 1, 2])).unwrap_err();
    assert!(matches!(err, Error::UnsupportedRank { found: 5 }));
    message_contains(
        &err,
        &["rank 5", "[batch, features]", "[batch, height, width]"],
    );
}

#[test]
fn input_that_does_not_fit_the_first_layer() {
    let err = explain(&mlp(), tensor(vec![0.5; 6], [2, 3])).unwrap_err();
    assert!(matches!(
        err,
        Error::ShapeMismatch {
            index: 0,
            kind: "linear",
            ..
        }
    ));
    message_contains(&err, &["layer 0 (linear)", "[N, 4]", "[3]"]);
}

#[test]
fn image_into_a_dense_layer_and_vector_into_a_conv() {
    let err = explain(&mlp(), tensor(vec![0.5; 8], [2, 4, 1, 1])).unwrap_err();
    message_contains(&err, &["layer 0 (linear)", "[4, 1, 1]"]);
    let conv = Sequential::new()
        .push(Conv2dConfig::new([2, 3], [3, 3]).init(&device()))
        .push(Flatten);
    let err = explain(&conv, tensor(vec![0.5; 4], [2, 2])).unwrap_err();
    message_contains(&err, &["layer 0 (conv2d)", "image"]);
    let err = explain(&conv, tensor(vec![0.5; 2 * 2 * 2 * 2], [2, 2, 2, 2])).unwrap_err();
    message_contains(&err, &["at least as large as its 3x3 window"]);
}

#[test]
fn empty_batch() {
    let empty = Tensor::<2>::from_data(TensorData::new(Vec::<f32>::new(), [0, 4]), &device());
    let err = explain(&mlp(), empty).unwrap_err();
    assert!(matches!(err, Error::EmptyBatch { .. }));
    message_contains(&err, &["empty batch", "[0, 4]"]);
}

#[test]
fn non_finite_input() {
    let err = explain(
        &mlp(),
        tensor(
            vec![0.5, f32::NAN, 0.5, 0.5, f32::INFINITY, 0.0, 0.0, 0.0],
            [2, 4],
        ),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::NonFiniteInput {
            count: 2,
            first_index: 1
        }
    );
    message_contains(&err, &["2 value(s)", "flat index 1", "finite"]);
}

#[test]
fn targets_out_of_range_or_miscounted() {
    let err = Explainer::new()
        .target(Target::Class(3))
        .explain(&mlp(), input())
        .unwrap_err();
    assert_eq!(
        err,
        Error::TargetOutOfRange {
            sample: 0,
            class: 3,
            classes: 3
        }
    );
    message_contains(&err, &["target class 3", "3 outputs", "0..3"]);
    let err = Explainer::new()
        .target(Target::PerSample(vec![0, 1, 2]))
        .explain(&mlp(), input())
        .unwrap_err();
    assert_eq!(
        err,
        Error::TargetCountMismatch {
            expected: 2,
            found: 3
        }
    );
    let err = Explainer::new()
        .target(Target::Relevance(tensor(vec![1.0; 4], [2, 2])))
        .explain(&mlp(), input())
        .unwrap_err();
    assert!(matches!(err, Error::OutputRelevanceShape { .. }));
    message_contains(&err, &["[2, 2]", "[2, 3]"]);
}

#[test]
fn invalid_rule_parameters() {
    let err = Rule::alpha_beta(3.0, 1.0).unwrap_err();
    message_contains(
        &err,
        &["alpha-beta", "alpha - beta must equal 1", "alpha = 3"],
    );
    // A rule built directly (not through its checking constructor) is checked when used.
    let err = Explainer::new()
        .rule(Rule::Epsilon { epsilon: -0.1 })
        .explain(&mlp(), input())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidRule {
            rule: "epsilon",
            ..
        }
    ));
    message_contains(&err, &["epsilon must be finite and >= 0, got -0.1"]);
    let err = Rule::gamma(-1.0).unwrap_err();
    message_contains(&err, &["gamma must be finite and >= 0"]);
}

#[test]
fn rules_that_make_no_sense_for_a_layer() {
    let err = Explainer::new()
        .rule(Rule::Pass)
        .explain(&mlp(), input())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::RuleLayerMismatch {
            rule: "pass",
            index: 0,
            ..
        }
    ));
    message_contains(&err, &["rule pass cannot be applied to layer 0 (linear)"]);

    let err = Explainer::new()
        .composite(Composite::epsilon_plus().with_type(LayerType::Activation, Rule::ZPlus))
        .explain(&mlp(), input())
        .unwrap_err();
    message_contains(
        &err,
        &[
            "rule z-plus cannot be applied to layer 1 (relu)",
            "only take pass",
        ],
    );

    let pooled = Sequential::new()
        .push(AvgPool2dConfig::new([2, 2]).init())
        .push(Flatten)
        .push(LinearConfig::new(1, 2).init(&device()));
    let err = Explainer::new()
        .composite(Composite::epsilon_plus().with_index(0, Rule::ZPlus))
        .explain(&pooled, tensor(vec![1.0; 4], [1, 1, 2, 2]))
        .unwrap_err();
    message_contains(&err, &["layer 0 (avg_pool2d)", "pooling has none"]);
}

#[test]
fn missing_rules_and_indices_beyond_the_model() {
    let err = Explainer::new()
        .composite(Composite::new())
        .explain(&mlp(), input())
        .unwrap_err();
    assert_eq!(
        err,
        Error::MissingRule {
            index: 0,
            kind: "linear"
        }
    );
    let err = Explainer::new()
        .composite(Composite::epsilon_plus().with_index(7, Rule::Zero))
        .explain(&mlp(), input())
        .unwrap_err();
    assert_eq!(
        err,
        Error::NoSuchLayer {
            index: 7,
            layers: 3
        }
    );
    let err = Composite::named("epsilon-minus", None).unwrap_err();
    message_contains(
        &err,
        &["unknown composite `epsilon-minus`", "epsilon-plus-flat"],
    );
    let err = Composite::named("epsilon-gamma-box", None).unwrap_err();
    message_contains(&err, &["needs the input bounds"]);
}

/// A batch norm no linear layer feeds cannot be merged: `Sequential::canonize` says why, and
/// the explainer (like Zennit's base layer map) lets relevance pass through it unchanged.
#[test]
fn batch_norm_that_cannot_be_merged() {
    let d = device();
    let first = Sequential::new()
        .push(BatchNormConfig::new(4).init(&d))
        .push(LinearConfig::new(4, 2).init(&d));
    let err = first.canonize().unwrap_err();
    assert!(matches!(err, Error::UnmergeableBatchNorm { index: 0, .. }));
    message_contains(&err, &["first layer"]);
    let after_relu = Sequential::new()
        .push(LinearConfig::new(4, 4).init(&d))
        .push(Relu::new())
        .push(BatchNormConfig::new(4).init(&d))
        .push(LinearConfig::new(4, 2).init(&d));
    let err = after_relu.canonize().unwrap_err();
    message_contains(&err, &["batch norm at layer 2", "follows a relu layer"]);
    let explanation = Explainer::new()
        .record_layers(true)
        .explain(&after_relu, input())
        .expect("an unmerged batch norm passes relevance");
    // Values 2 and 3 (the batch norm's input and output) are vectors [N, 4].
    let at = |value: usize| values(explanation.layers[value].relevance::<2>().unwrap());
    assert_eq!(at(2), at(3), "relevance crosses the batch norm unchanged");
}

#[test]
fn z_box_bounds_of_the_wrong_shape() {
    let bounds = TensorData::new(vec![0.0f32; 3], [3]);
    let err = Explainer::new()
        .rule(Rule::z_box(bounds, 1.0).unwrap())
        .explain(&mlp(), input())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::BoundShape {
            which: "z-box low",
            ..
        }
    ));
    message_contains(&err, &["z-box low has shape [3]", "[4]"]);
}

#[test]
fn models_without_one_score_per_class_and_unsupported_layers() {
    let d = device();
    let image_out = Sequential::new().push(Conv2dConfig::new([1, 2], [1, 1]).init(&d));
    let err = explain(&image_out, tensor(vec![1.0; 4], [1, 1, 2, 2])).unwrap_err();
    assert!(matches!(err, Error::OutputNotVector { .. }));
    message_contains(&err, &["[2, 2, 2]", "one score per class"]);
    let empty = Sequential::new()
        .push(AdaptiveAvgPool2dConfig::new([0, 0]).init())
        .push(Flatten);
    let err = explain(&empty, tensor(vec![1.0; 9], [1, 1, 3, 3])).unwrap_err();
    message_contains(
        &err,
        &[
            "layer 0 (adaptive_avg_pool2d) is not supported",
            "output size 0",
        ],
    );
}

#[test]
fn try_forward_reports_instead_of_panicking() {
    let err = mlp().try_forward(tensor(vec![0.5; 6], [2, 3])).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { index: 0, .. }));
}
