//! Graph models against an independent f64 reference: a residual addition, fan-out, a diamond
//! and a concatenation, every rule, both strategies. The reference walks the graph by hand with
//! explicit matrices (`common::reference`), sums relevance over a value's readers, splits it at
//! the concatenation and gives an addition Zennit's `Norm` rule for its `Sum`.

mod common;

use burn::nn::Relu;
use common::reference::{Matrix, all_rules, lrp};
use common::{DenseWeights, assert_close, linear, random_dense, random_vec, rng, tensor, values};
use lrp_grad::{Composite, Explainer, Graph, LayerType, Rule, Strategy, Target};

const D: usize = 6;

/// Weights `[out, in]` and biases of the five dense layers of [`residual_diamond`].
struct Weights {
    dense: Vec<DenseWeights>,
}

fn weights(seed: u64) -> Weights {
    let shapes = [(D, D), (D, D), (D, 4), (D, 4), (8, 3)];
    Weights {
        dense: random_dense(seed, &shapes),
    }
}

/// `x → A → relu = h; B(h) + h (residual) → relu = u; concat(C(u), D(u)) (a diamond on the
/// fan-out of u) → E`.
fn residual_diamond(w: &Weights) -> Graph {
    let layer = |k: usize| {
        let (weight, bias, i, o) = &w.dense[k];
        linear(weight, Some(bias), *i, *o)
    };
    let mut g = Graph::new();
    let x = g.input();
    let a = g.layer("a", layer(0), x);
    let h = g.layer("a_relu", Relu::new(), a);
    let b = g.layer("b", layer(1), h);
    let s = g.add("residual", [h, b]);
    let u = g.layer("relu", Relu::new(), s);
    let c = g.layer("c", layer(2), u);
    let d = g.layer("d", layer(3), u);
    let cat = g.concat("cat", 0, [c, d]);
    g.layer("e", layer(4), cat);
    g
}

/// The reference explanation of one sample by the graph's definition, in f64.
fn reference(w: &Weights, rule: &Rule, x: &[f64]) -> (Vec<f64>, usize) {
    let m: Vec<Matrix> = w
        .dense
        .iter()
        .map(|(weight, bias, i, o)| Matrix::dense(weight, Some(bias), *i, *o))
        .collect();
    let relu = |v: Vec<f64>| v.into_iter().map(|v| v.max(0.0)).collect::<Vec<_>>();
    let a = m[0].forward(x);
    let h = relu(a);
    let b = m[1].forward(&h);
    let s: Vec<f64> = h.iter().zip(&b).map(|(p, q)| p + q).collect();
    let u = relu(s.clone());
    let c = m[2].forward(&u);
    let d = m[3].forward(&u);
    let cat: Vec<f64> = c.iter().chain(&d).copied().collect();
    let out = m[4].forward(&cat);
    let target = (0..out.len())
        .max_by(|&i, &j| out[i].total_cmp(&out[j]))
        .expect("outputs");
    let mut r_out = vec![0.0; out.len()];
    r_out[target] = out[target];

    let r_cat = lrp(rule, &m[4], &cat, &r_out);
    let r_c = lrp(rule, &m[2], &u, &r_cat[..4]);
    let r_d = lrp(rule, &m[3], &u, &r_cat[4..]);
    // Fan-out: u's relevance is the sum over its two readers; ReLU passes it to s.
    let r_s: Vec<f64> = r_c.iter().zip(&r_d).map(|(p, q)| p + q).collect();
    // The residual sum: Norm, R_i = x_i · R / stab(Σx) with ε = 1e-6.
    let stab = |z: f64| z + 1e-6 * if z >= 0.0 { 1.0 } else { -1.0 };
    let r_h_skip: Vec<f64> = (0..D).map(|i| h[i] * r_s[i] / stab(s[i])).collect();
    let r_b: Vec<f64> = (0..D).map(|i| b[i] * r_s[i] / stab(s[i])).collect();
    let r_h_branch = lrp(rule, &m[1], &h, &r_b);
    let r_h: Vec<f64> = r_h_skip
        .iter()
        .zip(&r_h_branch)
        .map(|(p, q)| p + q)
        .collect();
    (lrp(rule, &m[0], x, &r_h), target)
}

#[test]
fn residual_fan_out_diamond_and_concat_match_the_reference_for_every_rule() {
    let w = weights(11);
    let model = residual_diamond(&w);
    let n = 3;
    let x = random_vec(&mut rng(12), n * D, -1.0, 1.0);
    for rule in all_rules() {
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let explanation = Explainer::new()
                .composite(Composite::uniform(rule.clone()))
                .strategy(strategy)
                .explain(&model, tensor(x.clone(), [n, D]))
                .unwrap_or_else(|e| panic!("{rule:?}: {e}"));
            let actual = values(explanation.relevance);
            let targets = explanation.targets.expect("class targets");
            for sample in 0..n {
                let input: Vec<f64> = x[sample * D..(sample + 1) * D]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                let (expected, target) = reference(&w, &rule, &input);
                assert_eq!(targets[sample], target, "{rule:?}");
                let expected: Vec<f32> = expected.iter().map(|v| *v as f32).collect();
                let got = &actual[sample * D..(sample + 1) * D];
                // f32 against f64: flat and w-square divide by small sums, hence 1e-4.
                assert_close(got, &expected, 1e-4);
            }
        }
    }
}

