//! LPBQ folding rules (the `lpbq-fold` pass): a weight dequantization chain feeding the
//! weight operand of a matmul or convolution becomes one blockwise-encoded (LPBQ) weight.
//!
//! | rule                  | root             | rewrite                                                   |
//! |-----------------------|------------------|-----------------------------------------------------------|
//! | `lpbq-fold-mul`       | nn.mul           | chain(codes, scales) -> dequantize(weight : lpbq)         |
//! | `lpbq-fold-reshape`   | tensor.reshape   | the same, for a chain whose last op is a reshape          |
//! | `lpbq-fold-transpose` | tensor.transpose | the same, for a chain whose last op is a transpose        |
//! | `lpbq-fold-slice`     | tensor.slice     | the same, for a chain whose last op is a slice            |
//!
//! **Where**: the e-class is operand 1 (the weight) of an `nn.linear` (`[N, K]`, channel
//! axis 0), an `nn.conv2d` (HWIO, channel axis 3) or a rank-2 `nn.matmul` (`[K, N]`,
//! axis 1; `[N, K]` with `transpose_b`, axis 0), and every such user agrees on the axis.
//!
//! **Chain**: an f32 expression tree of `nn.mul` (numpy broadcasting), `tensor.reshape`,
//! `tensor.transpose` and `tensor.slice` over leaves:
//! - exactly one *code* leaf: `quant.dequantize` of a `builtin.weight` of per-tensor type
//!   `<i4|i8:f32, scale = 1.0, offset = 0>`, or `nn.cast` to f32 of a plain `i8` weight.
//!   Between the codes and the matmul: reshapes, transposes and non-broadcasting muls
//!   (no slice, no broadcast of the codes);
//! - *scale* leaves: f32 `builtin.constant`s, f32 `builtin.weight`s, `nn.cast` to f32
//!   of a f16/bf16/u8/u16/i16/i32 `builtin.weight`, or `quant.dequantize` of a per-tensor
//!   u8/u16 `builtin.weight` (u8 block scales, f32 channel scales, f32 per-block scales,
//!   ...), broadcast/reshaped/transposed/sliced in any way.
//!
//! **Blocks** come from the structure, not the values: two consecutive elements of one
//! output channel (flattened row-major over the other axes, as `Encoding::Blockwise`
//! counts them) are in one block when they read the same element of every scale leaf;
//! the block size B is the gcd of those runs and must satisfy `2 <= B < elements per
//! channel` (a per-channel-only chain is not LPBQ and is left alone).
//!
//! **Exact fold**: per channel, the chain's scale of each block `s[c,b]` (the chain's value
//! at code 1) is split into `q[c,b] * s_c` (u8 block scale, f32 channel scale; 4 bits when
//! every `q <= 15`, up to 8 bits otherwise), and the split is kept only if, for every
//! block and *every* code of the storage range, `(code * q) * s_c` in f32 — the CPU
//! reference's LPBQ dequantization — equals the chain's f32 value bit for bit. Then the
//! new weight reuses the codes' payload under its name, typed blockwise in the codes' own
//! layout, followed by the codes' reshapes/transposes (the encoding moves along with
//! `mllm_ir::infer::moved_elem`, e.g. pymllm's HWIO `[1,1,In,Out]` codes, axis 3, read by a
//! linear as `[Out, In]`, axis 0): no data is read or written. If the encoding cannot
//! follow the movement, the codes are copied into a new payload in the consumer's layout
//! (still exact; needs the codes' payload).
//!
//! **Requantized fold** (when not exact and the pass's `requantize` option is on): needs
//! the codes' payload; each channel is requantized from the chain's values into the
//! two-level form, keeping whichever is closer of (a) the original codes with the block
//! scales requantized as mllm does (`s_c = max_b s[c,b] / 15`, `q = clamp(round(s/s_c),
//! 1, 15)`) and (b) `quant::lpbq::quantize_lpbq(.., Rounding::Best)` of the values. The new
//! payload `<codes>.lpbq` (numbered if taken by another payload) is added to the weight
//! store. Values change by at most the requantization error.
//!
//! Anything else (zero or negative block scales without requantization, scales that vary
//! inside a block, two code leaves, a missing payload, ...) leaves the chain alone.

use std::collections::HashMap;
use std::sync::Mutex;

use egg::Id;
use mllm_ir::infer::moved_elem;
use mllm_ir::types::{ElemType, Encoding, Expressed, QuantType, Storage};
use mllm_ir::{attrs, Attr, Attrs, AttrsExt, OpKind, Type, WDType, Weight, WeightStore};

use crate::egraph::{Build, EGraph, EGraphExt, Node, Rule};
use crate::quant::lpbq::{quantize_lpbq, Rounding};

