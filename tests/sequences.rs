//! Sequences `[N, T, D]` (tokens × features) against an independent f64 reference: linear layers
//! map every token's features (PyTorch's `nn.Linear` on the last axis), a residual addition,
//! a fan-out into two token-wise branches concatenated on the feature axis, a transpose to
//! `[D, T]` and a flatten. Every rule, both strategies. The reference writes each token-wise
//! layer as its block-diagonal matrix over the flattened sample (connections only within a
//! token, which is what flat and w-square count).

mod common;

use burn::nn::Relu;
use burn::tensor::Tensor;
use common::reference::{Matrix, all_rules, lrp};
use common::{
    DenseWeights, assert_close, device, linear, random_dense, random_vec, rng, tensor, values,
};
use lrp_grad::{Composite, Explainer, FeatureShape, Graph, Strategy};

const T: usize = 4;
const D: usize = 5;
const H: usize = 6;
const B: usize = 2;
const CLASSES: usize = 3;

/// `[out, in]` weights and biases of the five dense layers.
struct Weights(Vec<DenseWeights>);

fn weights(seed: u64) -> Weights {
    let shapes = [(D, H), (H, H), (H, B), (H, B), (2 * B * T, CLASSES)];
    Weights(random_dense(seed, &shapes))
}

/// `x [T, D] → a (token-wise) → relu = h; h + b(h) → relu = u; concat(c(u), d(u)) on the
/// feature axis [T, 2B] → transpose [2B, T] → flatten → e`.
fn token_model(w: &Weights) -> Graph {
    let layer = |k: usize| {
        let (weight, bias, i, o) = &w.0[k];
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
    let cat = g.concat("features", 1, [c, d]);
    let swapped = g.permute("transpose", [1, 0], cat);
    let flat = g.layer("flatten", lrp_grad::Flatten, swapped);
    g.layer("e", layer(4), flat);
    g
}

/// A token-wise dense layer as the block-diagonal matrix over a flattened `[T, d_in]` sample.
fn token_wise(weight: &[f32], bias: &[f32], d_in: usize, d_out: usize) -> Matrix {
    let one = Matrix::dense(weight, Some(bias), d_in, d_out);
    let mut m = Matrix {
        w: vec![vec![0.0; T * d_in]; T * d_out],
        connected: vec![vec![false; T * d_in]; T * d_out],
        b: Vec::with_capacity(T * d_out),
    };
    for t in 0..T {
        for o in 0..d_out {
            for i in 0..d_in {
                m.w[t * d_out + o][t * d_in + i] = one.w[o][i];
                m.connected[t * d_out + o][t * d_in + i] = true;
            }
        }
        m.b.extend(&one.b);
    }
    m
}

/// The reference explanation of one sample `[T, D]` (flattened), in f64.
fn reference(w: &Weights, rule: &lrp_grad::Rule, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m: Vec<Matrix> = w.0[..4]
        .iter()
        .map(|(weight, bias, i, o)| token_wise(weight, bias, *i, *o))
        .chain(std::iter::once({
            let (weight, bias, i, o) = &w.0[4];
            Matrix::dense(weight, Some(bias), *i, *o)
        }))
        .collect();
    let relu = |v: &[f64]| v.iter().map(|v| v.max(0.0)).collect::<Vec<_>>();
    let h = relu(&m[0].forward(x));
    let b = m[1].forward(&h);
    let s: Vec<f64> = h.iter().zip(&b).map(|(p, q)| p + q).collect();
    let u = relu(&s);
    let (c, d) = (m[2].forward(&u), m[3].forward(&u));
    // concat on features: cat[t][j] = c[t][j] for j < B, d[t][j - B] after; then [2B, T].
    let cat_at = |t: usize, j: usize| {
        if j < B {
            c[t * B + j]
        } else {
            d[t * B + j - B]
        }
    };
    let flat: Vec<f64> = (0..2 * B)
        .flat_map(|j| (0..T).map(move |t| (j, t)))
        .map(|(j, t)| cat_at(t, j))
        .collect();
    let out = m[4].forward(&flat);
    let target = (0..CLASSES)
        .max_by(|&i, &j| out[i].total_cmp(&out[j]))
        .expect("outputs");
    let mut r_out = vec![0.0; CLASSES];
    r_out[target] = out[target];

    let r_flat = lrp(rule, &m[4], &flat, &r_out);
    // Back through the transpose and the concatenation: flat index j·T + t.
    let mut r_c = vec![0.0; T * B];
    let mut r_d = vec![0.0; T * B];
    for j in 0..2 * B {
        for t in 0..T {
            let r = r_flat[j * T + t];
            if j < B {
                r_c[t * B + j] = r;
            } else {
                r_d[t * B + j - B] = r;
            }
        }
    }
    let from_c = lrp(rule, &m[2], &u, &r_c);
    let from_d = lrp(rule, &m[3], &u, &r_d);
    let r_s: Vec<f64> = from_c.iter().zip(&from_d).map(|(p, q)| p + q).collect();
    let stab = |z: f64| z + 1e-6 * if z >= 0.0 { 1.0 } else { -1.0 };
    let r_b: Vec<f64> = (0..T * H).map(|i| b[i] * r_s[i] / stab(s[i])).collect();
    let from_b = lrp(rule, &m[1], &h, &r_b);
    let r_h: Vec<f64> = (0..T * H)
        .map(|i| h[i] * r_s[i] / stab(s[i]) + from_b[i])
        .collect();
    (lrp(rule, &m[0], x, &r_h), out)
}

#[test]
fn token_wise_layers_residual_concat_and_transpose_match_the_reference_for_every_rule() {
    let w = weights(21);
    let model = token_model(&w);
    assert_eq!(
        model.shapes(FeatureShape::sequence(T, D)).unwrap()[8],
        FeatureShape::sequence(T, 2 * B),
        "the concatenation of two [T, B] branches on the feature axis"
    );
    let n = 3;
    let x = random_vec(&mut rng(22), n * T * D, -1.0, 1.0);
    for rule in all_rules() {
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let e = Explainer::new()
                .composite(Composite::uniform(rule.clone()))
                .strategy(strategy)
                .explain(&model, tensor(x.clone(), [n, T, D]))
                .unwrap_or_else(|e| panic!("{rule:?}: {e}"));
            assert_eq!(e.relevance.dims(), [n, T, D]);
            let (relevance, outputs) = (values(e.relevance), values(e.output));
            for sample in 0..n {
                let per = T * D;
                let input: Vec<f64> = x[sample * per..(sample + 1) * per]
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect();
                let (expected, out) = reference(&w, &rule, &input);
                let f32s = |v: &[f64]| v.iter().map(|v| *v as f32).collect::<Vec<f32>>();
                let got_out = &outputs[sample * CLASSES..(sample + 1) * CLASSES];
                assert_close(got_out, &f32s(&out), 1e-5);
                let got = &relevance[sample * per..(sample + 1) * per];
                // f32 against f64: flat and w-square divide by small sums, hence 1e-4.
                assert_close(got, &f32s(&expected), 1e-4);
            }
        }
    }
}

