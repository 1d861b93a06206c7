//! Constant subgraphs folded before onnx-ir reads the model: TorchScript writes a class
//! token's `expand(N, -1, -1)` as `ConstantOfShape → Mul → Equal → Where → Expand` over
//! constants, and a model's constant lookups (LeViT's attention biases) as `GatherND` of
//! constants — operators onnx-ir neither folds nor types, so every shape after them would be
//! unknown; TorchScript's `unflatten` of a projection (nn.MultiheadAttention's packed q, k, v)
//! computes its slice bounds with `Mod` and `Reshape` of constants, which onnx-ir does not fold
//! either. Each node of those kinds whose inputs are all constants is evaluated here and
//! replaced by an initializer (with `Mul`, `Add`, `Sub`, `Div`, `Gather`, `Unsqueeze`,
//! `Transpose` and `Cast` of constants, which feed or read them); onnx-ir then parses the model
//! as if it had been exported folded. The same evaluator finds the dynamo exporter's adaptive
//! average pools (`adaptive_pool.rs`).

use std::collections::HashMap;
use std::path::Path;

use onnx_ir::{Message, ModelProto, NodeProto, TensorProto};

/// Tensor element types ONNX numbers them by.
pub(super) const FLOAT: i32 = 1;
const INT32: i32 = 6;
pub(super) const INT64: i32 = 7;
const BOOL: i32 = 9;

/// The largest external tensor read as a constant, in bytes, and the most elements of any
/// (indices, masks and position tables are small; weights are not folded).
const SMALL: u64 = 1 << 22;
const SMALL_ELEMENTS: usize = 1 << 20;

/// A small constant: dims and values (integers and booleans held as `f64`, exact for the
/// index and shape arithmetic folded here), with its ONNX element type.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Const {
    pub dims: Vec<usize>,
    pub values: Vec<f64>,
    pub ty: i32,
}

/// The model's bytes with its constant subgraphs folded, or `None` when there is nothing to
/// fold. Tensors in external data (`dir` holds their files) are read where they are small
/// constants, and written into the returned bytes when anything was folded (a model over
/// ~1.9 GB, which one protobuf message cannot hold, is left unfolded).
pub(super) fn fold(bytes: &[u8], dir: Option<&Path>) -> Option<Vec<u8>> {
    let mut model = ModelProto::parse_from_bytes(bytes).ok()?;
    let graph = model.graph.as_mut()?;
    let mut known: HashMap<String, Const> = HashMap::new();
    for t in &graph.initializer {
        if let Some(c) = read(t, dir) {
            known.insert(t.name.clone(), c);
        }
    }
    let mut folded = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        if node.op_type == "Constant" {
            let value = node.attribute.iter().find(|a| a.name == "value");
            if let (Some(t), Some(out)) = (value.and_then(|a| a.t.as_ref()), node.output.first()) {
                read(t, dir).map(|c| known.insert(out.clone(), c));
            }
            continue;
        }
        let inputs: Option<Vec<&Const>> = node.input.iter().map(|n| known.get(n)).collect();
        let Some(result) = inputs.and_then(|inputs| evaluate(node, &inputs)) else {
            continue;
        };
        known.insert(node.output[0].clone(), result.clone());
        folded.push((i, result));
    }
    for (i, c) in folded.iter().rev() {
        let name = graph.node[*i].output[0].clone();
        graph.node.remove(*i);
        graph.initializer.push(write(&name, c));
    }
    let pools = super::adaptive_pool::rewrite(&mut model, &known);
    if folded.is_empty() && pools == 0 {
        return None;
    }
    inline_external(&mut model, dir)?;
    model.write_to_bytes().ok()
}

/// Every external tensor's bytes moved into the model (bytes alone cannot point at files).
fn inline_external(model: &mut ModelProto, dir: Option<&Path>) -> Option<()> {
    let graph = model.graph.as_mut()?;
    let external = |t: &TensorProto| !t.external_data.is_empty();
    if !graph.initializer.iter().any(external) {
        return Some(());
    }
    let dir = dir?;
    let total: u64 = (graph.initializer.iter().filter(|t| external(t)))
        .filter_map(|t| external_range(t).map(|(_, _, length)| length))
        .sum();
    if total > 1_900_000_000 {
        return None;
    }
    for t in graph.initializer.iter_mut().filter(|t| external(t)) {
        t.raw_data = read_external(t, dir, u64::MAX)?.into();
        t.external_data.clear();
        t.data_location = Default::default();
    }
    Some(())
}

