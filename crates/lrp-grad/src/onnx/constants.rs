//! ONNX operators evaluated on small constants, in `f64` (exact for the index and shape
//! arithmetic they serve): what the folding pass (`fold.rs`) computes of constant subgraphs
//! before onnx-ir parses a model, what finds a decomposed adaptive pool (`adaptive_pool.rs`),
//! and what the converter computes of shape values (`shapes.rs`). Numpy's broadcasting and
//! ONNX's index rules (negative indices, clamped slice bounds) throughout.

use onnx_ir::{NodeProto, TensorProto};

/// Tensor element types ONNX numbers them by.
pub(super) const FLOAT: i32 = 1;
pub(super) const INT32: i32 = 6;
pub(super) const INT64: i32 = 7;
pub(super) const BOOL: i32 = 9;

/// A small constant: dims and values (integers and booleans held as `f64`, exact for the
/// index and shape arithmetic folded here), with its ONNX element type.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Const {
    pub dims: Vec<usize>,
    pub values: Vec<f64>,
    pub ty: i32,
}

impl Const {
    /// A constant of `dims` holding `values` of ONNX element type `ty`.
    #[cfg(test)]
    pub(super) fn new(dims: &[usize], values: &[f64], ty: i32) -> Self {
        Const {
            dims: dims.to_vec(),
            values: values.to_vec(),
            ty,
        }
    }
}

/// A tensor's values from its proto and raw bytes, when it is a number type.
pub(super) fn decode(t: &TensorProto, raw: &[u8]) -> Option<Const> {
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let values: Vec<f64> = match t.data_type {
        FLOAT if !raw.is_empty() => raw
            .chunks(4)
            .map(|b| Some(f64::from(f32::from_le_bytes(b.try_into().ok()?))))
            .collect::<Option<_>>()?,
        FLOAT => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        INT64 if !raw.is_empty() => raw
            .chunks(8)
            .map(|b| Some(i64::from_le_bytes(b.try_into().ok()?) as f64))
            .collect::<Option<_>>()?,
        INT64 => t.int64_data.iter().map(|&v| v as f64).collect(),
        INT32 if !raw.is_empty() => raw
            .chunks(4)
            .map(|b| Some(f64::from(i32::from_le_bytes(b.try_into().ok()?))))
            .collect::<Option<_>>()?,
        INT32 | BOOL if raw.is_empty() => t.int32_data.iter().map(|&v| f64::from(v)).collect(),
        BOOL => raw.iter().map(|&b| f64::from(b)).collect(),
        _ => return None,
    };
    (values.len() == dims.iter().product::<usize>()).then_some(Const {
        dims,
        values,
        ty: t.data_type,
    })
}

/// The node's value, for the kinds evaluated here.
pub(super) fn evaluate(node: &NodeProto, inputs: &[&Const]) -> Option<Const> {
    element_wise(node, inputs).or_else(|| structural(node, inputs))
}

/// Arithmetic, comparisons, selections and casts, value by value (NumPy's broadcasting).
fn element_wise(node: &NodeProto, inputs: &[&Const]) -> Option<Const> {
    let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name);
    match (node.op_type.as_str(), inputs) {
        // Integer division is left to the parser (ONNX truncates it); powers and roots of
        // integers too.
        ("Div" | "Pow" | "Sqrt", [x, ..]) if x.ty != FLOAT => None,
        // `fmod` takes the dividend's sign (C's `%`); plain `Mod` the divisor's.
        ("Mod", [a, b]) if attribute("fmod").is_some_and(|a| a.i == 1) => {
            (!b.values.contains(&0.0)).then(|| broadcast(&[a, b], |v| v[0] % v[1], a.ty))?
        }
        (op, inputs) if ELEMENT_WISE.contains(&op) => element_wise_op(op, inputs),
        // Bounds as inputs (opset 11+), either left out (empty).
        ("Clip", [x, bounds @ ..]) => {
            let bound = |i: usize, none: f64| {
                bounds
                    .get(i)
                    .and_then(|b| b.values.first().copied())
                    .unwrap_or(none)
            };
            let (low, high) = (bound(0, f64::NEG_INFINITY), bound(1, f64::INFINITY));
            broadcast(&[x], |v| v[0].clamp(low, high), x.ty)
        }
        // TorchScript writes a parameter shared by two modules as an `Identity` of the first.
        ("Identity", [x]) => Some((*x).clone()),
        ("Cast", [x]) => {
            let to = attribute("to")?.i as i32;
            matches!(to, FLOAT | INT32 | INT64 | BOOL).then(|| Const {
                ty: to,
                ..(*x).clone()
            })
        }
        _ => None,
    }
}