/// The rule table: name and root op kind; every entry runs the same matcher.
pub const RULES: [(&str, OpKind); 4] = [
    ("lpbq-fold-mul", OpKind::Mul),
    ("lpbq-fold-reshape", OpKind::Reshape),
    ("lpbq-fold-transpose", OpKind::Transpose),
    ("lpbq-fold-slice", OpKind::Slice),
];

/// An index map from a flat row-major index of `out_shape` to a flat index of the
/// input: `base + sum(index[d] * strides[d])`.
#[derive(Debug, Clone)]
struct Strided {
    out_shape: Vec<usize>,
    strides: Vec<usize>,
    base: usize,
}

impl Strided {
    fn apply(&self, mut flat: usize) -> usize {
        let mut acc = self.base;
        for d in (0..self.out_shape.len()).rev() {
            let n = self.out_shape[d].max(1);
            acc += (flat % n) * self.strides[d];
            flat /= n;
        }
        acc
    }
}

fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The chain as a scalar expression: evaluated per element in the executor's f32 order.
#[derive(Debug, Clone)]
enum Expr {
    Code,
    Scale(usize),
    Mul(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn eval(&self, q: f32, s: &[f32]) -> f32 {
        match self {
            Expr::Code => q,
            Expr::Scale(j) => s[*j],
            Expr::Mul(a, b) => a.eval(q, s) * b.eval(q, s),
        }
    }
}

/// A data-movement op on the codes' way to the matmul: kind, attributes, result shape.
type Move = (OpKind, Attrs, Vec<usize>);

/// A data-movement op to rebuild: kind, attributes, result type.
type TypedMove = (OpKind, Attrs, Type);

#[derive(Debug, Clone)]
struct CodeLeaf {
    name: String,
    storage: Storage,
    shape: Vec<usize>,
    /// Index maps from the chain's output to the codes.
    maps: Vec<Strided>,
    /// Reshapes/transposes applied to the codes, in the order they are applied.
    moves: Vec<Move>,
}

/// Where the parser is: index maps from the chain's output to this class, the data
/// movement from this class to the output (outermost last), and whether codes may be
/// here (not under a broadcast or a slice).
#[derive(Debug, Clone, Default)]
struct Path {
    maps: Vec<Strided>,
    moves: Vec<Move>,
    code_ok: bool,
}

impl Path {
    fn with_map(&self, m: Strided, code_ok: bool) -> Path {
        let mut p = self.clone();
        p.maps.push(m);
        p.code_ok &= code_ok;
        p
    }
    fn with_move(mut self, m: Move) -> Path {
        self.moves.insert(0, m);
        self
    }
}

#[derive(Debug, Clone)]
enum ScaleSrc {
    /// A weight of this IR element type (a per-tensor quantized one is dequantized).
    Weight(String, ElemType),
    /// Constant values (one, splat, or one per element).
    Values(Vec<f32>),
}

#[derive(Debug, Clone)]
struct ScaleLeaf {
    src: ScaleSrc,
    numel: usize,
    /// Index maps from the chain's output, in order.
    maps: Vec<Strided>,
}

#[derive(Debug, Default)]
struct Chain {
    code: Option<CodeLeaf>,
    scales: Vec<ScaleLeaf>,
    /// Set when the tree has a second code leaf or codes that do not keep their order.
    bad: bool,
}

const CHAIN_KINDS: [OpKind; 8] = [
    OpKind::Mul,
    OpKind::Reshape,
    OpKind::Transpose,
    OpKind::Slice,
    OpKind::Dequantize,
    OpKind::Cast,
    OpKind::Weight,
    OpKind::Constant,
];

/// The first node of a class that can be part of a chain.
fn pick(eg: &EGraph, id: Id) -> Option<Node> {
    eg[id]
        .nodes
        .iter()
        .find(|n| n.kind().is_some_and(|k| CHAIN_KINDS.contains(&k)))
        .cloned()
}

fn weight_name(eg: &EGraph, n: &Node) -> Option<String> {
    eg.attrs_of(n).str("name").map(str::to_owned)
}

/// Parses the chain rooted at `node` (of class `id`), reached by `path`.
fn parse(eg: &EGraph, id: Id, node: &Node, path: &Path, out: &mut Chain) -> Option<Expr> {
    let ty = eg.ty(id).clone();
    let kind = node.kind()?;
    let f32_result = ty.elem() == &ElemType::F32;
    let child = |i: usize| -> Option<(Id, Node)> {
        let c = eg.find(*node.children.get(i)?);
        Some((c, pick(eg, c)?))
    };
    match kind {
        OpKind::Mul if f32_result => {
            let mut parts = Vec::new();
            for i in 0..2 {
                let (c, cn) = child(i)?;
                let cs = eg.ty(c).shape().to_vec();
                if cs == ty.shape() {
                    parts.push(parse(eg, c, &cn, path, out)?);
                } else {
                    // Broadcast: right-aligned, size-1 (or missing) dims read index 0.
                    let r = ty.rank();
                    if cs.len() > r {
                        return None;
                    }
                    let cst = row_major(&cs);
                    let mut strides = vec![0usize; r];
                    for d in 0..cs.len() {
                        let od = r - cs.len() + d;
                        if cs[d] != 1 {
                            if cs[d] != ty.shape()[od] {
                                return None;
                            }
                            strides[od] = cst[d];
                        }
                    }
                    let m = Strided {
                        out_shape: ty.shape().to_vec(),
                        strides,
                        base: 0,
                    };
                    parts.push(parse(eg, c, &cn, &path.with_map(m, false), out)?);
                }
            }
            let b = parts.pop()?;
            let a = parts.pop()?;
            Some(Expr::Mul(Box::new(a), Box::new(b)))
        }
        OpKind::Reshape if f32_result => {
            let (c, cn) = child(0)?;
            let mv = (kind, eg.attrs_of(node).clone(), ty.shape().to_vec());
            parse(eg, c, &cn, &path.clone().with_move(mv), out)
        }
        OpKind::Transpose | OpKind::Slice if f32_result => {
            let (c, cn) = child(0)?;
            let ins = eg.ty(c).shape().to_vec();
            let ist = row_major(&ins);
            let a = eg.attrs_of(node);
            let (strides, base) = if kind == OpKind::Transpose {
                let perm = a.ints("perm")?;
                let s: Option<Vec<usize>> =
                    perm.iter().map(|p| ist.get(*p as usize).copied()).collect();
                (s?, 0)
            } else {
                let starts = a.ints("starts")?;
                let steps: Vec<i64> = a
                    .ints("steps")
                    .map(|v| v.to_vec())
                    .unwrap_or(vec![1; ins.len()]);
                if starts.len() != ins.len() || steps.len() != ins.len() {
                    return None;
                }
                let s = (0..ins.len()).map(|d| ist[d] * steps[d] as usize).collect();
                let b = (0..ins.len()).map(|d| ist[d] * starts[d] as usize).sum();
                (s, b)
            };
            let m = Strided {
                out_shape: ty.shape().to_vec(),
                strides,
                base,
            };
            // Codes may be transposed (the encoding moves along), not sliced.
            let p = path.with_map(m, kind == OpKind::Transpose);
            let mv = (kind, a.clone(), ty.shape().to_vec());
            parse(eg, c, &cn, &p.with_move(mv), out)
        }
        OpKind::Dequantize if f32_result => {
            let (c, cn) = child(0)?;
            if cn.kind() != Some(OpKind::Weight) {
                return None;
            }
            let q = eg.ty(c).quant()?;
            let (scale, offset) = q.encoding.per_tensor()?;
            match q.storage {
                Storage::I4 | Storage::I8 if scale == 1.0 && offset == 0 => {
                    code_leaf(eg, c, &cn, q.storage, path, out)
                }
                // Unsigned per-tensor quantized scales, e.g. u8 block scales.
                Storage::U8 | Storage::U16 => {
                    let src = ScaleSrc::Weight(weight_name(eg, &cn)?, eg.ty(c).elem().clone());
                    Some(scale_leaf(src, eg.ty(c).numel(), path, out))
                }
                _ => None,
            }
        }
        OpKind::Cast if f32_result => {
            let (c, cn) = child(0)?;
            if cn.kind() != Some(OpKind::Weight) {
                return None;
            }
            let cty = eg.ty(c);
            match cty.elem() {
                ElemType::I8 => code_leaf(eg, c, &cn, Storage::I8, path, out),
                e @ (ElemType::F16
                | ElemType::BF16
                | ElemType::U8
                | ElemType::U16
                | ElemType::I16
                | ElemType::I32) => {
                    let src = ScaleSrc::Weight(weight_name(eg, &cn)?, e.clone());
                    Some(scale_leaf(src, cty.numel(), path, out))
                }
                _ => None,
            }
        }
        OpKind::Weight if f32_result => {
            let src = ScaleSrc::Weight(weight_name(eg, node)?, ElemType::F32);
            Some(scale_leaf(src, ty.numel(), path, out))
        }
        OpKind::Constant if f32_result => {
            let v: Vec<f32> = eg
                .attrs_of(node)
                .floats("value")?
                .iter()
                .map(|x| *x as f32)
                .collect();
            if v.len() != 1 && v.len() != ty.numel() {
                return None;
            }
            let n = v.len();
            Some(scale_leaf(ScaleSrc::Values(v), n, path, out))
        }
        _ => None,
    }
}

fn code_leaf(
    eg: &EGraph,
    id: Id,
    node: &Node,
    storage: Storage,
    path: &Path,
    out: &mut Chain,
) -> Option<Expr> {
    if out.code.is_some() || !path.code_ok {
        out.bad = true;
        return None;
    }
    out.code = Some(CodeLeaf {
        name: weight_name(eg, node)?,
        storage,
        shape: eg.ty(id).shape().to_vec(),
        maps: path.maps.clone(),
        moves: path.moves.clone(),
    });
    Some(Expr::Code)
}

fn scale_leaf(src: ScaleSrc, numel: usize, path: &Path, out: &mut Chain) -> Expr {
    out.scales.push(ScaleLeaf {
        src,
        numel,
        maps: path.maps.clone(),
    });
    Expr::Scale(out.scales.len() - 1)
}

/// Why a chain was left alone (counted in the pass statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A scale or code payload the fold needs is not in the weight store.
    NoPayload,
    /// The scales do not form blocks of at least 2 elements smaller than a channel.
    NotBlockwise,
    /// Not exactly representable, and requantization is off.
    NotExact,
    /// Requantization failed (non-finite values, codes out of range).
    Unfoldable,
}