/// A sequential model is the chain graph: nodes named by index (as PyTorch names the children
/// of `nn.Sequential`), the same outputs as the sequential model's own forward pass, and the
/// reference's relevance.
#[test]
fn a_sequential_model_is_the_chain_graph() {
    let w = weights(3);
    let (weight, bias, i, o) = &w.dense[0];
    let (weight2, bias2, ..) = &w.dense[4];
    let sequential = lrp_grad::Sequential::new()
        .push(linear(weight, Some(bias), *i, *o))
        .push(Relu::new())
        .push(linear(&weight2[..D * 3], Some(bias2), D, 3));
    let graph = Graph::from_sequential(&sequential);
    let names: Vec<&str> = graph.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"]);
    let x = random_vec(&mut rng(4), 2 * D, -1.0, 1.0);
    let own = values(sequential.forward(tensor(x.clone(), [2, D])));
    assert_eq!(values(graph.forward(tensor(x.clone(), [2, D]))), own);

    let rule = Rule::Epsilon { epsilon: 0.1 };
    let explanation = Explainer::new()
        .rule(rule.clone())
        .target(Target::Class(1))
        .explain(&sequential, tensor(x.clone(), [2, D]))
        .expect("explains");
    let first = Matrix::dense(weight, Some(bias), D, D);
    let second = Matrix::dense(&weight2[..D * 3], Some(bias2), D, 3);
    let relevance = values(explanation.relevance);
    for sample in 0..2 {
        let input: Vec<f64> = x[sample * D..(sample + 1) * D]
            .iter()
            .map(|v| *v as f64)
            .collect();
        let hidden: Vec<f64> = first
            .forward(&input)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let out = second.forward(&hidden);
        let r_out = [0.0, out[1], 0.0];
        let r_hidden = lrp(&rule, &second, &hidden, &r_out);
        let expected: Vec<f32> = lrp(&rule, &first, &input, &r_hidden)
            .iter()
            .map(|v| *v as f32)
            .collect();
        assert_close(&relevance[sample * D..(sample + 1) * D], &expected, 1e-5);
    }
}

#[test]
fn nodes_are_found_by_name_and_additions_by_type() {
    let model = residual_diamond(&weights(5));
    let composite = Composite::uniform(Rule::Epsilon { epsilon: 0.1 })
        .with_name("[cd]", Rule::ZPlus)
        .with_type(LayerType::Add, Rule::Epsilon { epsilon: 0.5 });
    let plan = composite.plan(&model).expect("plan");
    let names: Vec<&str> = model.nodes().iter().map(|n| n.name.as_str()).collect();
    let rule_of = |name: &str| plan[names.iter().position(|n| *n == name).expect("node")].clone();
    assert_eq!(rule_of("c"), lrp_grad::Propagation::Rule(Rule::ZPlus));
    assert_eq!(rule_of("d"), lrp_grad::Propagation::Rule(Rule::ZPlus));
    assert_eq!(
        rule_of("b"),
        lrp_grad::Propagation::Rule(Rule::Epsilon { epsilon: 0.1 })
    );
    assert_eq!(
        rule_of("residual"),
        lrp_grad::Propagation::Rule(Rule::Epsilon { epsilon: 0.5 })
    );
    assert_eq!(rule_of("cat"), lrp_grad::Propagation::Pass);
    let err = Composite::uniform(Rule::ZPlus)
        .with_name("[", Rule::Zero)
        .plan(&model)
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid node-name pattern `[`"),
        "{err}"
    );
}