/// The operators [`element_wise_op`] evaluates (they take no attributes).
pub(super) const ELEMENT_WISE: [&str; 16] = [
    "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Equal", "Less", "Greater", "Not", "Where", "Sqrt",
    "Neg", "Relu", "Exp", "Sigmoid",
];

/// `op` value by value (NumPy's broadcasting; the first input's element type, `BOOL` for
/// comparisons). On integers `Div` floors and `Mod` takes the divisor's sign (Python's `//`
/// and `%`, as shape arithmetic uses them); `Mod` by 0 evaluates to nothing.
pub(super) fn element_wise_op(op: &str, inputs: &[&Const]) -> Option<Const> {
    let binary = |f: fn(f64, f64) -> f64, ty: i32| {
        let [a, b] = inputs else { return None };
        broadcast(&[a, b], |v| f(v[0], v[1]), ty)
    };
    let x = inputs.first()?;
    let unary = |f: fn(f64) -> f64| broadcast(&[x], |v| f(v[0]), x.ty);
    match op {
        "Add" => binary(|a, b| a + b, x.ty),
        "Sub" => binary(|a, b| a - b, x.ty),
        "Mul" => binary(|a, b| a * b, x.ty),
        "Div" if x.ty == FLOAT => binary(|a, b| a / b, x.ty),
        "Div" => binary(|a, b| (a / b).floor(), x.ty),
        "Mod" if inputs.get(1)?.values.contains(&0.0) => None,
        "Mod" => binary(|a, b| a - b * (a / b).floor(), x.ty),
        "Pow" => binary(f64::powf, x.ty),
        "Equal" => binary(|a, b| f64::from(u8::from(a == b)), BOOL),
        "Less" => binary(|a, b| f64::from(u8::from(a < b)), BOOL),
        "Greater" => binary(|a, b| f64::from(u8::from(a > b)), BOOL),
        "Not" => unary(|v| f64::from(u8::from(v == 0.0))),
        "Sqrt" => unary(f64::sqrt),
        "Neg" => unary(|v| -v),
        "Relu" => unary(|v| v.max(0.0)),
        "Exp" => unary(f64::exp),
        "Sigmoid" => unary(|v| 1.0 / (1.0 + (-v).exp())),
        "Where" => {
            let [c, a, b] = inputs else { return None };
            broadcast(&[c, a, b], |v| if v[0] != 0.0 { v[1] } else { v[2] }, a.ty)
        }
        _ => None,
    }
}