impl Skip {
    /// Statistic label.
    pub fn label(self) -> &'static str {
        match self {
            Skip::NoPayload => "chains left alone: payload not in the weight store",
            Skip::NotBlockwise => "chains left alone: scales not blockwise",
            Skip::NotExact => "chains left alone: not exactly two-level (requantize=false)",
            Skip::Unfoldable => "chains left alone: cannot requantize",
        }
    }
}

/// A fold's result: the new weight and the data movement that brings it to the
/// consumer's layout.
#[derive(Debug, Clone)]
pub struct Folded {
    /// Store name of the codes.
    name: String,
    /// Type of the new weight op (in the codes' own layout when the payload is reused).
    weight_ty: Type,
    /// Data movement applied to the weight, with result types (the last one is the
    /// consumer's layout).
    moves: Vec<TypedMove>,
    /// A new payload to add under `name`.
    payload: Option<Weight>,
}

/// The codes' data movement with consecutive reshapes merged and no-op reshapes dropped.
fn simplify(moves: &[Move], from: &[usize]) -> Vec<Move> {
    let mut out: Vec<Move> = Vec::new();
    for m in moves {
        match out.last_mut() {
            Some(last) if m.0 == OpKind::Reshape && last.0 == OpKind::Reshape => *last = m.clone(),
            _ => out.push(m.clone()),
        }
    }
    // Drop reshapes that do not change the shape.
    let mut prev = from.to_vec();
    out.retain(|(k, _, shape)| {
        let keep = *k != OpKind::Reshape || *shape != prev;
        prev.clone_from(shape);
        keep
    });
    out
}

