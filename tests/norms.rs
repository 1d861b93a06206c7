//! Group norm, instance norm and a per-channel layer scale — in a Burn model and loaded from both of PyTorch's ONNX
//! exporters (`tools/onnx-reference/norms.py`; the exporters write group norm as a reshape, an
//! instance norm, a reshape back, `· γ` and `+ β`) — against the forward pass and the rule
//! written out in f64: LRP-ε on the conv and the dense layer, relevance passed through the
//! norm (the identity rule) and the ReLU unchanged, in both strategies.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{GroupNormConfig, InstanceNormConfig, Relu};
use common::reference::{self, Matrix};
use common::zennit::read_f32_tensors;
use common::{ConvGeometry, assert_close, conv, device, linear, tensor, values};
use lrp_grad::{Explainer, Flatten, Graph, Layer, Rule, Sequential, Strategy, Target, onnx};

/// ε large enough that no conv output's denominator amplifies float32 round-off (a
/// normalised input gives outputs near 0 with ε = 1e-3; the rule is the same at any ε).
const RULE: Rule = Rule::Epsilon { epsilon: 0.1 };
const GEOMETRY: ConvGeometry = ConvGeometry {
    in_channels: 3,
    out_channels: 4,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [0, 0],
    dilation: [1, 1],
    groups: 1,
};
const EPS: f64 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx/norms")
        .join(name)
}

/// The fixture's tensors by name.
struct Fixture(std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Fixture {
    fn read(name: &str) -> Self {
        Fixture(read_f32_tensors(&fixture(&format!("{name}.safetensors"))))
    }
    fn get(&self, key: &str) -> Vec<f32> {
        self.0[key].1.clone()
    }
    /// The norm's γ and β (ones and zeros without affine parameters).
    fn affine(&self) -> (Vec<f32>, Vec<f32>) {
        match self.0.get("1.weight") {
            Some(_) => (self.get("1.weight"), self.get("1.bias")),
            None => (vec![1.0; 4], vec![0.0; 4]),
        }
    }
}

/// Group norm of one sample `[C, H·W]` in f64 (`groups` groups, biased variance, as PyTorch).
fn group_norm(x: &[f64], groups: usize, gamma: &[f32], beta: &[f32]) -> Vec<f64> {
    let c = gamma.len();
    let per_channel = x.len() / c;
    let per_group = per_channel * c / groups;
    let mut y = vec![0.0; x.len()];
    for g in 0..groups {
        let part = &x[g * per_group..(g + 1) * per_group];
        let mean = part.iter().sum::<f64>() / per_group as f64;
        let var = part.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / per_group as f64;
        for i in g * per_group..(g + 1) * per_group {
            let ch = i / per_channel;
            y[i] = (x[i] - mean) / (var + EPS).sqrt() * gamma[ch] as f64 + beta[ch] as f64;
        }
    }
    y
}

/// The logits and LRP-ε relevance of one sample in f64, the norm and ReLU passing it through.
fn expected(f: &Fixture, groups: usize, sample: usize, target: usize) -> (Vec<f64>, Vec<f64>) {
    let (w, b) = (f.get("0.weight"), f.get("0.bias"));
    let (m1, _) = Matrix::conv(GEOMETRY, &w, Some(&b), [3, 8, 8]);
    let m2 = Matrix::dense(&f.get("4.weight"), Some(&f.get("4.bias")), 144, 3);
    let input = f.get("input");
    let x: Vec<f64> = input[sample * 192..(sample + 1) * 192]
        .iter()
        .map(|v| *v as f64)
        .collect();
    let z = m1.forward(&x);
    let (gamma, beta) = f.affine();
    let h: Vec<f64> = group_norm(&z, groups, &gamma, &beta)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect();
    let logits = m2.forward(&h);
    let r_out: Vec<f64> = (0..3)
        .map(|k| if k == target { logits[k] } else { 0.0 })
        .collect();
    let r_h = reference::lrp(&RULE, &m2, &h, &r_out);
    (logits, reference::lrp(&RULE, &m1, &x, &r_h))
}

/// `graph` on the fixture's input: PyTorch's output, the f64 logits and relevance (class 2).
fn check(graph: &Graph, f: &Fixture, groups: usize) {
    let x = tensor(f.get("input"), [3, 3, 8, 8]);
    assert_close(&values(graph.forward(x.clone())), &f.get("output"), 2e-5);
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .rule(RULE)
            .strategy(strategy)
            .target(Target::Class(2))
            .explain(graph, x.clone())
            .unwrap();
        let relevance = values(e.relevance);
        for n in 0..3 {
            let (logits, want) = expected(f, groups, n, 2);
            let want: Vec<f32> = want.iter().map(|v| *v as f32).collect();
            let logits: Vec<f32> = logits.iter().map(|v| *v as f32).collect();
            assert_close(&f.get("output")[n * 3..(n + 1) * 3], &logits, 2e-5);
            assert_close(&relevance[n * 192..(n + 1) * 192], &want, 1e-5);
        }
    }
}

