//! Rotary position embeddings: the forward pass and the relevance against the formula written
//! out in f64 — the rotation as an explicit matrix (`x·cos + rotate_half(x)·sin`, angles
//! `t · θ^(−2i/d)`), LRP-0 through it (a rotation has no bias) and LRP-ε on the dense layer —
//! in both strategies.

mod common;

use common::reference::{self, Matrix};
use common::{assert_close, rng, tensor, values};
use lrp_grad::{Composite, Explainer, Graph, LayerType, Rotary, Rule, Strategy, Target};
use rand::Rng;

const HEADS: usize = 2;
const TOKENS: usize = 4;
const DIM: usize = 6;
const BASE: f64 = 100.0;
const CLASSES: usize = 3;
const RULE: Rule = Rule::Epsilon { epsilon: 0.1 };

/// The rotation of one sample `[H, T, d]` as a matrix.
fn rotation() -> Matrix {
    let n = HEADS * TOKENS * DIM;
    let mut w = vec![vec![0.0; n]; n];
    let half = DIM / 2;
    for h in 0..HEADS {
        for t in 0..TOKENS {
            let at = |k: usize| (h * TOKENS + t) * DIM + k;
            for k in 0..DIM {
                let angle = t as f64 * BASE.powf(-2.0 * (k % half) as f64 / DIM as f64);
                w[at(k)][at(k)] += angle.cos();
                // rotate_half: the first half reads −x₂, the second x₁.
                match k < half {
                    true => w[at(k)][at(k + half)] -= angle.sin(),
                    false => w[at(k)][at(k - half)] += angle.sin(),
                }
            }
        }
    }
    Matrix {
        w,
        connected: vec![vec![true; n]; n],
        b: vec![0.0; n],
    }
}

#[test]
fn rotary_embeddings_rotate_and_pass_relevance_by_lrp_0() {
    let n_in = HEADS * TOKENS * DIM;
    let mut r = rng(7);
    let weight: Vec<f32> = (0..CLASSES * n_in)
        .map(|_| r.random_range(-0.5..0.5))
        .collect();
    let bias: Vec<f32> = (0..CLASSES).map(|_| r.random_range(-0.1..0.1)).collect();
    let input: Vec<f32> = (0..2 * n_in).map(|_| r.random_range(-1.0..1.0)).collect();

    let mut g = Graph::new();
    let x = g.input();
    let y = g.rotary("rope", Rotary::new(DIM, BASE), x);
    let y = g.reshape("flat", [n_in], y);
    g.layer(
        "head",
        common::linear(&weight, Some(&bias), n_in, CLASSES),
        y,
    );

    let (m1, m2) = (
        rotation(),
        Matrix::dense(&weight, Some(&bias), n_in, CLASSES),
    );
    let x = tensor(input.clone(), [2, HEADS, TOKENS, DIM]);
    let composite = Composite::new().with_type(LayerType::Dense, RULE);
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let e = Explainer::new()
            .composite(composite.clone())
            .strategy(strategy)
            .target(Target::Class(1))
            .explain(&g, x.clone())
            .unwrap();
        let relevance = values(e.relevance);
        for s in 0..2 {
            let a: Vec<f64> = input[s * n_in..(s + 1) * n_in]
                .iter()
                .map(|v| f64::from(*v))
                .collect();
            let rotated = m1.forward(&a);
            let logits = m2.forward(&rotated);
            let r_out: Vec<f64> = (0..CLASSES)
                .map(|c| if c == 1 { logits[c] } else { 0.0 })
                .collect();
            let r_rot = reference::lrp(&RULE, &m2, &rotated, &r_out);
            let want = reference::lrp(&Rule::Zero, &m1, &a, &r_rot);
            let want: Vec<f32> = want.iter().map(|v| *v as f32).collect();
            let got_logits: Vec<f32> = logits.iter().map(|v| *v as f32).collect();
            assert_close(
                &values(e.output.clone())[s * CLASSES..(s + 1) * CLASSES],
                &got_logits,
                1e-5,
            );
            assert_close(&relevance[s * n_in..(s + 1) * n_in], &want, 1e-5);
        }
    }
}

#[test]
fn a_rule_other_than_the_gradient_on_rotary_embeddings_is_refused() {
    let mut g = Graph::new();
    let x = g.input();
    let y = g.rotary("rope", Rotary::new(4, 1e4), x);
    let y = g.reshape("flat", [12], y);
    g.layer("head", common::linear(&[0.1; 24], None, 12, 2), y);
    let err = Explainer::new()
        .composite(Composite::new().with_name("*", Rule::Epsilon { epsilon: 0.1 }))
        .explain(&g, tensor(vec![0.5; 12], [1, 3, 4]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rotary"), "{err}");
}

/// LLaMA 3's scaled frequencies against transformers' own (`tools/hf-reference/rope.py`:
/// `ROPE_INIT_FUNCTIONS["llama3"]`, Llama-3.1's scaling, head dim 64; transformers computes in
/// float32, hence 1e-6).
#[test]
fn llama3_scaled_frequencies_match_transformers() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/rope-llama3.json");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let s = &f["rope_scaling"];
    let scaling = lrp_grad::Llama3Scaling {
        factor: s["factor"].as_f64().unwrap(),
        low_freq_factor: s["low_freq_factor"].as_f64().unwrap(),
        high_freq_factor: s["high_freq_factor"].as_f64().unwrap(),
        original_context: s["original_max_position_embeddings"].as_f64().unwrap(),
    };
    let rotary = Rotary::llama3(64, f["rope_theta"].as_f64().unwrap(), scaling);
    let want: Vec<f64> = (f["inv_freq"].as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(rotary.inv_freq.len(), want.len());
    for (i, (a, b)) in rotary.inv_freq.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs(),
            "pair {i}: {a} vs transformers' {b}"
        );
    }
    // The three bands all occur: kept, interpolated, divided by the factor.
    let plain = Rotary::new(64, f["rope_theta"].as_f64().unwrap());
    let ratios: Vec<f64> = plain
        .inv_freq
        .iter()
        .zip(&rotary.inv_freq)
        .map(|(p, s)| p / s)
        .collect();
    assert!(
        ratios.iter().any(|r| (r - 1.0).abs() < 1e-12)
            && ratios.iter().any(|r| (r - 8.0).abs() < 1e-9)
    );
    assert!(ratios.iter().any(|r| *r > 1.0 + 1e-6 && *r < 8.0 - 1e-6));
}
