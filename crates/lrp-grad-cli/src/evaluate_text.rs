//! `lrp-grad evaluate` on a Hugging Face checkpoint directory and token ids: AttnLRP's token
//! removal (embeddings zeroed most relevant first and least relevant first; the area between
//! the two curves of the explained logit) and the per-token relevance's complexity.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::{Int, Tensor, TensorData};
use lrp_grad::Explainer;
use lrp_grad::metrics::{self, Order};

use crate::{RuleArgs, device, npy, spec};

/// Per method: the mean area between the LeRF and MoRF curves, sparseness and complexity of
/// the per-token relevance.
pub(crate) fn run(dir: &Path, input: &Path, rules: &RuleArgs, methods: &[String]) -> Result<()> {
    let device = device()?;
    let ids = npy::read(input)?;
    let &[n, t] = &ids.shape[..] else {
        bail!(
            "{}: token ids of shape {:?}; expected [N, T]",
            input.display(),
            ids.shape
        );
    };
    let lm = lrp_grad::hf::load(dir, &device)?;
    let graph = lm.graph(t)?;
    let vocab = lm.embedding().weight.dims()[0];
    if let Some(bad) = ids.data.iter().find(|&&v| v < 0.0 || v as usize >= vocab) {
        bail!(
            "{}: token id {bad} is outside the vocabulary of {vocab}",
            input.display()
        );
    }
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(
            ids.data.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            [n, t],
        ),
        &device,
    );
    let x = lm.embedding().forward(ids);
    let embeddings = floats(x.clone())?;
    println!("{n} sequences of {t} tokens; means per method\n");
    println!(
        "| method | area between LeRF and MoRF ↑ | sparseness | complexity |\n|---|---|---|---|"
    );
    for method in methods {
        let [area, sparseness, complexity] = one_method(&graph, (&x, &embeddings), rules, method)?;
        println!("| {method} | {area:.4} | {sparseness:.4} | {complexity:.4} |");
    }
    Ok(())
}

/// One method's mean token-removal area, sparseness and complexity.
fn one_method(
    graph: &lrp_grad::Graph,
    (x, embeddings): (&Tensor<3>, &[f32]),
    rules: &RuleArgs,
    method: &str,
) -> Result<[f64; 3]> {
    let [n, t, d] = x.dims();
    let mut explainer = Explainer::new().method(spec::method(spec::MethodArgs::named(method))?);
    if method == "lrp" {
        explainer =
            explainer.composite(rules.composite(lrp_grad::FeatureShape::sequence(t, d), None)?);
    }
    let e = explainer
        .explain(graph, x.clone())
        .with_context(|| format!("--methods {method}"))?;
    let targets = e.targets.clone().unwrap_or_default();
    let per_token = floats(e.relevance.sum_dim(2))?;
    let curves =
        |order| metrics::token_removal(graph, (embeddings, [n, t, d]), &per_token, &targets, order);
    let (morf, lerf) = (
        curves(Order::MostRelevantFirst)?,
        curves(Order::LeastRelevantFirst)?,
    );
    let area = morf
        .iter()
        .zip(&lerf)
        .map(|(m, l)| metrics::area_between(l, m))
        .sum::<f64>()
        / n as f64;
    let rows: Vec<&[f32]> = per_token.chunks(t).collect();
    let mean = |f: &dyn Fn(&[f32]) -> f64| rows.iter().map(|r| f(r)).sum::<f64>() / n as f64;
    Ok([
        area,
        mean(&|r| metrics::sparseness(r)),
        mean(&|r| metrics::complexity(r)),
    ])
}

fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    (t.into_data().convert::<f32>().try_into_vec::<f32>()).map_err(|e| anyhow::anyhow!("{e:?}"))
}