#[test]
fn group_and_instance_norm_in_a_burn_model_pass_relevance_as_the_f64_rule() {
    for (name, groups) in [("group", 2), ("instance", 4)] {
        let f = Fixture::read(name);
        let (gamma, beta) = (
            Some(Param::from_tensor(tensor(f.get("1.weight"), [4]))),
            Some(Param::from_tensor(tensor(f.get("1.bias"), [4]))),
        );
        // Burn's instance norm goes in as it is (one group per channel).
        let norm: Layer = if name == "instance" {
            let mut norm = InstanceNormConfig::new(4).with_affine(true).init(&device());
            (norm.gamma, norm.beta) = (gamma, beta);
            norm.into()
        } else {
            let mut norm = GroupNormConfig::new(groups, 4).init(&device());
            (norm.gamma, norm.beta) = (gamma, beta);
            norm.into()
        };
        let model = Sequential::new()
            .push(conv(GEOMETRY, &f.get("0.weight"), Some(&f.get("0.bias"))))
            .push(norm)
            .push(Relu::new())
            .push(Flatten)
            .push(linear(&f.get("4.weight"), Some(&f.get("4.bias")), 144, 3));
        check(&Graph::from_sequential(&model), &f, groups);
    }
}

#[test]
fn group_and_instance_norm_load_from_both_exporters_as_one_node() {
    for (name, groups) in [("group", 2), ("instance", 4), ("group-plain", 2)] {
        let f = Fixture::read(name);
        for exporter in ["script", "dynamo"] {
            let path = fixture(&format!("{name}-{exporter}.onnx"));
            let model =
                onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{name} ({exporter}): {e}"));
            let kinds: Vec<&str> = model.graph.nodes().iter().map(|n| n.op.kind()).collect();
            assert_eq!(
                kinds[..3],
                ["conv2d", "group_norm", "relu"],
                "{name} ({exporter})"
            );
            check(&model.graph, &f, groups);
        }
    }
}

/// ConvNeXt's layer scale, `x · γ[C, 1, 1]`, from both exporters: a constant-scale node that
/// passes relevance unchanged (`x·γ · R / (x·γ) = R`), against f64 (conv, ReLU, scale, dense).
#[test]
fn a_per_channel_layer_scale_loads_from_both_exporters_and_passes_relevance() {
    let f = Fixture::read("layer-scale");
    let (w, b) = (f.get("0.weight"), f.get("0.bias"));
    let (m1, _) = Matrix::conv(GEOMETRY, &w, Some(&b), [3, 8, 8]);
    let m2 = Matrix::dense(&f.get("4.weight"), Some(&f.get("4.bias")), 144, 3);
    let gamma = f.get("2.gamma");
    let input = f.get("input");
    for exporter in ["script", "dynamo"] {
        let path = fixture(&format!("layer-scale-{exporter}.onnx"));
        let model = onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{exporter}: {e}"));
        let kinds: Vec<&str> = model.graph.nodes().iter().map(|n| n.op.kind()).collect();
        assert_eq!(
            kinds[..3],
            ["conv2d", "relu", "constant_scale"],
            "{exporter}"
        );
        let x = tensor(input.clone(), [3, 3, 8, 8]);
        assert_close(
            &values(model.graph.forward(x.clone())),
            &f.get("output"),
            2e-5,
        );
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let e = Explainer::new()
                .rule(RULE)
                .strategy(strategy)
                .target(Target::Class(1))
                .explain(&model.graph, x.clone())
                .unwrap();
            let relevance = values(e.relevance);
            for n in 0..3 {
                let xs: Vec<f64> = input[n * 192..(n + 1) * 192]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                let z = m1.forward(&xs);
                let h: Vec<f64> = z
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v.max(0.0) * gamma[i / 36] as f64)
                    .collect();
                let logits = m2.forward(&h);
                let r_h = reference::lrp(&RULE, &m2, &h, &[0.0, logits[1], 0.0]);
                let want: Vec<f32> = reference::lrp(&RULE, &m1, &xs, &r_h)
                    .iter()
                    .map(|v| *v as f32)
                    .collect();
                assert_close(&relevance[n * 192..(n + 1) * 192], &want, 1e-5);
            }
        }
    }
}

/// Group norms (affine, and without scale and shift) are written to the interchange format
/// (`group_norm`: PyTorch's `nn.GroupNorm` fields, `weight`/`bias` when affine) and read back
/// into the same layer: the model's output is unchanged bit for bit.
#[test]
fn group_norms_round_trip_through_the_interchange_format() {
    let f = Fixture::read("group");
    let dir = std::env::temp_dir().join(format!("lrp-grad-norms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for affine in [true, false] {
        let mut norm = GroupNormConfig::new(2, 4)
            .with_epsilon(1e-3)
            .with_affine(affine)
            .init(&device());
        if affine {
            norm.gamma = Some(Param::from_tensor(tensor(f.get("1.weight"), [4])));
            norm.beta = Some(Param::from_tensor(tensor(f.get("1.bias"), [4])));
        }
        let model = Sequential::new()
            .push(conv(GEOMETRY, &f.get("0.weight"), Some(&f.get("0.bias"))))
            .push(norm)
            .push(Relu::new())
            .push(Flatten)
            .push(linear(&f.get("4.weight"), Some(&f.get("4.bias")), 144, 3));
        let (json, weights) = (dir.join("m.json"), dir.join("m.safetensors"));
        let shape = lrp_grad::FeatureShape::image(3, 8, 8);
        lrp_grad::interchange::save(&model, shape, &json, &weights).unwrap();
        let text = std::fs::read_to_string(&json).unwrap();
        assert!(text.contains("\"group_norm\""), "{text}");
        let loaded = lrp_grad::interchange::load(&json, &weights, &device()).unwrap();
        let x = tensor(f.get("input"), [3, 3, 8, 8]);
        assert_eq!(
            values(loaded.model.forward(x.clone())),
            values(model.forward(x)),
            "affine: {affine}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
