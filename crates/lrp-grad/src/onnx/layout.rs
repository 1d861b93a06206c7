//! Where the batch sits in an exported tensor: the symbolic batch axis.
//!
//! Graphs hold one sample's values, batch first, and explain each sample on its own. Exports
//! do not always keep the batch first: `nn.MultiheadAttention` works sequence-first
//! (`[T, N, D]`), SDPA's decomposition folds the batch into the heads (`[N·H, T, dh]`), and a
//! reshape may fold tokens in front of it (`[T·N, D]`). A [`Layout`] says how an ONNX tensor's
//! axes hold one sample's values and the batch index, so that transposes and reshapes that
//! move or fold the batch become per-sample permutations and reshapes (or nothing), and
//! anything that would mix samples is refused by name.
//!
//! # Model
//! One sample's values are `sample` (row-major). The ONNX tensor's flat order is
//! `sample[..at]`, then the batch index `n`, then `sample[at..]`; ONNX axis `k` holds the
//! per-sample axes `axes[k]` (contiguous, in order, together all of them), and the axis
//! `batch_axis` holds the batch as well: its size is `N · Π sample[axes[batch_axis]]`, with
//! `at` inside that range (`N·H`: `at` at its start; `T·N`: at its end).

use std::ops::Range;

/// How an ONNX tensor's axes hold one sample's values and the batch (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// One sample's values (row-major), as the graph holds them.
    pub sample: Vec<usize>,
    /// The batch index's place among the per-sample axes (the flat order).
    pub at: usize,
    /// For each ONNX axis, the per-sample axes it holds.
    pub axes: Vec<Range<usize>>,
    /// The ONNX axis that holds the batch.
    pub batch_axis: usize,
}

/// A transpose or reshape in per-sample terms.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SampleOp {
    /// Nothing moves within a sample.
    None,
    /// Per-sample axes in this order.
    Permute(Vec<usize>),
}

impl Layout {
    /// Batch first, one per-sample axis per ONNX axis (`[N, ...sample]`).
    pub fn standard(sample: &[usize]) -> Self {
        let axes = std::iter::once(0..0)
            .chain((0..sample.len()).map(|k| k..k + 1))
            .collect();
        Layout {
            sample: sample.to_vec(),
            at: 0,
            axes,
            batch_axis: 0,
        }
    }

    /// Whether the batch is the first ONNX axis and every other axis one per-sample axis.
    pub fn is_standard(&self) -> bool {
        *self == Layout::standard(&self.sample)
    }

    /// The ONNX dims for a batch of `n`.
    pub fn onnx_dims(&self, n: usize) -> Vec<usize> {
        let batch = |k: usize| if k == self.batch_axis { n } else { 1 };
        (self.axes.iter().enumerate())
            .map(|(k, r)| batch(k) * self.sample[r.clone()].iter().product::<usize>())
            .collect()
    }

    /// A description for messages: `[T, N·H, dh]`.
    pub fn describe(&self) -> String {
        let axis = |(k, r): (usize, &Range<usize>)| {
            let dims = self.sample[r.clone()].iter().map(usize::to_string);
            let mut parts: Vec<String> = dims.collect();
            if k == self.batch_axis {
                parts.insert(self.at - r.start, "N".to_string());
            }
            if parts.is_empty() {
                "1".to_string()
            } else {
                parts.join("·")
            }
        };
        let axes: Vec<String> = self.axes.iter().enumerate().map(axis).collect();
        format!("[{}]", axes.join(", "))
    }

    /// The per-sample axis that ONNX axis `axis` is (negative counts from the end), when it is
    /// exactly one per-sample axis and not the batch's.
    pub fn sample_axis(&self, axis: i64) -> Result<usize, String> {
        let rank = self.axes.len() as i64;
        let k = if axis < 0 { axis + rank } else { axis };
        let Some(range) = usize::try_from(k).ok().and_then(|k| self.axes.get(k)) else {
            return Err(format!("axis {axis} is outside rank {rank}"));
        };
        if k as usize == self.batch_axis {
            return Err(format!(
                "axis {axis} of {} holds the batch",
                self.describe()
            ));
        }
        match range.len() {
            1 => Ok(range.start),
            _ => Err(format!(
                "axis {axis} of {} is not one axis of a sample",
                self.describe()
            )),
        }
    }

