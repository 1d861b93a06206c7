//! AttnLRP and CP-LRP on an attention block against an independent f64 reference written from
//! LXT's formulas (`lxt.explicit.functional`) with explicit loops: a learned positional tensor
//! (`add2` with a constant), token-wise Q/K/V projections (`linear_epsilon`), scores `Q·Kᵀ`
//! (`matmul`: ε + uniform), a scale, softmax (Deep Taylor with bias), `softmax·V`, an output
//! projection, a residual sum (`add2`), layer norm (ε through `x − mean`, `1/std` constant), a
//! gated product (`mul2`: uniform), a mean over tokens (`mean`) and a classifier. Both
//! strategies.

mod common;

use burn::module::Param;
use burn::nn::Gelu;
use common::{assert_close, linear, random_vec, rng, tensor, values};
use lrp_grad::{
    AddParam, Composite, Explainer, FeatureShape, Graph, LayerNorm, OutputRelevance, Strategy,
    Target,
};

const T: usize = 3;
const D: usize = 4;
const CLASSES: usize = 3;
const LN_EPS: f64 = 1e-5;

/// Dense layers `[out, in]` + bias: q, k, v, o, u, g, head.
struct Weights {
    dense: Vec<(Vec<f32>, Vec<f32>, usize, usize)>,
    pos: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

fn weights(seed: u64) -> Weights {
    let shapes = [(D, D), (D, D), (D, D), (D, D), (D, D), (D, D), (D, CLASSES)];
    let mut r = rng(seed + 100);
    Weights {
        dense: common::random_dense(seed, &shapes),
        pos: random_vec(&mut r, T * D, -0.5, 0.5),
        gamma: random_vec(&mut r, D, 0.5, 1.5),
        beta: random_vec(&mut r, D, -0.3, 0.3),
    }
}

fn block(w: &Weights) -> Graph {
    let dense = |k: usize| {
        let (weight, bias, i, o) = &w.dense[k];
        linear(weight, Some(bias), *i, *o)
    };
    let mut norm = LayerNorm::new(D, LN_EPS, &common::device());
    norm.gamma = Param::from_tensor(tensor(w.gamma.clone(), [D]));
    norm.beta = Some(Param::from_tensor(tensor(w.beta.clone(), [D])));
    let mut g = Graph::new();
    let x = g.input();
    let pos = AddParam::new(tensor(w.pos.clone(), [T, D]), FeatureShape::sequence(T, D));
    let x = g.add_param("pos", pos, x);
    let q = g.layer("q", dense(0), x);
    let k = g.layer("k", dense(1), x);
    let v = g.layer("v", dense(2), x);
    let kt = g.permute("kt", [1, 0], k);
    let scores = g.matmul("scores", q, kt);
    let scores = g.scale("scale", 0.5, scores);
    let attention = g.softmax("softmax", 1, scores);
    let context = g.matmul("context", attention, v);
    let o = g.layer("o", dense(3), context);
    let h = g.add("residual", [x, o]);
    let n = g.layer_norm("norm", norm, h);
    let u = g.layer("u", dense(4), n);
    let gate = g.layer("g", dense(5), n);
    let gate = g.layer("gelu", Gelu::new(), gate);
    let p = g.mul("gated", u, gate);
    let pooled = g.mean("pool", 0, p);
    g.layer("head", dense(6), pooled);
    g
}

/// A `[T, in]` matrix times a dense layer (PyTorch weight `[out, in]`) + bias: `[T, out]`.
fn dense_fwd(
    x: &[f64],
    (w, b, i, o): &(Vec<f32>, Vec<f32>, usize, usize),
    rows: usize,
) -> Vec<f64> {
    let mut y = vec![0.0; rows * o];
    for t in 0..rows {
        for j in 0..*o {
            y[t * o + j] = f64::from(b[j])
                + (0..*i)
                    .map(|c| f64::from(w[j * i + c]) * x[t * i + c])
                    .sum::<f64>();
        }
    }
    y
}

/// LXT's `linear_epsilon`: `x ⊙ Wᵀ(R / (z + ε))`, ε = 1e-6.
fn dense_lrp(
    x: &[f64],
    z: &[f64],
    r: &[f64],
    (w, _, i, o): &(Vec<f32>, Vec<f32>, usize, usize),
    rows: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; rows * i];
    for t in 0..rows {
        for j in 0..*o {
            let s = r[t * o + j] / (z[t * o + j] + 1e-6);
            for c in 0..*i {
                out[t * i + c] += x[t * i + c] * f64::from(w[j * i + c]) * s;
            }
        }
    }
    out
}

