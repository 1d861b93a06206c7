//! ONNX models of the torchvision families against Zennit 1.0: `tools/onnx-reference/models.py`
//! builds small models from torchvision's own classes (ResNet blocks, DenseNet, SqueezeNet's
//! Fire, MobileNetV2, EfficientNet with squeeze-excitation, VGG with batch norm, AlexNet's
//! pattern), exports each with both of PyTorch's exporters, and records Zennit's relevance in
//! float64 for four composites and three rules. Here each export is loaded with
//! `lrp_grad::onnx::load` and explained through the library.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use common::zennit::ZennitFixture;
use common::{device, relative_error, tensor, values};
use lrp_grad::onnx;
use lrp_grad::{Composite, Explainer, OutputRelevance, Rule, Strategy, Target};

const FAMILIES: [&str; 7] = [
    "resnet",
    "densenet",
    "squeezenet",
    "mobilenet_v2",
    "efficientnet",
    "vgg_bn",
    "alexnet",
];
const EXPORTERS: [&str; 2] = ["dynamo.onnx", "script.onnx"];

fn folder(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(family)
}

/// The composite a case of `cases.json` names: `{"composite": name}` or `{"rule": SPEC}`.
fn composite(fixture: &ZennitFixture, case: &serde_json::Value) -> Composite {
    let bounds = fixture.meta["bounds"].as_array().expect("bounds");
    let bound = |i: usize| bounds[i].as_f64().expect("bound").into();
    if let Some(name) = case["composite"].as_str() {
        return Composite::named(name, Some((bound(0), bound(1)))).expect("composite");
    }
    let rule: Rule = case["rule"].as_str().expect("rule").parse().expect("rule");
    Composite::uniform(rule)
}

fn input(fixture: &ZennitFixture) -> Tensor<4> {
    let (shape, x) = fixture.get("input");
    tensor(x, shape.try_into().expect("an image batch"))
}

/// Checks one export against every case; returns the cases out of tolerance.
fn check(family: &str, exporter: &str, strategy: Strategy) -> Vec<String> {
    let mut failures = Vec::new();
    let fixture = ZennitFixture::open_folder(folder(family));
    let model = onnx::load(&folder(family).join(exporter), &device()).expect("loads");
    let output = values(model.graph.forward(input(&fixture)));
    let (_, expected_output) = fixture.get("output");
    common::assert_close(&output, &expected_output, 1e-4);
    for (name, case) in fixture.cases() {
        let expected = fixture.get(&format!("relevance.{name}")).1;
        let scale = expected.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
        // 1e-4 of the largest relevance, or 4× how far Zennit's own result moves in float32
        // or with its batch norms folded in float64, where that is larger.
        let distance = |key: &str| fixture.meta[key][name].as_f64().expect("distance") / scale;
        let floor = distance("zennit_f32_distance").max(distance("zennit_fold_distance"));
        let tolerance = (4.0 * floor).max(1e-4);
        let explanation = Explainer::new()
            .composite(composite(&fixture, case))
            .strategy(strategy)
            .target(Target::PerSample(fixture.targets.clone()))
            .output_relevance(OutputRelevance::OneHot)
            .explain(&model.graph, input(&fixture))
            .expect("explains");
        let error = relative_error(&values(explanation.relevance), &expected);
        println!(
            "{family} {exporter} {name} {strategy:?}: {error:.2e} (tolerance {tolerance:.2e})"
        );
        if error > tolerance {
            failures.push(format!(
                "{family} {exporter} {name} {strategy:?}: {error:.2e} > {tolerance:.2e}"
            ));
        }
    }
    failures
}

#[test]
fn every_family_from_both_exporters_matches_zennit() {
    let failures: Vec<String> = FAMILIES
        .iter()
        .flat_map(|family| EXPORTERS.map(|exporter| check(family, exporter, Strategy::Auto)))
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_layer_wise_strategy_agrees_on_the_residual_and_concatenating_families() {
    let failures: Vec<String> = ["resnet", "densenet", "efficientnet"]
        .iter()
        .flat_map(|family| check(family, "dynamo.onnx", Strategy::LayerWise))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_model_exported_with_a_batch_of_two_explains_one_sample() {
    // The dynamo exporter bakes the example's batch into the flatten (`Reshape` to [2, 32]).
    let folder = folder("resnet");
    let fixture = ZennitFixture::open_folder(folder.clone());
    let (shape, x) = fixture.get("input");
    let per_sample: usize = shape[1..].iter().product();
    let first = tensor(x[..per_sample].to_vec(), [1, shape[1], shape[2], shape[3]]);
    let expected = &fixture.get("relevance.epsilon-plus-flat").1[..per_sample];
    for exporter in EXPORTERS {
        let model = onnx::load(&folder.join(exporter), &device()).expect("loads");
        let explanation = Explainer::new()
            .composite(Composite::epsilon_plus_flat())
            .target(Target::Class(fixture.targets[0]))
            .output_relevance(OutputRelevance::OneHot)
            .explain(&model.graph, first.clone())
            .expect("explains");
        let error = relative_error(&values(explanation.relevance), expected);
        assert!(error < 1e-4, "{exporter}: {error:.2e}");
    }
}

#[test]
fn a_loaded_model_names_its_input_and_its_nodes_by_operator_and_order() {
    let model = onnx::load(&folder("resnet").join("script.onnx"), &device()).expect("loads");
    assert_eq!(model.input_name, "input");
    assert_eq!(model.input_shape.dims(), [3, 32, 32]);
    assert_eq!(model.dropped_softmax, None);
    let names: Vec<&str> = model
        .graph
        .nodes()
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    // The parser's names, by operator and order: what composites' name maps match.
    assert_eq!(names[..3], ["conv2d1", "relu1", "maxpool2d1"]);
    assert!(names.contains(&"add3"), "{names:?}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = onnx::load(Path::new("no/such/model.onnx"), &device()).unwrap_err();
    assert!(matches!(err, onnx::OnnxError::Read { .. }));
    assert!(err.to_string().contains("no/such/model.onnx"), "{err}");
}