    /// Whether two values share the structure (the batch's place, the axes' grouping), so that
    /// an element-wise or batched operation pairs the same samples.
    pub fn same_structure(&self, other: &Layout) -> bool {
        self.at == other.at && self.axes == other.axes && self.batch_axis == other.batch_axis
    }

    /// The transpose by `perm` (output axis `j` is input axis `perm[j]`): the new layout and
    /// the per-sample permutation it amounts to.
    pub fn transpose(&self, perm: &[i64]) -> Result<(Layout, SampleOp), String> {
        let rank = self.axes.len();
        let mut seen = vec![false; rank];
        let mut order = Vec::with_capacity(rank);
        for &p in perm {
            let k = usize::try_from(p).ok().filter(|&k| k < rank && !seen[k]);
            let k = k.ok_or_else(|| format!("{perm:?} is not a permutation of {rank} axes"))?;
            seen[k] = true;
            order.push(k);
        }
        if order.len() != rank {
            return Err(format!("{perm:?} is not a permutation of {rank} axes"));
        }
        let mut moved = Vec::with_capacity(self.sample.len());
        let (mut axes, mut at, mut batch_axis) = (Vec::with_capacity(rank), 0, 0);
        for (j, &k) in order.iter().enumerate() {
            let range = &self.axes[k];
            if k == self.batch_axis {
                (at, batch_axis) = (moved.len() + self.at - range.start, j);
            }
            axes.push(moved.len()..moved.len() + range.len());
            moved.extend(range.clone());
        }
        let sample = moved.iter().map(|&a| self.sample[a]).collect();
        let layout = Layout {
            sample,
            at,
            axes,
            batch_axis,
        };
        let op = if moved.iter().enumerate().all(|(i, &a)| i == a) {
            SampleOp::None
        } else {
            SampleOp::Permute(moved)
        };
        Ok((layout, op))
    }

    /// The layout after a reshape to the ONNX dims `out` (with the exported batch `n0` in
    /// them). Values keep their flat order, so the batch must land on one axis with the same
    /// values before and after it. Where the dims alone do not decide (a batch of 1), in this
    /// order: the axis the operator itself places the batch on (`hint.0`: a `0` copying it, a
    /// symbolic dim, Squeeze's and Unsqueeze's axes), an axis that holds the batch alone (the
    /// old one first), the old axis, and last the axis of the reshape's `-1` (`hint.1`).
    pub fn reshape(
        &self,
        out: &[usize],
        n0: usize,
        hint: (Option<usize>, Option<usize>),
    ) -> Result<Layout, String> {
        let before: usize = self.sample[..self.at].iter().product();
        let after: usize = self.sample[self.at..].iter().product();
        let mut candidates: Vec<(usize, usize, usize)> = (0..out.len())
            .filter_map(|b| split_batch(out, b, n0, before, after).map(|(x, y)| (b, x, y)))
            .collect();
        // A batch that was not on the last axis does not join it: the last axis holds the
        // features a dense layer reads (`[T, N, H, dh]` → `[T·N, H·dh]`, not `[T, N·H·dh]`,
        // at N = 1), unless the operator places it there.
        let last_kept =
            self.batch_axis + 1 < self.axes.len() && hint.0.is_none_or(|h| h + 1 != out.len());
        if last_kept && candidates.len() > 1 {
            candidates.retain(|c| c.0 + 1 != out.len());
        }
        let chosen = match candidates[..] {
            [one] => one,
            [] => {
                return Err(format!(
                    "reshapes {} (batch {n0} when exported) to {out:?}, which mixes values of different samples",
                    self.describe()
                ));
            }
            _ => *(candidates.iter().find(|c| Some(c.0) == hint.0))
                .or_else(|| {
                    let alone = |c: &&(usize, usize, usize)| c.1 == 1 && c.2 == 1;
                    (candidates.iter().find(|c| alone(c) && c.0 == self.batch_axis))
                        .or_else(|| candidates.iter().find(alone))
                })
                .or_else(|| candidates.iter().find(|c| c.0 == self.batch_axis))
                .or_else(|| candidates.iter().find(|c| Some(c.0) == hint.1))
                .ok_or_else(|| {
                    format!(
                        "reshapes {} to {out:?}: which axis holds the batch is ambiguous (export with a batch of 2 or more)",
                        self.describe()
                    )
                })?,
        };
        Ok(Layout::folded(out, chosen))
    }

