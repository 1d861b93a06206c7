//! AttnLRP and CP-LRP against LXT 2.1 itself: the fixtures of `tools/lxt-reference` (a
//! two-block encoder on embeddings, ViTs on patches with and without a class token, a text model,
//! a LLaMA-pattern model, torchvision's `VisionTransformer` and `transformers`' BERT classifier;
//! random weights, multi-head attention), rebuilt here as graphs from the same weights or read
//! from their ONNX exports. Pass: max |Δ| ≤ max(1e-4, 4× LXT's own float32-vs-float64 distance)
//! × max |R_LXT|, for both strategies.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Gelu, Tanh};
use common::zennit::read_f32_tensors;
use common::{ConvGeometry, conv, linear, tensor, values};
use lrp_grad::{
    AddParam, Composite, Explainer, FeatureShape, Graph, LayerNorm, NodeId, Prepend, Strategy,
    Target,
};
use serde_json::Value;

type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn folder(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lxt")
        .join(kind)
}

struct Builder<'a> {
    g: Graph,
    w: &'a Tensors,
    d: usize,
    heads: usize,
    tokens: usize,
    eps: f64,
}

impl Builder<'_> {
    fn get(&self, name: &str) -> &[f32] {
        &self
            .w
            .get(name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .1
    }

    fn dense(&mut self, name: &str, x: NodeId) -> NodeId {
        let (shape, weight) = &self.w[&format!("{name}.weight")];
        let bias = self.get(&format!("{name}.bias")).to_vec();
        let layer = linear(weight, Some(&bias), shape[1], shape[0]);
        self.g.layer(name, layer, x)
    }

    fn norm(&mut self, name: &str, x: NodeId) -> NodeId {
        let mut norm = LayerNorm::new(self.d, self.eps, &common::device());
        norm.gamma = Param::from_tensor(tensor(
            self.get(&format!("{name}.weight")).to_vec(),
            [self.d],
        ));
        norm.beta = Some(Param::from_tensor(tensor(
            self.get(&format!("{name}.bias")).to_vec(),
            [self.d],
        )));
        self.g.layer_norm(name, norm, x)
    }

    /// `[T, D]` → `[H, T, dh]`.
    fn split_heads(&mut self, name: &str, x: NodeId) -> NodeId {
        let (t, h) = (self.tokens, self.heads);
        let x = self
            .g
            .reshape(format!("{name}.heads"), [t, h, self.d / h], x);
        self.g.permute(format!("{name}.by_head"), [1, 0, 2], x)
    }

    /// Multi-head self-attention of `h` with its output projection.
    fn attention(&mut self, b: usize, h: NodeId) -> NodeId {
        let p = |name: &str| format!("block{b}.{name}");
        let q = self.dense(&p("q"), h);
        let k = self.dense(&p("k"), h);
        let v = self.dense(&p("v"), h);
        let (q, k, v) = (
            self.split_heads(&p("q"), q),
            self.split_heads(&p("k"), k),
            self.split_heads(&p("v"), v),
        );
        let g = &mut self.g;
        let kt = g.permute(p("kt"), [0, 2, 1], k);
        let scores = g.matmul(p("scores"), q, kt);
        let dh = (self.d / self.heads) as f64;
        let scores = g.scale(p("scale"), 1.0 / dh.sqrt(), scores);
        let attention = g.softmax(p("softmax"), 2, scores);
        let context = g.matmul(p("context"), attention, v);
        let context = g.permute(p("merge"), [1, 0, 2], context);
        let context = g.reshape(p("merged"), [self.tokens, self.d], context);
        self.dense(&p("o"), context)
    }

    fn mlp(&mut self, b: usize, h: NodeId) -> NodeId {
        let p = |name: &str| format!("block{b}.{name}");
        let m = self.dense(&p("fc1"), h);
        let m = self.g.layer(p("gelu"), Gelu::new(), m);
        self.dense(&p("fc2"), m)
    }

    /// A pre-norm block (ViT, GPT): `x + attention(norm(x))`, then `x + mlp(norm(x))`.
    fn block(&mut self, b: usize, x: NodeId) -> NodeId {
        let p = |name: &str| format!("block{b}.{name}");
        let h = self.norm(&p("ln1"), x);
        let o = self.attention(b, h);
        let x = self.g.add(p("residual1"), [x, o]);
        let h = self.norm(&p("ln2"), x);
        let m = self.mlp(b, h);
        self.g.add(p("residual2"), [x, m])
    }

    /// A post-norm block (BERT): `norm(x + attention(x))`, then `norm(x + mlp(x))`.
    fn post_norm_block(&mut self, b: usize, x: NodeId) -> NodeId {
        let p = |name: &str| format!("block{b}.{name}");
        let o = self.attention(b, x);
        let x = self.g.add(p("residual1"), [x, o]);
        let x = self.norm(&p("ln1"), x);
        let m = self.mlp(b, x);
        let x = self.g.add(p("residual2"), [x, m]);
        self.norm(&p("ln2"), x)
    }

    /// The first token's features `[D]`.
    fn first_token(&mut self, x: NodeId) -> NodeId {
        let first = self.g.slice("first_token", 0, (0, 1), x);
        self.g.reshape("pooled", [self.d], first)
    }
}