/// The blockwise type of the codes in their own layout whose data movement (`moves`)
/// gives `consumer`, with the moved types; `None` if the encoding cannot follow.
fn replay(code_shape: &[usize], moves: &[Move], consumer: &Type) -> Option<(Type, Vec<TypedMove>)> {
    let q = consumer.quant()?;
    let Encoding::Blockwise { axis, .. } = &q.encoding else {
        return None;
    };
    let ch = consumer.shape()[*axis as usize];
    let moves = simplify(moves, code_shape);
    (0..code_shape.len())
        .filter(|d| code_shape[*d] == ch)
        .find_map(|d| {
            let mut e = q.clone();
            if let Encoding::Blockwise { axis, .. } = &mut e.encoding {
                *axis = d as u32;
            }
            let own = Type::tensor(code_shape.to_vec(), ElemType::Quant(e));
            let mut cur = own.clone();
            let mut out = Vec::new();
            for (k, a, shape) in &moves {
                let elem = moved_elem(*k, a, &cur, shape).ok()?;
                cur = Type::tensor(shape.clone(), elem);
                out.push((*k, a.clone(), cur.clone()));
            }
            (&cur == consumer).then_some((own, out))
        })
}

/// Weight geometry seen by the consumer: flat index of element `p` of channel `c`.
#[derive(Debug, Clone, Copy)]
struct Geom {
    dim: usize,
    inner: usize,
    per: usize,
}