/// An external tensor's file, offset and length (the length from its dims when not written).
fn external_range(t: &TensorProto) -> Option<(String, u64, u64)> {
    let entry = |key: &str| t.external_data.iter().find(|e| e.key == key);
    let location = entry("location")?.value.clone();
    let offset = entry("offset").map_or(Some(0), |e| e.value.parse().ok())?;
    let width = match t.data_type {
        FLOAT | INT32 => 4,
        INT64 => 8,
        BOOL => 1,
        10 | 16 => 2,
        11 => 8,
        _ => return None,
    };
    let elements: i64 = t.dims.iter().product();
    let length = match entry("length") {
        Some(e) => e.value.parse().ok()?,
        None => u64::try_from(elements).ok()? * width,
    };
    Some((location, offset, length))
}

/// An external tensor's bytes, when its file is beside the model (no absolute paths or
/// `..`, as onnx-ir's own reader requires) and it holds at most `limit` bytes.
fn read_external(t: &TensorProto, dir: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let (location, offset, length) = external_range(t)?;
    let relative = Path::new(&location);
    let plain = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain || length > limit {
        return None;
    }
    let mut file = std::fs::File::open(dir.join(relative)).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = vec![0; usize::try_from(length).ok()?];
    file.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

/// Whether to fold: always for a file of at most 1 GiB (a constant `Reshape` or `Transpose`
/// cannot be told from the bytes; on VGG-16's 553 MB TorchScript export the pass costs 3 s and
/// 0.7 GB), else when it holds an operator that starts such a subgraph — read in 1 MiB pieces,
/// so a larger model that needs no folding is neither held in memory twice nor decoded twice.
pub(super) fn worth_folding(path: &std::path::Path) -> bool {
    worth_folding_above(path, 1 << 30)
}

/// [`worth_folding`] with files of at most `always` bytes folded always.
fn worth_folding_above(path: &std::path::Path, always: u64) -> bool {
    use std::io::Read;
    if std::fs::metadata(path).is_ok_and(|m| m.len() <= always) {
        return true;
    }
    // `Mod` with its protobuf field tag and length (a bare "Mod" turns up in weights).
    const NEEDLES: [&[u8]; 4] = [
        b"ConstantOfShape",
        b"GatherND",
        b"ScatterND",
        b"\x22\x03Mod",
    ];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let keep = NEEDLES.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    let mut window: Vec<u8> = Vec::with_capacity(keep + (1 << 20));
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let Ok(n) = file.read(&mut piece) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        window.extend_from_slice(&piece[..n]);
        if NEEDLES
            .iter()
            .any(|needle| window.windows(needle.len()).any(|w| w == *needle))
        {
            return true;
        }
        window.drain(..window.len().saturating_sub(keep));
    }
}

/// A tensor's values, when it is a number type held in the model (or a small one in
/// external data beside it).
fn read(t: &TensorProto, dir: Option<&Path>) -> Option<Const> {
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    // Weights are not folded: only small tensors are decoded (bounded memory on large models).
    if dims.iter().product::<usize>() > SMALL_ELEMENTS {
        return None;
    }
    let external = match (t.external_data.is_empty(), dir) {
        (true, _) => None,
        (false, Some(dir)) => Some(read_external(t, dir, SMALL)?),
        (false, None) => return None,
    };
    let raw: &[u8] = external.as_deref().unwrap_or(&t.raw_data);
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

fn write(name: &str, c: &Const) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = c.dims.iter().map(|&d| d as i64).collect();
    t.data_type = c.ty;
    let bytes: Vec<u8> = match c.ty {
        FLOAT => c
            .values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        INT32 => c
            .values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
        BOOL => c.values.iter().map(|&v| u8::from(v != 0.0)).collect(),
        _ => c
            .values
            .iter()
            .flat_map(|&v| (v as i64).to_le_bytes())
            .collect(),
    };
    t.raw_data = bytes.into();
    t
}