/// `[m, k]·[k, p]`.
fn matmul(a: &[f64], b: &[f64], (m, k, p): (usize, usize, usize)) -> Vec<f64> {
    let mut y = vec![0.0; m * p];
    for r in 0..m {
        for c in 0..p {
            y[r * p + c] = (0..k).map(|j| a[r * k + j] * b[j * p + c]).sum();
        }
    }
    y
}

/// LXT's `matmul`: `S = R / (n·O + ε)`, `R_A = A ⊙ (S·Bᵀ)`, `R_B = B ⊙ (Aᵀ·S)`; a constant
/// factor gets nothing and `n` counts the others.
fn matmul_lrp(
    a: &[f64],
    b: &[f64],
    r: &[f64],
    (m, k, p): (usize, usize, usize),
    a_constant: bool,
) -> (Vec<f64>, Vec<f64>) {
    let o = matmul(a, b, (m, k, p));
    let n = if a_constant { 1.0 } else { 2.0 };
    let s: Vec<f64> = (0..m * p).map(|i| r[i] / (n * o[i] + 1e-8)).collect();
    let mut r_a = vec![0.0; m * k];
    let mut r_b = vec![0.0; k * p];
    for row in 0..m {
        for j in 0..k {
            for c in 0..p {
                let share = s[row * p + c];
                if !a_constant {
                    r_a[row * k + j] += a[row * k + j] * b[j * p + c] * share;
                }
                r_b[j * p + c] += b[j * p + c] * a[row * k + j] * share;
            }
        }
    }
    (r_a, r_b)
}

fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| x[r * cols + c]))
        .collect()
}