impl Geom {
    fn new(shape: &[usize], axis: usize) -> Geom {
        let dim = shape[axis].max(1);
        let inner = shape[axis + 1..].iter().product::<usize>().max(1);
        let per = shape.iter().product::<usize>() / dim;
        Geom { dim, inner, per }
    }
    fn flat(&self, c: usize, p: usize) -> usize {
        (p / self.inner) * (self.dim * self.inner) + c * self.inner + p % self.inner
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn code_range(s: Storage) -> std::ops::RangeInclusive<i32> {
    s.min() as i32..=s.max() as i32
}

/// Whether `(code * bq) * sc == chain(code)` for every code of the storage range.
fn exact_block(expr: &Expr, vals: &[f32], bq: f32, sc: f32, storage: Storage) -> bool {
    code_range(storage).all(|q| {
        let q = q as f32;
        expr.eval(q, vals) == (q * bq) * sc
    })
}

/// The exact two-level split of one channel whose blocks read `vals` (one slice of scale
/// leaf values per block), if there is one.
fn decompose(expr: &Expr, vals: &[Vec<f32>], storage: Storage) -> Option<(f32, Vec<u8>)> {
    let s: Vec<f32> = vals.iter().map(|v| expr.eval(1.0, v)).collect();
    if s.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
        return None;
    }
    let smax = s.iter().fold(0f32, |m, x| m.max(*x));
    for m in (1..=15u32).rev().chain(16..=255) {
        let base = (smax as f64 / m as f64) as f32;
        for sc in [base, base.next_up(), base.next_down()] {
            if !(sc.is_finite() && sc > 0.0) {
                continue;
            }
            let mut bqs = Vec::with_capacity(s.len());
            let ok = s.iter().all(|sb| {
                let bq = (sb / sc).round();
                let fits = (1.0..=255.0).contains(&bq) && bq * sc == *sb;
                if fits {
                    bqs.push(bq as u8);
                }
                fits
            });
            if ok
                && vals
                    .iter()
                    .zip(&bqs)
                    .all(|(v, bq)| exact_block(expr, v, *bq as f32, sc, storage))
            {
                return Some((sc, bqs));
            }
        }
    }
    None
}

fn bits_for(max_bq: u8) -> u32 {
    if max_bq <= 15 {
        4
    } else {
        (u8::BITS - max_bq.leading_zeros()).max(4)
    }
}

fn blockwise(
    storage: Storage,
    axis: usize,
    block: usize,
    block_scales: Vec<u8>,
    channel_scales: Vec<f32>,
) -> ElemType {
    let bits = bits_for(block_scales.iter().copied().max().unwrap_or(1));
    ElemType::Quant(QuantType {
        storage,
        expressed: Expressed::F32,
        encoding: Encoding::Blockwise {
            axis: axis as u32,
            block_size: block as u32,
            block_scale_bits: bits,
            block_scales: block_scales.into(),
            channel_scales: channel_scales.into(),
        },
    })
}

/// Values of a scale leaf.
fn leaf_values(store: &WeightStore, src: &ScaleSrc, numel: usize) -> Result<Vec<f32>, Skip> {
    match src {
        ScaleSrc::Values(v) => Ok(v.clone()),
        ScaleSrc::Weight(name, elem) => {
            let w = store.get(name).ok_or(Skip::NoPayload)?;
            let int_store = !matches!(w.dtype, WDType::F32 | WDType::F16 | WDType::BF16);
            let quant = elem.quant().and_then(|q| q.encoding.per_tensor());
            if w.numel() != numel || ((elem.is_int() || quant.is_some()) && !int_store) {
                return Err(Skip::NoPayload);
            }
            let v = w.to_f32();
            Ok(match quant {
                // As the CPU reference dequantizes: (q + offset) * scale.
                Some((sc, off)) => v.iter().map(|q| (q + off as f32) * sc).collect(),
                None => v,
            })
        }
    }
}

/// The codes of the code leaf, sign-extending i4 nibbles as the CPU reference does.
fn code_values(store: &WeightStore, code: &CodeLeaf, numel: usize) -> Result<Vec<f32>, Skip> {
    let w = store.get(&code.name).ok_or(Skip::NoPayload)?;
    if w.numel() != numel || matches!(w.dtype, WDType::F32 | WDType::F16 | WDType::BF16) {
        return Err(Skip::NoPayload);
    }
    let mut v = w.to_f32();
    let (lo, hi) = (code.storage.min() as f32, code.storage.max() as f32);
    for x in v.iter_mut() {
        if code.storage == Storage::I4 && *x > 7.0 && *x <= 15.0 {
            *x -= 16.0;
        }
        if *x < lo || *x > hi {
            return Err(Skip::Unfoldable);
        }
    }
    Ok(v)
}

/// Folds `chain` for a consumer seeing the weight as `shape` with channel `axis`.
fn fold(
    chain: &Chain,
    expr: &Expr,
    shape: &[usize],
    axis: usize,
    store: &WeightStore,
    requantize: bool,
    taken: &dyn Fn(&str, &Weight) -> bool,
) -> Result<(Folded, bool), Skip> {
    let code = chain.code.as_ref().ok_or(Skip::Unfoldable)?;
    let mut leaves: Vec<Vec<f32>> = Vec::new();
    for l in &chain.scales {
        leaves.push(leaf_values(store, &l.src, l.numel)?);
    }
    let g = Geom::new(shape, axis);
    let idx = |leaf: &ScaleLeaf, flat: usize| -> usize {
        if leaf.numel == 1 {
            return 0;
        }
        leaf.maps.iter().fold(flat, |i, m| m.apply(i))
    };
    // Block size: gcd of the runs of identical scale-leaf indices inside each channel.
    let mut block = 0usize;
    let mut prev: Vec<usize> = vec![0; chain.scales.len()];
    let mut cur: Vec<usize> = vec![0; chain.scales.len()];
    'chan: for c in 0..g.dim {
        let mut run = 0usize;
        for p in 0..g.per {
            let flat = g.flat(c, p);
            for (j, l) in chain.scales.iter().enumerate() {
                cur[j] = idx(l, flat);
            }
            if p > 0 && cur == prev {
                run += 1;
            } else {
                if p > 0 {
                    block = gcd(block, run);
                }
                run = 1;
                std::mem::swap(&mut prev, &mut cur);
            }
            if block == 1 {
                break 'chan;
            }
        }
        block = gcd(block, run);
    }
    if block < 2 || block >= g.per {
        return Err(Skip::NotBlockwise);
    }
    let nb = g.per / block;
    // Scale-leaf values of each block, per channel.
    let block_vals = |c: usize| -> Vec<Vec<f32>> {
        (0..nb)
            .map(|b| {
                let flat = g.flat(c, b * block);
                chain
                    .scales
                    .iter()
                    .zip(&leaves)
                    .map(|(l, v)| v.get(idx(l, flat)).copied().unwrap_or(f32::NAN))
                    .collect()
            })
            .collect()
    };
    let mut bs = Vec::with_capacity(g.dim * nb);
    let mut cs = Vec::with_capacity(g.dim);
    let mut exact_channels = Vec::with_capacity(g.dim);
    let mut all_exact = true;
    for c in 0..g.dim {
        match decompose(expr, &block_vals(c), code.storage) {
            Some((sc, q)) => {
                bs.extend_from_slice(&q);
                cs.push(sc);
                exact_channels.push(true);
            }
            None => {
                all_exact = false;
                bs.extend(std::iter::repeat_n(1u8, nb));
                cs.push(1.0);
                exact_channels.push(false);
            }
        }
    }
    if all_exact {
        let elem = blockwise(code.storage, axis, block, bs.clone(), cs.clone());
        let consumer = Type::tensor(shape.to_vec(), elem);
        if let Some((weight_ty, moves)) = replay(&code.shape, &code.moves, &consumer) {
            let f = Folded {
                name: code.name.clone(),
                weight_ty,
                moves,
                payload: None,
            };
            return Ok((f, true));
        }
        // The encoding cannot follow the codes' data movement: copy the codes into the
        // consumer's layout (values unchanged).
    } else if !requantize {
        return Err(Skip::NotExact);
    }
    // A new payload in the consumer's layout: codes copied for exact channels, the other
    // channels requantized from the chain's values.
    let numel = g.dim * g.per;
    let codes = code_values(store, code, numel)?;
    let code_at = |flat: usize| {
        let i = code.maps.iter().fold(flat, |i, m| m.apply(i));
        codes.get(i).copied().unwrap_or(f32::NAN)
    };
    let mut out = vec![0i8; numel];
    let mut values = vec![0f32; g.per];
    let mut qs = vec![0f32; g.per];
    for c in 0..g.dim {
        let vals = block_vals(c);
        for p in 0..g.per {
            let flat = g.flat(c, p);
            qs[p] = code_at(flat);
            values[p] = expr.eval(qs[p], &vals[p / block]);
            if !values[p].is_finite() {
                return Err(Skip::Unfoldable);
            }
        }
        let (row_q, row_bs, sc) = if exact_channels[c] {
            (
                qs.iter().map(|q| *q as i8).collect::<Vec<i8>>(),
                bs[c * nb..(c + 1) * nb].to_vec(),
                cs[c],
            )
        } else {
            requantize_channel(expr, &vals, &qs, &values, block)?
        };
        for p in 0..g.per {
            out[g.flat(c, p)] = row_q[p];
        }
        bs[c * nb..(c + 1) * nb].copy_from_slice(&row_bs);
        cs[c] = sc;
    }
    let storage = if out.iter().all(|q| (-8..=7).contains(q)) {
        Storage::I4
    } else {
        Storage::I8
    };
    let elem = blockwise(storage, axis, block, bs, cs);
    let payload = Weight::owned(
        WDType::I8,
        shape.to_vec(),
        out.iter().map(|q| *q as u8).collect(),
    )
    .map_err(|_| Skip::Unfoldable)?;
    let base = format!("{}.lpbq", code.name);
    let mut name = base.clone();
    let mut i = 1;
    while taken(&name, &payload) {
        name = format!("{base}.{i}");
        i += 1;
    }
    let f = Folded {
        name,
        weight_ty: Type::tensor(shape.to_vec(), elem),
        moves: Vec::new(),
        payload: Some(payload),
    };
    Ok((f, all_exact))
}

