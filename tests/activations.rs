//! ELU, Softplus, Mish and GELU's tanh form — in a Burn model and loaded from both of PyTorch's
//! ONNX exporters (`tools/onnx-reference/activations.py`) — explained with LRP-ε and compared
//! with the rule written out in f64: ε on both dense layers, the activation's relevance passed
//! through unchanged (Zennit's `pass`), in both strategies.

mod common;

use std::path::{Path, PathBuf};

use burn::nn::Gelu;
use burn::nn::activation::{Elu, Mish, SoftplusConfig};
use common::reference::{self, Matrix};
use common::zennit::read_f32_tensors;
use common::{assert_close, device, linear, tensor, values};
use lrp_grad::{Activation, Explainer, Graph, Layer, Rule, Sequential, Strategy, Target, onnx};

const RULE: Rule = Rule::Epsilon { epsilon: 1e-3 };
const NAMES: [&str; 4] = ["elu", "softplus", "mish", "gelu-tanh"];

/// Each activation in f64, from its definition (the fixture script's PyTorch modules).
fn reference_activation(name: &str, x: f64) -> f64 {
    let softplus = |x: f64| if x > 20.0 { x } else { x.exp().ln_1p() };
    match name {
        "elu" => {
            if x > 0.0 {
                x
            } else {
                0.7 * x.exp_m1()
            }
        }
        "softplus" => softplus(x),
        "mish" => x * softplus(x).tanh(),
        "gelu-tanh" => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x.powi(3))).tanh())
        }
        other => panic!("no reference for {other}"),
    }
}

/// The Burn module of each activation, as the fixture script builds it in PyTorch.
fn burn_activation(name: &str) -> Layer {
    match name {
        "elu" => Elu { alpha: 0.7 }.into(),
        "softplus" => SoftplusConfig::new().init().into(),
        "mish" => Mish.into(),
        "gelu-tanh" => Gelu::new_approximate().into(),
        other => panic!("no module for {other}"),
    }
}

/// The activation each export loads as (the script's modules; ELU's α as a float32 attribute).
fn loaded(name: &str) -> Activation {
    match name {
        "elu" => Activation::Elu {
            alpha: 0.7f32 as f64,
        },
        "softplus" => Activation::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        "mish" => Activation::Mish,
        "gelu-tanh" => Activation::GeluTanh,
        other => panic!("no activation for {other}"),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx/activations")
        .join(name)
}

/// The fixture's tensors: the two dense layers (PyTorch layout), the input and PyTorch's output.
struct Fixture {
    layers: [(Vec<f32>, Vec<f32>, usize, usize); 2],
    input: Vec<f32>,
    output: Vec<f32>,
}

fn read(name: &str) -> Fixture {
    let t = read_f32_tensors(&fixture(&format!("{name}.safetensors")));
    let get = |key: &str| t[key].1.clone();
    Fixture {
        layers: [
            (get("0.weight"), get("0.bias"), 6, 9),
            (get("2.weight"), get("2.bias"), 9, 4),
        ],
        input: get("input"),
        output: get("output"),
    }
}

/// LRP-ε of one sample in f64: dense, activation (pass), dense; the target's logit as output
/// relevance.
fn expected(name: &str, f: &Fixture, sample: usize, target: usize) -> Vec<f64> {
    let [m1, m2] = f
        .layers
        .each_ref()
        .map(|(w, b, i, o)| Matrix::dense(w, Some(b), *i, *o));
    let x: Vec<f64> = f.input[sample * 6..(sample + 1) * 6]
        .iter()
        .map(|v| *v as f64)
        .collect();
    let z1 = m1.forward(&x);
    let h: Vec<f64> = z1.iter().map(|&z| reference_activation(name, z)).collect();
    let logits = m2.forward(&h);
    let r_out: Vec<f64> = (0..4)
        .map(|k| if k == target { logits[k] } else { 0.0 })
        .collect();
    let r_h = reference::lrp(&RULE, &m2, &h, &r_out);
    reference::lrp(&RULE, &m1, &x, &r_h)
}

/// Explains `graph` on the fixture's input for class 1 and checks output and relevance.
fn check(name: &str, graph: &Graph, f: &Fixture) {
    let x = tensor(f.input.clone(), [3, 6]);
    assert_close(&values(graph.forward(x.clone())), &f.output, 2e-5);
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let explanation = Explainer::new()
            .rule(RULE)
            .strategy(strategy)
            .target(Target::Class(1))
            .explain(graph, x.clone())
            .unwrap();
        let relevance = values(explanation.relevance);
        for n in 0..3 {
            let want: Vec<f32> = expected(name, f, n, 1).iter().map(|v| *v as f32).collect();
            assert_close(&relevance[n * 6..(n + 1) * 6], &want, 1e-5);
        }
    }
}