    /// The layout of ONNX dims `out` whose axis `b` holds `x · N · y`.
    fn folded(out: &[usize], (b, x, y): (usize, usize, usize)) -> Layout {
        let mut sample = out[..b].to_vec();
        let parts: Vec<usize> = [x, y].into_iter().filter(|&d| d > 1).collect();
        let at = b + usize::from(x > 1);
        sample.extend(&parts);
        sample.extend(&out[b + 1..]);
        let mut axes: Vec<Range<usize>> = (0..b).map(|k| k..k + 1).collect();
        axes.push(b..b + parts.len());
        let rest = b + parts.len();
        axes.extend((0..out.len() - b - 1).map(|k| rest + k..rest + k + 1));
        Layout {
            sample,
            at,
            axes,
            batch_axis: b,
        }
    }
}

/// `(x, y)` when ONNX axis `b` of `out` can hold `x · N · y` with `before` values of a
/// sample ahead of the batch index and `after` behind it.
fn split_batch(
    out: &[usize],
    b: usize,
    n0: usize,
    before: usize,
    after: usize,
) -> Option<(usize, usize)> {
    let ahead: usize = out[..b].iter().product();
    let behind: usize = out[b + 1..].iter().product();
    if ahead == 0 || before % ahead != 0 {
        return None;
    }
    let x = before / ahead;
    let here = out[b];
    if here % (x * n0) != 0 {
        return None;
    }
    let y = here / (x * n0);
    (y * behind == after).then_some((x, y))
}

