//! The metrics `evaluate` can run, each turned into table columns and (for the ones with a
//! curve) a mean curve for `--json` and `--plot`.

use anyhow::Result;
use burn::tensor::{Tensor, TensorData};
use clap::ValueEnum;
use lrp_grad::metrics::{self, Baseline, Images, LayerOrder, Score, Similarity, Unit};
use lrp_grad::{Explainer, Graph};

/// One metric, as `--metrics` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Metric {
    /// Pixel flipping (area under the curve; lower is better).
    PixelFlipping,
    /// Region perturbation, most relevant first (area under the drop; higher is better).
    RegionPerturbation,
    /// Selectivity (area under the curve; lower is better).
    Selectivity,
    /// Faithfulness correlation (higher is better).
    FaithfulnessCorrelation,
    /// ROAD with noisy linear imputation (area under the accuracy curve; lower is better).
    Road,
    /// Sparseness, complexity and effective complexity.
    Complexity,
    /// Completeness: Σ R against f(x) − f(baseline), and against f(x) (conservation).
    Completeness,
    /// The random-logit test (similarity to another class's explanation; lower is better).
    RandomLogit,
    /// Model parameter randomisation (similarity per randomised layer; lower is better).
    Mprt,
    /// Input invariance under a constant shift absorbed by the first layer.
    InputInvariance,
}

/// What one metric measured for one method.
pub(crate) struct Measured {
    /// Table columns: name and the mean over samples.
    pub values: Vec<(&'static str, f64)>,
    /// The mean curve, if the metric has one.
    pub curve: Option<Curve>,
}

/// A metric's mean curve.
pub(crate) struct Curve {
    /// Its key in `--json` (snake case) and its panel's title.
    pub key: &'static str,
    pub title: &'static str,
    pub x_label: &'static str,
    pub y_label: &'static str,
    pub values: Vec<f64>,
    /// Names of the steps (MPRT's layers, ROAD's percentages), if any.
    pub x_names: Vec<String>,
}

/// Everything the metrics read for one method.
pub(crate) struct Case<'a> {
    pub graph: &'a Graph,
    pub explainer: &'a Explainer,
    /// The explanations normalised by the batch's largest magnitude (Quantus' default).
    pub images: Images<'a>,
    /// The explanations as computed.
    pub raw: &'a [f32],
    /// Each sample's target logit.
    pub logits: &'a [f64],
    pub settings: &'a Settings,
}

/// The metrics' arguments.
pub(crate) struct Settings {
    pub baseline: Baseline,
    pub score: Score,
    pub features_in_step: usize,
    /// Pixel flipping's unit: whole pixels (default) or single values (Quantus').
    pub unit: Unit,
    pub patch: usize,
    pub regions: usize,
    pub road_percentages: Vec<f64>,
    pub road_noise: f64,
    pub order: LayerOrder,
    pub similarity: Similarity,
    pub input_shift: f32,
    pub seed: u64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The pointwise mean of equally long curves.
fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let len = curves.first().map_or(0, Vec::len);
    (0..len)
        .map(|k| curves.iter().map(|c| c[k]).sum::<f64>() / curves.len() as f64)
        .collect()
}

impl Metric {
    /// Whether the metric draws a curve (for `--plot`).
    pub(crate) fn has_curve(self) -> bool {
        use Metric::*;
        matches!(
            self,
            PixelFlipping | RegionPerturbation | Selectivity | Road | Mprt
        )
    }

    /// Runs the metric on one method's explanations.
    pub(crate) fn measure(self, case: &Case<'_>) -> Result<Measured> {
        let s = case.settings;
        let (graph, images) = (case.graph, case.images);
        let single = |column, values: Vec<f64>| Measured {
            values: vec![(column, mean(&values))],
            curve: None,
        };
        Ok(match self {
            Metric::PixelFlipping | Metric::RegionPerturbation | Metric::Selectivity => {
                perturbation(self, case)?
            }
            Metric::FaithfulnessCorrelation => {
                let per_unit = match s.unit {
                    Unit::Pixel => images.dims[1],
                    Unit::Value => 1,
                };
                let runs = (s.features_in_step * per_unit, 32, s.seed);
                let c =
                    metrics::faithfulness_correlation(graph, images, runs, (s.baseline, s.score))?;
                single("faithfulness correlation ↑", c)
            }
            Metric::Road => road(case)?,
            Metric::Complexity => complexity(case),
            Metric::Completeness => completeness(case)?,
            Metric::RandomLogit => {
                let how = (s.similarity, s.seed);
                single(
                    "random-logit similarity ↓",
                    metrics::random_logit(graph, case.explainer, tensor(case)?, how)?,
                )
            }
            Metric::Mprt => mprt(case)?,
            Metric::InputInvariance => {
                let d =
                    metrics::input_invariance(graph, case.explainer, tensor(case)?, s.input_shift)?;
                single(
                    "input invariance ↑",
                    d.iter().map(|&d| f64::from(u8::from(d <= 1e-4))).collect(),
                )
            }
        })
    }
}