/// One channel requantized into the two-level form: the closer (squared error against
/// `values`) of the original codes with mllm-style requantized block scales and
/// `quantize_lpbq(.., Best)` of the values. Returns codes, block scales, channel scale.
fn requantize_channel(
    expr: &Expr,
    vals: &[Vec<f32>],
    codes: &[f32],
    values: &[f32],
    block: usize,
) -> Result<(Vec<i8>, Vec<u8>, f32), Skip> {
    let err = |q: &[i8], bs: &[u8], sc: f32| -> f64 {
        q.iter()
            .enumerate()
            .map(|(p, q)| {
                let d = ((*q as f32 * bs[p / block] as f32) * sc - values[p]) as f64;
                d * d
            })
            .sum()
    };
    let mut best: Option<(f64, Vec<i8>, Vec<u8>, f32)> = None;
    // (a) Keep the codes; requantize the chain's per-block scales.
    let s: Vec<f32> = vals.iter().map(|v| expr.eval(1.0, v)).collect();
    let smax = s.iter().fold(0f32, |m, x| m.max(*x));
    if s.iter().all(|x| x.is_finite() && *x > 0.0)
        && codes.iter().all(|q| (-128.0..=127.0).contains(q))
    {
        let sc = smax / 15.0;
        let bs: Vec<u8> = s
            .iter()
            .map(|x| (x / sc).round().clamp(1.0, 15.0) as u8)
            .collect();
        let q: Vec<i8> = codes.iter().map(|q| *q as i8).collect();
        if sc.is_finite() && sc > 0.0 {
            best = Some((err(&q, &bs, sc), q, bs, sc));
        }
    }
    // (b) Requantize the values.
    if let Ok(l) = quantize_lpbq(values, 1, values.len(), block, 4, Rounding::Best) {
        let sc = l.channel_scales[0];
        if sc.is_finite() && sc > 0.0 {
            let e = err(&l.q, &l.block_scales, sc);
            if best.as_ref().is_none_or(|b| e < b.0) {
                best = Some((e, l.q, l.block_scales, sc));
            }
        }
    }
    best.map(|(_, q, bs, sc)| (q, bs, sc))
        .ok_or(Skip::Unfoldable)
}

