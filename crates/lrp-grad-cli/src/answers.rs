//! What `explain` says about each sample: its prediction, the explained class and the sum of
//! its relevance — as a table on stdout and as `--summary` JSON — and the per-sample targets
//! and class names it reads.

use std::path::Path;

use anyhow::{Context, Result, bail};
use npyz::{DType, NpyFile, TypeChar};
use serde_json::json;

/// One sample's answer.
pub(crate) struct Answer {
    pub input: String,
    pub predicted: usize,
    pub score: f32,
    pub target: usize,
    pub relevance_sum: f32,
}

/// Answers from a batch's outputs `[n, classes]` (row-major), targets and relevance sums.
pub(crate) fn answers(
    names: &[String],
    outputs: &[f32],
    targets: &[usize],
    sums: &[f32],
) -> Vec<Answer> {
    let classes = outputs.len() / names.len().max(1);
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let row = &outputs[i * classes..(i + 1) * classes];
            let (predicted, score) =
                row.iter()
                    .copied()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (k, v)| {
                        if v > best.1 { (k, v) } else { best }
                    });
            Answer {
                input: name.clone(),
                predicted,
                score,
                target: targets[i],
                relevance_sum: sums[i],
            }
        })
        .collect()
}

fn class_name(labels: Option<&[String]>, class: usize) -> String {
    match labels.and_then(|l| l.get(class)) {
        Some(label) => format!("{class} {label}"),
        None => class.to_string(),
    }
}

/// The table `explain` prints.
pub(crate) fn table(answers: &[Answer], labels: Option<&[String]>) -> String {
    let width = answers
        .iter()
        .map(|a| a.input.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:<width$}  {:<20} {:>10}  {:<20} {:>12}\n",
        "input", "predicted", "score", "target", "Σ relevance"
    );
    for a in answers {
        out += &format!(
            "{:<width$}  {:<20} {:>10.4}  {:<20} {:>12.4}\n",
            a.input,
            class_name(labels, a.predicted),
            a.score,
            class_name(labels, a.target),
            a.relevance_sum
        );
    }
    out
}

/// `--summary`: `{"samples": [{"input", "predicted", "score", "target", "relevance_sum"
/// [, "label"]}, …]}` (`label` names the predicted class when `--labels` is given).
pub(crate) fn summary(answers: &[Answer], labels: Option<&[String]>) -> Result<Vec<u8>> {
    let samples: Vec<_> = answers
        .iter()
        .map(|a| {
            let mut sample = json!({
                "input": a.input,
                "predicted": a.predicted,
                "score": a.score,
                "target": a.target,
                "relevance_sum": a.relevance_sum,
            });
            if let Some(label) = labels.and_then(|l| l.get(a.predicted)) {
                sample["label"] = json!(label);
            }
            sample
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&json!({ "samples": samples }))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `--labels`: one class name per line.
pub(crate) fn read_labels(path: &Path, classes: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    if labels.len() != classes {
        bail!(
            "{}: {} class names for a model with {classes} classes; expected one per line",
            path.display(),
            labels.len()
        );
    }
    Ok(labels)
}

/// `--targets`: one class per sample, as text lines or an integer `.npy`.
pub(crate) fn read_targets(path: &Path, samples: usize) -> Result<Vec<usize>> {
    let targets = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        read_integer_npy(path)?
    } else {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                l.trim().parse::<i64>().with_context(|| {
                    format!(
                        "{}: line {}: `{}` is not a class index",
                        path.display(),
                        i + 1,
                        l.trim()
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    if targets.len() != samples {
        bail!(
            "{}: {} targets for {samples} sample(s); expected one per sample",
            path.display(),
            targets.len()
        );
    }
    targets
        .into_iter()
        .map(|t| {
            usize::try_from(t)
                .with_context(|| format!("{}: target {t} is negative", path.display()))
        })
        .collect()
}

fn read_integer_npy(path: &Path) -> Result<Vec<i64>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = NpyFile::new(&bytes[..])
        .with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    let values = match file.dtype() {
        DType::Plain(ty) if ty.type_char() == TypeChar::Int && ty.size_field() == 8 => {
            file.into_vec::<i64>()
        }
        DType::Plain(ty) if ty.type_char() == TypeChar::Int && ty.size_field() == 4 => file
            .into_vec::<i32>()
            .map(|v| v.into_iter().map(i64::from).collect()),
        other => bail!(
            "{}: dtype {} is not supported for targets; expected int64 or int32",
            path.display(),
            other.descr()
        ),
    };
    values.with_context(|| format!("{}: corrupt or truncated data", path.display()))
}
