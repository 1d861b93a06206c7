//! Operators that move values without computing: `Transpose`, `Reshape`, `Squeeze`,
//! `Unsqueeze`, `Flatten` and `Gather` of one index. They follow the batch wherever the export
//! puts it ([`Layout`]) and become per-sample permutations, reshapes and slices, or nothing.

use onnx_ir::Node as OnnxNode;
use onnx_ir::node::reshape::ReshapeInput;
use onnx_ir::node::squeeze::SqueezeInput;
use onnx_ir::node::unsqueeze::UnsqueezeConfig;

use super::convert::{Converter, Failure, Value, constant, output_dims_known, unique_name};
use super::layout::{Layout, SampleOp, compress};
use super::params::Constant;
use crate::model::permute::MAX_VIEW_RANK;
use crate::model::{FeatureShape, NodeId, Op, Permute, Reshape, Slice};

impl Converter<'_> {
    pub(super) fn transpose(&mut self, node: &OnnxNode, perm: &[i64]) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let (layout, op) = x.layout.transpose(perm)?;
        let SampleOp::Permute(order) = op else {
            return self.relabel(node, x, layout);
        };
        // A rank-4 or -5 sample: its size-1 axes left out, neighbours that stay merged; what
        // still needs more than three axes permutes a view of them (Swin's windows).
        let (dims, axes) = match x.layout.sample.len() {
            0..=3 => (x.layout.sample.clone(), order.clone()),
            _ => compress(&x.layout.sample, &order),
        };
        let (x, permute) = match dims.len() {
            0..=3 => {
                let x = self.view(format!("{}.in", unique_name(node)), x, &dims)?;
                (x, Permute::new(axes))
            }
            4..=MAX_VIEW_RANK => (x, Permute::viewed(dims, axes)),
            _ => {
                return Err(format!(
                    "permutes per-sample {:?} as {order:?}, which needs {} axes; lrp-grad permutes at most {MAX_VIEW_RANK}",
                    x.layout.sample,
                    dims.len()
                )
                .into());
            }
        };
        let shape = permute.shape(x.shape)?;
        let id = self
            .graph
            .push(unique_name(node), Op::Permute(permute), [x.id]);
        let x = Value {
            id,
            shape,
            layout: x.layout,
        };
        self.relabel(node, x, layout)
    }

    /// A reshape follows the batch: the export's dims say where it lands (a `0` copying it
    /// places it; the target's `-1` decides last, for a batch of 1).
    pub(super) fn reshape(&mut self, node: &OnnxNode, shape: &ReshapeInput) -> Result<(), Failure> {
        let target = match shape {
            ReshapeInput::Static(target) => target.clone(),
            ReshapeInput::Runtime(r) => self.shape_value(&r.name).ok_or(
                "the target shape is computed at run time from values other than activations' shapes; expected a constant",
            )?,
        };
        let target = &target;
        let x = self.activation_input(node, 0)?;
        let batch = x.layout.batch_axis;
        let copy = (target.iter().enumerate())
            .find(|&(k, &d)| d == 0 && k == batch)
            .map(|(k, _)| k);
        let minus_one = target.iter().position(|&d| d == -1);
        // Shape inference stopped at a target that onnx-ir folded only after it ran
        // (TorchScript's `Shape → Slice → Concat`), or left the `-1` of a static target
        // symbolic (which would read as a dynamic batch): resolve the target here.
        let resolve_here = match output_dims_known(node) {
            Err(_) => true,
            Ok(d) => {
                copy.is_none() && minus_one.is_some_and(|k| d.get(k).is_some_and(Option::is_none))
            }
        };
        if resolve_here {
            let dims = resolve_target(target, &x.layout.onnx_dims(self.batch))?;
            let layout = x.layout.reshape(&dims, self.batch, (copy, minus_one))?;
            return self.relabel(node, x, layout);
        }
        self.reshape_like(node, x, (copy, minus_one), None)
    }

    pub(super) fn squeeze(
        &mut self,
        node: &OnnxNode,
        axes: Option<&SqueezeInput>,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let rank = x.layout.axes.len() as i64;
        let removed: Vec<usize> = match axes {
            Some(SqueezeInput::Static(axes)) => axes.iter().map(|&a| normalise(a, rank)).collect(),
            _ => Vec::new(),
        };
        let before = removed.iter().filter(|&&a| a < x.layout.batch_axis).count();
        let hint = x.layout.batch_axis.checked_sub(before);
        // The dims without the squeezed axes, for when the parser lost track of them.
        let dims = x.layout.onnx_dims(self.batch);
        let kept = (dims.iter().enumerate())
            .filter(|(a, d)| !(removed.contains(a) || removed.is_empty() && **d == 1))
            .map(|(_, &d)| d)
            .collect();
        self.reshape_like(node, x, (hint, None), Some(kept))
    }

    pub(super) fn unsqueeze(
        &mut self,
        node: &OnnxNode,
        config: &UnsqueezeConfig,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let mut hint = x.layout.batch_axis;
        let mut dims = Some(x.layout.onnx_dims(self.batch));
        if let UnsqueezeConfig::Static(axes) = config {
            let rank = (x.layout.axes.len() + axes.len()) as i64;
            let mut axes: Vec<usize> = axes.iter().map(|&a| normalise(a, rank)).collect();
            axes.sort_unstable();
            for a in axes {
                if a <= hint {
                    hint += 1;
                }
                // The dims with the new axes, for when the parser lost track of them.
                dims = dims.filter(|d| a <= d.len()).map(|mut d| {
                    d.insert(a, 1);
                    d
                });
            }
        }
        self.reshape_like(node, x, (Some(hint), None), dims)
    }

    pub(super) fn flatten(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        self.reshape_like(node, x, (None, None), None)
    }

    /// The node's output as a reshape of `x` (its dims from shape inference, else `own`, the
    /// operator's own; one symbolic dim — a dynamic batch — gets what the values leave for it,
    /// and holds the batch).
    fn reshape_like(
        &mut self,
        node: &OnnxNode,
        x: Value,
        (strong, weak): (Option<usize>, Option<usize>),
        own: Option<Vec<usize>>,
    ) -> Result<(), Failure> {
        // At most one symbolic dim (a dynamic batch) counts as known.
        let inferred = output_dims_known(node)
            .ok()
            .filter(|d| d.iter().filter(|d| d.is_none()).count() <= 1);
        let dims = match (inferred, own) {
            (Some(dims), _) => dims,
            (None, Some(own)) => own.into_iter().map(Some).collect(),
            (None, None) => vec![None, None],
        };
        let symbolic = dims.iter().position(Option::is_none);
        let out: Vec<usize> = match dims.iter().filter(|d| d.is_none()).count() {
            0 => dims.iter().flatten().copied().collect(),
            1 => {
                let known: usize = dims.iter().flatten().product();
                let total = self.batch * x.layout.sample.iter().product::<usize>();
                if known == 0 || total % known != 0 {
                    return Err(
                        format!("its output {dims:?} does not divide the {total} values").into(),
                    );
                }
                dims.iter().map(|d| d.unwrap_or(total / known)).collect()
            }
            _ => {
                return Err(
                    "its output shape is not known statically (export with a fixed input size)"
                        .into(),
                );
            }
        };
        let layout = x
            .layout
            .reshape(&out, self.batch, (strong.or(symbolic), weak))?;
        self.relabel(node, x, layout)
    }

    /// `Gather` of one constant index along an axis of a sample (a class token `x[:, 0]`, a
    /// fused projection's q, k or v): a slice, then the axis dropped.
    pub(super) fn gather(&mut self, node: &OnnxNode, axis: i64) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let index = constant(node, 1)?.ok_or("the index is missing")?;
        let axis_size = x
            .layout
            .onnx_dims(self.batch)
            .get(axis.max(0) as usize)
            .copied();
        if index.values.len() > 1
            && index.values.iter().enumerate().all(|(k, &v)| v == k as f32)
            && Some(index.values.len()) == axis_size
        {
            return self.gather_identity(node, x, (axis, &index.dims));
        }
        let [i] = index.values[..] else {
            return Err(format!(
                "gathers indices of shape {:?}; lrp-grad takes one constant index (a slice)",
                index.dims
            )
            .into());
        };
        let axis = usize::try_from(axis).map_err(|_| "a negative axis")?;
        let sample_axis = x.layout.sample_axis(axis as i64)?;
        if i < 0.0 {
            return Err("gathers at a negative index".into());
        }
        let (x, graph_axis) = self.around(node, x, sample_axis)?;
        let slice = Slice {
            axis: graph_axis,
            start: i as usize,
            len: 1,
        };
        let id = self.graph.push(
            format!("{}.slice", unique_name(node)),
            Op::Slice(slice),
            [x.id],
        );
        let mut layout = x.layout.clone();
        layout.sample[sample_axis] = 1;
        let mut dims = x.shape.dims();
        dims[graph_axis] = 1;
        let shape = FeatureShape::new(&dims).map_err(|e| e.to_string())?;
        // A scalar index drops the axis (the parser does not always know the output shape).
        let mut out = layout.onnx_dims(self.batch);
        out.remove(axis);
        let hint = layout.batch_axis - usize::from(axis < layout.batch_axis);
        let dropped = layout.reshape(&out, self.batch, (Some(hint), None))?;
        self.relabel(node, Value { id, shape, layout }, dropped)
    }

    /// `x` held so that its sample axis `s` is one graph axis (which): as it is, or — a sample
    /// of more than three axes (Swin's `qkv[0]` of [3, windows, heads, tokens, dh]) — viewed as
    /// `[before, axis, after]`.
    fn around(&mut self, node: &OnnxNode, x: Value, s: usize) -> Result<(Value, usize), Failure> {
        let sample = x.layout.sample.clone();
        if sample.len() <= 3 {
            return Ok((self.materialized(x)?, s));
        }
        let before: usize = sample[..s].iter().product();
        let after: usize = sample[s + 1..].iter().product();
        let dims = [before, sample[s], after];
        Ok((self.view(format!("{}.in", unique_name(node)), x, &dims)?, 1))
    }

    /// `Gather` of every index of an axis in order (dynamo's `as_strided` of a flattened value,
    /// ConvNeXt's head): the values stay, the axis takes the indices' shape — a reshape.
    fn gather_identity(
        &mut self,
        node: &OnnxNode,
        x: Value,
        (axis, dims): (i64, &[usize]),
    ) -> Result<(), Failure> {
        let mut out = x.layout.onnx_dims(self.batch);
        let axis = axis as usize;
        out.splice(axis..=axis, dims.iter().copied());
        let layout = x.layout.reshape(&out, self.batch, (None, None))?;
        self.relabel(node, x, layout)
    }

    /// `Slice` of one axis with step 1 (a fused projection's q, k or v, as `unbind` exports
    /// it): a slice of the sample's axis, also of a rank-4 or -5 sample held merged, where the
    /// axis leads its merged group.
    pub(super) fn slice_onnx(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::slice::SliceConfig,
    ) -> Result<(), Failure> {
        let (axis, start, end, step) = one_axis(c, |name| self.shape_value(name))?;
        let x = self.activation_input(node, 0)?;
        match step {
            1 => self.slice_to(node, 0, x, (axis, start, end)),
            _ => self.every_step(node, x, (axis, start, end, step)),
        }
    }

    /// A strided slice `start::step` over a whole axis whose size the step divides (Swin's
    /// patch merging, `x[..., 0::2, 0::2, :]`): the axis viewed as `[size / step, step]` and
    /// entry `start` of the second taken, a slice of the sample viewed as `[before, step,
    /// after]`.
    fn every_step(
        &mut self,
        node: &OnnxNode,
        x: Value,
        (axis, start, end, step): (i64, i64, i64, i64),
    ) -> Result<(), Failure> {
        let s = x.layout.sample_axis(axis)?;
        let size = x.layout.sample[s] as i64;
        let whole = end >= size || end == i64::MAX;
        if step < 1 {
            return Err(
                format!("slices axis {axis} by step {step}; lrp-grad takes steps ≥ 1").into(),
            );
        }
        if !(0..step).contains(&start) || size % step != 0 || !whole {
            return self.picked_entries(node, x, s, (start, end, step));
        }
        let (size, step) = (size as usize, step as usize);
        let before = x.layout.sample[..s].iter().product::<usize>() * (size / step);
        let after: usize = x.layout.sample[s + 1..].iter().product();
        let name = unique_name(node);
        let x = self.view(format!("{name}.steps"), x, &[before, step, after])?;
        let slice = Slice {
            axis: 1,
            start: start as usize,
            len: 1,
        };
        let id = self.graph.push(name, Op::Slice(slice), [x.id]);
        let mut layout = x.layout.clone();
        layout.sample[s] = size / step;
        let shape = FeatureShape::image(before, 1, after);
        self.relabel(
            node,
            Value {
                id,
                shape,
                layout: layout.clone(),
            },
            layout,
        )
    }

    /// A strided slice of any bounds (LeViT's `x[:, ::2, ::2]` of a 7 × 7 map): each entry a
    /// slice of the sample viewed as `[before, size, after]`, concatenated.
    fn picked_entries(
        &mut self,
        node: &OnnxNode,
        x: Value,
        s: usize,
        (start, end, step): (i64, i64, i64),
    ) -> Result<(), Failure> {
        let size = x.layout.sample[s] as i64;
        let at = |v: i64| (if v < 0 { v + size } else { v }).clamp(0, size);
        let entries: Vec<usize> = (at(start)..at(end))
            .step_by(step as usize)
            .map(|i| i as usize)
            .collect();
        if entries.is_empty() {
            return Err(format!("an empty slice of sample axis {s}").into());
        }
        let before: usize = x.layout.sample[..s].iter().product();
        let after: usize = x.layout.sample[s + 1..].iter().product();
        let name = unique_name(node);
        let x = self.view(
            format!("{name}.entries"),
            x,
            &[before, size as usize, after],
        )?;
        let parts: Vec<NodeId> = (entries.iter())
            .map(|&i| {
                let slice = Slice {
                    axis: 1,
                    start: i,
                    len: 1,
                };
                (self.graph).push(format!("{name}.entry{i}"), Op::Slice(slice), [x.id])
            })
            .collect();
        let id = self.graph.concat(name, 1, parts);
        let mut layout = x.layout.clone();
        layout.sample[s] = entries.len();
        let shape = FeatureShape::image(before, entries.len(), after);
        self.relabel(
            node,
            Value {
                id,
                shape,
                layout: layout.clone(),
            },
            layout,
        )
    }

    /// `Pad` with zeros (Swin's windows, `F.pad`; its pads constant or computed from shapes):
    /// the input when it pads by nothing, else one graph `pad` per padded axis of a sample.
    pub(super) fn pad(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::pad::PadConfig,
    ) -> Result<(), Failure> {
        use onnx_ir::node::pad::{ConstantValueInput, PadInput, PadMode};
        let pairs: Vec<(i64, i64)> = match &c.pads {
            PadInput::Static(pairs) => pairs.iter().map(|&(a, b)| (a as i64, b as i64)).collect(),
            PadInput::Runtime { input, axes: None } => {
                let v = self
                    .shape_value(&input.name)
                    .ok_or("its pads are computed from values other than shapes")?;
                let r = v.len() / 2;
                (0..r).map(|k| (v[k], v[k + r])).collect()
            }
            PadInput::Runtime { .. } => {
                return Err("pads a subset of axes computed at run time".into());
            }
        };
        let zero = matches!(c.constant_value, ConstantValueInput::Static(v) if v == 0.0);
        if !matches!(c.mode, PadMode::Constant)
            || !zero
            || pairs.iter().any(|&(a, b)| a < 0 || b < 0)
        {
            return Err(
                format!("pads by {pairs:?} ({:?}); lrp-grad pads with zeros", c.mode).into(),
            );
        }
        let mut x = self.activation_input(node, 0)?;
        for (k, &(before, after)) in pairs.iter().enumerate().filter(|(_, p)| **p != (0, 0)) {
            let s = x.layout.sample_axis(k as i64)?;
            let (held, axis) = self.around(node, x, s)?;
            let pad = crate::model::Pad {
                axis,
                before: before as usize,
                after: after as usize,
            };
            let mut dims = held.shape.dims();
            dims[axis] += (before + after) as usize;
            let shape = FeatureShape::new(&dims).map_err(|e| e.to_string())?;
            let id = self.graph.push(
                format!("{}.axis{k}", unique_name(node)),
                Op::Pad(pad),
                [held.id],
            );
            let mut layout = held.layout;
            layout.sample[s] += (before + after) as usize;
            x = Value { id, shape, layout };
        }
        let layout = x.layout.clone();
        self.relabel(node, x, layout)
    }

    /// `Split` along one axis into constant sizes (TorchScript's fused-QKV `unbind`): each
    /// output a slice of the input.
    pub(super) fn split(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::split::SplitConfig,
    ) -> Result<(), Failure> {
        use onnx_ir::node::split::SplitSizesInput;
        let x = self.activation_input(node, 0)?;
        let axis = c.axis as i64;
        let size = x.layout.onnx_dims(self.batch)[c.axis];
        let outputs = node.outputs().len();
        let sizes: Vec<usize> = match (&c.split_sizes, c.split_size) {
            (Some(SplitSizesInput::Static(sizes)), _) => sizes.clone(),
            (None, Some(each)) => (0..size.div_ceil(each.max(1)))
                .map(|k| each.min(size - k * each))
                .collect(),
            (None, None) if outputs > 0 && size % outputs == 0 => vec![size / outputs; outputs],
            _ => {
                return Err(
                    "the split's sizes are computed at run time; expected constants".into(),
                );
            }
        };
        if sizes.len() != outputs || sizes.iter().sum::<usize>() != size {
            return Err(format!(
                "splits {size} values of axis {axis} into {sizes:?} for {outputs} outputs"
            )
            .into());
        }
        let mut start = 0;
        for (k, len) in sizes.into_iter().enumerate() {
            let bounds = (axis, start as i64, (start + len) as i64);
            self.slice_to(node, k, x.clone(), bounds)?;
            start += len;
        }
        Ok(())
    }

    /// Output `k` of `node`: `x` sliced to `start..end` along ONNX axis `axis`.
    fn slice_to(
        &mut self,
        node: &OnnxNode,
        k: usize,
        x: Value,
        (axis, start, end): (i64, i64, i64),
    ) -> Result<(), Failure> {
        let s = x.layout.sample_axis(axis)?;
        let size = x.layout.sample[s] as i64;
        let clamp = |v: i64| (if v < 0 { v + size } else { v }).clamp(0, size) as usize;
        let (start, end) = (clamp(start), clamp(end));
        if start >= end {
            return Err(format!("an empty slice {start}..{end} of axis {axis}").into());
        }
        let (g, inner) = group_of(&x.layout.sample, &x.shape.dims(), s).ok_or_else(|| {
            format!(
                "slices axis {axis} of {}, which lrp-grad holds merged with the axis before it",
                x.layout.describe()
            )
        })?;
        let slice = Slice {
            axis: g,
            start: start * inner,
            len: (end - start) * inner,
        };
        let name = match k {
            0 => unique_name(node),
            k => format!("{}.{k}", unique_name(node)),
        };
        let id = self.graph.push(name, Op::Slice(slice), [x.id]);
        let mut dims = x.shape.dims();
        dims[g] = (end - start) * inner;
        let shape = FeatureShape::new(&dims).map_err(|e| e.to_string())?;
        let mut layout = x.layout.clone();
        layout.sample[s] = end - start;
        let value = Value {
            id,
            shape,
            layout: layout.clone(),
        };
        self.relabel_output(node, k, value, layout)
    }

    /// ONNX `Attention` (which onnx-ir also makes of `softmax(Q·Kᵀ / s + B)·V`) on `[N, H, T,
    /// dh]` values — or `[N·W, H, T, dh]` windows, the leading axes merged — with no mask or
    /// a constant additive one `B` (Swin's relative position bias): `Q·Kᵀ`, the scale, `+ B`,
    /// softmax, `·V` as graph nodes.
    pub(super) fn attention(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::attention::AttentionConfig,
    ) -> Result<(), Failure> {
        let bias = match node.inputs().get(3) {
            Some(_) => Some(constant(node, 3)?.ok_or("its mask is not a constant")?),
            None => None,
        };
        if c.is_causal || c.softcap != 0.0 || node.inputs().len() > 4 {
            return Err("attention with a causal flag, softcap or past keys; lrp-grad takes softmax(Q·Kᵀ·s + B)·V with a constant B".into());
        }
        let name = unique_name(node);
        let [q, k, v] = [0, 1, 2].map(|i| self.activation_input(node, i));
        let (q, k, v) = (q?, k?, v?);
        let structure = |a: &Value, b: &Value| a.layout.same_structure(&b.layout);
        if q.layout.sample.len() < 3 || !structure(&q, &k) || !structure(&q, &v) {
            return Err(format!(
                "attention on {} / {} / {}; expected [N, H, T, dh] values laid out alike",
                q.layout.describe(),
                k.layout.describe(),
                v.layout.describe()
            )
            .into());
        }
        let dh = *q.layout.sample.last().expect("three axes at least");
        let q = self.held(format!("{name}.q"), q)?;
        let k = self.held(format!("{name}.k"), k)?;
        let v = self.held(format!("{name}.v"), v)?;
        let scale = c.scale.unwrap_or(1.0 / (dh as f64).sqrt());
        let g = &mut self.graph;
        let kt = g.permute(format!("{name}.k_t"), [0, 2, 1], k.id);
        let scores = g.matmul(format!("{name}.scores"), q.id, kt);
        let mut scores = g.scale(format!("{name}.scale"), scale, scores);
        if let Some(bias) = bias {
            scores = self.scores_plus(format!("{name}.bias"), scores, (&q, &k), &bias)?;
        }
        let g = &mut self.graph;
        let weights = g.softmax(format!("{name}.softmax"), 2, scores);
        let id = g.matmul(name, weights, v.id);
        let mut layout = q.layout;
        let last = layout.sample.len() - 1;
        layout.sample[last] = v.layout.sample[last];
        let dims = q.shape.dims();
        let value = Value {
            id,
            shape: FeatureShape::image(dims[0], dims[1], v.shape.dims()[2]),
            layout,
        };
        self.values.insert(node.outputs()[0].name.clone(), value);
        Ok(())
    }

    /// The scores `Q·Kᵀ` (node `scores`, held like `q` with the keys' count last) plus a
    /// constant broadcast onto each sample.
    fn scores_plus(
        &mut self,
        name: String,
        scores: NodeId,
        (q, k): (&Value, &Value),
        bias: &Constant,
    ) -> Result<NodeId, Failure> {
        let mut layout = q.layout.clone();
        let last = layout.sample.len() - 1;
        layout.sample[last] = k.layout.sample[last - 1];
        let [a, b, _] = q.shape.dims()[..] else {
            return Err("attention's queries are not held in three axes".into());
        };
        let shape = FeatureShape::image(a, b, layout.sample[last]);
        let held = Value {
            id: scores,
            shape,
            layout,
        };
        self.add_per_sample(name, &held, bias)
    }

    /// Names the node's output: `x`'s values under `layout`, reshaped in the graph when a
    /// sample's dims change (and fit a graph's rank); a rank-4 or -5 sample waits as it is
    /// stored for the operator that brings it back.
    pub(super) fn relabel(
        &mut self,
        node: &OnnxNode,
        x: Value,
        layout: Layout,
    ) -> Result<(), Failure> {
        self.relabel_output(node, 0, x, layout)
    }

    /// [`Converter::relabel`] for the node's output `k`.
    fn relabel_output(
        &mut self,
        node: &OnnxNode,
        k: usize,
        x: Value,
        layout: Layout,
    ) -> Result<(), Failure> {
        let dims = layout.sample.clone();
        let mut value = if (1..=FeatureShape::MAX_RANK).contains(&dims.len()) {
            let taken = self
                .graph
                .nodes()
                .iter()
                .any(|n| n.name == unique_name(node));
            let name = match taken {
                false => unique_name(node),
                true => format!(
                    "{}.out{}",
                    unique_name(node),
                    if k > 0 { format!("{k}") } else { String::new() }
                ),
            };
            self.view(name, x, &dims)?
        } else {
            x
        };
        value.layout = layout;
        let output = node.outputs().get(k).ok_or("a missing output")?;
        self.values.insert(output.name.clone(), value);
        Ok(())
    }

    /// `x` held with per-sample dims `dims` (a graph reshape named `name` when it is held
    /// otherwise).
    pub(super) fn view(
        &mut self,
        name: String,
        x: Value,
        dims: &[usize],
    ) -> Result<Value, Failure> {
        if x.shape.dims() == dims {
            return Ok(x);
        }
        let shape = FeatureShape::new(dims).map_err(|e| e.to_string())?;
        let op = Op::Reshape(Reshape {
            shape: dims.to_vec(),
        });
        let id = self.graph.push(name, op, [x.id]);
        Ok(Value {
            id,
            shape,
            layout: x.layout,
        })
    }
}