/// Operators that make, move or pick values: shapes, reshapes, gathers, slices, scatters.
fn structural(node: &NodeProto, inputs: &[&Const]) -> Option<Const> {
    let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name);
    match (node.op_type.as_str(), inputs) {
        ("ConstantOfShape", [shape]) => {
            let fill = (attribute("value").and_then(|a| a.t.as_ref()))
                .and_then(|t| decode(t, &t.raw_data));
            constant_of_shape(shape, fill)
        }
        ("Expand", [x, shape]) => {
            let dims: Vec<usize> = shape.values.iter().map(|&d| d as usize).collect();
            broadcast_to(x, &dims)
        }
        ("Gather", [data, indices]) => gather(data, indices, attribute("axis").map_or(0, |a| a.i)),
        ("Unsqueeze", [x, axes]) => unsqueeze(x, axes),
        ("Transpose", [x]) => {
            let perm: Vec<usize> = match attribute("perm") {
                Some(a) => a.ints.iter().map(|&p| p as usize).collect(),
                None => (0..x.dims.len()).rev().collect(),
            };
            transpose(x, &perm)
        }
        ("GatherND", [data, indices]) => gather_nd(data, indices),
        ("Reshape", [x, shape]) => reshape(x, shape),
        ("Concat", parts) if !parts.is_empty() => concat(parts, attribute("axis")?.i),
        ("Shape", [x]) => {
            let rank = x.dims.len() as i64;
            let at = |name: &str, default: i64| {
                let v = attribute(name).map_or(default, |a| a.i);
                (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize
            };
            let (start, end) = (at("start", 0), at("end", rank));
            let dims: Vec<f64> = x.dims[start..end.max(start)]
                .iter()
                .map(|&d| d as f64)
                .collect();
            Some(Const {
                dims: vec![dims.len()],
                values: dims,
                ty: INT64,
            })
        }
        ("ScatterND", [data, indices, updates]) => scatter_nd(data, indices, updates),
        ("Slice", [x, starts, ends, rest @ ..]) => slice(x, [starts, ends], rest),
        // Swin v2's position-bias MLP runs on a constant table.
        ("MatMul", [a, b]) => matmul(a, b),
        ("Gemm", [a, b, rest @ ..]) => {
            let flag = |name: &str| attribute(name).is_some_and(|a| a.i == 1);
            let scale = |name: &str| attribute(name).map_or(1.0, |a| f64::from(a.f));
            gemm(
                a,
                b,
                rest.first().copied(),
                [flag("transA"), flag("transB")],
                [scale("alpha"), scale("beta")],
            )
        }
        _ => None,
    }
}

/// ONNX `ConstantOfShape`: `fill` (default a float 0) repeated to the shape.
pub(super) fn constant_of_shape(shape: &Const, fill: Option<Const>) -> Option<Const> {
    let fill = fill.unwrap_or(Const {
        dims: vec![1],
        values: vec![0.0],
        ty: FLOAT,
    });
    let dims: Vec<usize> = shape.values.iter().map(|&d| d as usize).collect();
    let n = dims.iter().product();
    Some(Const {
        dims,
        values: vec![*fill.values.first()?; n],
        ty: fill.ty,
    })
}

/// ONNX `Concat` of constants along `axis` (negative counts from the end).
pub(super) fn concat(parts: &[&Const], axis: i64) -> Option<Const> {
    let first = parts[0];
    let rank = first.dims.len() as i64;
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis }).ok()?;
    let same = |c: &&Const| {
        c.dims.len() == first.dims.len()
            && (0..first.dims.len()).all(|k| k == axis || c.dims[k] == first.dims[k])
    };
    if axis >= first.dims.len() || !parts.iter().all(same) {
        return None;
    }
    let outer: usize = first.dims[..axis].iter().product();
    let inner: usize = first.dims[axis + 1..].iter().product();
    let mut values = Vec::new();
    for o in 0..outer {
        for c in parts {
            let chunk = c.dims[axis] * inner;
            values.extend_from_slice(&c.values[o * chunk..(o + 1) * chunk]);
        }
    }
    let mut dims = first.dims.clone();
    dims[axis] = parts.iter().map(|c| c.dims[axis]).sum();
    Some(Const {
        dims,
        values,
        ty: first.ty,
    })
}

/// ONNX `Reshape` of a constant: a `0` copies the dim, one `-1` takes what is left.
pub(super) fn reshape(x: &Const, shape: &Const) -> Option<Const> {
    let mut dims: Vec<usize> = Vec::with_capacity(shape.values.len());
    let mut free = None;
    for (k, &d) in shape.values.iter().enumerate() {
        match d {
            -1.0 if free.is_none() => {
                free = Some(k);
                dims.push(1);
            }
            0.0 => dims.push(*x.dims.get(k)?),
            d if d > 0.0 => dims.push(d as usize),
            _ => return None,
        }
    }
    let known: usize = dims.iter().product();
    if let Some(k) = free {
        (known > 0 && x.values.len().is_multiple_of(known))
            .then(|| dims[k] = x.values.len() / known)?;
    }
    (dims.iter().product::<usize>() == x.values.len()).then(|| Const { dims, ..x.clone() })
}