/// BERT after its word embeddings: positions and token type 0 (one constant summand), the
/// embedding norm, post-norm blocks, the pooler (dense + tanh on the first token), the classifier.
fn bert(mut b: Builder, blocks: usize, x: NodeId) -> Graph {
    let mut x = b.norm("emb_ln", x);
    for block in 0..blocks {
        x = b.post_norm_block(block, x);
    }
    let pooled = b.first_token(x);
    let pooled = b.dense("pooler", pooled);
    let pooled = b.g.layer("pooler.tanh", Tanh::new(), pooled);
    b.dense("head", pooled);
    b.g
}

fn model(kind: &str, meta: &Value, w: &Tensors) -> Graph {
    let d = meta["d_model"].as_u64().unwrap() as usize;
    let tokens = w["pos"].0[0];
    let mut b = Builder {
        g: Graph::new(),
        w,
        d,
        heads: meta["heads"].as_u64().unwrap() as usize,
        tokens,
        eps: meta["layer_norm_eps"].as_f64().unwrap(),
    };
    let mut x = b.g.input();
    let cls = kind == "vit-cls" || kind == "vit-torchvision";
    let patches = if cls { tokens - 1 } else { tokens };
    if kind.starts_with("vit") {
        let (shape, weight) = &w["patch.weight"];
        let geometry = ConvGeometry {
            in_channels: shape[1],
            out_channels: d,
            kernel: [4, 4],
            stride: [4, 4],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        let patch = conv(geometry, weight, Some(b.get("patch.bias")));
        x = b.g.layer("patch", patch, x);
        x = b.g.reshape("tokens", [d, patches], x);
        x = b.g.permute("to_tokens", [1, 0], x);
    }
    if cls {
        let token = tensor(b.get("cls").to_vec(), [1, d]);
        let token = Prepend::new(token, FeatureShape::sequence(1, d), 0);
        x = b.g.prepend("cls", token, x);
    }
    let pos = AddParam::new(
        tensor(b.get("pos").to_vec(), [tokens, d]),
        FeatureShape::sequence(tokens, d),
    );
    x = b.g.add_param("pos", pos, x);
    let blocks = meta["blocks"].as_u64().unwrap() as usize;
    if kind == "bert" {
        return bert(b, blocks, x);
    }
    for block in 0..blocks {
        x = b.block(block, x);
    }
    x = b.norm("ln", x);
    x = if cls {
        b.first_token(x)
    } else {
        b.g.mean("pool", 0, x)
    };
    b.dense("head", x);
    b.g
}

/// The model rebuilt by hand from the weights, or read from its ONNX export.
#[derive(Debug, Clone, Copy)]
enum Source {
    Weights,
    Onnx(&'static str),
}

fn check(kind: &str, source: Source) {
    let folder = folder(kind);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("cases.json")).unwrap()).unwrap();
    let w = read_f32_tensors(&folder.join("weights.safetensors"));
    let reference = read_f32_tensors(&folder.join("reference.safetensors"));
    let graph = match source {
        Source::Weights => model(kind, &meta, &w),
        Source::Onnx(file) => {
            lrp_grad::onnx::load(&folder.join(file), &common::device())
                .unwrap()
                .graph
        }
    };
    let (shape, input) = &reference["input"];
    let expected_output = &reference["output"].1;
    for (case, composite) in [
        ("attn-lrp", Composite::attn_lrp()),
        ("cp-lrp", Composite::cp_lrp()),
    ] {
        let targets: Vec<usize> = meta["cases"][case]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as usize)
            .collect();
        let floor = meta["cases"][case]["lxt_f32_distance"].as_f64().unwrap();
        let tolerance = (4.0 * floor).max(1e-4);
        let expected = &reference[case].1;
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let explainer = Explainer::new()
                .composite(composite.clone())
                .strategy(strategy)
                .target(Target::PerSample(targets.clone()));
            let (relevance, output) = match shape.len() {
                3 => {
                    let x = tensor(input.clone(), [shape[0], shape[1], shape[2]]);
                    let e = explainer.explain(&graph, x).unwrap();
                    (values(e.relevance), values(e.output))
                }
                _ => {
                    let x = tensor(input.clone(), [shape[0], shape[1], shape[2], shape[3]]);
                    let e = explainer.explain(&graph, x).unwrap();
                    (values(e.relevance), values(e.output))
                }
            };
            let out_err = output
                .iter()
                .zip(expected_output)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                out_err < 1e-5,
                "{kind}: outputs differ from PyTorch by {out_err}"
            );
            let err = relevance
                .iter()
                .zip(expected)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
                / scale;
            println!(
                "{kind} ({source:?}) {case} {strategy:?}: max |Δ| / max |R| = {err:.2e} (LXT's own f32 distance {floor:.2e})"
            );
            assert!(
                f64::from(err) <= tolerance,
                "{kind} {case} {strategy:?}: {err:.2e} > {tolerance:.2e}"
            );
        }
    }
}