#[test]
fn each_activation_in_a_burn_model_passes_relevance_as_the_f64_rule() {
    for name in NAMES {
        let f = read(name);
        let [(w1, b1, ..), (w2, b2, ..)] = &f.layers;
        let model = Sequential::new()
            .push(linear(w1, Some(b1), 6, 9))
            .push(burn_activation(name))
            .push(linear(w2, Some(b2), 9, 4));
        check(name, &Graph::from_sequential(&model), &f);
    }
}

#[test]
fn each_activation_loads_from_both_exporters_and_explains_as_the_f64_rule() {
    for name in NAMES {
        let f = read(name);
        for exporter in ["script", "dynamo"] {
            let path = fixture(&format!("{name}-{exporter}.onnx"));
            let model =
                onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{name} ({exporter}): {e}"));
            let kinds: Vec<&str> = model.graph.nodes().iter().map(|n| n.op.kind()).collect();
            // One activation node between the dense layers (patterns folded into it).
            assert_eq!(kinds.len(), 3, "{name} ({exporter}): {kinds:?}");
            // With the module's constants (ELU's α, softplus's threshold).
            let Some(Layer::Activation(a)) = model.graph.nodes()[1].op.as_layer() else {
                panic!("{name} ({exporter}): node 1 is {}", kinds[1]);
            };
            assert_eq!(a.function, loaded(name), "{name} ({exporter})");
            check(name, &model.graph, &f);
        }
    }
}

/// The activations a model is built from keep their constants (the Burn module's, ONNX's).
#[test]
fn burn_modules_convert_to_their_activation() {
    let softplus: Layer = SoftplusConfig::new().with_beta(2.0).init().into();
    let Layer::Activation(a) = softplus else {
        panic!("not an activation")
    };
    assert_eq!(
        a.function,
        Activation::Softplus {
            beta: 2.0,
            threshold: 20.0
        }
    );
    let Layer::Activation(a) = burn_activation("elu") else {
        panic!("not an activation")
    };
    assert_eq!(a.function, Activation::Elu { alpha: 0.7 });
}

/// Every activation kind is written to and read back from the interchange format with its
/// constants (the two maps between `LayerSpec` and `Activation` are inverses).
#[test]
fn every_activation_round_trips_through_the_interchange_format() {
    use lrp_grad::interchange::ModelSpec;
    let every = [
        Activation::Relu,
        Activation::LeakyRelu {
            negative_slope: 0.2,
        },
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Relu6,
        Activation::Silu,
        Activation::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        Activation::HardSwish,
        Activation::Elu { alpha: 0.7 },
        Activation::Softplus {
            beta: 2.0,
            threshold: 15.0,
        },
        Activation::Mish,
    ];
    let model = every
        .iter()
        .fold(Sequential::new(), |m, a| m.push(Layer::from(*a)));
    let spec = ModelSpec::from_model(&model, lrp_grad::FeatureShape::vector(4)).unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    let read = ModelSpec::parse(&json, Path::new("model.json")).unwrap();
    let kinds: Vec<&str> = read.layers.iter().map(|l| l.kind()).collect();
    let names: Vec<&str> = every.iter().map(|a| a.name()).collect();
    assert_eq!(kinds, names);
    let back: Vec<Activation> = read.layers.iter().filter_map(|l| l.activation()).collect();
    assert_eq!(back, every);
    // The README's list of the format's kinds names every activation.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let kinds = readme
        .split("\nKinds: ")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    for name in names {
        assert!(
            kinds.contains(&format!("`{name}`")),
            "README's kinds omit `{name}`"
        );
    }
}