/// ONNX `Unsqueeze` with its axes as an input (negative ones count from the new rank's end).
pub(super) fn unsqueeze(x: &Const, axes: &Const) -> Option<Const> {
    let rank = (x.dims.len() + axes.values.len()) as i64;
    let mut at: Vec<usize> = (axes.values.iter())
        .map(|&a| (if a < 0.0 { a as i64 + rank } else { a as i64 }) as usize)
        .collect();
    at.sort_unstable();
    let mut dims = x.dims.clone();
    for a in at {
        (a <= dims.len()).then(|| dims.insert(a, 1))?;
    }
    Some(Const { dims, ..x.clone() })
}

/// NumPy's broadcast of several dims, or `None` when they do not broadcast.
fn broadcast_dims(all: &[&[usize]]) -> Option<Vec<usize>> {
    let rank = all.iter().map(|d| d.len()).max()?;
    (0..rank)
        .map(|k| {
            let at = |d: &[usize]| (k + d.len()).checked_sub(rank).map_or(1, |i| d[i]);
            let big = all.iter().map(|d| at(d)).max()?;
            all.iter()
                .all(|d| at(d) == 1 || at(d) == big)
                .then_some(big)
        })
        .collect()
}

/// The flat index into a tensor of `dims` (broadcast to `out`) of the output's flat index `i`.
fn source(dims: &[usize], out: &[usize], mut i: usize) -> usize {
    let (mut index, mut stride) = (0, 1);
    for k in (0..out.len()).rev() {
        let coordinate = i % out[k];
        i /= out[k];
        if let Some(j) = (k + dims.len()).checked_sub(out.len()) {
            index += (coordinate % dims[j]) * stride;
            stride *= dims[j];
        }
    }
    index
}

pub(super) fn broadcast(inputs: &[&Const], f: impl Fn(&[f64]) -> f64, ty: i32) -> Option<Const> {
    let dims: Vec<&[usize]> = inputs.iter().map(|c| c.dims.as_slice()).collect();
    let out = broadcast_dims(&dims)?;
    let n: usize = out.iter().product();
    let values = (0..n)
        .map(|i| {
            f(&inputs
                .iter()
                .map(|c| c.values[source(&c.dims, &out, i)])
                .collect::<Vec<_>>())
        })
        .collect();
    Some(Const {
        dims: out,
        values,
        ty,
    })
}

/// ONNX `Expand`: `x` broadcast with `shape` (a 1 in `shape` keeps `x`'s dim).
pub(super) fn broadcast_to(x: &Const, shape: &[usize]) -> Option<Const> {
    let out = broadcast_dims(&[&x.dims, shape])?;
    let n = out.iter().product();
    let values = (0..n).map(|i| x.values[source(&x.dims, &out, i)]).collect();
    Some(Const {
        dims: out,
        values,
        ty: x.ty,
    })
}

/// `x` with its axes in the order `perm` (output axis `k` is input axis `perm[k]`).
pub(super) fn transpose(x: &Const, perm: &[usize]) -> Option<Const> {
    if perm.len() != x.dims.len() || perm.iter().any(|&p| p >= perm.len()) {
        return None;
    }
    let all: Vec<Vec<usize>> = x.dims.iter().map(|&d| (0..d).collect()).collect();
    Some(pick_axes(x, perm, &all))
}

/// Output axis `k` reads input axis `perm[k]` at the entries `picks[perm[k]]`.
fn pick_axes(x: &Const, perm: &[usize], picks: &[Vec<usize>]) -> Const {
    let mut strides = vec![1; x.dims.len()];
    for k in (0..x.dims.len().saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * x.dims[k + 1];
    }
    let dims: Vec<usize> = perm.iter().map(|&p| picks[p].len()).collect();
    let n = dims.iter().product();
    let values = (0..n)
        .map(|mut i| {
            let mut at = 0;
            for k in (0..dims.len()).rev() {
                at += picks[perm[k]][i % dims[k]] * strides[perm[k]];
                i /= dims[k];
            }
            x.values[at]
        })
        .collect();
    Const {
        dims,
        values,
        ty: x.ty,
    }
}

