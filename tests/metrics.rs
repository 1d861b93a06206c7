//! The evaluation metrics against Quantus 0.6.0 itself (`tools/quantus-reference`: the Zennit
//! CNN fixture's model, inputs and EpsilonPlus relevance; Quantus's own metric classes, its
//! defaults — the batch normalised by its largest magnitude, "black" = the sample's minimum,
//! softmax scores — ties broken by position). Pass: every value within 1e-4 relative.

mod common;

use std::path::Path;

use common::zennit::ZennitFixture;
use lrp_grad::metrics::{self, Baseline, Images, Score, Unit};
use lrp_grad::{Graph, interchange};
use serde_json::Value;

struct Setup {
    graph: Graph,
    x: Vec<f32>,
    /// The relevance as given, normalised over the batch (Quantus' default).
    a: Vec<f32>,
    raw: Vec<f32>,
    dims: [usize; 4],
    targets: Vec<usize>,
    quantus: Value,
}

impl Setup {
    /// The inputs with their normalised relevance and the targets.
    fn images(&self) -> Images<'_> {
        Images {
            x: &self.x,
            a: &self.a,
            dims: self.dims,
            targets: &self.targets,
        }
    }
}

fn setup() -> Setup {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = ZennitFixture::open(root, "cnn");
    let loaded =
        interchange::load(&fixture.model_json(), &fixture.weights(), &common::device()).unwrap();
    let quantus: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/quantus/cnn.json")).unwrap(),
    )
    .unwrap();
    let (shape, x) = fixture.get("input");
    let (_, raw) = fixture.get(&format!("relevance.{}", quantus["case"].as_str().unwrap()));
    let mut a = raw.clone();
    metrics::normalise_by_max(&mut a);
    let targets = (quantus["targets"].as_array().unwrap().iter())
        .map(|t| t.as_u64().unwrap() as usize)
        .collect();
    Setup {
        graph: Graph::from_sequential(&loaded.model),
        x,
        a,
        raw,
        dims: [shape[0], shape[1], shape[2], shape[3]],
        targets,
        quantus,
    }
}

fn quantus_values(q: &Value, metric: &str) -> Vec<Value> {
    let m = &q["metrics"][metric];
    let values = m.get("values_stable_ties").unwrap_or(&m["values"]);
    values.as_array().unwrap().clone()
}

fn close(ours: f64, theirs: f64, what: &str) {
    let tolerance = 1e-4 * theirs.abs().max(1e-3);
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: {ours} vs Quantus {theirs}"
    );
}

fn check_curves(ours: &[Vec<f64>], q: &Value, metric: &str) {
    for (i, (curve, theirs)) in ours.iter().zip(quantus_values(q, metric)).enumerate() {
        let theirs: Vec<f64> = theirs
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(
            curve.len(),
            theirs.len(),
            "{metric} sample {i}: curve length"
        );
        for (k, (a, b)) in curve.iter().zip(&theirs).enumerate() {
            close(*a, *b, &format!("{metric} sample {i} step {k}"));
        }
    }
}

#[test]
fn complexity_metrics_match_quantus() {
    let s = setup();
    let per = s.dims[1] * s.dims[2] * s.dims[3];
    for (metric, a) in [("", &s.a), ("/raw", &s.raw)] {
        let samples: Vec<&[f32]> = a.chunks(per).collect();
        for (i, sample) in samples.iter().enumerate() {
            let q = |name: &str| {
                quantus_values(&s.quantus, &format!("{name}{metric}"))[i]
                    .as_f64()
                    .unwrap()
            };
            close(metrics::sparseness(sample), q("Sparseness"), "sparseness");
            // Quantus computes the entropy in float32.
            let c = metrics::complexity(sample);
            assert!(
                (c - q("Complexity")).abs() <= 1e-5 * c,
                "complexity {c} vs {}",
                q("Complexity")
            );
            let eps = s.quantus["metrics"]["EffectiveComplexity"]["eps"]
                .as_f64()
                .unwrap_or(1e-5);
            assert_eq!(
                metrics::effective_complexity(sample, eps) as f64,
                q("EffectiveComplexity")
            );
        }
    }
}