/// The input relevance of one sample `[T, D]` for the target's logit, by LXT's rules.
fn reference(w: &Weights, x0: &[f64], cp: bool) -> (Vec<f64>, Vec<f64>) {
    let f = |v: &[f32]| v.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
    let (pos, gamma, beta) = (f(&w.pos), f(&w.gamma), f(&w.beta));
    // Forward.
    let x: Vec<f64> = x0.iter().zip(&pos).map(|(a, b)| a + b).collect();
    let (q, k, v) = (
        dense_fwd(&x, &w.dense[0], T),
        dense_fwd(&x, &w.dense[1], T),
        dense_fwd(&x, &w.dense[2], T),
    );
    let kt = transpose(&k, T, D);
    let scores: Vec<f64> = matmul(&q, &kt, (T, D, T)).iter().map(|s| 0.5 * s).collect();
    let mut att = vec![0.0; T * T];
    for r in 0..T {
        let row = &scores[r * T..(r + 1) * T];
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = row.iter().map(|s| (s - max).exp()).sum();
        for c in 0..T {
            att[r * T + c] = (row[c] - max).exp() / sum;
        }
    }
    let context = matmul(&att, &v, (T, T, D));
    let o = dense_fwd(&context, &w.dense[3], T);
    let h: Vec<f64> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
    let mut norm = vec![0.0; T * D];
    let mut std = [0.0; T];
    for t in 0..T {
        let row = &h[t * D..(t + 1) * D];
        let mean = row.iter().sum::<f64>() / D as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / D as f64;
        std[t] = (var + LN_EPS).sqrt();
        for d in 0..D {
            norm[t * D + d] = (row[d] - mean) / std[t] * gamma[d] + beta[d];
        }
    }
    let u = dense_fwd(&norm, &w.dense[4], T);
    let g = dense_fwd(&norm, &w.dense[5], T);
    let gelu = |v: f64| 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2));
    let ga: Vec<f64> = g.iter().map(|v| gelu(*v)).collect();
    let p: Vec<f64> = u.iter().zip(&ga).map(|(a, b)| a * b).collect();
    let pooled: Vec<f64> = (0..D)
        .map(|d| (0..T).map(|t| p[t * D + d]).sum::<f64>() / T as f64)
        .collect();
    let logits = dense_fwd(&pooled, &w.dense[6], 1);
    let target = (0..CLASSES)
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .expect("classes");

    // Backward, rule by rule.
    let mut r_logits = vec![0.0; CLASSES];
    r_logits[target] = logits[target];
    let r_pooled = dense_lrp(&pooled, &logits, &r_logits, &w.dense[6], 1);
    // mean: x ⊙ R / (Σx + ε) over tokens.
    let mut r_p = [0.0; T * D];
    for d in 0..D {
        let total: f64 = (0..T).map(|t| p[t * D + d]).sum();
        for t in 0..T {
            r_p[t * D + d] = p[t * D + d] * r_pooled[d] / (total + 1e-6);
        }
    }
    // mul2: half to each factor; GELU passes relevance unchanged (identity).
    let half: Vec<f64> = r_p.iter().map(|r| r / 2.0).collect();
    let r_norm_u = dense_lrp(&norm, &u, &half, &w.dense[4], T);
    let r_norm_g = dense_lrp(&norm, &g, &half, &w.dense[5], T);
    let r_norm: Vec<f64> = r_norm_u.iter().zip(&r_norm_g).map(|(a, b)| a + b).collect();
    // layer norm: x ⊙ Jᵀ(S), S = R / (y + ε), J with the std held constant:
    // Jᵀ(S)_j = (γ_j S_j − mean_i(γ_i S_i)) / std.
    let mut r_h = [0.0; T * D];
    for t in 0..T {
        let s: Vec<f64> = (0..D)
            .map(|d| r_norm[t * D + d] / (norm[t * D + d] + 1e-6) * gamma[d])
            .collect();
        let mean_s = s.iter().sum::<f64>() / D as f64;
        for d in 0..D {
            r_h[t * D + d] = h[t * D + d] * (s[d] - mean_s) / std[t];
        }
    }
    // add2 (residual): x ⊙ R / (x + o + ε).
    let share = |a: &[f64], i: usize| a[i] * r_h[i] / (h[i] + 1e-8);
    let r_x_skip: Vec<f64> = (0..T * D).map(|i| share(&x, i)).collect();
    let r_o: Vec<f64> = (0..T * D).map(|i| share(&o, i)).collect();
    let r_context = dense_lrp(&context, &o, &r_o, &w.dense[3], T);
    let (r_att, r_v) = matmul_lrp(&att, &v, &r_context, (T, T, D), cp);
    let mut r_x: Vec<f64> = r_x_skip;
    let mut accumulate = |r: Vec<f64>| r_x.iter_mut().zip(r).for_each(|(a, b)| *a += b);
    accumulate(dense_lrp(&x, &v, &r_v, &w.dense[2], T));
    if !cp {
        // softmax: s_in ⊙ (R − a ⊙ ΣR) per row; the scale passes it unchanged.
        let mut r_scores = vec![0.0; T * T];
        for r in 0..T {
            let total: f64 = (0..T).map(|c| r_att[r * T + c]).sum();
            for c in 0..T {
                let i = r * T + c;
                r_scores[i] = scores[i] * (r_att[i] - att[i] * total);
            }
        }
        let (r_q, r_kt) = matmul_lrp(&q, &kt, &r_scores, (T, D, T), false);
        accumulate(dense_lrp(&x, &q, &r_q, &w.dense[0], T));
        accumulate(dense_lrp(&x, &k, &transpose(&r_kt, D, T), &w.dense[1], T));
    }
    // add2 with the positional tensor (a constant): x0 ⊙ R / (x0 + pos + ε).
    let r_in = (0..T * D).map(|i| x0[i] * r_x[i] / (x[i] + 1e-8)).collect();
    (r_in, logits)
}