/// ONNX `Gather`: the entries of `data` along `axis` at `indices` (negative ones count from
/// the end), the indices' dims in the axis' place.
pub(super) fn gather(data: &Const, indices: &Const, axis: i64) -> Option<Const> {
    let rank = data.dims.len() as i64;
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis }).ok()?;
    let size = *data.dims.get(axis)?;
    let outer: usize = data.dims[..axis].iter().product();
    let inner: usize = data.dims[axis + 1..].iter().product();
    let picks: Vec<usize> = (indices.values.iter())
        .map(|&i| {
            let i = if i < 0.0 {
                i as i64 + size as i64
            } else {
                i as i64
            };
            usize::try_from(i).ok().filter(|&i| i < size)
        })
        .collect::<Option<_>>()?;
    let mut values = Vec::with_capacity(outer * picks.len() * inner);
    for o in 0..outer {
        for &p in &picks {
            let start = (o * size + p) * inner;
            values.extend_from_slice(&data.values[start..start + inner]);
        }
    }
    let dims = (data.dims[..axis].iter())
        .chain(&indices.dims)
        .chain(&data.dims[axis + 1..])
        .copied()
        .collect();
    Some(Const {
        dims,
        values,
        ty: data.ty,
    })
}

/// ONNX `ScatterND` (no reduction): `data` with the slices at `indices` replaced by `updates`.
pub(super) fn scatter_nd(data: &Const, indices: &Const, updates: &Const) -> Option<Const> {
    let depth = *indices.dims.last()?;
    if depth == 0 || depth > data.dims.len() {
        return None;
    }
    let slice: usize = data.dims[depth..].iter().product();
    let mut out = data.clone();
    for (r, row) in indices.values.chunks(depth).enumerate() {
        let mut offset = 0;
        for (k, &i) in row.iter().enumerate() {
            let size = data.dims[k] as i64;
            let i = if i < 0.0 { i as i64 + size } else { i as i64 };
            (0..size).contains(&i).then_some(())?;
            offset = offset * data.dims[k] + i as usize;
        }
        let source = updates.values.get(r * slice..(r + 1) * slice)?;
        out.values[offset * slice..(offset + 1) * slice].copy_from_slice(source);
    }
    Some(out)
}

/// ONNX `Slice` of a constant: per axis `start..end` by `step` (NumPy's clamping).
pub(super) fn slice(x: &Const, [starts, ends]: [&Const; 2], rest: &[&Const]) -> Option<Const> {
    let rank = x.dims.len();
    let axes: Vec<usize> = match rest.first() {
        Some(a) => (a.values.iter())
            .map(|&a| (if a < 0.0 { a + rank as f64 } else { a }) as usize)
            .collect(),
        None => (0..starts.values.len()).collect(),
    };
    let steps: Vec<i64> = match rest.get(1) {
        Some(s) => s.values.iter().map(|&s| s as i64).collect(),
        None => vec![1; axes.len()],
    };
    // The input index each output index of every axis reads.
    let mut picks: Vec<Vec<usize>> = x.dims.iter().map(|&d| (0..d).collect()).collect();
    for (k, &axis) in axes.iter().enumerate() {
        let (size, step) = (*x.dims.get(axis)? as i64, *steps.get(k)?);
        let (start, end) = (*starts.values.get(k)? as i64, *ends.values.get(k)? as i64);
        picks[axis] = slice_entries(size, start, end, step)?;
    }
    let identity: Vec<usize> = (0..rank).collect();
    Some(pick_axes(x, &identity, &picks))
}

/// The entries `start..end` by `step` of an axis of `size` (NumPy's rules: negative bounds
/// count from the end; a negative step walks back from `start` to after `end`).
fn slice_entries(size: i64, start: i64, end: i64, step: i64) -> Option<Vec<usize>> {
    let at = |v: i64, low: i64, high: i64| {
        (if v < 0 { v.saturating_add(size) } else { v }).clamp(low, high)
    };
    match step {
        0 => None,
        1.. => {
            let (start, end) = (at(start, 0, size), at(end, 0, size));
            Some(
                (start..end)
                    .step_by(step as usize)
                    .map(|i| i as usize)
                    .collect(),
            )
        }
        _ => {
            let (start, end) = (at(start, -1, size - 1), at(end, -1, size - 1));
            let count = ((start - end).max(0) as u64).div_ceil(step.unsigned_abs()) as i64;
            Some((0..count).map(|i| (start + i * step) as usize).collect())
        }
    }
}

