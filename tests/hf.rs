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
    let embeddings = model.embedding().forward(ids);
    let graph = model.graph(t).unwrap();
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
        // LXT has no CP-LRP map for some families (BERT).
        let Some(floor) = cases["modes"][mode]["lxt_f32_distance"].as_f64() else {
            continue;
        };
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

#[test]
fn phi3_with_fused_projections_matches_transformers_and_lxt_efficient() {
    check("phi3");
}

/// GPT-2: learned positions (a constant summand: relevance measured at the token embeddings, as
/// LXT's `inputs_embeds`), layer norms with their std held constant, `Conv1D`s, GELU (tanh).
#[test]
fn gpt2_matches_transformers_and_lxt_efficient() {
    check("gpt2");
}

/// Gemma 3 (text): √d-scaled embeddings, `(1 + w)` RMS norms around each sublayer and on q and
/// k, local layers with a sliding window and their own rotary base, GELU-tanh gated MLP.
#[test]
fn gemma3_with_local_and_global_layers_matches_transformers_and_lxt_efficient() {
    check("gemma3");
}

/// Gemma 3 with its logits capped, `2·tanh(x/2)` (the fixture's logits reach 2.2, so the tanh
/// bends them): the cap's plain gradient, as LXT leaves it. `attn_logit_softcapping` is set too
/// (1.5), and ignored as transformers' Gemma 3 ignores it.
#[test]
fn gemma3_with_a_logit_softcap_matches_transformers_and_lxt_efficient() {
    check("gemma3-softcap");
}

/// A BERT classifier: position and token-type embeddings as a constant summand, post-norm
/// blocks, the pooler's tanh on token 0; its class logits explained (LXT has AttnLRP only).
#[test]
fn a_bert_classifier_matches_transformers_and_lxt_efficient() {
    check("bert");
}

/// A copy of the LLaMA fixture's checkpoint in a fresh directory, with `edit` applied.
fn broken(name: &str, edit: impl FnOnce(&Path)) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("lrp-grad-hf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(folder("llama").join(file), dir.join(file)).unwrap();
    }
    edit(&dir);
    let err = match lrp_grad::hf::load(&dir, &device()) {
        Ok(_) => panic!("{name}: a broken checkpoint loaded"),
        Err(e) => e.to_string(),
    };
    std::fs::remove_dir_all(&dir).unwrap();
    (dir, err)
}

fn edit_config(dir: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(dir.join("config.json"), text.replacen(from, to, 1)).unwrap();
}