/// A linear layer on `[N, T, D]` is PyTorch's: every token mapped by the same weights, the
/// output `[N, T, D']`; a layer that does not fit the last axis names the shape it expected.
#[test]
fn a_linear_layer_maps_the_last_axis_and_says_what_it_expected() {
    let weight = random_vec(&mut rng(23), D * H, -1.0, 1.0);
    let mut g = Graph::new();
    let x = g.input();
    let y = g.layer("proj", linear(&weight, None, D, H), x);
    g.layer("flatten", lrp_grad::Flatten, y);
    let input = random_vec(&mut rng(24), 2 * T * D, -1.0, 1.0);
    let out = values(g.forward(tensor(input.clone(), [2, T, D])));
    // Token t of sample n: out[n][t·H + o] = Σ_i W[o][i] · x[n][t][i].
    for n in 0..2 {
        for t in 0..T {
            for o in 0..H {
                let expected: f64 = (0..D)
                    .map(|i| f64::from(weight[o * D + i]) * f64::from(input[(n * T + t) * D + i]))
                    .sum();
                let got = f64::from(out[n * T * H + t * H + o]);
                assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
            }
        }
    }
    let x: Tensor<3> = Tensor::zeros([2, T, D + 1], &device());
    let err = g.try_forward(x).unwrap_err().to_string();
    assert!(
        err.contains("5 features on the last axis") && err.contains("[4, 6]"),
        "{err}"
    );
}