/// The per-sample dims and permutation of a transpose with the size-1 axes left out, and axes
/// that stay neighbours merged: what a graph of rank ≤ 3 per sample can hold of a rank-5 one
/// (ShuffleNet's `[g, C/g, H, W]` swap is `[g, C/g, H·W]` with `[1, 0, 2]`).
pub(super) fn compress(dims: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept: Vec<usize> = perm.iter().copied().filter(|&a| dims[a] != 1).collect();
    // Runs of input axes that follow each other in the output order too.
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for &a in &kept {
        match runs.last_mut() {
            Some(run) if *run.last().expect("runs are not empty") + 1 == a => run.push(a),
            _ => runs.push(vec![a]),
        }
    }
    // Input order of the runs (by first axis; size-1 axes in between do not matter).
    let mut by_input: Vec<usize> = (0..runs.len()).collect();
    by_input.sort_by_key(|&r| runs[r][0]);
    let merged: Vec<usize> = (by_input.iter())
        .map(|&r| runs[r].iter().map(|&a| dims[a]).product())
        .collect();
    let position = |r: usize| by_input.iter().position(|&q| q == r).expect("a run");
    let order = (0..runs.len()).map(position).collect();
    (merged, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchvision's MultiheadAttention: `[N, T, D]` → `[T, N, D]` → `[T, N·H, dh]` →
    /// `[N·H, T, dh]` → per sample `[H, T, dh]`.
    #[test]
    fn sequence_first_attention_folds_the_batch_into_the_heads_and_back() {
        let x = Layout::standard(&[10, 8]);
        let (t, op) = x.transpose(&[1, 0, 2]).unwrap();
        assert_eq!(
            op,
            SampleOp::None,
            "the batch moved, no sample's values did"
        );
        assert_eq!(t.describe(), "[10, N, 8]");
        let heads = t.reshape(&[10, 6, 4], 3, (None, None)).unwrap();
        assert_eq!(
            (heads.sample.clone(), heads.describe()),
            (vec![10, 2, 4], "[10, N·2, 4]".into())
        );
        let (h, op) = heads.transpose(&[1, 0, 2]).unwrap();
        assert_eq!(op, SampleOp::Permute(vec![1, 0, 2]));
        assert_eq!(h.describe(), "[N·2, 10, 4]");
        assert_eq!(h.onnx_dims(3), vec![6, 10, 4]);
        // Split again into [N, H, T, dh]: batch first, nothing moves.
        let split = h.reshape(&[3, 2, 10, 4], 3, (None, None)).unwrap();
        assert!(split.is_standard());
        assert_eq!(split.sample, vec![2, 10, 4]);
    }

    #[test]
    fn tokens_folded_in_front_of_the_batch_keep_one_sample_together() {
        let x = Layout::standard(&[2, 10, 4]);
        let (t, _) = x.transpose(&[2, 0, 1, 3]).unwrap();
        assert_eq!(t.describe(), "[10, N, 2, 4]");
        let flat = t.reshape(&[30, 8], 3, (None, None)).unwrap();
        assert_eq!(
            (flat.sample.clone(), flat.describe()),
            (vec![10, 8], "[10·N, 8]".into())
        );
        assert_eq!(flat.sample_axis(-1), Ok(1));
        assert!(flat.sample_axis(0).unwrap_err().contains("holds the batch"));
    }

    /// nn.MultiheadAttention's `view(T·N, D)` of `[T, N, D]` exported with a batch of 1: the
    /// batch joins the tokens, not the features.
    #[test]
    fn a_batch_of_one_stays_out_of_the_feature_axis() {
        let x = Layout::standard(&[10, 8]).transpose(&[1, 0, 2]).unwrap().0;
        let y = x.reshape(&[10, 8], 1, (None, None)).unwrap();
        assert_eq!(y.describe(), "[10·N, 8]");
    }

    #[test]
    fn a_reshape_that_mixes_samples_is_refused() {
        let x = Layout::standard(&[10, 8]);
        let err = x.reshape(&[10, 24], 3, (None, None)).unwrap_err();
        assert!(err.contains("mixes values of different samples"), "{err}");
    }

    #[test]
    fn a_batch_of_one_follows_the_operators_mark_before_the_minus_one() {
        let x = Layout::standard(&[4, 6]);
        // [1, 4, 6] → [1, 4, 6] with a batch of 1: axis 0 or axis 1 (`[1, N·4, 6]`) could
        // hold the batch. A `0` copying it (a strong mark) places it; a `-1` does not beat an
        // axis that holds the batch alone (`x.view(1, -1)` keeps the batch first).
        let y = x.reshape(&[1, 4, 6], 1, (Some(1), None)).unwrap();
        assert_eq!(y.describe(), "[1, N·4, 6]");
        let z = x.reshape(&[1, 4, 6], 1, (None, Some(1))).unwrap();
        assert!(z.is_standard(), "{}", z.describe());
        let flat = Layout::standard(&[16, 5, 5]).reshape(&[1, 400], 1, (None, Some(1)));
        assert!(flat.unwrap().is_standard());
    }

    #[test]
    fn unsqueezed_and_transposed_qkv_selects_per_sample() {
        // [T, N, 3·D] → [T, N, 3, D] → [1, T, N, 3, D] → perm [3, 1, 2, 0, 4] → [3, T, N, 1, D].
        let x = Layout::standard(&[10, 24]).transpose(&[1, 0, 2]).unwrap().0;
        let x = x.reshape(&[10, 3, 3, 8], 3, (None, None)).unwrap();
        let x = x.reshape(&[1, 10, 3, 3, 8], 3, (None, None)).unwrap();
        let (y, op) = x.transpose(&[3, 1, 2, 0, 4]).unwrap();
        assert_eq!(y.describe(), "[3, 10, N, 1, 8]");
        let SampleOp::Permute(perm) = op else {
            panic!("values move")
        };
        assert_eq!(compress(&x.sample, &perm), (vec![10, 3, 8], vec![1, 0, 2]));
        assert_eq!(y.sample_axis(0), Ok(0));
    }

    #[test]
    fn compress_merges_axes_that_move_together() {
        // ShuffleNet's channel shuffle: [g, C/g, H, W] → [C/g, g, H, W].
        assert_eq!(
            compress(&[2, 4, 5, 5], &[1, 0, 2, 3]),
            (vec![2, 4, 25], vec![1, 0, 2])
        );
        assert_eq!(compress(&[2, 3, 4], &[0, 1, 2]), (vec![24], vec![0]));
    }
}
