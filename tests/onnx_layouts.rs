//! Exports that move values between axes the graph does not keep: ShuffleNet's channel
//! shuffle (a rank-5 view `[N, g, C/g, H, W]`, a transpose of two of its axes, a view back),
//! from both of PyTorch's exporters (`tools/onnx-reference/shuffle.py`), against Zennit 1.0's
//! relevance of the PyTorch model in float64 — relevance moves with the shuffled channels.
//! (Attention exports that move the batch or fold it into the heads: `tests/lxt.rs`.)

mod common;

use std::path::{Path, PathBuf};

use common::zennit::read_f32_tensors;
use common::{assert_close, device, tensor, values};
use lrp_grad::{Composite, Explainer, LayerType, Rule, Strategy, Target, onnx};

fn fixture(name: &str) -> PathBuf {
    in_fixtures("shuffle", name)
}

fn in_fixtures(dir: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(dir)
        .join(name)
}

#[test]
fn a_channel_shuffle_through_a_rank_5_view_matches_zennit_from_both_exporters() {
    let f = read_f32_tensors(&fixture("shuffle.safetensors"));
    let input = &f["input"].1;
    let targets: Vec<usize> = f["targets"].1.iter().map(|&t| t as usize).collect();
    for exporter in ["script", "dynamo"] {
        let path = fixture(&format!("shuffle-{exporter}.onnx"));
        let model = onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{exporter}: {e}"));
        let kinds: Vec<&str> = model.graph.nodes().iter().map(|n| n.op.kind()).collect();
        assert!(kinds.contains(&"permute"), "{exporter}: {kinds:?}");
        let x = tensor(input.clone(), [3, 3, 8, 8]);
        assert_close(
            &values(model.graph.forward(x.clone())),
            &f["output"].1,
            2e-5,
        );
        for (case, conv_rule) in [
            ("epsilon", Rule::Epsilon { epsilon: 1e-6 }),
            ("epsilon-plus", Rule::ZPlus),
        ] {
            let composite = Composite::new()
                .with_type(LayerType::Conv2d, conv_rule)
                .with_type(LayerType::Dense, Rule::Epsilon { epsilon: 1e-6 });
            for strategy in [Strategy::Auto, Strategy::LayerWise] {
                let e = Explainer::new()
                    .composite(composite.clone())
                    .strategy(strategy)
                    .target(Target::PerSample(targets.clone()))
                    .explain(&model.graph, x.clone())
                    .unwrap();
                assert_close(&values(e.relevance), &f[case].1, 1e-5);
            }
        }
    }
}

fn mixer(name: &str) -> PathBuf {
    in_fixtures("mixer", name)
}

/// An MLP-Mixer block (`tools/onnx-reference/mixer.py`): its token-mixing MLP runs dense layers
/// across the tokens after a transpose. From both exporters (TorchScript's computes its
/// flatten's target in the graph, `Shape → Slice → Concat`, which onnx-ir folds after its
/// shape inference), the logits equal PyTorch's and LRP-ε (Norm on the residual sums and the
/// token mean, activations and layer norms passed) equals Zennit's in float64 within 4 ×
/// Zennit's own float32 distance (near-cancelling residual sums make float32 matter: 4.4e-4);
/// the relevance sums are the relevance written.
#[test]
fn a_token_mixing_mlp_after_a_transpose_matches_zennit_from_both_exporters() {
    let f = read_f32_tensors(&mixer("mixer.safetensors"));
    let targets: Vec<usize> = f["targets"].1.iter().map(|&t| t as usize).collect();
    let own_f32 = common::relative_error(&f["epsilon-f32"].1, &f["epsilon"].1);
    let composite = Composite::new()
        .with_type(LayerType::Conv2d, Rule::Epsilon { epsilon: 1e-6 })
        .with_type(LayerType::Dense, Rule::Epsilon { epsilon: 1e-6 })
        .with_type(LayerType::LayerNorm, Rule::Pass);
    for exporter in ["dynamo", "script"] {
        let path = mixer(&format!("mixer-{exporter}.onnx"));
        let model = onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{exporter}: {e}"));
        let x = tensor(f["input"].1.clone(), [3, 3, 16, 16]);
        assert_close(
            &values(model.graph.forward(x.clone())),
            &f["output"].1,
            2e-5,
        );
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let e = Explainer::new()
                .composite(composite.clone())
                .strategy(strategy)
                .target(Target::PerSample(targets.clone()))
                .explain(&model.graph, x.clone())
                .unwrap();
            let sums = e.relevance_sums();
            let r = values(e.relevance);
            for (i, sum) in sums.iter().enumerate() {
                let written: f32 = r[i * 768..(i + 1) * 768].iter().sum();
                assert!(
                    (sum - written).abs() <= 1e-4 * written.abs().max(1.0),
                    "{sum} vs {written}"
                );
            }
            assert_close(&r, &f["epsilon"].1, (4.0 * own_f32).max(1e-5));
        }
    }
}