/// The node's value, for the kinds folded here.
pub(super) fn evaluate(node: &NodeProto, inputs: &[&Const]) -> Option<Const> {
    let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name);
    match (node.op_type.as_str(), inputs) {
        ("ConstantOfShape", [shape]) => {
            let fill = (attribute("value").and_then(|a| a.t.as_ref())).and_then(|t| read(t, None));
            constant_of_shape(shape, fill)
        }
        ("Equal", [a, b]) => broadcast(&[a, b], |v| f64::from(u8::from(v[0] == v[1])), BOOL),
        ("Where", [c, a, b]) => {
            broadcast(&[c, a, b], |v| if v[0] != 0.0 { v[1] } else { v[2] }, a.ty)
        }
        ("Expand", [x, shape]) => {
            let dims: Vec<usize> = shape.values.iter().map(|&d| d as usize).collect();
            broadcast_to(x, &dims)
        }
        ("Mul", [a, b]) => broadcast(&[a, b], |v| v[0] * v[1], a.ty),
        ("Add", [a, b]) => broadcast(&[a, b], |v| v[0] + v[1], a.ty),
        ("Sub", [a, b]) => broadcast(&[a, b], |v| v[0] - v[1], a.ty),
        ("Div", [a, b]) if a.ty == FLOAT => broadcast(&[a, b], |v| v[0] / v[1], a.ty),
        ("Pow", [a, b]) if a.ty == FLOAT => broadcast(&[a, b], |v| v[0].powf(v[1]), a.ty),
        ("Sqrt", [x]) if x.ty == FLOAT => broadcast(&[x], |v| v[0].sqrt(), x.ty),
        ("Neg", [x]) => broadcast(&[x], |v| -v[0], x.ty),
        // TorchScript writes a parameter shared by two modules as an `Identity` of the first.
        ("Identity", [x]) => Some((*x).clone()),
        ("Gather", [data, indices]) => gather(data, indices, attribute("axis").map_or(0, |a| a.i)),
        ("Unsqueeze", [x, axes]) => unsqueeze(x, axes),
        ("Transpose", [x]) => {
            let perm: Vec<usize> = match attribute("perm") {
                Some(a) => a.ints.iter().map(|&p| p as usize).collect(),
                None => (0..x.dims.len()).rev().collect(),
            };
            transpose(x, &perm)
        }
        ("Cast", [x]) => {
            let to = attribute("to")?.i as i32;
            matches!(to, FLOAT | INT32 | INT64 | BOOL).then(|| Const {
                ty: to,
                ..(*x).clone()
            })
        }
        ("GatherND", [data, indices]) => gather_nd(data, indices),
        ("Mod", [a, b]) => {
            let fmod = attribute("fmod").is_some_and(|a| a.i == 1);
            // Integer `Mod` takes the divisor's sign (Python's `%`); `fmod` the dividend's.
            let f = move |v: &[f64]| match fmod {
                true => v[0] % v[1],
                false => v[0] - v[1] * (v[0] / v[1]).floor(),
            };
            (b.values.iter().all(|&d| d != 0.0)).then(|| broadcast(&[a, b], f, a.ty))?
        }
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
        ("Not", [x]) => Some(Const {
            values: x
                .values
                .iter()
                .map(|&v| f64::from(u8::from(v == 0.0)))
                .collect(),
            ..(*x).clone()
        }),
        ("ScatterND", [data, indices, updates]) => scatter_nd(data, indices, updates),
        ("Slice", [x, starts, ends, rest @ ..]) => slice(x, [starts, ends], rest),
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
        (known > 0 && x.values.len() % known == 0).then(|| dims[k] = x.values.len() / known)?;
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
        Const {
            dims: dims.to_vec(),
            values: values.to_vec(),
            ty,
        }
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
    fn the_class_tokens_expand_shape_folds() {
        // TorchScript's expand(N, -1, -1): ConstantOfShape([3]) = ones, · -1, == [1, -1, -1],
        // Where(…, ones, [1, -1, -1]).
        let ones = c(&[3], &[1.0; 3], INT64);
        let minus = broadcast(&[&ones, &c(&[], &[-1.0], INT64)], |v| v[0] * v[1], INT64).unwrap();
        let target = c(&[3], &[1.0, -1.0, -1.0], INT64);
        let equal = broadcast(
            &[&target, &minus],
            |v| f64::from(u8::from(v[0] == v[1])),
            BOOL,
        )
        .unwrap();
        assert_eq!(equal.values, [0.0, 1.0, 1.0]);
        let shape = broadcast(
            &[&equal, &ones, &target],
            |v| if v[0] != 0.0 { v[1] } else { v[2] },
            INT64,
        );
        assert_eq!(shape.unwrap().values, [1.0, 1.0, 1.0]);
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

    #[test]
    fn a_needle_across_a_piece_boundary_is_found() {
        let dir = std::env::temp_dir().join(format!("lrp-grad-fold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (with, without) = (dir.join("with.onnx"), dir.join("without.onnx"));
        let mut bytes = vec![0u8; (1 << 20) - 5];
        bytes.extend_from_slice(b"ConstantOfShape");
        bytes.extend_from_slice(&[0u8; 100]);
        std::fs::write(&with, &bytes).unwrap();
        std::fs::write(&without, vec![7u8; (1 << 20) + 50]).unwrap();
        assert!(worth_folding_above(&with, 0));
        assert!(!worth_folding_above(&without, 0));
        assert!(!worth_folding_above(&dir.join("missing.onnx"), 0));
        assert!(worth_folding(&without), "a small file is always folded");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tensors_round_trip_through_the_proto() {
        for t in [
            c(&[2], &[3.0, -1.0], INT64),
            c(&[3], &[0.5, 1.0, -2.0], FLOAT),
            c(&[2], &[1.0, 0.0], BOOL),
        ] {
            assert_eq!(read(&write("t", &t), None).unwrap(), t);
        }
    }
}