/// An ONNX axis (negative counts from the end) as an index.
fn normalise(axis: i64, rank: i64) -> usize {
    (if axis < 0 { axis + rank } else { axis }).max(0) as usize
}

/// A `Slice`'s one axis, start and end (constants, step 1).
fn one_axis(
    c: &onnx_ir::node::slice::SliceConfig,
    runtime: impl Fn(&str) -> Option<Vec<i64>>,
) -> Result<(i64, i64, i64, i64), Failure> {
    use onnx_ir::node::slice::SliceInput::{Runtime, Static};
    // Bounds computed from shapes (TorchScript's crop after a pad) are read as the converter
    // followed them.
    let read = |s: &onnx_ir::node::slice::SliceInput, what: &str| match s {
        Static(v) => Ok(v.clone()),
        Runtime(r) => runtime(&r.name).ok_or_else(|| {
            Failure::from(format!(
                "the slice's {what} are computed at run time from values other than shapes"
            ))
        }),
    };
    let (starts, ends) = (read(&c.starts, "starts")?, read(&c.ends, "ends")?);
    let axes = match &c.axes {
        Some(a) => read(a, "axes")?,
        None => vec![0],
    };
    let steps = match &c.steps {
        Some(s) => read(s, "steps")?,
        None => vec![1],
    };
    let (&[axis], &[start], &[end], &[step]) = (&axes[..], &starts[..], &ends[..], &steps[..])
    else {
        return Err(format!("slices axes {axes:?}; lrp-grad takes one axis").into());
    };
    Ok((axis, start, end, step))
}