#[test]
fn bad_graphs_are_reported_with_the_node_at_fault() {
    let w = weights(6);
    let (weight, bias, i, o) = &w.dense[0];
    let x = || tensor(vec![0.5; 2 * D], [2, D]);

    let mut g = Graph::new();
    let input = g.input();
    let a = g.layer("a", linear(weight, Some(bias), *i, *o), input);
    g.add("sum", [a]);
    let err = lrp_grad::explain(&g, x()).unwrap_err();
    assert!(
        err.to_string()
            .contains("graph node 1 (`sum`): add expects two or more inputs, got 1"),
        "{err}"
    );

    let mut g = Graph::new();
    let input = g.input();
    let a = g.layer("a", linear(weight, Some(bias), *i, *o), input);
    g.layer("a", Relu::new(), a);
    let err = lrp_grad::explain(&g, x()).unwrap_err();
    assert!(
        err.to_string()
            .contains("(`a`): another node has the same name"),
        "{err}"
    );

    let mut g = Graph::new();
    let input = g.input();
    let (weight4, bias4, ..) = &w.dense[2];
    let a = g.layer("a", linear(weight4, Some(bias4), D, 4), input);
    g.add("mismatch", [a, input]);
    let err = lrp_grad::explain(&g, x()).unwrap_err();
    assert!(
        err.to_string()
            .contains("added values must have one shape, got [4] and [6]"),
        "{err}"
    );

    let err = Explainer::new()
        .target(Target::Class(9))
        .explain(&residual_diamond(&w), x())
        .unwrap_err();
    assert!(err.to_string().contains("target class 9"), "{err}");
}

/// A rule written outside the library from the public building blocks gives what the built-in
/// rule of the same definition gives, in both strategies.
#[test]
fn custom_rules_from_the_building_blocks_equal_the_built_in_ones() {
    use lrp_grad::{CustomRule, Group, InputMod as I, OutputMask, ParamMod as P, Term};
    let w = weights(8);
    let model = residual_diamond(&w);
    let x = tensor(random_vec(&mut rng(9), 2 * D, -1.0, 1.0), [2, D]);
    let gamma = 0.4f32;
    let custom_gamma = CustomRule::new(
        "my-gamma",
        vec![
            Group::new(
                vec![
                    Term::new(I::Positive, P::GammaPositive(gamma)),
                    Term::new(I::Negative, P::GammaNegative(gamma)).without_bias(),
                ],
                1e-6,
            )
            .masked(OutputMask::Positive),
            Group::new(
                vec![
                    Term::new(I::Positive, P::GammaNegative(gamma)),
                    Term::new(I::Negative, P::GammaPositive(gamma)).without_bias(),
                ],
                1e-6,
            )
            .masked(OutputMask::Negative),
        ],
    );
    let custom_alpha_beta = CustomRule::new(
        "my-alpha-beta",
        vec![
            Group::new(
                vec![
                    Term::new(I::Positive, P::Positive),
                    Term::new(I::Negative, P::Negative).without_bias(),
                ],
                1e-6,
            )
            .scaled(2.0),
            Group::new(
                vec![
                    Term::new(I::Positive, P::Negative),
                    Term::new(I::Negative, P::Positive).without_bias(),
                ],
                1e-6,
            )
            .scaled(-1.0),
        ],
    );
    for (custom, built_in) in [
        (
            custom_gamma,
            Rule::Gamma {
                gamma: gamma as f64,
            },
        ),
        (
            custom_alpha_beta,
            Rule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            },
        ),
    ] {
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let run = |rule: Rule| {
                values(
                    Explainer::new()
                        .rule(rule)
                        .strategy(strategy)
                        .explain(&model, x.clone())
                        .expect("explains")
                        .relevance,
                )
            };
            let name = custom.name.clone();
            assert_close(
                &run(Rule::Custom(custom.clone())),
                &run(built_in.clone()),
                1e-6,
            );
            assert_eq!(
                Rule::Custom(custom.clone()).to_string(),
                format!("custom:{name}")
            );
        }
    }
    let bounded = CustomRule::new(
        "bounded",
        vec![Group::new(vec![Term::new(I::Low, P::Positive)], 1e-6)],
    );
    let err = Rule::Custom(bounded).validate().unwrap_err().to_string();
    assert!(
        err.contains("`bounded`: group 0: bound inputs are for the built-in z-box rule only"),
        "{err}"
    );
}