#[test]
fn a_two_block_encoder_matches_lxt() {
    check("encoder", Source::Weights);
}

#[test]
fn a_vision_transformer_on_patches_matches_lxt() {
    check("vit", Source::Weights);
}

/// A class token placed before the patches (`Prepend`) and read back as the pooled feature
/// (`Slice`): relevance reaching the token itself is not passed on, as in LXT.
#[test]
fn a_vision_transformer_with_a_class_token_matches_lxt() {
    check("vit-cls", Source::Weights);
}

/// torchvision's own `VisionTransformer` (3×12×12, 4×4 patches, a class token, layer-norm
/// ε = 1e-6; the reference script splits its fused in-projection into q, k and v and checks that
/// its rewritten forward pass gives the module's output).
#[test]
fn torchvisions_vision_transformer_matches_lxt() {
    check("vit-torchvision", Source::Weights);
}

/// `transformers`' `BertForSequenceClassification` (post-norm blocks, the embedding norm,
/// position and token-type embeddings as one constant summand, the tanh pooler; ε = 1e-12),
/// explained at its word embeddings as LXT does.
#[test]
fn a_bert_classifier_from_transformers_matches_lxt() {
    check("bert", Source::Weights);
}

/// The same models from their `torch.onnx.export` files: layer norms, products of
/// activations, softmax, GELU (an op, or at opset 18 its erf pattern), the token mean and the
/// positional constant come through the ONNX import with AttnLRP's rules.
#[test]
fn the_onnx_exports_match_lxt() {
    check("encoder", Source::Onnx("model.onnx"));
    check("encoder", Source::Onnx("model-opset18.onnx"));
    // The positional tensor as `Expand(pos, [N, T, D])`, as exporters leave a large one.
    check("encoder", Source::Onnx("model-expand.onnx"));
    // q, k and v from one linear layer, as timm writes attention: a rank-5 Reshape, a Transpose
    // that moves the batch, and three Slices of the lazily held rank-4 sample.
    check("encoder", Source::Onnx("model-fused.onnx"));
    check("vit", Source::Onnx("model.onnx"));
    // torch.cat with the class token and x[:, 0] arrive as Concat(constant, x) and Gather.
    check("vit-cls", Source::Onnx("model.onnx"));
    // LLaMA's pattern: RMS norms (Pow, ReduceMean, Add, Sqrt, Reciprocal, Mul, Mul: one RMS
    // norm, LXT's identity rule) and SiLU-gated MLPs (x·sigmoid(x) → SiLU; the gate product
    // uniform).
    check("llama", Source::Onnx("model.onnx"));
    // transformers' BERT exported with eager attention: token-type and position embeddings as
    // two constant summands (their ε-shares telescope to LXT's one sum), post-norm blocks, the
    // pooler's Gather + Tanh.
    check("bert", Source::Onnx("model.onnx"));
    // The same BERT with transformers' default attention (SDPA): the batch folds into the
    // heads (`Reshape` to `[-1, T, dh]`) and is split again.
    check("bert", Source::Onnx("model-sdpa.onnx"));
}

