//! A transformer written once as a Burn `#[derive(Module)]` struct against `Builder` (layer
//! norm, multi-head attention with reshapes, permutes, matmuls, a scale and a softmax, a class
//! token, positional embeddings, a GELU MLP, a token slice): its eager forward pass equals its
//! graph's, and the graph is explained.

mod common;

use std::borrow::Cow;

use burn::module::Module;
use burn::nn::{Gelu, Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use common::{relative_error, values};
use lrp_grad::{
    AddParam, AsGraph, Builder, Composite, Eager, Explainer, FeatureShape, Graph, LayerNorm,
    Prepend, Strategy, Target,
};

const T: usize = 5;
const D: usize = 8;
const HEADS: usize = 2;

#[derive(Module, Debug)]
struct Transformer {
    cls: Prepend,
    pos: AddParam,
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    head: Linear,
}

impl Transformer {
    fn new(device: &Device) -> Self {
        let dense = |i, o| LinearConfig::new(i, o).init(device);
        let random = |dims: [usize; 2]| Tensor::<2>::random(dims, Distribution::Default, device);
        Transformer {
            cls: Prepend::new(random([1, D]), FeatureShape::sequence(1, D), 0),
            pos: AddParam::new(random([T + 1, D]), FeatureShape::sequence(T + 1, D)),
            ln1: LayerNorm::new(D, 1e-5, device),
            q: dense(D, D),
            k: dense(D, D),
            v: dense(D, D),
            o: dense(D, D),
            ln2: LayerNorm::new(D, 1e-5, device),
            fc1: dense(D, 2 * D),
            fc2: dense(2 * D, D),
            head: dense(D, 3),
        }
    }

    /// The forward pass, once: a class token, one pre-norm block, the class token's head.
    fn define<B: Builder>(&self, b: &mut B, x: B::Value) -> B::Value {
        let (t, dh) = (T + 1, D / HEADS);
        let x = b.prepend("cls", self.cls.clone(), x);
        let x = b.add_param("pos", self.pos.clone(), x);
        let h = b.layer_norm("ln1", self.ln1.clone(), x.clone());
        let heads = |b: &mut B, name: &str, dense: &Linear| {
            let y = b.layer(name, dense.clone(), h.clone());
            let y = b.reshape(&format!("{name}.heads"), &[t, HEADS, dh], y);
            b.permute(&format!("{name}.by_head"), &[1, 0, 2], y)
        };
        let (q, k, v) = (
            heads(b, "q", &self.q),
            heads(b, "k", &self.k),
            heads(b, "v", &self.v),
        );
        let kt = b.permute("kt", &[0, 2, 1], k);
        let scores = b.matmul("scores", q, kt);
        let scores = b.scale("scale", 1.0 / (dh as f64).sqrt(), scores);
        let attention = b.softmax("softmax", 2, scores);
        let context = b.matmul("context", attention, v);
        let context = b.permute("merge", &[1, 0, 2], context);
        let context = b.reshape("merged", &[t, D], context);
        let o = b.layer("o", self.o.clone(), context);
        let x = b.add("residual1", [x, o]);
        let h = b.layer_norm("ln2", self.ln2.clone(), x.clone());
        let m = b.layer("fc1", self.fc1.clone(), h);
        let m = b.layer("gelu", Gelu::new(), m);
        let m = b.layer("fc2", self.fc2.clone(), m);
        let x = b.add("residual2", [x, m]);
        let cls = b.slice("cls_token", 0, [0, 1], x);
        let cls = b.mean("pool", 0, cls);
        b.layer("head", self.head.clone(), cls)
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        Eager::run(x, |b, x| self.define(b, x))
    }
}

impl AsGraph for Transformer {
    fn as_graph(&self) -> Cow<'_, Graph> {
        Cow::Owned(Graph::build(|b, x| self.define(b, x)))
    }
}

