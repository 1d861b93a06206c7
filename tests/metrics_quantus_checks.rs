//! ROAD's imputation and curves, SSIM and MPRT against Quantus 0.6.0 itself
//! (`tools/quantus-reference/randomisation_reference.py`): the same inputs, explanations and
//! randomised weights give the same numbers.

mod common;

use std::path::{Path, PathBuf};

use common::zennit::ZennitFixture;
use lrp_grad::metrics::{self, Baseline, Images, Score, Similarity};
use lrp_grad::{Composite, Explainer, Graph, Target, interchange};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::SafeTensors;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/quantus").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// The Zennit CNN fixture's model with the weights stored under `prefix` in a Quantus fixture.
fn cnn_with(file: &str, prefix: &str) -> Graph {
    let bytes = std::fs::read(root().join("tests/fixtures/quantus").join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> = (st.tensors().into_iter())
        .filter_map(|(name, view)| name.strip_prefix(prefix).map(|n| (n.to_string(), view)))
        .collect();
    assert!(!views.is_empty(), "no tensor under {prefix} in {file}");
    let dir = tempfile::tempdir().unwrap();
    let weights: PathBuf = dir.path().join("weights.safetensors");
    safetensors::serialize_to_file(views, None, &weights).unwrap();
    let fixture = ZennitFixture::open(root(), "cnn");
    let loaded = interchange::load(&fixture.model_json(), &weights, &common::device()).unwrap();
    Graph::from_sequential(&loaded.model)
}

fn st_floats(file: &str, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(root().join("tests/fixtures/quantus").join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let values = t
        .data()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()));
    (t.shape().to_vec(), values.collect())
}

fn st_targets() -> Vec<usize> {
    let bytes = std::fs::read(root().join("tests/fixtures/quantus/road.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("targets").unwrap();
    let values = t
        .data()
        .chunks(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as usize);
    values.collect()
}

#[test]
fn noisy_linear_imputation_without_noise_equals_quantus() {
    let fixture = json("imputation.json");
    for case in fixture["cases"].as_array().unwrap() {
        let shape = usizes(&case["shape"]);
        let x = floats(&case["input"]);
        let mut estimate: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let mut rng = StdRng::seed_from_u64(0);
        let dims = [shape[0], shape[1], shape[2]];
        let ours = metrics::noisy_linear_imputation(
            &x,
            dims,
            &usizes(&case["indices"]),
            (0.0, &mut rng),
            &mut estimate,
        )
        .unwrap();
        for (k, (a, b)) in ours.iter().zip(floats(&case["output_f64"])).enumerate() {
            let what = &case["name"];
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{what} value {k}: {a} vs Quantus {b}"
            );
        }
    }
}

#[test]
fn ssim_of_two_maps_equals_quantus() {
    let fixture = json("ssim.json");
    let mut compared = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let shape = usizes(&case["shape"]);
        let plain =
            case["kwargs"].as_object().unwrap().is_empty() && !case["batched"].as_bool().unwrap();
        if shape.len() != 2 || !plain || case["value"].is_null() {
            continue; // other window sizes, volumes, Quantus' batched 1-D form, NaN
        }
        let ours = metrics::ssim(
            &floats(&case["a"]),
            &floats(&case["b"]),
            [shape[0], shape[1]],
        )
        .unwrap();
        let theirs = case["value"].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-4 * theirs.abs().max(1e-2),
            "{}: {ours} vs {theirs}",
            case["name"]
        );
        compared += 1;
    }
    assert_eq!(compared, 6);
}

struct Road {
    graph: Graph,
    x: Vec<f32>,
    a: Vec<f32>,
    targets: Vec<usize>,
    fixture: Value,
}

fn road_setup() -> Road {
    let (_, x) = st_floats("road.safetensors", "x");
    // Quantus' per-pixel map [N, 1, H, W], repeated over the channels (ROAD sums them again).
    let (_, per_pixel) = st_floats("road.safetensors", "a");
    let a = (per_pixel.chunks(144)).flat_map(|m| m.repeat(3)).collect();
    let fixture = json("road.json");
    let targets = st_targets();
    Road {
        graph: cnn_with("road.safetensors", "model/"),
        x,
        a,
        targets,
        fixture,
    }
}

fn road_curves(s: &Road, noise: f64) -> Vec<Vec<f64>> {
    let percentages: Vec<f64> = floats(&s.fixture["percentages"])
        .iter()
        .map(|&p| f64::from(p))
        .collect();
    assert_eq!(percentages, metrics::road_percentages());
    let images = Images {
        x: &s.x,
        a: &s.a,
        dims: [256, 3, 12, 12],
        targets: &s.targets,
    };
    metrics::road(&s.graph, images, &percentages, (noise, 1)).unwrap()
}

/// Without noise ROAD is deterministic: every sample's prediction at every percentage equals
/// Quantus', except where the target's probability and the next class's lie within 1e-5 (a float's summation
/// order decides those).
#[test]
fn road_without_noise_equals_quantus_sample_by_sample() {
    let s = road_setup();
    let ours = road_curves(&s, 0.0);
    let theirs = &s.fixture["runs"]["noise-0/stable-ties"]["per_sample"];
    let (_, margins) = st_floats("road.safetensors", "margin.noise-0.stable-ties");
    let mut compared = 0;
    for (p, row) in theirs.as_array().unwrap().iter().enumerate() {
        for (i, q) in floats(row).iter().enumerate() {
            if margins[i * 50 + p].abs() < 1e-5 {
                continue;
            }
            assert_eq!(
                ours[i][p],
                f64::from(*q),
                "sample {i}, percentage index {p}"
            );
            compared += 1;
        }
    }
    assert!(compared > 12_000, "{compared} of 12800 compared");
}

