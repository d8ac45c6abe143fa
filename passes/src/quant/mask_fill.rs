//! `mask-fill-const`: replaces the data-dependent attention-mask fill of a quantized
//! graph by a constant at the bottom of the select's encoding.
//!
//! The Qwen3 frontend masks attention scores as
//! `softmax(where(mask, x, add(reduce_min(x), c)))` with `c = -20`: every masked
//! position is at least `|c|` below the smallest score of its row, so its weight after
//! the softmax is below `e^c` (zero in a u16 softmax output). QNN's HTP graph
//! preparation rewrites that whole `reduce_min -> add -> where -> softmax` chain into a
//! kernel that is not exact (see `backends/qnn/src/lower.rs`); with a constant fill the
//! chain is a plain select followed by a softmax. Measured in the HTP emulator (QNN 2.51,
//! v75) on the tiny Qwen3: the in-graph softmax then equals the standalone softmax of the
//! same input codes bit for bit, and the whole prefill graph's logits go from max 80-106 /
//! mean 12-13 to max 8-10 / mean 1.2-1.3 LSB against the CPU fixed-point reference.
//!
//! Where it runs: last in the NPU pipeline (`mllm demo`'s `NPU_PIPELINE`, after
//! `quant-fix`, so the encodings are final). The quantized IR written by `mllm quantize`
//! keeps the `reduce_min` form (its pymllm export names those ops' encodings), and so does
//! the CPU reference that runs it (its unmasked softmax outputs agree within 1 LSB, see
//! below).
//!
//! Contract (per function, on quantized graphs, after calibration):
//! - matched: `%w = nn.where %m, %x, %fill` whose result has a per-tensor encoding,
//!   `%fill = nn.add` of `nn.reduce_min %x` (the same `%x`) and a `builtin.constant`
//!   holding one negative value `c` (in either operand order), every use of `%w` a
//!   `nn.softmax`; the fill then becomes a `builtin.constant` of shape `[1, .., 1]`
//!   (the rank of `%w`) whose value is the lowest real of `%w`'s encoding (its code 0,
//!   or the storage minimum), named `<where name>.fill`; the `reduce_min`, `add` and
//!   `c` are erased when nothing else uses them;
//! - left alone when the select has 16 rows (`S = 16`): the HTP fails to execute a select
//!   with a constant fill of that shape (see `HTP_FAILING_ROWS`);
//! - guarantee checked before rewriting: the new fill `lo` must be at most
//!   `min(x) + c` for every `x` representable in `%x`'s encoding, i.e.
//!   `lo <= lowest(%x) + c + scale(%w) / 2` (half an LSB of `%w`: within it both fills
//!   quantize to the same code of `%w`). Calibration gives this (it observes
//!   `min(where) = min(x) + c`). So every masked position stays at least `|c|` below its
//!   row's maximum, and the rewritten fill is never above the fill the old graph could
//!   compute in fixed point (which is clamped at `lo` by `%w`'s encoding);
//! - numerics: in fixed point, unmasked outputs of the softmax move only through the
//!   softmax's denominator, by less than `C * e^c` relative (`C` positions per row), i.e.
//!   at most one LSB of a u16 softmax output (a rounding flip) while `C * e^c < 2^-16`
//!   (`C <= 7000` for `c = -20`); masked outputs stay zero;
//! - not matched, left alone and counted in the pass statistics by reason: a float
//!   where (`float`), a false branch that is not `add(reduce_min(x), const)` (no
//!   statistic: not a mask fill), a non-softmax use (`other-use`), a non-negative or
//!   non-uniform `c` (`fill-not-below`), a non-per-tensor encoding of `%x` or `%w`
//!   (`encoding`), the guarantee above failing (`bound`). With `strict`, the last
//!   two fail naming the op instead.

use mllm_ir::types::{ElemType, Encoding};
use mllm_ir::{AttrsExt, Builder, Function, OpId, OpKind, Type, ValueId};

use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult, PassStats};
use crate::registry::{OptKind, OptSpec, Options, PassInfo};

/// The pass.
pub struct MaskFillConst {
    strict: bool,
}

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "mask-fill-const",
    summary: "Quantized graphs: replace the attention-mask fill where(m, x, reduce_min(x) + c) by a constant at the bottom of the where's encoding",
    anchor: Anchor::Function,
    options: &[OptSpec {
        name: "strict",
        kind: OptKind::Bool,
        default: "false",
        help: "fail (naming the op) instead of skipping a mask fill whose encodings do not give the guarantee",
    }],
    create: |o: &Options| {
        Ok(Box::new(MaskFillConst {
            strict: o.bool("strict"),
        }))
    },
};

