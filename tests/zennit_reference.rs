//! Every rule and composite against relevances computed by Zennit 0.5.1 itself
//! (tools/zennit-reference/generate.py writes the fixtures; CI needs no Python).

mod common;

use std::path::Path;

use burn::tensor::Tensor;
use common::zennit::ZennitFixture;
use common::{device, relative_error, values};
use lrp_grad::interchange;
use lrp_grad::{Bound, Composite, Explainer, OutputRelevance, Rule, Strategy, Target};
use serde_json::Value;

/// Fixtures agree with Zennit to this relative error (max |Δ| / max |reference|).
const TOLERANCE: f64 = 1e-5;

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

/// Runs every case of one fixture model; returns (case, relative error) pairs.
fn compare(model_name: &str, strategy: Strategy) -> Vec<(String, f64)> {
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
        errors.push((key.clone(), relative_error(&relevance, &expected)));
    }
    errors
}

/// Both strategies (one pass where possible, and layer by layer) against Zennit.
fn assert_all_within_tolerance(model: &str) {
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        assert_within_tolerance(model, strategy);
    }
}

fn assert_within_tolerance(model: &str, strategy: Strategy) {
    let errors = compare(model, strategy);
    assert_eq!(
        errors.len(),
        34,
        "{model}: every rule and composite, logit and one-hot"
    );
    let report: Vec<String> = errors
        .iter()
        .map(|(k, e)| format!("{model}/{strategy:?}/{k}: {e:.2e}"))
        .collect();
    // Printed for the closing note / README (visible with --nocapture).
    println!("{}", report.join("\n"));
    let failing: Vec<&String> = errors
        .iter()
        .zip(&report)
        .filter(|((_, e), _)| *e > TOLERANCE)
        .map(|(_, r)| r)
        .collect();
    assert!(
        failing.is_empty(),
        "relative error above {TOLERANCE:.0e}:\n{failing:#?}"
    );
}

#[test]
fn mlp_with_batch_norm_matches_zennit_for_every_rule_and_composite() {
    assert_all_within_tolerance("mlp");
}

#[test]
fn cnn_with_pooling_groups_and_batch_norm_matches_zennit_for_every_rule_and_composite() {
    assert_all_within_tolerance("cnn");
}
