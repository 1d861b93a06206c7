//! Hugging Face checkpoints of LLaMA, Mistral, Qwen2 and Qwen3 (`tools/hf-reference`: tiny
//! seeded configs with grouped-query attention, saved by `save_pretrained`; Qwen2 with q/k/v
//! biases and a tied head, Qwen3 with q/k norms): the last position's logits against
//! transformers' own, and per-token relevance against LXT 2.1's efficient AttnLRP and CP-LRP
//! (its `monkey_patch`, Mistral with LLaMA's rules), within max(1e-4, 4 × LXT's own
//! float32-vs-float64 distance) × max |R|, in both strategies.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use common::zennit::read_f32_tensors;
use common::{device, values};
use lrp_grad::{Composite, Explainer, Strategy, Target};
use serde_json::Value;

fn folder(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(family)
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn check(family: &str) {
    let dir = folder(family);
    let model = lrp_grad::hf::load(&dir, &device()).unwrap_or_else(|e| panic!("{family}: {e}"));
    let f = read_f32_tensors(&dir.join("reference.safetensors"));
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let (shape, ids) = &f["ids"];
    let (n, t) = (shape[0], shape[1]);
    let ids: Vec<i64> = ids.iter().map(|&v| v as i64).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, t]), &device());
    let embeddings = model.embedding.forward(ids);
    let graph = model.graph(t);
    let logits = values(graph.forward(embeddings.clone()));
    let expected = &f["logits"].1;
    let err = distance(&logits, expected) / max_abs(expected);
    assert!(
        err < 1e-4,
        "{family}: logits differ from transformers' by {err:.2e}"
    );
    let targets: Vec<usize> = (cases["targets"].as_array().unwrap().iter())
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    for (mode, composite) in [
        ("attnlrp", Composite::attn_lrp_efficient()),
        ("cplrp", Composite::cp_lrp_efficient()),
    ] {
        let floor = cases["modes"][mode]["lxt_f32_distance"].as_f64().unwrap();
        let tolerance = (4.0 * floor).max(1e-4);
        let want = &f[&format!("relevance.{mode}.embeddings")].1;
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let e = Explainer::new()
                .composite(composite.clone())
                .strategy(strategy)
                .target(Target::PerSample(targets.clone()))
                .explain(&graph, embeddings.clone())
                .unwrap();
            let got = values(e.relevance);
            let err = f64::from(distance(&got, want) / max_abs(want));
            println!("{family} {mode} {strategy:?}: {err:.2e} (LXT f32 {floor:.2e})");
            assert!(
                err <= tolerance,
                "{family} {mode} {strategy:?}: {err:.2e} > {tolerance:.2e}"
            );
        }
    }
}

#[test]
fn llama_matches_transformers_and_lxt_efficient() {
    check("llama");
}

#[test]
fn mistral_matches_transformers_and_lxt_efficient() {
    check("mistral");
}

#[test]
fn qwen2_with_biases_and_a_tied_head_matches_transformers_and_lxt_efficient() {
    check("qwen2");
}

#[test]
fn qwen3_with_head_norms_matches_transformers_and_lxt_efficient() {
    check("qwen3");
}