/// A permutation and a reshape move relevance with the values: `permute([1, 2, 0])` then
/// `reshape([24])` then a dense layer explains exactly as `flatten` then the dense layer with
/// its columns permuted the same way.
#[test]
fn permutations_and_reshapes_move_relevance_with_the_values() {
    let (c, h, w) = (2, 3, 4);
    let n_in = c * h * w;
    let weight = random_vec(&mut rng(13), 3 * n_in, -1.0, 1.0);
    let bias = random_vec(&mut rng(14), 3, -0.2, 0.2);
    // Column j of the permuted layer reads position j of [H, W, C]; the same value sits at
    // ((ch·H + y)·W + x) of [C, H, W].
    let mut moved = vec![0.0f32; 3 * n_in];
    for o in 0..3 {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let hwc = (y * w + x) * c + ch;
                    let chw = (ch * h + y) * w + x;
                    moved[o * n_in + chw] = weight[o * n_in + hwc];
                }
            }
        }
    }
    let mut permuted = Graph::new();
    let x = permuted.input();
    let p = permuted.permute("to_hwc", [1, 2, 0], x);
    let r = permuted.reshape("flat", [n_in], p);
    permuted.layer("fc", linear(&weight, Some(&bias), n_in, 3), r);
    let mut flat = Graph::new();
    let x = flat.input();
    let f = flat.layer("flat", lrp_grad::Flatten, x);
    flat.layer("fc", linear(&moved, Some(&bias), n_in, 3), f);
    let input = tensor(random_vec(&mut rng(15), 2 * n_in, -1.0, 1.0), [2, c, h, w]);
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let run = |g: &Graph| {
            let e = Explainer::new()
                .rule(Rule::Epsilon { epsilon: 0.01 })
                .strategy(strategy)
                .explain(g, input.clone())
                .expect("explains");
            (values(e.output), values(e.relevance))
        };
        let (out_a, r_a) = run(&permuted);
        let (out_b, r_b) = run(&flat);
        assert_close(&out_a, &out_b, 1e-6);
        assert_close(&r_a, &r_b, 1e-6);
    }
    let mut bad = Graph::new();
    let x = bad.input();
    bad.reshape("wrong", [5], x);
    let err = lrp_grad::explain(&bad, input.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot reshape per-sample shape [2, 3, 4] (24 values) to [5]"),
        "{err}"
    );
    let mut bad = Graph::new();
    let x = bad.input();
    bad.permute("wrong", [0, 0, 1], x);
    let err = lrp_grad::explain(&bad, input).unwrap_err().to_string();
    assert!(err.contains("are not a permutation"), "{err}");
}

/// `F.normalize`'s node holds the norm constant (as LXT holds a norm's `rsqrt`): relevance
/// passes it unchanged, so on `dense(x / ‖x‖)` the relevance of `x` is the dense layer's
/// ε-rule relevance of its input `x / ‖x‖` — computed here in f64 loops — in both strategies.
#[test]
fn an_l2_normalization_passes_relevance_unchanged() {
    let mut r = rng(11);
    let (d_in, d_out, target) = (5, 3, 1);
    let w = random_vec(&mut r, d_out * d_in, -1.0, 1.0);
    let x = random_vec(&mut r, d_in, -1.0, 1.0);
    let mut g = Graph::new();
    let input = g.input();
    let normalized = g.push(
        "normalize",
        lrp_grad::Op::Normalize(lrp_grad::Normalize { epsilon: 1e-12 }),
        [input, input],
    );
    g.layer("dense", linear(&w, None, d_in, d_out), normalized);
    let norm: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    let y: Vec<f64> = x.iter().map(|&v| f64::from(v) / norm).collect();
    let z: f64 = (0..d_in)
        .map(|i| f64::from(w[target * d_in + i]) * y[i])
        .sum();
    let epsilon = 1e-6;
    let expected: Vec<f32> = (0..d_in)
        .map(|i| {
            let share = y[i] * f64::from(w[target * d_in + i]) / (z + epsilon * z.signum());
            (share * z) as f32
        })
        .collect();
    epsilon_rule_gives(&g, (&x[..], target), epsilon, &expected);
}

/// Zero padding moves relevance with the values: on `dense(pad(x))` the relevance of `x` is the
/// dense layer's ε-rule relevance of the padded input at `x`'s places (f64 loops), both
/// strategies.
#[test]
fn a_zero_padding_moves_relevance_with_the_values() {
    let mut r = rng(12);
    let (d_in, before, after, d_out, target) = (4, 1, 2, 3, 2);
    let d_pad = d_in + before + after;
    let w = random_vec(&mut r, d_out * d_pad, -1.0, 1.0);
    let x = random_vec(&mut r, d_in, -1.0, 1.0);
    let mut g = Graph::new();
    let input = g.input();
    let pad = lrp_grad::Pad {
        axis: 0,
        before,
        after,
    };
    let padded = g.push("pad", lrp_grad::Op::Pad(pad), [input]);
    g.layer("dense", linear(&w, None, d_pad, d_out), padded);
    let row = |i: usize| f64::from(w[target * d_pad + before + i]);
    let z: f64 = (0..d_in).map(|i| row(i) * f64::from(x[i])).sum();
    let epsilon = 1e-6;
    let expected: Vec<f32> = (0..d_in)
        .map(|i| (f64::from(x[i]) * row(i) * z / (z + epsilon * z.signum())) as f32)
        .collect();
    epsilon_rule_gives(&g, (&x[..], target), epsilon, &expected);
}

/// LRP-ε on the one-sample vector `x` for class `target` gives `expected`, in both strategies.
fn epsilon_rule_gives(g: &Graph, (x, target): (&[f32], usize), epsilon: f64, expected: &[f32]) {
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .rule(Rule::Epsilon { epsilon })
            .strategy(strategy)
            .target(Target::Class(target))
            .explain(g, tensor(x.to_vec(), [1, x.len()]))
            .unwrap();
        assert_close(&values(e.relevance), expected, 1e-5);
    }
}