/// torchvision's own `VisionTransformer` export (dynamo): `nn.MultiheadAttention` works
/// sequence-first (`Transpose [1, 0, 2]` moves the batch behind the tokens), splits its fused
/// in-projection through a rank-5 `Unsqueeze`/`Transpose`/`Squeeze` and three `Gather`s, folds
/// the batch into the heads (`[T, N·H, dh]` → `[N·H, T, dh]`) and tokens in front of it
/// (`[T·N, D]`) — each read as a per-sample permutation, reshape or slice.
#[test]
fn torchvisions_own_vit_export_matches_lxt() {
    check("vit-torchvision", Source::Onnx("model.onnx"));
}

/// The same ViT from the TorchScript exporter (gradients enabled, as a plain export runs):
/// its in-projection is split by `unflatten`, whose target shape the export computes in the
/// graph (`Shape → Slice → Concat → Reshape`, slice bounds by `Mod`) — followed at load.
#[test]
fn torchvisions_vit_from_the_torchscript_exporter_matches_lxt() {
    check("vit-torchvision", Source::Onnx("model-script.onnx"));
}

/// LRP stays per sample when the export folds the batch into the heads: explaining the batch
/// in another order gives each sample's relevance unchanged, to the last bit.
#[test]
fn permuting_the_batch_of_a_model_that_folds_it_into_the_heads_permutes_the_relevance() {
    let folder = folder("vit-torchvision");
    let graph = lrp_grad::onnx::load(&folder.join("model.onnx"), &common::device())
        .unwrap()
        .graph;
    let reference = read_f32_tensors(&folder.join("reference.safetensors"));
    let (shape, input) = &reference["input"];
    let [n, c, h, w] = shape[..] else {
        panic!("an image batch")
    };
    let per = c * h * w;
    let order = [2, 0, 1];
    let permuted: Vec<f32> = order
        .iter()
        .flat_map(|&i| input[i * per..(i + 1) * per].to_vec())
        .collect();
    for composite in [Composite::attn_lrp(), Composite::cp_lrp()] {
        let explain = |x: Vec<f32>, targets: Vec<usize>| {
            let e = Explainer::new()
                .composite(composite.clone())
                .target(Target::PerSample(targets))
                .explain(&graph, tensor(x, [n, c, h, w]))
                .unwrap();
            values(e.relevance)
        };
        let r = explain(input.clone(), vec![0, 1, 2]);
        let rp = explain(permuted.clone(), order.to_vec());
        for (j, &i) in order.iter().enumerate() {
            assert_eq!(
                &rp[j * per..(j + 1) * per],
                &r[i * per..(i + 1) * per],
                "sample {i} explained at position {j}"
            );
        }
    }
}