/// Pixel flipping, region perturbation or selectivity: the mean area and the mean curve.
fn perturbation(metric: Metric, case: &Case<'_>) -> Result<Measured> {
    let s = case.settings;
    let (graph, images, settings) = (case.graph, case.images, (s.baseline, s.score));
    let (m, column, key, title, x_label) = match metric {
        Metric::PixelFlipping => (
            metrics::pixel_flipping(graph, images, (s.features_in_step, s.unit), settings)?,
            "pixel-flipping AUC ↓",
            "pixel_flipping",
            "pixel flipping",
            "step",
        ),
        Metric::RegionPerturbation => (
            metrics::region_perturbation(graph, images, (s.patch, s.regions), settings)?,
            "region-perturbation AUC ↑",
            "region_perturbation",
            "region perturbation (drop)",
            "patches replaced",
        ),
        _ => (
            metrics::selectivity(graph, images, s.patch, settings)?,
            "selectivity AUC ↓",
            "selectivity",
            "selectivity",
            "patches replaced",
        ),
    };
    let aucs: Vec<f64> = m.iter().map(|c| metrics::auc(c)).collect();
    let y_label = match s.score {
        Score::Softmax => "target probability",
        Score::Logit => "target logit",
    };
    let curve = Curve {
        key,
        title,
        x_label,
        y_label,
        values: mean_curve(&m),
        x_names: Vec::new(),
    };
    Ok(Measured {
        values: vec![(column, mean(&aucs))],
        curve: Some(curve),
    })
}

/// The inputs as a tensor on the command's device (where the model was loaded).
fn tensor(case: &Case<'_>) -> Result<Tensor<4>> {
    let data = TensorData::new(case.images.x.to_vec(), case.images.dims);
    Ok(Tensor::from_data(data, &crate::device()?))
}

fn road(case: &Case<'_>) -> Result<Measured> {
    let s = case.settings;
    let how = (s.road_noise, s.seed);
    let m = metrics::road(case.graph, case.images, &s.road_percentages, how)?;
    let aucs: Vec<f64> = m.iter().map(|c| metrics::auc(c)).collect();
    let curve = Curve {
        key: "road",
        title: "ROAD (most relevant imputed first)",
        x_label: "% of pixels imputed",
        y_label: "accuracy",
        values: mean_curve(&m),
        x_names: s.road_percentages.iter().map(|p| format!("{p}")).collect(),
    };
    Ok(Measured {
        values: vec![("ROAD AUC ↓", mean(&aucs))],
        curve: Some(curve),
    })
}

fn complexity(case: &Case<'_>) -> Measured {
    let [_, c, h, w] = case.images.dims;
    let samples: Vec<&[f32]> = case.images.a.chunks(c * h * w).collect();
    let each = |f: &dyn Fn(&[f32]) -> f64| mean(&samples.iter().map(|s| f(s)).collect::<Vec<_>>());
    Measured {
        values: vec![
            ("sparseness", each(&|s| metrics::sparseness(s))),
            ("complexity", each(&|s| metrics::complexity(s))),
            (
                "effective complexity",
                each(&|s| metrics::effective_complexity(s, 1e-5) as f64),
            ),
        ],
        curve: None,
    }
}

/// Relative gaps of Σ R to `f(x) − f(x̄)` (the baseline everywhere) and to the logit `f(x)`.
fn completeness(case: &Case<'_>) -> Result<Measured> {
    let images = Images {
        a: case.raw,
        ..case.images
    };
    let pairs = metrics::completeness(case.graph, images, (case.settings.baseline, Score::Logit))?;
    let gap = |sum: f64, of: f64| (sum - of).abs() / of.abs().max(1e-12);
    let complete: Vec<f64> = pairs.iter().map(|&(sum, drop)| gap(sum, drop)).collect();
    let conserved: Vec<f64> = (pairs.iter().zip(case.logits))
        .map(|(&(sum, _), &logit)| gap(sum, logit))
        .collect();
    Ok(Measured {
        values: vec![
            ("completeness error", mean(&complete)),
            ("conservation error", mean(&conserved)),
        ],
        curve: None,
    })
}

fn mprt(case: &Case<'_>) -> Result<Measured> {
    let s = case.settings;
    let steps = metrics::mprt(
        case.graph,
        case.explainer,
        tensor(case)?,
        (s.order, s.similarity, s.seed),
    )?;
    let values: Vec<f64> = steps
        .iter()
        .map(|(_, per_sample)| mean(per_sample))
        .collect();
    let last = values.last().copied().unwrap_or(f64::NAN);
    let curve = Curve {
        key: "mprt",
        title: "model parameter randomisation",
        x_label: "layer randomised (top first)",
        y_label: "similarity to the original",
        x_names: steps.into_iter().map(|(name, _)| name).collect(),
        values,
    };
    let summary = vec![
        ("MPRT mean similarity ↓", mean(&curve.values)),
        ("MPRT last layer ↓", last),
    ];
    Ok(Measured {
        values: summary,
        curve: Some(curve),
    })
}