/// ONNX `MatMul` of two constants of rank 2 or more: NumPy's batched product (the leading
/// axes broadcast).
fn matmul(a: &Const, b: &Const) -> Option<Const> {
    let (ra, rb) = (a.dims.len(), b.dims.len());
    if ra < 2 || rb < 2 || a.dims[ra - 1] != b.dims[rb - 2] {
        return None;
    }
    let (m, k, n) = (a.dims[ra - 2], a.dims[ra - 1], b.dims[rb - 1]);
    let lead = broadcast_dims(&[&a.dims[..ra - 2], &b.dims[..rb - 2]])?;
    let batches: usize = lead.iter().product();
    let mut values = Vec::with_capacity(batches * m * n);
    for t in 0..batches {
        let (pa, pb) = (
            source(&a.dims[..ra - 2], &lead, t),
            source(&b.dims[..rb - 2], &lead, t),
        );
        for i in 0..m {
            for j in 0..n {
                let sum = (0..k)
                    .map(|l| a.values[(pa * m + i) * k + l] * b.values[(pb * k + l) * n + j])
                    .sum();
                values.push(sum);
            }
        }
    }
    let dims = lead.into_iter().chain([m, n]).collect();
    Some(Const {
        dims,
        values,
        ty: a.ty,
    })
}

/// ONNX `Gemm` of constants: `alpha · A' · B' + beta · C` (`'` the optional transposes).
fn gemm(
    a: &Const,
    b: &Const,
    c: Option<&Const>,
    [ta, tb]: [bool; 2],
    [alpha, beta]: [f64; 2],
) -> Option<Const> {
    let t = |x: &Const, flip: bool| match flip {
        true => transpose(x, &[1, 0]),
        false => Some(x.clone()),
    };
    let product = matmul(&t(a, ta)?, &t(b, tb)?)?;
    let scaled = broadcast(&[&product], |v| alpha * v[0], product.ty)?;
    match c {
        Some(c) => broadcast(&[&scaled, c], |v| v[0] + beta * v[1], product.ty),
        None => Some(scaled),
    }
}