/// What one run of the rules did, for the pass.
#[derive(Debug, Default)]
pub struct FoldState {
    memo: HashMap<Id, Option<Build>>,
    /// New payloads to add to the weight store (requantized folds), by name.
    pub payloads: Vec<(String, Weight)>,
    /// Chains folded exactly.
    pub exact: usize,
    /// Chains requantized.
    pub requantized: usize,
    /// Chains left alone, by reason.
    pub skipped: std::collections::BTreeMap<Skip, usize>,
}

/// The rule set's shared context: the weight store (read only) and what the rules did.
pub struct LpbqFold<'a> {
    store: &'a WeightStore,
    requantize: bool,
    state: Mutex<FoldState>,
    cache: Option<&'a FoldCache>,
}

/// Fold results shared by the functions of one module (prefill and decode graphs read
/// the same chains), keyed by the chain's structure, its consumer layout, and the identity
/// (address, size, first and last bytes) of every payload it reads.
#[derive(Debug, Default)]
pub struct FoldCache(Mutex<HashMap<String, FoldResult>>);

/// A fold or why not; the flag says the fold is exact.
type FoldResult = Result<(Folded, bool), Skip>;

impl FoldCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, FoldResult>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

fn cache_key(
    store: &WeightStore,
    chain: &Chain,
    expr: &Expr,
    shape: &[usize],
    axis: usize,
    requantize: bool,
) -> String {
    let mut names: Vec<&str> = chain.code.iter().map(|c| c.name.as_str()).collect();
    for l in &chain.scales {
        if let ScaleSrc::Weight(n, _) = &l.src {
            names.push(n);
        }
    }
    // Payload identity: address, size, and the first and last bytes (a freed and reused
    // address with other data does not hit).
    let ids: Vec<(usize, usize, Vec<u8>)> = names
        .iter()
        .map(|n| match store.get(n) {
            Some(w) => {
                let b = w.bytes();
                let edge = b.len().min(64);
                let mut f = b[..edge].to_vec();
                f.extend_from_slice(&b[b.len() - edge..]);
                (std::sync::Arc::as_ptr(w) as usize, w.numel(), f)
            }
            None => (0, 0, Vec::new()),
        })
        .collect();
    format!("{chain:?}|{expr:?}|{shape:?}|{axis}|{requantize}|{ids:?}")
}

/// One entry of [`RULES`] bound to a [`LpbqFold`] context.
pub struct LpbqRule<'a> {
    fold: &'a LpbqFold<'a>,
    name: &'static str,
    root: OpKind,
}