/// A text model from its ONNX export: token ids in (the embedding lookup taken out of the
/// graph), relevance of the embeddings and per token (the sum over the embedding axis) as LXT's.
#[test]
fn a_text_model_on_token_ids_matches_lxt_per_token() {
    let folder = folder("text");
    let reference = read_f32_tensors(&folder.join("reference.safetensors"));
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("cases.json")).unwrap()).unwrap();
    let device = common::device();
    let model = lrp_grad::onnx::load(&folder.join("model.onnx"), &device).unwrap();
    let embedding = model
        .embedding
        .as_ref()
        .expect("a text model has its embedding");
    assert_eq!(model.input_shape, FeatureShape::sequence(6, 8));
    let (shape, ids) = &reference["ids"];
    let ids: Vec<Vec<u32>> = ids
        .chunks(shape[1])
        .map(|row| row.iter().map(|&v| v as u32).collect())
        .collect();
    for (case, composite) in [
        ("attn-lrp", Composite::attn_lrp()),
        ("cp-lrp", Composite::cp_lrp()),
    ] {
        let x = lrp_grad::tokens::embed(embedding, &ids, &device).unwrap();
        let e = Explainer::new()
            .composite(composite)
            .explain(&model.graph, x)
            .unwrap();
        let floor = meta["cases"][case]["lxt_f32_distance"].as_f64().unwrap();
        let tolerance = (4.0 * floor).max(1e-4) as f32;
        for (key, got) in [
            (case.to_string(), values(e.relevance.clone())),
            (
                format!("{case}.tokens"),
                values(lrp_grad::tokens::per_token(e.relevance)),
            ),
        ] {
            let expected = &reference[&key].1;
            let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let err = got
                .iter()
                .zip(expected)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
                / scale;
            assert!(err <= tolerance, "text {key}: {err:.2e}");
        }
    }
    let err = lrp_grad::tokens::embed(embedding, &[vec![1, 99]], &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token id 99, outside the vocabulary of 16"),
        "{err}"
    );
}

/// LXT 2.1's own ViT recipe (its `examples/vit_torch.py`; `tools/lxt-reference/vit_recipe.py`
/// runs it): CP-LRP efficient with Zennit's γ on the patch conv (0.25) and on every dense layer
/// LXT's hooks reach (0.05) — the MLP's and the head. `nn.MultiheadAttention` calls neither
/// its fused in-projection nor its `out_proj` as modules, so LXT gives them the plain gradient;
/// here those nodes (`linear1`, `linear2` in both exports) are named to match. Both exporters,
/// within max(1e-4, 4 × LXT's own float32-vs-float64 distance).
#[test]
fn torchvisions_vit_matches_lxts_vit_recipe_from_both_exporters() {
    let folder = folder("vit-torchvision");
    let reference = read_f32_tensors(&folder.join("reference.safetensors"));
    let recipe = read_f32_tensors(&folder.join("recipe.safetensors"));
    let (shape, input) = &reference["input"];
    let [n, c, h, w] = shape[..] else {
        panic!("an image batch")
    };
    let targets: Vec<usize> = recipe["targets"].1.iter().map(|&t| t as usize).collect();
    use lrp_grad::Rule;
    let plain = Rule::Epsilon {
        epsilon: lrp_grad::PLAIN_EPSILON,
    };
    let composite = Composite::cp_lrp_efficient()
        .with_type(lrp_grad::LayerType::Conv2d, Rule::Gamma { gamma: 0.25 })
        .with_type(lrp_grad::LayerType::Dense, Rule::Gamma { gamma: 0.05 })
        .with_name("linear1", plain.clone())
        .with_name("linear2", plain);
    let expected = &recipe["recipe"].1;
    let max = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let own = recipe["recipe-f32"]
        .1
        .iter()
        .zip(expected)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
        / max;
    for file in ["model.onnx", "model-script.onnx"] {
        let graph = lrp_grad::onnx::load(&folder.join(file), &common::device())
            .unwrap()
            .graph;
        let e = Explainer::new()
            .composite(composite.clone())
            .target(Target::PerSample(targets.clone()))
            .explain(&graph, tensor(input.clone(), [n, c, h, w]))
            .unwrap();
        let got = values(e.relevance);
        let err = got
            .iter()
            .zip(expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
            / max;
        assert!(
            err <= (4.0 * own).max(1e-4),
            "{file}: {err:.2e} from LXT's recipe (LXT's own f32 distance {own:.2e})"
        );
    }
}