#[test]
fn perturbation_curves_match_quantus() {
    let s = setup();
    let images = s.images();
    for (suffix, score) in [("", Score::Softmax), ("/logits", Score::Logit)] {
        let settings = (Baseline::Min, score);
        let flipping = metrics::pixel_flipping(&s.graph, images, (36, Unit::Value), settings);
        check_curves(
            &flipping.unwrap(),
            &s.quantus,
            &format!("PixelFlipping{suffix}"),
        );
        let regions = metrics::region_perturbation(&s.graph, images, (4, 10), settings).unwrap();
        check_curves(&regions, &s.quantus, &format!("RegionPerturbation{suffix}"));
        let selectivity = metrics::selectivity(&s.graph, images, 4, settings).unwrap();
        check_curves(&selectivity, &s.quantus, &format!("Selectivity{suffix}"));
    }
}

/// Whole pixels (every channel replaced together) against Quantus given the channel-summed
/// map `[N, 1, H, W]`, which it broadcasts over the channels and ranks value by value: its steps
/// of 36 values are 12 whole pixels until equal sums (this relevance has many exact zeros) let
/// its stable sort take one channel of many pixels first — compared up to there.
#[test]
fn pixel_flipping_by_whole_pixels_matches_quantus_on_the_channel_sum() {
    let s = setup();
    let [n, c, h, w] = s.dims;
    let mut summed: Vec<f32> = (0..n * h * w)
        .map(|k| {
            (0..c)
                .map(|ch| s.raw[(k / (h * w) * c + ch) * h * w + k % (h * w)])
                .sum()
        })
        .collect();
    metrics::normalise_by_max(&mut summed);
    let a: Vec<f32> = summed.chunks(h * w).flat_map(|m| m.repeat(c)).collect();
    let images = Images {
        x: &s.x,
        a: &a,
        dims: s.dims,
        targets: &s.targets,
    };
    let mut compared = 0;
    for (suffix, score) in [("", Score::Softmax), ("/logits", Score::Logit)] {
        let ours =
            metrics::pixel_flipping(&s.graph, images, (12, Unit::Pixel), (Baseline::Min, score));
        let theirs = quantus_values(&s.quantus, &format!("PixelFlipping/channel-sum{suffix}"));
        for (i, (curve, theirs)) in ours.unwrap().iter().zip(theirs).enumerate() {
            let mut sorted = summed[i * h * w..(i + 1) * h * w].to_vec();
            sorted.sort_by(|p, q| q.total_cmp(p));
            let untied = sorted
                .windows(2)
                .position(|v| v[0] == v[1])
                .unwrap_or(h * w);
            for (k, (a, b)) in curve
                .iter()
                .zip(theirs.as_array().unwrap())
                .enumerate()
                .take(untied / 12)
            {
                close(
                    *a,
                    b.as_f64().unwrap(),
                    &format!("channel-sum{suffix} sample {i} step {k}"),
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 6, "{compared} points compared");
}

#[test]
fn bad_metric_arguments_are_errors() {
    let s = setup();
    let images = s.images();
    let settings = (Baseline::Min, Score::Logit);
    let err = metrics::region_perturbation(&s.graph, images, (5, 3), settings).unwrap_err();
    assert!(err.to_string().contains("patch size 5"), "{err}");
    let err = metrics::pixel_flipping(&s.graph, images, (0, Unit::Pixel), settings).unwrap_err();
    assert!(err.to_string().contains("features_in_step 0"), "{err}");
    let wrong = Images {
        targets: &[0],
        ..images
    };
    assert!(metrics::selectivity(&s.graph, wrong, 4, settings).is_err());
}

/// Token removal on a linear model `f = W·flat(x) + b` over `[T, D]` embeddings, where removing a
/// token lowers the logit by exactly its contribution Σ_d W·x: both curves against that sum in
/// f64, and the area between them positive for relevance = the contributions.
#[test]
fn token_removal_follows_the_tokens_contributions() {
    use rand::Rng;
    let (t, d, classes) = (5, 3, 2);
    let mut rng = common::rng(3);
    let w: Vec<f32> = (0..classes * t * d)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let b = [0.3f32, -0.2];
    let x: Vec<f32> = (0..t * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut g = Graph::new();
    let flat = g.reshape("flat", [t * d], g.input());
    g.layer("head", common::linear(&w, Some(&b), t * d, classes), flat);
    let target = 1;
    let contribution: Vec<f64> = (0..t)
        .map(|k| {
            (0..d)
                .map(|j| f64::from(w[target * t * d + k * d + j]) * f64::from(x[k * d + j]))
                .sum()
        })
        .collect();
    let relevance: Vec<f32> = contribution.iter().map(|&c| c as f32).collect();
    let full = f64::from(b[target]) + contribution.iter().sum::<f64>();
    let expected = |order: &[usize]| -> Vec<f64> {
        let mut f = full;
        let mut curve = vec![f];
        for &k in order {
            f -= contribution[k];
            curve.push(f);
        }
        curve
    };
    let mut morf: Vec<usize> = (0..t).collect();
    morf.sort_by(|&a, &b| contribution[b].total_cmp(&contribution[a]));
    let lerf: Vec<usize> = morf.iter().rev().copied().collect();
    let run = |order| {
        metrics::token_removal(&g, (&x, [1, t, d]), &relevance, &[target], order)
            .unwrap()
            .remove(0)
    };
    let (got_morf, got_lerf) = (
        run(metrics::Order::MostRelevantFirst),
        run(metrics::Order::LeastRelevantFirst),
    );
    for (got, want) in [(&got_morf, expected(&morf)), (&got_lerf, expected(&lerf))] {
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
    assert!(metrics::area_between(&got_lerf, &got_morf) > 0.0);
}

/// Faithfulness correlation on a linear model with a zero baseline: the score's drop when a
/// subset is replaced is exactly the subset's summed contribution `w·x`, so relevance = the
/// contributions correlates perfectly (1) and its negative anti-correlates (−1).
#[test]
fn faithfulness_correlation_is_one_for_exact_contributions() {
    use rand::Rng;
    let (c, h, w) = (2, 3, 3);
    let per = c * h * w;
    let mut rng = common::rng(5);
    let weight: Vec<f32> = (0..2 * per).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x: Vec<f32> = (0..per).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut g = Graph::new();
    let flat = g.reshape("flat", [per], g.input());
    g.layer(
        "head",
        common::linear(&weight, Some(&[0.1, -0.4]), per, 2),
        flat,
    );
    let target = 0;
    let a: Vec<f32> = (0..per).map(|j| weight[target * per + j] * x[j]).collect();
    let negative: Vec<f32> = a.iter().map(|v| -v).collect();
    let run = |a: &[f32]| {
        let images = Images {
            x: &x,
            a,
            dims: [1, c, h, w],
            targets: &[target],
        };
        metrics::faithfulness_correlation(
            &g,
            images,
            (4, 20, 7),
            (Baseline::Value(0.0), Score::Logit),
        )
        .unwrap()[0]
    };
    assert!((run(&a) - 1.0).abs() < 1e-4, "{}", run(&a));
    assert!((run(&negative) + 1.0).abs() < 1e-4, "{}", run(&negative));
}

/// MPRT on the Zennit CNN: the top layers are randomised first, one more per step; the
/// unrandomised model's explanation correlates perfectly with itself, and LRP's explanations
/// lose their rank correlation once the layers are random (a sanity check LRP passes).
#[test]
fn model_parameter_randomisation_cascades_from_the_top() {
    let s = setup();
    let layers: Vec<String> = (s.graph.nodes().iter())
        .filter(|n| matches!(n.op.kind(), "linear" | "conv2d"))
        .map(|n| n.name.clone())
        .collect();
    let (same, none) = metrics::randomise_top_layers(&s.graph, 0, 1);
    assert!(none.is_empty());
    let (_, two) = metrics::randomise_top_layers(&s.graph, 2, 1);
    assert_eq!(
        two,
        [
            layers[layers.len() - 1].clone(),
            layers[layers.len() - 2].clone()
        ]
    );
    let x = common::tensor(s.x.clone(), s.dims);
    let explainer = lrp_grad::Explainer::new().composite(lrp_grad::Composite::epsilon_plus());
    let r = |g: &Graph| common::values(explainer.explain(g, x.clone()).unwrap().relevance);
    assert_eq!(metrics::spearman(&r(&s.graph), &r(&same)), 1.0);
    let order = (
        metrics::LayerOrder::Cascading,
        metrics::Similarity::Spearman,
        7,
    );
    let curve: Vec<(String, f64)> = (metrics::mprt(&s.graph, &explainer, x.clone(), order)
        .unwrap())
    .into_iter()
    .map(|(name, per_sample)| {
        (
            name,
            per_sample.iter().sum::<f64>() / per_sample.len() as f64,
        )
    })
    .collect();
    assert_eq!(curve.len(), layers.len());
    assert_eq!(curve[0].0, layers[layers.len() - 1]);
    let last = curve.last().unwrap().1;
    assert!(
        last.abs() < 0.9,
        "fully randomised, still {last:.3} rank-correlated: {curve:?}"
    );
}