impl<'a> LpbqFold<'a> {
    /// A context reading payloads from `store`; `requantize` allows lossy folds.
    pub fn new(store: &'a WeightStore, requantize: bool) -> LpbqFold<'a> {
        LpbqFold {
            store,
            requantize,
            state: Mutex::new(FoldState::default()),
            cache: None,
        }
    }

    /// Shares fold results through `cache` (one per pass instance and module).
    pub fn with_cache(mut self, cache: &'a FoldCache) -> LpbqFold<'a> {
        self.cache = Some(cache);
        self
    }

    /// The rules of [`RULES`] bound to this context.
    pub fn rules(&self) -> Vec<LpbqRule<'_>> {
        RULES
            .iter()
            .map(|(name, root)| LpbqRule {
                fold: self,
                name,
                root: *root,
            })
            .collect()
    }

    /// What the rules did.
    pub fn into_state(self) -> FoldState {
        match self.state.into_inner() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FoldState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The weight's channel axis for every matmul/conv reading `class` as its weight,
    /// if there is at least one and they agree.
    fn consumer_axis(eg: &EGraph, class: Id) -> Option<usize> {
        let ty = eg.ty(class);
        let mut axis: Option<usize> = None;
        for (p, _) in eg[class].parents() {
            let Some(kind) = p.kind() else { continue };
            if !matches!(kind, OpKind::Linear | OpKind::Conv2d | OpKind::MatMul) {
                continue;
            }
            let is_w = p.children.get(1).is_some_and(|c| eg.find(*c) == class);
            let is_x = eg.find(p.children[0]) == class;
            if !is_w || is_x {
                continue;
            }
            let a = match (kind, ty.rank()) {
                (OpKind::Linear, 2) => 0,
                (OpKind::Conv2d, 4) => 3,
                (OpKind::MatMul, 2) => {
                    if eg.attrs_of(p).bool("transpose_b").unwrap_or(false) {
                        0
                    } else {
                        1
                    }
                }
                _ => return None,
            };
            if axis.is_some_and(|x| x != a) {
                return None;
            }
            axis = Some(a);
        }
        axis
    }

    fn try_fold(&self, eg: &EGraph, class: Id, node: &Node) -> Option<Build> {
        let axis = Self::consumer_axis(eg, class)?;
        let ty = eg.ty(class).clone();
        let mut chain = Chain::default();
        let start = Path {
            code_ok: true,
            ..Path::default()
        };
        let expr = parse(eg, class, node, &start, &mut chain);
        let expr = match expr {
            Some(e) if !chain.bad && chain.code.is_some() && !chain.scales.is_empty() => e,
            _ => return None,
        };
        let key = self
            .cache
            .map(|_| cache_key(self.store, &chain, &expr, ty.shape(), axis, self.requantize));
        let cached = match (self.cache, &key) {
            (Some(c), Some(k)) => c.lock().get(k).cloned(),
            _ => None,
        };
        let res = if let Some(r) = cached {
            r
        } else {
            let st = self.lock();
            let store = self.store;
            let taken = |name: &str, w: &Weight| -> bool {
                let same = |o: &Weight| o.shape == w.shape && o.bytes() == w.bytes();
                store.get(name).is_some_and(|o| !same(o))
                    || st.payloads.iter().any(|(n, o)| n == name && !same(o))
            };
            fold(
                &chain,
                &expr,
                ty.shape(),
                axis,
                store,
                self.requantize,
                &taken,
            )
        };
        if let (Some(c), Some(k)) = (self.cache, key) {
            c.lock().insert(k, res.clone());
        }
        let mut st = self.lock();
        let (f, exact) = match res {
            Ok(r) => r,
            Err(s) => {
                *st.skipped.entry(s).or_default() += 1;
                return None;
            }
        };
        if exact {
            st.exact += 1;
        } else {
            st.requantized += 1;
        }
        if let Some(p) = f.payload {
            if !st.payloads.iter().any(|(n, _)| *n == f.name) {
                st.payloads.push((f.name.clone(), p));
            }
        }
        let name_attrs = attrs([("name", Attr::Str(f.name.clone()))]);
        let mut weight = Build::op(OpKind::Weight, name_attrs, f.weight_ty, vec![]);
        for (k, a, t) in f.moves {
            weight = Build::op(k, a, t, vec![weight]);
        }
        Some(Build::op(
            OpKind::Dequantize,
            Attrs::new(),
            ty,
            vec![weight],
        ))
    }
}

impl Rule for LpbqRule<'_> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn root(&self) -> OpKind {
        self.root
    }
    fn apply(&self, eg: &EGraph, class: Id, node: &Node) -> Option<Build> {
        let class = eg.find(class);
        if let Some(r) = self.fold.lock().memo.get(&class) {
            return r.clone();
        }
        let r = self.fold.try_fold(eg, class, node);
        self.fold.lock().memo.insert(class, r.clone());
        r
    }
}