/// Why a candidate was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Float,
    OtherUse,
    FillNotBelow,
    Encoding,
    Bound,
    HtpRows,
}

/// Row counts (second-to-last dimension of the select) for which the HTP fails to execute a
/// select with a constant fill: measured with `mllm demo --ar_len S` on the x86 HTP emulator
/// (SM8650 / v75), S in {1, 2, 4, 8, 12, 24, 32, 48, 64} run, S = 16 fails at graphExecute with
/// "All input dims must match condition or be scalar" (the condition is re-tiled
/// `[1,8,2,C]`, the data `[1,4,4,C]`), whatever C. Those selects keep the `reduce_min` fill.
const HTP_FAILING_ROWS: &[usize] = &[16];

impl Skip {
    fn stat(self) -> &'static str {
        match self {
            Skip::Float => "skipped: float",
            Skip::OtherUse => "skipped: other-use",
            Skip::FillNotBelow => "skipped: fill-not-below",
            Skip::Encoding => "skipped: encoding",
            Skip::Bound => "skipped: bound",
            Skip::HtpRows => "skipped: htp-rows",
        }
    }
}

/// Lowest real value and scale of a per-tensor encoded element type.
fn lowest(e: &ElemType) -> Option<(f64, f64)> {
    let q = e.quant()?;
    let (s, o) = match &q.encoding {
        Encoding::PerTensor { scale, offset } => (*scale as f64, *offset as f64),
        _ => return None,
    };
    Some(((q.storage.min() as f64 + o) * s, s))
}

/// The real value a constant of element type `e` holds for `v` (rounded and clamped
/// into its encoding when quantized).
fn held(e: &ElemType, v: f64) -> Option<f64> {
    let Some(q) = e.quant() else {
        return Some(v);
    };
    let (s, o) = match &q.encoding {
        Encoding::PerTensor { scale, offset } => (*scale as f64, *offset as f64),
        _ => return None,
    };
    let code = (v / s - o)
        .round()
        .clamp(q.storage.min() as f64, q.storage.max() as f64);
    Some((code + o) * s)
}

fn label(f: &Function, op: OpId) -> String {
    let o = f.op(op);
    format!(
        "@{}: '{}' (\"{}\")",
        f.name,
        o.kind.name(),
        o.name.clone().unwrap_or_default()
    )
}

/// The operand of kind `kind` among `a`, `b`, with the other one.
fn split(f: &Function, a: ValueId, b: ValueId, kind: OpKind) -> Option<(OpId, ValueId)> {
    for (p, q) in [(a, b), (b, a)] {
        if let Some(op) = f.def_op(p) {
            if f.op(op).kind == kind {
                return Some((op, q));
            }
        }
    }
    None
}

/// A matched mask fill: the where op and the new fill value.
struct Candidate {
    where_op: OpId,
    lo: f64,
}

/// Checks one `nn.where`; `Ok(None)` when it is not a mask fill at all.
fn check(f: &Function, op: OpId, uses: &[Vec<OpId>]) -> Result<Option<Candidate>, (Skip, String)> {
    let o = f.op(op);
    let [_, x, fill] = o.operands[..] else {
        return Ok(None);
    };
    let Some(add) = f.def_op(fill) else {
        return Ok(None);
    };
    if f.op(add).kind != OpKind::Add || f.op(add).operands.len() != 2 {
        return Ok(None);
    }
    let (a, b) = (f.op(add).operands[0], f.op(add).operands[1]);
    let Some((rmin, cv)) = split(f, a, b, OpKind::ReduceMin) else {
        return Ok(None);
    };
    if f.op(rmin).operands.first() != Some(&x) {
        return Ok(None);
    }
    let Some(cop) = f.def_op(cv).filter(|c| f.op(*c).kind == OpKind::Constant) else {
        return Ok(None);
    };
    let w = o.results[0];
    let wty = f.ty(w);
    if wty.quant().is_none() {
        return Err((Skip::Float, String::new()));
    }
    if uses[w.index()]
        .iter()
        .any(|u| f.op(*u).kind != OpKind::Softmax)
    {
        return Err((
            Skip::OtherUse,
            format!(
                "{}: its result is used by an op other than a softmax",
                label(f, op)
            ),
        ));
    }
    let shape = wty.shape();
    if shape.len() >= 2 && HTP_FAILING_ROWS.contains(&shape[shape.len() - 2]) {
        return Err((
            Skip::HtpRows,
            format!(
                "{}: {} rows: the HTP cannot execute a select with a constant fill of this shape",
                label(f, op),
                shape[shape.len() - 2]
            ),
        ));
    }
    let vals = f.op(cop).attrs.floats("value").unwrap_or(&[]);
    let c = match vals.first() {
        Some(c0) if vals.iter().all(|v| v == c0) => held(f.ty(cv).elem(), *c0),
        _ => None,
    };
    let Some(c) = c.filter(|c| c.is_finite() && *c < 0.0) else {
        return Err((
            Skip::FillNotBelow,
            format!(
                "{}: the fill offset is not one negative constant",
                label(f, op)
            ),
        ));
    };
    let (Some((lo, sw)), Some((lx, _))) = (lowest(wty.elem()), lowest(f.ty(x).elem())) else {
        return Err((
            Skip::Encoding,
            format!(
                "{}: the scores or the select result are not per-tensor quantized",
                label(f, op)
            ),
        ));
    };
    if lo > lx + c + sw / 2.0 {
        return Err((
            Skip::Bound,
            format!(
                "{}: the lowest value of the result's encoding ({lo:.4}) is above the lowest possible fill min(scores) + offset ({:.4} = {lx:.4} + {c:.4}): masked positions could come closer than {:.4} to a row's maximum; recalibrate (the where's output range must include min(scores) + offset)",
                label(f, op),
                lx + c,
                -c
            ),
        ));
    }
    Ok(Some(Candidate { where_op: op, lo }))
}