/// Bad checkpoints are errors naming the file and the tensor or field, never panics.
#[test]
fn bad_checkpoints_name_the_file_and_the_tensor() {
    let (_, err) = broken("family", |d| {
        edit_config(d, "\"model_type\": \"llama\"", "\"model_type\": \"gptj\"")
    });
    assert!(
        err.contains("config.json")
            && err.contains("`gptj`")
            && err.contains("llama, mistral, qwen2, qwen3, phi3, gemma3_text, gpt2, bert"),
        "{err}"
    );
    let (_, err) = broken("width", |d| {
        edit_config(d, "\"intermediate_size\": 24", "\"intermediate_size\": 32")
    });
    assert!(
        err.contains("model.safetensors")
            && err.contains("mlp.gate_proj.weight")
            && err.contains("[32, 16]"),
        "{err}"
    );
    let (_, err) = broken("heads", |d| {
        edit_config(
            d,
            "\"num_key_value_heads\": 2",
            "\"num_key_value_heads\": 3",
        )
    });
    assert!(err.contains("num_key_value_heads (3)"), "{err}");
    let (_, err) = broken("truncated", |d| {
        let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(
        err.contains("model.safetensors") && err.contains("not a valid safetensors"),
        "{err}"
    );
    let (_, err) = broken("shard", |d| {
        std::fs::rename(
            d.join("model.safetensors"),
            d.join("model-00001-of-00002.safetensors"),
        )
        .unwrap();
        let index = r#"{"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"}}"#;
        std::fs::write(d.join("model.safetensors.index.json"), index).unwrap();
    });
    assert!(
        err.contains("model-00002-of-00002.safetensors") && err.contains("cannot read"),
        "{err}"
    );
    let (_, err) = broken("scaling", |d| {
        edit_config(
            d,
            "\"rope_theta\"",
            "\"rope_scaling\": {\"rope_type\": \"yarn\"}, \"rope_theta\"",
        )
    });
    assert!(err.contains("rope_scaling"), "{err}");
    let (_, err) = broken("softcap", |d| {
        edit_config(
            d,
            "\"rope_theta\"",
            "\"final_logit_softcapping\": 30.0, \"rope_theta\"",
        )
    });
    assert!(
        err.contains("final_logit_softcapping") && err.contains("llama has no softcap"),
        "{err}"
    );
    let (_, err) = broken("header", |d| {
        let mut bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(d.join("model.safetensors"), &bytes).unwrap();
    });
    assert!(
        err.contains("model.safetensors") && err.contains("a header of"),
        "{err}"
    );
    let (_, err) = broken("stub", |d| {
        std::fs::write(d.join("model.safetensors"), [1u8, 0, 0]).unwrap();
    });
    assert!(
        err.contains("model.safetensors") && err.contains("no header length"),
        "{err}"
    );
}

/// BF16 and sharded checkpoints (what `save_pretrained` writes for large models) load to the
/// same model: the LLaMA fixture's weights rounded to bf16 and split over two shards give the
/// logits of the same weights rounded in f32 — checked against the float32 checkpoint within
/// bf16's rounding.
#[test]
fn a_sharded_bf16_checkpoint_loads() {
    use safetensors::tensor::TensorView;
    let dir = std::env::temp_dir().join(format!("lrp-grad-hf-bf16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(folder("llama").join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(folder("llama").join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut map = serde_json::Map::new();
    let mut shards: [Vec<(String, Vec<usize>, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    for (i, name) in names.iter().enumerate() {
        let view = tensors.tensor(name).unwrap();
        let bf16: Vec<u8> = (view.data().chunks_exact(4))
            .flat_map(|b| {
                let bits = f32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_bits();
                // Round to nearest even, as torch's .to(torch.bfloat16).
                let rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16;
                (rounded as u16).to_le_bytes()
            })
            .collect();
        let shard = format!("model-0000{}-of-00002.safetensors", i % 2 + 1);
        map.insert(name.clone(), serde_json::Value::String(shard));
        shards[i % 2].push((name.clone(), view.shape().to_vec(), bf16));
    }
    for (k, shard) in shards.iter().enumerate() {
        let views: Vec<(String, TensorView)> = (shard.iter())
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    TensorView::new(safetensors::Dtype::BF16, s.clone(), b).unwrap(),
                )
            })
            .collect();
        let file = dir.join(format!("model-0000{}-of-00002.safetensors", k + 1));
        std::fs::write(file, safetensors::serialize(views, None).unwrap()).unwrap();
    }
    let index = serde_json::json!({ "weight_map": map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let bf16 = lrp_grad::hf::load(&dir, &device()).unwrap();
    let f32_model = lrp_grad::hf::load(&folder("llama"), &device()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 9, 27, 5], [1, 4]), &device());
    let logits = |m: &lrp_grad::hf::HfModel| {
        values(
            m.graph(4)
                .unwrap()
                .forward(m.embedding().forward(ids.clone())),
        )
    };
    let (a, b) = (logits(&bf16), logits(&f32_model));
    let err = distance(&a, &b) / max_abs(&b);
    // bf16 keeps 8 bits of mantissa: a relative rounding of 2⁻⁹ per weight.
    assert!(err > 0.0 && err < 0.05, "bf16 vs f32 logits: {err:.2e}");
}

/// The key–value recall model (`tools/hf-reference/recall.py`: one key among distractors, the
/// answer its value): gradient × input per token equals PyTorch's on the same checkpoint, and
/// AttnLRP and CP-LRP rank the key — the one token the answer depends on — first.
#[test]
fn on_key_value_recall_the_key_is_the_most_relevant_token() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recall");
    let model = lrp_grad::hf::load(&dir, &device()).unwrap();
    let f = read_f32_tensors(&dir.join("prompts.safetensors"));
    let (shape, ids) = &f["ids"];
    let (n, t) = (64, shape[1]);
    let ids: Vec<i64> = ids[..n * t].iter().map(|&v| v as i64).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, t]), &device());
    let x = model.embedding().forward(ids);
    let graph = model.graph(t).unwrap();
    let answers: Vec<usize> = f["answer"].1[..n].iter().map(|&v| v as usize).collect();
    let keys: Vec<usize> = f["key_position"].1[..n]
        .iter()
        .map(|&v| v as usize)
        .collect();
    let per_token = |explainer: Explainer| -> Vec<f32> {
        let e = explainer
            .target(Target::PerSample(answers.clone()))
            .explain(&graph, x.clone())
            .unwrap();
        values(e.relevance.sum_dim(2))
    };
    let gxi = per_token(Explainer::new().method(lrp_grad::Method::GradientTimesInput));
    let torch = &f["grad_x_input"].1[..n * t];
    let err = distance(&gxi, torch) / max_abs(torch);
    assert!(err < 1e-4, "gradient × input vs PyTorch: {err:.2e}");
    for composite in [
        Composite::attn_lrp_efficient(),
        Composite::cp_lrp_efficient(),
    ] {
        let r = per_token(Explainer::new().composite(composite));
        let first = (r.chunks(t).zip(&keys))
            .filter(|(row, key)| (0..t).max_by(|&a, &b| row[a].total_cmp(&row[b])) == Some(**key))
            .count();
        assert_eq!(first, n, "the key is first in {first} of {n} prompts");
    }
}

/// The same BERT from `torch.onnx.export` with transformers' default attention (SDPA, the batch
/// folded into the heads; `tools/hf-reference/bert_onnx.py`): its relevance under LXT 2.1's
/// efficient AttnLRP equals LXT's, as the checkpoint's does.
#[test]
fn a_bert_classifier_exported_with_sdpa_matches_lxt_efficient() {
    let dir = folder("bert");
    let f = read_f32_tensors(&dir.join("reference.safetensors"));
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let model = lrp_grad::onnx::load(&dir.join("model-sdpa.onnx"), &device()).unwrap();
    assert!(model.embedding.is_some(), "the ids' lookup is taken out");
    let (shape, embeddings) = &f["embeddings"];
    let x = Tensor::<3>::from_data(
        TensorData::new(embeddings.clone(), [shape[0], shape[1], shape[2]]),
        &device(),
    );
    let logits = values(model.graph.forward(x.clone()));
    assert!(distance(&logits, &f["logits"].1) / max_abs(&f["logits"].1) < 1e-4);
    let targets: Vec<usize> = (cases["targets"].as_array().unwrap().iter())
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let floor = cases["modes"]["attnlrp"]["lxt_f32_distance"]
        .as_f64()
        .unwrap();
    let e = Explainer::new()
        .composite(Composite::attn_lrp_efficient())
        .target(Target::PerSample(targets))
        .explain(&model.graph, x)
        .unwrap();
    let want = &f["relevance.attnlrp.embeddings"].1;
    let err = f64::from(distance(&values(e.relevance), want) / max_abs(want));
    assert!(
        err <= (4.0 * floor).max(1e-4),
        "{err:.2e} (LXT f32 {floor:.2e})"
    );
}