/// Zennit's composites give layer norms ε through `x − mean` (the `1/std` constant), not the
/// identity: passing a norm's relevance unchanged into a residual sum that divides by the
/// norm's input made timm's MLP-Mixer B/16 explode (|R| up to 1e18 for a logit of 0.37).
#[test]
fn zennit_composites_give_layer_norms_epsilon_not_the_identity() {
    let model = onnx::load(&mixer("mixer-dynamo.onnx"), &device()).unwrap();
    for composite in [
        Composite::epsilon_plus_flat(),
        Composite::epsilon_plus(),
        Composite::epsilon_alpha2_beta1(),
    ] {
        let plan = composite.plan(&model.graph).unwrap();
        for (node, propagation) in model.graph.nodes().iter().zip(&plan) {
            if node.op.kind() == "layer_norm" {
                assert_eq!(
                    *propagation,
                    lrp_grad::Propagation::Rule(Rule::Epsilon { epsilon: 1e-6 }),
                    "{}",
                    node.name
                );
            }
        }
    }
}

/// ONNX `Split` into three equal chunks and a batch norm over tokens with the batch folded in
/// (`BatchNorm1d` on `[N·T, C]`, LeViT's), from both exporters
/// (`tools/onnx-reference/split_bn.py`): logits equal PyTorch's, LRP-ε (on the dense layers and
/// the batch norm's affine map, Norm on the sum) equals Zennit's in float64 within
/// max(1e-5, 4 × Zennit's own float32 distance).
#[test]
fn a_split_and_a_batch_norm_of_folded_tokens_match_zennit_from_both_exporters() {
    let f = read_f32_tensors(&in_fixtures("split-bn", "split-bn.safetensors"));
    let targets: Vec<usize> = f["targets"].1.iter().map(|&t| t as usize).collect();
    for exporter in ["script", "dynamo"] {
        let path = in_fixtures("split-bn", &format!("split-bn-{exporter}.onnx"));
        let model = onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{exporter}: {e}"));
        let x = tensor(f["input"].1.clone(), [3, 5, 6]);
        assert_close(
            &values(model.graph.forward(x.clone())),
            &f["output"].1,
            2e-5,
        );
        let e = Explainer::new()
            .rule(Rule::Epsilon { epsilon: 1e-6 })
            .target(Target::PerSample(targets.clone()))
            .explain(&model.graph, x)
            .unwrap();
        let own_f32 = common::relative_error(&f["epsilon-f32"].1, &f["epsilon"].1);
        assert_close(
            &values(e.relevance),
            &f["epsilon"].1,
            (4.0 * own_f32).max(1e-5),
        );
    }
}

/// A class token prepended by `expand(N, -1, -1)`, which the TorchScript exporter writes as a
/// constant subgraph onnx-ir cannot type (`ConstantOfShape → Mul → Equal → Where → Expand`;
/// `tools/onnx-reference/cls_token.py`): folded before parsing, the export's logits equal
/// PyTorch's, and its relevance equals the dynamo export's (which writes the token as a
/// constant), so folding changes nothing but the parse.
#[test]
fn a_class_tokens_constant_expand_folds_before_parsing() {
    let f = read_f32_tensors(&in_fixtures("cls-token", "cls.safetensors"));
    let x = tensor(f["input"].1.clone(), [2, 3, 8, 8]);
    let relevance = |exporter: &str| {
        let path = in_fixtures("cls-token", &format!("cls-{exporter}.onnx"));
        let model = onnx::load(&path, &device()).unwrap_or_else(|e| panic!("{exporter}: {e}"));
        assert_close(
            &values(model.graph.forward(x.clone())),
            &f["output"].1,
            2e-5,
        );
        let e = Explainer::new()
            .composite(Composite::attn_lrp())
            .target(Target::PerSample(vec![0, 2]))
            .explain(&model.graph, x.clone())
            .unwrap();
        values(e.relevance)
    };
    assert_close(&relevance("script"), &relevance("dynamo"), 1e-5);
}

/// A `Gather` of every index of an axis in order, with a [1, C, 1, 1] index tensor, after a
/// flattening `Reshape` (how dynamo writes timm ConvNeXt's head at batch 1:
/// `tools/onnx-reference/norm_head.py`) is a reshape, no slice: the logits equal onnxruntime's
/// and LRP-ε explains it.
#[test]
fn a_gather_of_every_index_in_order_is_a_reshape() {
    let f = read_f32_tensors(&in_fixtures("norm-head", "norm-head.safetensors"));
    let model = onnx::load(&in_fixtures("norm-head", "norm-head.onnx"), &device()).unwrap();
    let x = tensor(f["input"].1.clone(), [1, 3, 6, 6]);
    assert_close(
        &values(model.graph.forward(x.clone())),
        &f["output"].1,
        1e-5,
    );
    let kinds: Vec<&str> = model.graph.nodes().iter().map(|n| n.op.kind()).collect();
    assert!(!kinds.contains(&"slice"), "{kinds:?}");
    let e = Explainer::new()
        .rule(Rule::Epsilon { epsilon: 1e-6 })
        .explain(&model.graph, x);
    assert!(values(e.unwrap().relevance).iter().all(|v| v.is_finite()));
}

