//! Properties on random DAGs (dense layers, ReLUs, additions, concatenations, fan-out): without
//! biases, LRP-0 conserves relevance (the input's relevance sums to the explained logit), and
//! the one pass equals the layer-wise walk for every rule that has a one-pass form.

mod common;

use burn::nn::Relu;
use common::{linear, random_vec, relative_error, rng, tensor, values};
use lrp_grad::{Composite, Explainer, Graph, NodeId, Rule, Strategy};
use proptest::prelude::{ProptestConfig, any, prop, prop_assert, prop_oneof, proptest};
use proptest::strategy::Strategy as _;

const WIDTH: usize = 5;

/// One random step: what the next node does and which earlier values it reads.
#[derive(Debug, Clone)]
enum Step {
    Dense { from: usize, relu: bool },
    Add { a: usize, b: usize },
    Concat { a: usize, b: usize },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    prop_oneof![
        (any::<usize>(), any::<bool>()).prop_map(|(from, relu)| Step::Dense { from, relu }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Step::Add { a, b }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Step::Concat { a, b }),
    ]
}

/// A graph whose every value is `[WIDTH]`: a dense layer after each concatenation brings it
/// back to WIDTH; the last node maps the last value to 3 classes.
fn build(steps: &[Step], seed: u64, bias: bool) -> Graph {
    let r = &mut rng(seed);
    let mut dense = |g: &mut Graph, name: String, d_in: usize, d_out: usize, x: NodeId| {
        let w = random_vec(r, d_in * d_out, -1.0, 1.0);
        let b = random_vec(r, d_out, -0.3, 0.3);
        g.layer(name, linear(&w, bias.then_some(&b[..]), d_in, d_out), x)
    };
    let mut g = Graph::new();
    let x = g.input();
    let mut values = vec![dense(&mut g, "in".into(), WIDTH, WIDTH, x)];
    for (k, step) in steps.iter().enumerate() {
        let pick = |i: usize| values[i % values.len()];
        let next = match *step {
            Step::Dense { from, relu } => {
                let h = dense(&mut g, format!("dense{k}"), WIDTH, WIDTH, pick(from));
                if relu {
                    g.layer(format!("relu{k}"), Relu::new(), h)
                } else {
                    h
                }
            }
            Step::Add { a, b } => g.add(format!("add{k}"), [pick(a), pick(b)]),
            Step::Concat { a, b } => {
                let c = g.concat(format!("cat{k}"), 0, [pick(a), pick(b)]);
                dense(&mut g, format!("merge{k}"), 2 * WIDTH, WIDTH, c)
            }
        };
        values.push(next);
    }
    let last = *values.last().expect("values");
    dense(&mut g, "out".into(), WIDTH, 3, last);
    g
}

fn explain(
    model: &Graph,
    composite: Composite,
    strategy: Strategy,
    x: &[f32],
) -> lrp_grad::Explanation<2> {
    Explainer::new()
        .composite(composite)
        .strategy(strategy)
        .explain(model, tensor(x.to_vec(), [x.len() / WIDTH, WIDTH]))
        .expect("a well-formed random graph explains")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn lrp_zero_conserves_relevance_on_bias_free_dags(
        steps in prop::collection::vec(step(), 1..8),
        seed in 0u64..1000,
    ) {
        let model = build(&steps, seed, false);
        let x = random_vec(&mut rng(seed + 1), 3 * WIDTH, -1.0, 1.0);
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let e = explain(&model, Composite::uniform(Rule::Zero), strategy, &x);
            let output = values(e.output.clone());
            let targets = e.targets.clone().expect("targets");
            for (sample, sum) in e.relevance_sums().iter().enumerate() {
                let logit = output[sample * 3 + targets[sample]];
                // Additions take Norm (ε = 1e-6), which absorbs a little where a sum is near 0.
                prop_assert!(
                    (sum - logit).abs() <= 1e-3 * logit.abs().max(1.0),
                    "{strategy:?} sample {sample}: Σ R = {sum}, logit = {logit}, steps {steps:?}"
                );
            }
        }
    }

    #[test]
    fn the_one_pass_equals_the_layer_wise_walk_on_dags(
        steps in prop::collection::vec(step(), 1..8),
        seed in 0u64..1000,
        rule in prop::sample::select(vec![
            Rule::Epsilon { epsilon: 0.01 },
            Rule::Gamma { gamma: 0.25 },
            Rule::AlphaBeta { alpha: 2.0, beta: 1.0 },
            Rule::ZPlus,
        ]),
    ) {
        let model = build(&steps, seed, true);
        let x = random_vec(&mut rng(seed + 2), 3 * WIDTH, -1.0, 1.0);
        let composite = Composite::uniform(rule.clone());
        let auto = values(explain(&model, composite.clone(), Strategy::Auto, &x).relevance);
        let layer_wise = values(explain(&model, composite, Strategy::LayerWise, &x).relevance);
        let error = relative_error(&auto, &layer_wise);
        prop_assert!(error < 1e-4, "{rule:?}: {error:.2e}, steps {steps:?}");
    }
}
