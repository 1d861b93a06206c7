//! The metrics' checks on small models whose answers are known by construction: ROAD's
//! imputation and curve, completeness, input invariance, the random-logit test and MPRT's
//! layer orders.

mod common;

use burn::nn::Relu;
use common::{ConvGeometry, conv, linear, random_vec, rng, tensor, values};
use lrp_grad::metrics::{self, Baseline, Images, LayerOrder, Score, Similarity};
use lrp_grad::{Explainer, Flatten, Graph, Method, Rule, Sequential};

const G: ConvGeometry = ConvGeometry {
    in_channels: 1,
    out_channels: 3,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [0, 0],
    dilation: [1, 1],
    groups: 1,
};

/// Conv 3×3 (no padding) → ReLU → flatten → dense to 4 classes, on `[1, 8, 8]` inputs.
fn conv_net(bias: bool) -> Graph {
    let mut r = rng(3);
    let (w1, b1) = (
        random_vec(&mut r, 27, -0.5, 0.5),
        random_vec(&mut r, 3, -0.1, 0.1),
    );
    let (w2, b2) = (
        random_vec(&mut r, 4 * 108, -0.3, 0.3),
        random_vec(&mut r, 4, -0.1, 0.1),
    );
    let model = Sequential::new()
        .push(conv(G, &w1, bias.then_some(&b1[..])))
        .push(Relu::new())
        .push(Flatten)
        .push(linear(&w2, bias.then_some(&b2[..]), 108, 4));
    Graph::from_sequential(&model)
}

fn inputs(n: usize, seed: u64) -> Vec<f32> {
    random_vec(&mut rng(seed), n * 64, 0.0, 1.0)
}

#[test]
fn lrp_0_on_a_bias_free_relu_network_is_complete() {
    let graph = conv_net(false);
    let x = inputs(3, 1);
    let explained = Explainer::new()
        .rule(Rule::Epsilon { epsilon: 1e-30 })
        .explain(&graph, tensor(x.clone(), [3, 1, 8, 8]))
        .unwrap();
    let (a, targets) = (values(explained.relevance), explained.targets.unwrap());
    let images = Images {
        x: &x,
        a: &a,
        dims: [3, 1, 8, 8],
        targets: &targets,
    };
    // f(0) = 0 without biases, so Σ R = f(x) − f(0) = the logit.
    for (sum, drop) in
        metrics::completeness(&graph, images, (Baseline::Value(0.0), Score::Logit)).unwrap()
    {
        assert!(
            (sum - drop).abs() <= 1e-5 * drop.abs(),
            "Σ R {sum} vs f(x) − f(0) {drop}"
        );
    }
}

#[test]
fn the_gradient_is_input_invariant_and_gradient_times_input_is_not() {
    let graph = conv_net(true);
    let x = tensor(inputs(4, 2), [4, 1, 8, 8]);
    let gradient = Explainer::new().method(Method::Gradient);
    let moved = metrics::input_invariance(&graph, &gradient, x.clone(), -1.0).unwrap();
    assert!(moved.iter().all(|&d| d <= 1e-5), "{moved:?}");
    let times_input = Explainer::new().method(Method::GradientTimesInput);
    let moved = metrics::input_invariance(&graph, &times_input, x, -1.0).unwrap();
    assert!(moved.iter().all(|&d| d > 1e-2), "{moved:?}");
}

#[test]
fn input_invariance_names_a_first_layer_that_cannot_absorb_the_shift() {
    let model = Sequential::new()
        .push(Flatten)
        .push(linear(&[0.5; 128], None, 64, 2));
    let graph = Graph::from_sequential(&model);
    let err = metrics::input_invariance(
        &graph,
        &Explainer::new(),
        tensor(inputs(1, 3), [1, 1, 8, 8]),
        1.0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("reads the input") && err.contains("flatten"),
        "{err}"
    );
}

/// A dense model on the flattened input whose three class rows are `rows(k)`.
fn dense_classes(rows: impl Fn(usize) -> Vec<f32>) -> Graph {
    let weight: Vec<f32> = (0..3).flat_map(rows).collect();
    Graph::from_sequential(
        &Sequential::new()
            .push(Flatten)
            .push(linear(&weight, None, 64, 3)),
    )
}

#[test]
fn random_logit_is_one_where_every_class_has_the_same_explanation() {
    let row = random_vec(&mut rng(7), 64, -1.0, 1.0);
    let x = tensor(inputs(4, 4), [4, 1, 8, 8]);
    let gradient = Explainer::new().method(Method::Gradient);
    // Equal rows: the gradient of every logit is that row.
    let blind = dense_classes(|_| row.clone());
    let s = metrics::random_logit(&blind, &gradient, x.clone(), (Similarity::Spearman, 5)).unwrap();
    assert!(s.iter().all(|&v| (v - 1.0).abs() < 1e-12), "{s:?}");
    // Independent rows: the other class's gradient ranks the inputs otherwise.
    let seeded = |k: usize| random_vec(&mut rng(10 + k as u64), 64, -1.0, 1.0);
    let aware = dense_classes(seeded);
    let s = metrics::random_logit(&aware, &gradient, x.clone(), (Similarity::Spearman, 5)).unwrap();
    assert!(s.iter().all(|&v| v < 0.9), "{s:?}");
    let again = metrics::random_logit(&aware, &gradient, x, (Similarity::Spearman, 5)).unwrap();
    assert_eq!(s, again, "seeded");
}

#[test]
fn mprt_orders_randomise_the_top_first_or_one_layer_at_a_time() {
    let graph = conv_net(true);
    let x = tensor(inputs(2, 6), [2, 1, 8, 8]);
    let lrp = Explainer::new().rule(Rule::Epsilon { epsilon: 1e-6 });
    let names = |order| {
        (metrics::mprt(&graph, &lrp, x.clone(), (order, Similarity::Spearman, 1)).unwrap())
            .into_iter()
            .map(|(name, s)| {
                assert_eq!(s.len(), 2);
                name
            })
            .collect::<Vec<_>>()
    };
    let layers: Vec<String> = (graph.nodes().iter())
        .filter(|n| matches!(n.op.kind(), "linear" | "conv2d"))
        .map(|n| n.name.clone())
        .rev()
        .collect();
    assert_eq!(names(LayerOrder::Cascading), layers);
    assert_eq!(names(LayerOrder::Independent), layers);
    // Randomising only the last layer leaves the first one's weights: the graphs differ in
    // exactly the chosen layers.
    let (top, chosen) = metrics::randomise_top_layers(&graph, 1, 9);
    assert_eq!(chosen, [layers[0].clone()]);
    assert_eq!(graph.nodes()[0].op.kind(), top.nodes()[0].op.kind());
    // Seeded on the host: one seed, one model; another seed, another.
    let logits = |g: &Graph| values(g.forward(x.clone()));
    let again = metrics::randomise_top_layers(&graph, 1, 9).0;
    assert_eq!(logits(&top), logits(&again));
    assert_ne!(
        logits(&top),
        logits(&metrics::randomise_top_layers(&graph, 1, 10).0)
    );
    assert_eq!(
        logits(&graph),
        logits(&metrics::randomise_top_layers(&graph, 0, 9).0)
    );
}