/// The error function (Abramowitz–Stegun 7.1.26 is too coarse here: a series to 1e-15).
fn erf(x: f64) -> f64 {
    // erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)), fine for |x| < 4 with 60 terms.
    let mut sum = 0.0;
    let mut term = x;
    for n in 0..60 {
        sum += term / (2 * n + 1) as f64;
        term *= -x * x / (n + 1) as f64;
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

fn check(cp: bool) {
    let w = weights(31);
    let model = block(&w);
    let n = 2;
    let x = random_vec(&mut rng(32), n * T * D, -1.0, 1.0);
    let composite = if cp {
        Composite::cp_lrp()
    } else {
        Composite::attn_lrp()
    };
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .composite(composite.clone())
            .strategy(strategy)
            .output_relevance(OutputRelevance::Logit)
            .target(Target::Predicted)
            .explain(&model, tensor(x.clone(), [n, T, D]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.relevance.dims(), [n, T, D]);
        let (relevance, outputs) = (values(e.relevance), values(e.output));
        for sample in 0..n {
            let per = T * D;
            let input: Vec<f64> = x[sample * per..(sample + 1) * per]
                .iter()
                .map(|v| f64::from(*v))
                .collect();
            let (expected, logits) = reference(&w, &input, cp);
            let f32s = |v: &[f64]| v.iter().map(|v| *v as f32).collect::<Vec<f32>>();
            let got_logits = &outputs[sample * CLASSES..(sample + 1) * CLASSES];
            assert_close(got_logits, &f32s(&logits), 1e-5);
            let got = &relevance[sample * per..(sample + 1) * per];
            assert_close(got, &f32s(&expected), 1e-4);
        }
    }
}

#[test]
fn attn_lrp_on_an_attention_block_matches_lxts_formulas() {
    check(false);
}

#[test]
fn cp_lrp_gives_the_values_all_of_the_attention_output() {
    check(true);
}

/// Without biases and with ε = 0, the ε + uniform product, the uniform element-wise product,
/// the layer norm (β = 0) and the mean over tokens conserve relevance: the input relevance sums
/// to the explained logit.
#[test]
fn products_norms_and_means_conserve_relevance_without_biases() {
    let dense: Vec<_> = (0..3)
        .map(|k| {
            let w = random_vec(&mut rng(40 + k), D * D, -1.0, 1.0);
            linear(&w, None, D, D)
        })
        .collect();
    let head = linear(
        &random_vec(&mut rng(44), D * CLASSES, -1.0, 1.0),
        None,
        D,
        CLASSES,
    );
    let mut norm = LayerNorm::new(D, LN_EPS, &common::device());
    norm.beta = None;
    let mut g = Graph::new();
    let x = g.input();
    let a = g.layer("a", dense[0].clone(), x);
    let b = g.layer("b", dense[1].clone(), x);
    let bt = g.permute("bt", [1, 0], b);
    let scores = g.matmul("scores", a, bt);
    let mixed = g.matmul("mixed", scores, x);
    let n = g.layer_norm("norm", norm, mixed);
    let c = g.layer("c", dense[2].clone(), n);
    let p = g.mul("p", c, n);
    let pooled = g.mean("pool", 0, p);
    g.layer("head", head, pooled);
    let exact = lrp_grad::Rule::LxtEpsilon { epsilon: 0.0 };
    let composite = Composite::new()
        .with_type(lrp_grad::LayerType::AnyLinear, exact.clone())
        .with_type(lrp_grad::LayerType::MatMul, exact.clone())
        .with_type(lrp_grad::LayerType::LayerNorm, exact.clone())
        .with_type(lrp_grad::LayerType::Mean, exact);
    let x = random_vec(&mut rng(45), 2 * T * D, -1.0, 1.0);
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .composite(composite.clone())
            .strategy(strategy)
            .explain(&g, tensor(x.clone(), [2, T, D]))
            .unwrap();
        let sums = e.relevance_sums();
        let targets = e.targets.clone().unwrap();
        let outputs = values(e.output);
        for (s, (&sum, &target)) in sums.iter().zip(&targets).enumerate() {
            let logit = outputs[s * CLASSES + target];
            assert!(
                (sum - logit).abs() <= 1e-4 * logit.abs().max(1.0),
                "{strategy:?}, sample {s}: Σ R = {sum}, logit {logit}"
            );
        }
    }
}

/// A slice (a class token) routes relevance back to the entries it kept; the others get none.
#[test]
fn a_class_token_slice_gets_all_relevance_and_the_other_tokens_none() {
    let head = linear(
        &random_vec(&mut rng(50), D * CLASSES, -1.0, 1.0),
        None,
        D,
        CLASSES,
    );
    let mut g = Graph::new();
    let x = g.input();
    let cls = g.slice("cls", 0, (0, 1), x);
    let cls = g.reshape("flat", [D], cls);
    g.layer("head", head.clone(), cls);
    let mut plain = Graph::new();
    let x = plain.input();
    plain.layer("head", head, x);
    let input = random_vec(&mut rng(51), 2 * T * D, -1.0, 1.0);
    let first: Vec<f32> = (0..2)
        .flat_map(|n| input[n * T * D..n * T * D + D].to_vec())
        .collect();
    let explainer = Explainer::new().composite(Composite::attn_lrp());
    let sliced = values(
        explainer
            .explain(&g, tensor(input.clone(), [2, T, D]))
            .unwrap()
            .relevance,
    );
    let direct = values(
        explainer
            .explain(&plain, tensor(first, [2, D]))
            .unwrap()
            .relevance,
    );
    for n in 0..2 {
        let sample = &sliced[n * T * D..(n + 1) * T * D];
        assert_close(&sample[..D], &direct[n * D..(n + 1) * D], 1e-6);
        assert!(sample[D..].iter().all(|r| *r == 0.0));
    }
    let mut bad = Graph::new();
    let x = bad.input();
    bad.slice("too_far", 0, (2, 5), x);
    let err = lrp_grad::explain(&bad, tensor(input, [2, T, D]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("entries 2..7 do not fit axis 0"), "{err}");
}