/// With Quantus' noise (σ = 0.01) the curves are random; the mean accuracy per percentage
/// over the 256 samples agrees within 2 standard errors of the difference.
#[test]
fn road_with_noise_agrees_with_quantus_in_distribution() {
    let s = road_setup();
    let ours = road_curves(&s, 0.01);
    let run = &s.fixture["runs"]["noise-0.01/stable-ties"];
    let (means, errors) = (floats(&run["mean"]), floats(&run["stderr"]));
    for p in 0..50 {
        let column: Vec<f64> = ours.iter().map(|c| c[p]).collect();
        let mean = column.iter().sum::<f64>() / 256.0;
        let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 255.0;
        let se = (var / 256.0 + f64::from(errors[p]).powi(2)).sqrt();
        let gap = (mean - f64::from(means[p])).abs();
        assert!(
            gap <= 2.0 * se.max(1.0 / 256.0),
            "percentage index {p}: {mean} vs Quantus {}",
            means[p]
        );
    }
}

/// MPRT's similarities given Quantus' own randomised weights: Spearman's rank correlation of
/// the explanations' magnitudes (Quantus' `abs=True`), per sample, each order and step.
#[test]
fn mprt_spearman_equals_quantus_given_its_randomised_weights() {
    let fixture = json("mprt.json");
    let zennit = ZennitFixture::open(root(), "cnn");
    let (shape, x) = zennit.get("input");
    let dims = [shape[0], shape[1], shape[2], shape[3]];
    let explainer = Explainer::new()
        .composite(Composite::epsilon_plus())
        .target(Target::PerSample(usizes(&fixture["targets"])));
    let magnitudes = |g: &Graph| -> Vec<f32> {
        let r = explainer
            .explain(g, common::tensor(x.clone(), dims))
            .unwrap()
            .relevance;
        common::values(r).iter().map(|v| v.abs()).collect()
    };
    let loaded = interchange::load(&zennit.model_json(), &zennit.weights(), &common::device());
    let original = magnitudes(&Graph::from_sequential(&loaded.unwrap().model));
    for order in ["top_down", "independent"] {
        let o = &fixture["orders"][order];
        for step in o["steps"].as_array().unwrap() {
            let graph = cnn_with("mprt.safetensors", step["weights_prefix"].as_str().unwrap());
            let ours =
                metrics::similarities(&original, &magnitudes(&graph), dims, Similarity::Spearman)
                    .unwrap();
            let layer = step["layer"].as_str().unwrap();
            let theirs = floats(&o["similarity"]["correlation_spearman"][layer]);
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                let b = f64::from(*b);
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1e-2),
                    "{order} {layer} sample {i}: {a} vs {b}"
                );
            }
        }
    }
}

fn mean_and_error(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Faithfulness correlation draws its subsets at random (Quantus with numpy's legacy RNG,
/// ours seeded in Rust), so the 256 samples' means agree within 2 standard errors of the
/// difference — for logits and for softmax scores.
#[test]
fn faithfulness_correlation_agrees_with_quantus_in_distribution() {
    let s = road_setup();
    let mut a = s.a.clone();
    metrics::normalise_by_max(&mut a);
    let images = Images {
        x: &s.x,
        a: &a,
        dims: [256, 3, 12, 12],
        targets: &s.targets,
    };
    let fixture = json("faithfulness_correlation.json");
    for (run, score) in [
        ("softmax-false", Score::Logit),
        ("softmax-true", Score::Softmax),
    ] {
        let ours = metrics::faithfulness_correlation(
            &s.graph,
            images,
            (36, 100, 5),
            (Baseline::Min, score),
        )
        .unwrap();
        let (mean, se) = mean_and_error(&ours);
        let theirs = &fixture["runs"][run];
        let (q_mean, q_se) = (
            theirs["mean"].as_f64().unwrap(),
            theirs["stderr"].as_f64().unwrap(),
        );
        let bound = 2.0 * (se * se + q_se * q_se).sqrt();
        assert!(
            (mean - q_mean).abs() <= bound,
            "{run}: {mean} ± {se} vs Quantus {q_mean} ± {q_se}"
        );
    }
}

/// The random-logit test with Spearman's correlation, given the classes Quantus drew: the same
/// similarity per sample (signed explanations, the logit as output relevance).
#[test]
fn random_logit_spearman_equals_quantus_given_its_classes() {
    let s = road_setup();
    let r = &json("random_logit_spearman.json")["results"]["road-inputs"];
    assert_eq!(usizes(&r["targets"]), s.targets);
    let explain = |classes: Vec<usize>| {
        let explainer = Explainer::new()
            .composite(Composite::epsilon_plus())
            .target(Target::PerSample(classes));
        common::values(
            explainer
                .explain(&s.graph, common::tensor(s.x.clone(), [256, 3, 12, 12]))
                .unwrap()
                .relevance,
        )
    };
    let (own, other) = (
        explain(s.targets.clone()),
        explain(usizes(&r["random_class"])),
    );
    let ours = metrics::similarities(&own, &other, [256, 3, 12, 12], Similarity::Spearman).unwrap();
    let mut compared = 0;
    for (i, (a, b)) in ours
        .iter()
        .zip(r["similarity"].as_array().unwrap())
        .enumerate()
    {
        let Some(b) = b.as_f64() else { continue }; // NaN: a constant explanation
        assert!((a - b).abs() <= 1e-4, "sample {i}: {a} vs Quantus {b}");
        compared += 1;
    }
    assert!(compared >= 250, "{compared}");
}