/// An adaptive average pool whose output does not divide its input (VGG's and AlexNet's at
/// 160²), which the dynamo exporter decomposes into `GatherND`, `Where`, `Gather`s and a `Div`,
/// with its weights and indices in external data (`tools/onnx-reference/adaptive_pool.py`):
/// read as one pooling layer, logits equal PyTorch's and LRP-ε equals Zennit's in float64
/// within max(1e-5, 4 × Zennit's own float32 distance).
#[test]
fn a_decomposed_adaptive_pool_is_one_pooling_layer_and_matches_zennit() {
    let f = read_f32_tensors(&in_fixtures("adaptive-pool", "adaptive-pool.safetensors"));
    let targets: Vec<usize> = f["targets"].1.iter().map(|&t| t as usize).collect();
    let path = in_fixtures("adaptive-pool", "adaptive-pool-dynamo.onnx");
    let model = onnx::load(&path, &device()).unwrap();
    let kinds: Vec<&str> = model.graph.nodes().iter().map(|n| n.op.kind()).collect();
    assert!(kinds.contains(&"adaptive_avg_pool2d"), "{kinds:?}");
    let x = tensor(f["input"].1.clone(), [2, 3, 10, 10]);
    assert_close(
        &values(model.graph.forward(x.clone())),
        &f["output"].1,
        2e-5,
    );
    let e = Explainer::new()
        .rule(Rule::Epsilon { epsilon: 1e-6 })
        .target(Target::PerSample(targets))
        .explain(&model.graph, x)
        .unwrap();
    let own_f32 = common::relative_error(&f["epsilon-f32"].1, &f["epsilon"].1);
    assert_close(
        &values(e.relevance),
        &f["epsilon"].1,
        (4.0 * own_f32).max(1e-5),
    );
}

/// A tiny torchvision model from the dynamo exporter (`tools/onnx-reference/swin.py`): logits
/// equal PyTorch's, and each sample's input gradient equals PyTorch's float64 autograd (the
/// operators it checks route values, so the gradient checks their forward and backward alike).
fn gradients_match_pytorch(stem: &str, size: usize) {
    let f = read_f32_tensors(&in_fixtures(stem, &format!("{stem}.safetensors")));
    let targets: Vec<usize> = f["targets"].1.iter().map(|&t| t as usize).collect();
    let model = onnx::load(
        &in_fixtures(stem, &format!("{stem}-dynamo.onnx")),
        &device(),
    )
    .unwrap();
    let x = tensor(f["input"].1.clone(), [2, 3, size, size]);
    assert_close(
        &values(model.graph.forward(x.clone())),
        &f["output"].1,
        1e-5,
    );
    let e = Explainer::new()
        .method(lrp_grad::Method::Gradient)
        .target(Target::PerSample(targets))
        .explain(&model.graph, x)
        .unwrap();
    assert_close(&values(e.relevance), &f["gradient"].1, 1e-4);
}

/// Swin: window partitions through rank-6 views with the batch folded into the windows, the
/// relative position bias and the shifted windows' mask (built from constants) added to the
/// scores, the roll, the patch merging's strided slices.
#[test]
fn a_swin_transformer_export_runs_and_routes_gradients_like_pytorch() {
    gradients_match_pytorch("swin", 16);
}

/// MaxViT: attention as `Einsum` on rank-5 values, block and grid partitions as rank-6
/// permutes, squeeze-excitation and depthwise convolutions before them.
#[test]
fn a_maxvit_export_runs_and_routes_gradients_like_pytorch() {
    gradients_match_pytorch("maxvit", 32);
}

/// Swin v2: cosine attention (q and k L2-normalized — the norm held constant for LRP, its own
/// gradient here), a per-head logit scale on windows with the batch folded in, the relative
/// position bias from an MLP on a constant table (folded), and maps padded with zeros to the
/// windows.
#[test]
fn a_swin_v2_export_runs_and_routes_gradients_like_pytorch() {
    gradients_match_pytorch("swin-v2", 16);
}

/// The Swin export folds the batch into its windows: explaining the batch in the other order
/// gives each sample's relevance unchanged, to the last bit (AttnLRP's rules).
#[test]
fn permuting_the_batch_of_a_swin_export_permutes_the_relevance() {
    let f = read_f32_tensors(&in_fixtures("swin", "swin.safetensors"));
    let model = onnx::load(&in_fixtures("swin", "swin-dynamo.onnx"), &device()).unwrap();
    let input = &f["input"].1;
    let per = 3 * 16 * 16;
    let swapped: Vec<f32> = [&input[per..], &input[..per]].concat();
    let explain = |x: Vec<f32>, targets: Vec<usize>| {
        let e = Explainer::new()
            .composite(Composite::attn_lrp())
            .target(Target::PerSample(targets))
            .explain(&model.graph, tensor(x, [2, 3, 16, 16]))
            .unwrap();
        values(e.relevance)
    };
    let r = explain(input.clone(), vec![0, 4]);
    let rs = explain(swapped, vec![4, 0]);
    assert_eq!(&rs[..per], &r[per..]);
    assert_eq!(&rs[per..], &r[..per]);
    assert!(r.iter().any(|&v| v != 0.0));
}