/// Users of every value (by value index), linked ops only.
fn users(f: &Function) -> Vec<Vec<OpId>> {
    let mut u = vec![Vec::new(); f.values.len()];
    for op in f.op_ids() {
        for v in f.op(op).operands.iter() {
            u[v.index()].push(op);
        }
    }
    u
}

/// Erases `op` and, transitively, the ops only it used, when their results are unused.
fn erase_dead(f: &mut Function, op: OpId) {
    let mut stack = vec![op];
    while let Some(o) = stack.pop() {
        if !f.is_linked(o) {
            continue;
        }
        let counts = f.use_counts();
        if f.op(o).results.iter().any(|r| counts[r.index()] > 0) {
            continue;
        }
        let operands: Vec<ValueId> = f.op(o).operands.to_vec();
        f.unlink(o);
        stack.extend(operands.iter().filter_map(|v| f.def_op(*v)));
    }
}

/// Rewrites every mask fill of `f`; returns the number rewritten.
pub fn rewrite(f: &mut Function, strict: bool, stats: &mut PassStats) -> Result<usize, PassError> {
    let uses = users(f);
    let mut found = Vec::new();
    let mut skipped: Vec<(Skip, usize)> = Vec::new();
    for op in f.op_ids() {
        if f.op(op).kind != OpKind::Where {
            continue;
        }
        match check(f, op, &uses) {
            Ok(Some(c)) => found.push(c),
            Ok(None) => {}
            Err((why, msg)) => {
                if strict && matches!(why, Skip::Encoding | Skip::Bound) {
                    return Err(PassError::Failed {
                        pass: INFO.name.into(),
                        message: msg,
                    });
                }
                match skipped.iter_mut().find(|(w, _)| *w == why) {
                    Some(e) => e.1 += 1,
                    None => skipped.push((why, 1)),
                }
                if !msg.is_empty() {
                    stats.record(why.stat(), msg);
                }
            }
        }
    }
    for (why, n) in skipped {
        stats.record(format!("{} (count)", why.stat()), n);
    }
    let n = found.len();
    for c in found {
        let op = c.where_op;
        let w = f.op(op).results[0];
        let rank = f.ty(w).rank().max(1);
        let elem = f.ty(w).elem().clone();
        let old_fill = f.op(op).operands[2];
        let name = format!(
            "{}.fill",
            f.op(op).name.clone().unwrap_or_else(|| "mask_where".into())
        );
        let mut b = Builder::before(f, op);
        let k = b.constant(vec![c.lo], Type::tensor(vec![1; rank], elem));
        if let Some(kop) = f.def_op(k) {
            f.op_mut(kop).name = Some(name);
        }
        f.op_mut(op).operands[2] = k;
        if let Some(d) = f.def_op(old_fill) {
            erase_dead(f, d);
        }
    }
    Ok(n)
}

impl Pass for MaskFillConst {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        ctx: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        let n = rewrite(f, self.strict, ctx.stats)?;
        ctx.stats
            .record(format!("@{}: fills made constant", f.name), n);
        Ok(PassResult::from_changed(n > 0))
    }
}