fn input(device: &Device) -> Tensor<3> {
    Tensor::random([3, T, D], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn a_transformer_struct_runs_the_same_forward_pass_eagerly_and_as_a_graph() {
    let device = Device::default();
    device.seed(3);
    let model = Transformer::new(&device);
    let x = input(&device);
    let eager = values(model.forward(x.clone()));
    let graph = values(model.as_graph().forward(x));
    assert_eq!(eager.len(), 3 * 3);
    assert!(
        relative_error(&eager, &graph) < 1e-6,
        "{eager:?} vs {graph:?}"
    );
}

#[test]
fn the_transformer_struct_is_explained_alike_by_both_strategies() {
    let device = Device::default();
    device.seed(4);
    let model = Transformer::new(&device);
    let x = input(&device);
    let explain = |strategy| {
        let e = Explainer::new()
            .composite(Composite::attn_lrp())
            .strategy(strategy)
            .target(Target::Class(1))
            .explain(&model, x.clone())
            .unwrap();
        assert_eq!(e.relevance.dims(), [3, T, D]);
        values(e.relevance)
    };
    let (one_pass, layer_wise) = (explain(Strategy::Auto), explain(Strategy::LayerWise));
    assert!(one_pass.iter().any(|r| *r != 0.0));
    assert!(relative_error(&one_pass, &layer_wise) < 1e-5);
}

/// The examples' MNIST ViT, a struct written against `Builder`: its graph computes its output.
#[test]
fn the_mnist_vit_struct_and_its_graph_agree() {
    let device = Device::default();
    device.seed(5);
    let model = lrp_grad_suite::zoo::mnist_vit(&device);
    let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Default, &device);
    let eager = values(model.forward(x.clone()));
    let graph = values(model.as_graph().forward(x));
    assert!(relative_error(&eager, &graph) < 1e-6);
}

/// A user's operation whose LRP form is not conservative — a shift `x + c` by its plain
/// gradient, so `R_in = x · R / (x + c)` — in both strategies, against that rule in f64.
#[test]
fn a_user_operation_is_propagated_by_its_own_lrp_form_in_both_strategies() {
    use common::reference::{self, Matrix};
    use common::{linear, random_vec, rng, tensor};
    use lrp_grad::{Operation, Rule};

    #[derive(Debug)]
    struct Shift(f32);
    impl Operation for Shift {
        fn kind(&self) -> &'static str {
            "shift"
        }
        fn output_shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
            Ok(input)
        }
        fn forward(&self, x: Tensor<4>) -> Tensor<4> {
            x.add_scalar(self.0)
        }
        fn lrp_forward(&self, x: Tensor<4>) -> Tensor<4> {
            x.add_scalar(self.0)
        }
    }

    let mut r = rng(9);
    let (w1, b1) = (
        random_vec(&mut r, 20, -1.0, 1.0),
        random_vec(&mut r, 5, -0.2, 0.2),
    );
    let (w2, b2) = (
        random_vec(&mut r, 10, -1.0, 1.0),
        random_vec(&mut r, 2, -0.2, 0.2),
    );
    let x = random_vec(&mut r, 3 * 4, -1.0, 1.0);
    let mut graph = Graph::new();
    let input = graph.input();
    let h = graph.layer("fc1", linear(&w1, Some(&b1), 4, 5), input);
    let h = graph.custom("shift", Shift(0.5), h);
    graph.layer("fc2", linear(&w2, Some(&b2), 5, 2), h);
    let rule = Rule::Epsilon { epsilon: 0.01 };
    let (m1, m2) = (
        Matrix::dense(&w1, Some(&b1), 4, 5),
        Matrix::dense(&w2, Some(&b2), 5, 2),
    );
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .rule(rule.clone())
            .strategy(strategy)
            .target(Target::Class(0))
            .explain(&graph, tensor(x.clone(), [3, 4]))
            .unwrap();
        let relevance = values(e.relevance);
        for n in 0..3 {
            let xs: Vec<f64> = x[n * 4..(n + 1) * 4].iter().map(|v| *v as f64).collect();
            let z1 = m1.forward(&xs);
            let h: Vec<f64> = z1.iter().map(|z| z + 0.5).collect();
            let logits = m2.forward(&h);
            let r_h = reference::lrp(&rule, &m2, &h, &[logits[0], 0.0]);
            let r_z: Vec<f64> = z1
                .iter()
                .zip(&h)
                .zip(&r_h)
                .map(|((z, h), r)| z * r / h)
                .collect();
            let want: Vec<f32> = reference::lrp(&rule, &m1, &xs, &r_z)
                .iter()
                .map(|v| *v as f32)
                .collect();
            let got = &relevance[n * 4..(n + 1) * 4];
            assert!(
                relative_error(got, &want) < 1e-5,
                "{strategy:?} {n}: {got:?} vs {want:?}"
            );
        }
    }
}

/// The graph's output is the value the forward pass returns, even when more nodes follow it.
#[test]
fn a_built_graph_outputs_the_value_its_forward_pass_returns() {
    use burn::nn::Relu;
    let device = Device::default();
    device.seed(6);
    let fc = LinearConfig::new(4, 3).init(&device);
    let define = |b: &mut Graph, x| {
        let y = b.layer("fc", fc.clone(), x);
        b.layer("unused", Relu::new(), y);
        y
    };
    let x = Tensor::<2>::random([2, 4], Distribution::Default, &device);
    let graph = Graph::build(define);
    assert_eq!(
        values(graph.forward(x.clone())),
        values(fc.forward(x.clone()))
    );
    // The dead branch takes no relevance; both strategies explain the output.
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .rule(lrp_grad::Rule::Epsilon { epsilon: 1e-6 })
            .strategy(strategy)
            .target(Target::Class(0))
            .explain(&graph, x.clone())
            .unwrap();
        assert_eq!(e.relevance.dims(), [2, 4]);
    }
}