/// ONNX `GatherND` with `batch_dims = 0`: each index row of the last axis picks a slice.
pub(super) fn gather_nd(data: &Const, indices: &Const) -> Option<Const> {
    let depth = *indices.dims.last()?;
    if depth > data.dims.len() {
        return None;
    }
    let slice: usize = data.dims[depth..].iter().product();
    let rows = indices.values.len() / depth.max(1);
    let mut values = Vec::with_capacity(rows * slice);
    for row in indices.values.chunks(depth) {
        let mut offset = 0;
        for (k, &i) in row.iter().enumerate() {
            let size = data.dims[k] as i64;
            let i = if i < 0.0 { i as i64 + size } else { i as i64 };
            if !(0..size).contains(&i) {
                return None;
            }
            offset = offset * data.dims[k] + i as usize;
        }
        values.extend_from_slice(&data.values[offset * slice..(offset + 1) * slice]);
    }
    let dims = indices.dims[..indices.dims.len() - 1]
        .iter()
        .chain(&data.dims[depth..])
        .copied()
        .collect();
    Some(Const {
        dims,
        values,
        ty: data.ty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(dims: &[usize], values: &[f64], ty: i32) -> Const {
        Const::new(dims, values, ty)
    }

    /// Swin v2's position-bias MLP: `relu(T · W₁ + b₁) · W₂` on a constant table.
    #[test]
    fn matmul_and_gemm_follow_onnx() {
        let a = c(
            &[2, 1, 2, 3],
            &(1..=12).map(f64::from).collect::<Vec<_>>(),
            FLOAT,
        );
        let b = c(&[3, 1], &[1.0, 0.0, -1.0], FLOAT);
        let p = matmul(&a, &b).unwrap();
        assert_eq!((p.dims, p.values), (vec![2, 1, 2, 1], vec![-2.0; 4]));
        let a = c(&[2, 2], &[1.0, 2.0, 3.0, 4.0], FLOAT);
        let bias = c(&[2], &[10.0, 20.0], FLOAT);
        let g = gemm(&a, &a, Some(&bias), [false, true], [2.0, 0.5]).unwrap();
        // A·Aᵀ = [[5, 11], [11, 25]]; · 2 + 0.5 · [10, 20].
        assert_eq!(g.values, vec![15.0, 32.0, 27.0, 60.0]);
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_dims(&[&[3], &[2, 1]]), Some(vec![2, 3]));
        assert_eq!(broadcast_dims(&[&[3], &[2]]), None);
        let x = c(&[1, 3], &[1.0, 2.0, 3.0], FLOAT);
        assert_eq!(
            broadcast_to(&x, &[2, 1]).unwrap().values,
            [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn transpose_moves_axes() {
        let x = c(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], FLOAT);
        let t = transpose(&x, &[1, 0]).unwrap();
        assert_eq!(
            (t.dims, t.values),
            (vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
        );
    }

    #[test]
    fn gather_nd_picks_rows() {
        let data = c(&[2, 3], &[0.0, 1.0, 2.0, 10.0, 11.0, 12.0], FLOAT);
        let picked = gather_nd(&data, &c(&[2, 2], &[1.0, 2.0, 0.0, 1.0], INT64)).unwrap();
        assert_eq!((picked.dims, picked.values), (vec![2], vec![12.0, 1.0]));
        let rows = gather_nd(&data, &c(&[1, 1], &[1.0], INT64)).unwrap();
        assert_eq!(
            (rows.dims, rows.values),
            (vec![1, 3], vec![10.0, 11.0, 12.0])
        );
    }

    /// Swin's shifted-window mask is built by scattering region ids into a zero map and
    /// slicing it by steps; TorchScript's `unflatten` bounds come from `Mod` and `Reshape`.
    #[test]
    fn scatter_slice_gather_mod_and_reshape_follow_onnx() {
        let data = c(&[3, 2], &[0.0; 6], FLOAT);
        let rows = c(&[2, 1], &[2.0, 0.0], INT64);
        let updates = c(&[2, 2], &[5.0, 6.0, 7.0, 8.0], FLOAT);
        let scattered = scatter_nd(&data, &rows, &updates).unwrap();
        assert_eq!(scattered.values, vec![7.0, 8.0, 0.0, 0.0, 5.0, 6.0]);
        let x = c(&[2, 5], &(0..10).map(f64::from).collect::<Vec<_>>(), FLOAT);
        let (starts, ends) = (c(&[1], &[-4.0], INT64), c(&[1], &[9e18], INT64));
        let (axes, steps) = (c(&[1], &[1.0], INT64), c(&[1], &[2.0], INT64));
        let sliced = slice(&x, [&starts, &ends], &[&axes, &steps]).unwrap();
        assert_eq!(
            (sliced.dims, sliced.values),
            (vec![2, 2], vec![1.0, 3.0, 6.0, 8.0])
        );
        let (back, none) = (c(&[1], &[-1.0], INT64), c(&[1], &[-9e18], INT64));
        let reversed = slice(&x, [&back, &none], &[&axes, &c(&[1], &[-1.0], INT64)]).unwrap();
        assert_eq!(
            reversed.values[..5],
            [4.0, 3.0, 2.0, 1.0, 0.0],
            "F.pad's pads reversed"
        );
        let column = gather(&x, &c(&[], &[-1.0], INT64), 1).unwrap();
        assert_eq!((column.dims, column.values), (vec![2], vec![4.0, 9.0]));
        let a = c(&[3], &[-7.0, 7.0, 5.0], INT64);
        let m = |fmod: bool| {
            let mut node = NodeProto::new();
            node.op_type = "Mod".into();
            let mut attribute = onnx_ir::AttributeProto::new();
            attribute.name = "fmod".into();
            attribute.i = i64::from(fmod);
            node.attribute.push(attribute);
            let b = c(&[1], &[3.0], INT64);
            evaluate(&node, &[&a, &b]).unwrap().values
        };
        assert_eq!(m(false), vec![2.0, 1.0, 2.0], "Python's sign");
        assert_eq!(m(true), vec![-1.0, 1.0, 2.0], "C's sign");
        let r = reshape(&x, &c(&[3], &[0.0, -1.0, 1.0], INT64)).unwrap();
        assert_eq!(r.dims, vec![2, 5, 1]);
        assert!(reshape(&x, &c(&[1], &[3.0], INT64)).is_none());
    }
}