/// The graph axis holding sample axis `s` when the graph holds `sample` with consecutive axes
/// merged (`graph`; size-1 axes may be left out), and the product of the axes after `s` in
/// that merged group — `None` unless only size-1 axes come before `s` in its group.
fn group_of(sample: &[usize], graph: &[usize], s: usize) -> Option<(usize, usize)> {
    let mut axis = 0;
    for (g, &size) in graph.iter().enumerate() {
        let first = axis;
        let mut product = 1;
        while axis < sample.len() && (product < size || axis == first) {
            product *= sample[axis];
            axis += 1;
        }
        if g + 1 == graph.len() {
            while axis < sample.len() && sample[axis] == 1 {
                axis += 1;
            }
        }
        if product != size {
            return None;
        }
        if (first..axis).contains(&s) {
            let leads = sample[first..s].iter().all(|&d| d == 1);
            return leads.then(|| (g, sample[s + 1..axis].iter().product()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn a_sample_axis_is_found_in_its_merged_graph_axis() {
        // [3, H=2, T=4, dh=5] held as [3·2, 4, 5]: axis 0 leads graph axis 0, 2 per entry.
        assert_eq!(group_of(&[3, 2, 4, 5], &[6, 4, 5], 0), Some((0, 2)));
        assert_eq!(group_of(&[3, 2, 4, 5], &[6, 4, 5], 1), None);
        assert_eq!(group_of(&[3, 2, 4, 5], &[6, 4, 5], 2), Some((1, 1)));
        // A leading size-1 axis left out of the graph.
        assert_eq!(group_of(&[1, 10, 3, 8], &[10, 3, 8], 1), Some((0, 1)));
    }
}

/// A reshape's target resolved against its input's dims: `0` copies the input's dim at that
/// place, one `-1` takes what the others leave (ONNX's rules, `allowzero` off).
pub(super) fn resolve_target(target: &[i64], input: &[usize]) -> Result<Vec<usize>, Failure> {
    let total: usize = input.iter().product();
    let mut dims = Vec::with_capacity(target.len());
    for (k, &d) in target.iter().enumerate() {
        dims.push(match d {
            0 => *input
                .get(k)
                .ok_or("a 0 in the target past the input's axes")?,
            -1 => 0,
            d if d > 0 => d as usize,
            d => return Err(format!("target dim {d}").into()),
        });
    }
    let known: usize = dims.iter().filter(|&&d| d > 0).product();
    match target.iter().filter(|&&d| d == -1).count() {
        0 if known == total => Ok(dims),
        1 if known > 0 && total % known == 0 => Ok(dims
            .iter()
            .map(|&d| if d == 0 { total / known } else { d })
            .collect()),
        _ => Err(format!("the target {target:?} does not fit the input {input:?}").into()),
    }
}

#[cfg(test)]
mod target_tests {
    use super::resolve_target;

    #[test]
    fn a_target_copies_zeros_and_fills_its_minus_one() {
        assert_eq!(
            resolve_target(&[3, 8, -1], &[3, 8, 4, 4]).ok(),
            Some(vec![3, 8, 16])
        );
        assert_eq!(resolve_target(&[0, -1], &[2, 3, 4]).ok(), Some(vec![2, 12]));
        assert_eq!(resolve_target(&[6, 4], &[2, 3, 4]).ok(), Some(vec![6, 4]));
        assert!(resolve_target(&[5, -1], &[2, 3, 4]).is_err());
        assert!(resolve_target(&[-1, -1], &[2, 3, 4]).is_err());
    }
}
