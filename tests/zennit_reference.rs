//! Every rule and composite against relevances computed by Zennit itself (0.5.1 for the MLP and
//! the CNN, 1.0.0 for the VGG-style model; tools/zennit-reference/generate.py writes the
//! fixtures; CI needs no Python).

mod common;

use std::path::Path;

use burn::tensor::Tensor;
use common::zennit::ZennitFixture;
use common::{device, relative_error, values};
use lrp_grad::interchange;
use lrp_grad::{Bound, Composite, Explainer, OutputRelevance, Rule, Strategy, Target};
use serde_json::Value;

/// Fixtures agree with Zennit to this relative error (max |Δ| / max |reference|), or to 4 ×
/// Zennit's own float32 distance from its float64 result where the fixture records it (as the
/// graph fixtures do).
const TOLERANCE: f64 = 1e-5;

/// The tolerance of one case.
fn tolerance(case: &Value) -> f64 {
    case.get("zennit_f32_distance")
        .and_then(Value::as_f64)
        .map_or(TOLERANCE, |own| (4.0 * own).max(TOLERANCE))
}

fn bound(value: &Value, reference: &ZennitFixture) -> Bound {
    match value {
        Value::Number(n) => Bound::Scalar(n.as_f64().unwrap()),
        Value::String(which) => Bound::Tensor(reference.data(&format!("bound.{which}"))),
        other => panic!("bad bound {other}"),
    }
}

fn composite(case: &Value, reference: &ZennitFixture) -> Composite {
    let num = |key: &str| case[key].as_f64().unwrap();
    if let Some(name) = case["composite"].as_str() {
        let bounds = case
            .get("low")
            .map(|low| (bound(low, reference), bound(&case["high"], reference)));
        return Composite::named(name, bounds).unwrap();
    }
    let rule = match case["rule"].as_str().unwrap() {
        "zero" => Rule::Zero,
        "epsilon" => Rule::epsilon(num("epsilon")).unwrap(),
        "gamma" => Rule::gamma(num("gamma")).unwrap(),
        "alpha-beta" => Rule::alpha_beta(num("alpha"), num("beta")).unwrap(),
        "z-plus" => Rule::ZPlus,
        "z-box" => Rule::z_box(
            bound(&case["low"], reference),
            bound(&case["high"], reference),
        )
        .unwrap(),
        "flat" => Rule::Flat,
        "w-square" => Rule::WSquare,
        other => panic!("unknown rule {other}"),
    };
    Composite::uniform(rule)
}

/// Runs every case of one fixture model; returns (case, relative error, tolerance) triples.
fn compare(model_name: &str, strategy: Strategy) -> Vec<(String, f64, f64)> {
    let reference = ZennitFixture::open(Path::new(env!("CARGO_MANIFEST_DIR")), model_name);
    let loaded =
        interchange::load(&reference.model_json(), &reference.weights(), &device()).unwrap();
    let targets = reference.targets.clone();
    let vector = loaded.input_shape.as_vector().is_some();
    let input: Tensor<4> = if vector {
        let x: Tensor<2> = Tensor::from_data(reference.data("input"), &device());
        let [n, f] = x.dims();
        x.reshape([n, f, 1, 1])
    } else {
        Tensor::from_data(reference.data("input"), &device())
    };
    let expected_output = reference
        .data("output")
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let mut errors = Vec::new();
    for (key, case) in reference.cases() {
        let explainer = Explainer::new()
            .strategy(strategy)
            .composite(composite(case, &reference))
            .target(Target::PerSample(targets.clone()))
            .output_relevance(match case["output_relevance"].as_str().unwrap() {
                "logit" => OutputRelevance::Logit,
                _ => OutputRelevance::OneHot,
            });
        let (relevance, output) = if vector {
            let [n, f, _, _] = input.dims();
            let e = explainer
                .explain(&loaded.model, input.clone().reshape([n, f]))
                .unwrap();
            (values(e.relevance), values(e.output))
        } else {
            let e = explainer.explain(&loaded.model, input.clone()).unwrap();
            (values(e.relevance), values(e.output))
        };
        assert!(
            relative_error(&output, &expected_output) < 1e-5,
            "{model_name}: outputs differ from PyTorch"
        );
        let expected = reference
            .data(&format!("relevance.{key}"))
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        errors.push((
            key.clone(),
            relative_error(&relevance, &expected),
            tolerance(case),
        ));
    }
    errors
}

/// Both strategies (one pass where possible, and layer by layer) against Zennit, on `cases`
/// cases (each with both output relevances).
fn assert_all_within_tolerance(model: &str, cases: usize) {
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        assert_within_tolerance(model, strategy, cases);
    }
}

fn assert_within_tolerance(model: &str, strategy: Strategy, cases: usize) {
    let errors = compare(model, strategy);
    assert_eq!(errors.len(), cases, "{model}: cases, logit and one-hot");
    let report: Vec<String> = errors
        .iter()
        .map(|(k, e, t)| format!("{model}/{strategy:?}/{k}: {e:.2e} (tolerance {t:.1e})"))
        .collect();
    // Printed for the closing note / README (visible with --nocapture).
    println!("{}", report.join("\n"));
    let failing: Vec<&String> = errors
        .iter()
        .zip(&report)
        .filter(|((_, e, t), _)| e > t)
        .map(|(_, r)| r)
        .collect();
    assert!(failing.is_empty(), "above tolerance:\n{failing:#?}");
}

#[test]
fn mlp_with_batch_norm_matches_zennit_for_every_rule_and_composite() {
    assert_all_within_tolerance("mlp", 34);
}

#[test]
fn cnn_with_pooling_groups_and_batch_norm_matches_zennit_for_every_rule_and_composite() {
    assert_all_within_tolerance("cnn", 34);
}

/// The benchmark's `vgg-small` at half width on [3, 32, 32] inputs in [0, 1] (Zennit 1.0):
/// z-box on a 3-channel first convolution with scalar and tensor bounds, γ after ReLUs, six
/// max-pooled convolutions, every composite.
#[test]
fn vgg_style_model_matches_zennit_1_0_for_every_composite() {
    assert_all_within_tolerance("vgg", 16);
}
