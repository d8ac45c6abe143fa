//! Debug helper: where do the HTP emulator and the CPU reference (fixed-point) part on a
//! whole graph? Every op result of function `GRAPH` becomes an extra graph output; the
//! graph is compiled for SoC 57, executed in the emulator on realistic inputs (valid
//! tokens and positions, a causal mask over `NPAST` cached entries, random u8 KV codes
//! in 0..=254), and run on the CPU reference. For every op it prints
//! - `acc`: max / mean |emulator - CPU| of its result when both run the whole graph
//!   (accumulated error), and
//! - `iso`: the same when the CPU computes only this op, fed the emulator's own values of
//!   its operands (the op's own error).
//!
//! `GRAPH=model.0.s4 NPAST=20 cargo run -p mllm-backend-qnn --release --example drift -- model.npu.mlir`
//! (`ONLY=kind` restricts the table to one op kind; `ROUNDING=even|up|htp` (default half
//! away from zero); `RESID=1` prints each op's residual emulator - exact histogram (how it
//! rounds), `DETAIL=i` every element of probe `i`; `ANCHOR=kind[,kind]` reruns the CPU
//! reference taking the emulator's results of those op kinds; `REPLAY=a,b` executes the
//! sub-graph from probe `a` (fed the emulator's codes) to probe `b` alone in the emulator;
//! `FP32=1` / `OPT=n` change the graph configs; `TOKENS=id,id,..` gives the `sequence`
//! input instead of random ids, e.g. a chat-template prompt.)

use mllm_backend_qnn::emulate::emulate_function;
use std::collections::{HashMap, HashSet};

use mllm_ir::attr::AttrsExt;
use mllm_ir::{ElemType, Function, OpId, OpKind, Storage, Type, ValueId, WeightStore};
use mllm_qnn_sys::{GraphOptions, QnnLibrary};
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

fn codes(ty: &Type, b: &[u8]) -> Vec<f64> {
    mllm_runtime::cpu::quant::element_values(ty.elem(), b)
}

fn err(ty: &Type, a: &[u8], b: &[u8]) -> (f64, f64, f64) {
    let (x, y) = (codes(ty, a), codes(ty, b));
    let d: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
    let max = d.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let mean = d.iter().map(|v| v.abs()).sum::<f64>() / d.len().max(1) as f64;
    let bias = d.iter().sum::<f64>() / d.len().max(1) as f64;
    (max, mean, bias)
}

fn per_tensor(ty: &Type) -> Option<(f64, f64)> {
    match &ty.quant()?.encoding {
        mllm_ir::Encoding::PerTensor { scale, offset } => Some((*scale as f64, *offset as f64)),
        _ => None,
    }
}

fn foldable(f: &Function, v: ValueId) -> bool {
    match f.def_op(v) {
        None => false,
        Some(op) => match f.op(op).kind {
            OpKind::Weight | OpKind::Constant => true,
            OpKind::Reshape | OpKind::Transpose | OpKind::Slice => {
                foldable(f, f.op(op).operands[0])
            }
            _ => false,
        },
    }
}

/// Keeps only the ops the return depends on.
fn dce(f: &mut Function) {
    let mut live: HashSet<ValueId> = f.returned().iter().copied().collect();
    let ops = f.op_ids();
    for o in ops.iter().rev() {
        let od = f.op(*o);
        if od.kind == OpKind::Return || od.results.iter().any(|r| live.contains(r)) {
            for v in od.operands.iter() {
                live.insert(*v);
            }
        } else {
            f.unlink(*o);
        }
    }
}

/// Realistic graph inputs for a `model.*.sN` function.
fn inputs(f: &Function, npast: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let s = f.attrs.int("ar_len").unwrap_or(1) as usize;
    let c = f.attrs.int("context_len").unwrap_or(64) as usize;
    f.args()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let ty = f.ty(*v);
            let name = f.arg_names.get(i).cloned().flatten().unwrap_or_default();
            let n = ty.numel();
            if name == "sequence" {
                let given: Vec<i32> = std::env::var("TOKENS")
                    .map(|t| t.split(',').filter_map(|v| v.trim().parse().ok()).collect())
                    .unwrap_or_default();
                (0..n)
                    .flat_map(|j| match given.get(j) {
                        Some(t) => t.to_le_bytes(),
                        None => ((next() % 151_000) as i32).to_le_bytes(),
                    })
                    .collect()
            } else if name == "position_ids" {
                (0..n)
                    .flat_map(|j| ((npast + j) as i32).to_le_bytes())
                    .collect()
            } else if name == "causal_mask" {
                let mut out = Vec::with_capacity(n * 2);
                for row in 0..s {
                    for col in 0..c {
                        let attend = col < npast || (col >= c - s && col - (c - s) <= row);
                        let code: u16 = if attend { 65535 } else { 0 };
                        out.extend_from_slice(&code.to_le_bytes());
                    }
                }
                out
            } else {
                match ty.elem() {
                    ElemType::Quant(q) if q.storage == Storage::U8 => {
                        (0..n).map(|_| (next() % 255) as u8).collect()
                    }
                    _ => (0..ty.byte_size()).map(|_| next() as u8).collect(),
                }
            }
        })
        .collect()
}

fn emulate(
    lib: &std::sync::Arc<QnnLibrary>,
    f: &Function,
    store: &WeightStore,
    ins: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let opts = GraphOptions {
        precision_fp16: std::env::var("FP32").is_err(),
        optimization_level: Some(
            std::env::var("OPT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3),
        ),
        vtcm_mb: None,
    };
    let ins: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
    Ok(emulate_function(lib, f, store, &ins, opts)?)
}

fn cpu(
    f: &Function,
    store: &WeightStore,
    cache: &mut WeightCache,
    ins: &[Vec<u8>],
    r: Rounding,
) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut prog = CpuProgram::compile(f, store, NumericMode::Fixed(r), cache)?;
    let mut c: Vec<Vec<u8>> = f
        .returned()
        .iter()
        .map(|v| vec![0u8; f.ty(*v).byte_size()])
        .collect();
    let ins: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
    let mut outs: Vec<&mut [u8]> = c.iter_mut().map(|v| v.as_mut_slice()).collect();
    prog.run_bytes(&ins, &mut outs, None)?;
    Ok(c)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ir = std::env::args().nth(1).ok_or("usage: drift model.mlir")?;
    let gname = std::env::var("GRAPH").unwrap_or_else(|_| "model.0.s1".into());
    let npast: usize = std::env::var("NPAST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let only = std::env::var("ONLY").ok();
    let rounding = match std::env::var("ROUNDING").as_deref() {
        Ok("even") => Rounding::HalfToEven,
        Ok("up") => Rounding::HalfUp,
        Ok("htp") => Rounding::Htp,
        _ => Rounding::HalfAwayFromZero,
    };
    let text = std::fs::read_to_string(&ir)?;
    let mut module = mllm_ir::parse::parse_verified(&text, &ir)?;
    mllm_frontends::qwen3::load_weights(&mut module, std::path::Path::new(&ir).parent())?;
    let f0 = module.function(&gname).ok_or("no such graph")?.clone();
    let ins = inputs(&f0, npast, 0x9e37_79b9_7f4a_7c15);
    let lib = QnnLibrary::load(None)?;
    let store = &module.weights;
    let mut cache = WeightCache::new();

    // Plain graph: outputs only.
    let plain_q = emulate(&lib, &f0, store, &ins)?;
    let plain_c = cpu(&f0, store, &mut cache, &ins, rounding)?;
    println!("plain graph {gname} (npast {npast}):");
    for (i, v) in f0.returned().iter().enumerate() {
        let (m, a, b) = err(f0.ty(*v), &plain_q[i], &plain_c[i]);
        let name = f0
            .result_names
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_default();
        println!("  {name}: max {m} mean {a:.3} bias {b:+.3}");
    }

    // Every op result exposed.
    let mut f = f0.clone();
    let nret = f.returned().len();
    let mut probes: Vec<(mllm_ir::OpId, ValueId)> = Vec::new();
    let already: HashSet<ValueId> = f.returned().iter().copied().collect();
    for o in f.op_ids() {
        let od = f.op(o);
        if matches!(od.kind, OpKind::Weight | OpKind::Constant | OpKind::Return) {
            continue;
        }
        let r = od.results[0];
        if foldable(&f, r) || already.contains(&r) {
            continue;
        }
        probes.push((o, r));
    }
    let term = f.terminator().ok_or("no return")?;
    let mut rets: Vec<ValueId> = f.returned().to_vec();
    for (i, (_, r)) in probes.iter().enumerate() {
        rets.push(*r);
        f.result_names.push(Some(format!("probe{i}")));
    }
    f.op_mut(term).operands = rets.into();
    let eq = emulate(&lib, &f, store, &ins)?;
    let ec = cpu(&f, store, &mut cache, &ins, rounding)?;
    println!("probed graph ({} probes):", probes.len());
    for (i, v) in f0.returned().iter().enumerate() {
        let (m, a, b) = err(f0.ty(*v), &eq[i], &ec[i]);
        let (m2, _, _) = err(f0.ty(*v), &eq[i], &plain_q[i]);
        println!(
            "  result {i}: max {m} mean {a:.3} bias {b:+.3} (emulator probed vs plain: max {m2})"
        );
    }
    // REPLAY=a,b: the sub-graph from probe a's value (fed the emulator's codes) to probe
    // b, executed alone in the emulator: does it reproduce the in-graph result of b?
    if let Ok(spec) = std::env::var("REPLAY") {
        let ix: Vec<usize> = spec.split(',').filter_map(|v| v.parse().ok()).collect();
        if let [a, b] = ix[..] {
            let mut g = f0.clone();
            let (_, ra) = probes[a];
            let (_, rb) = probes[b];
            let arg = g.add_arg(g.ty(ra).clone(), Some("replay_in"));
            g.replace_all_uses(ra, arg);
            let t = g.terminator().ok_or("no return")?;
            g.op_mut(t).operands = vec![rb].into();
            g.result_names = vec![Some("replay_out".into())];
            dce(&mut g);
            let g = g.compact();
            let mut r_ins = ins.clone();
            r_ins.push(eq[nret + a].clone());
            let out = emulate(&lib, &g, store, &r_ins)?;
            let c = cpu(&g, store, &mut cache, &r_ins, rounding)?;
            let ty = f.ty(rb).clone();
            let (m1, a1, _) = err(&ty, &out[0], &eq[nret + b]);
            let (m2, a2, _) = err(&ty, &out[0], &c[0]);
            println!("replay {a}->{b} ({} ops): vs in-graph max {m1} mean {a1:.3}; vs cpu max {m2} mean {a2:.3}", g.num_ops());
        }
    }
    // ANCHOR=kind: the CPU runs the whole graph but takes the emulator's results for
    // every op of that kind (to see how much of the end error those ops cause).
    if let Ok(kinds) = std::env::var("ANCHOR") {
        let kinds: Vec<&str> = kinds.split(',').collect();
        let mut g = f0.clone();
        let mut a_ins = ins.clone();
        for (i, (o, r)) in probes.iter().enumerate() {
            if kinds.contains(&g.op(*o).kind.name()) {
                let a = g.add_arg(g.ty(*r).clone(), Some(&format!("anchor{i}")));
                g.replace_all_uses(*r, a);
                a_ins.push(eq[nret + i].clone());
            }
        }
        let c = cpu(&g, store, &mut cache, &a_ins, rounding)?;
        for (i, v) in f0.returned().iter().enumerate() {
            let (m, a, b) = err(f0.ty(*v), &plain_q[i], &c[i]);
            println!("  anchored {kinds:?}: result {i}: max {m} mean {a:.3} bias {b:+.3}");
        }
    }
    let val_bytes: HashMap<ValueId, usize> = probes
        .iter()
        .enumerate()
        .map(|(i, (_, r))| (*r, nret + i))
        .collect();
    let ret_pos: HashMap<ValueId, usize> = f0
        .returned()
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i))
        .collect();
    let bytes_of = |v: ValueId| -> Option<usize> {
        val_bytes
            .get(&v)
            .copied()
            .or_else(|| ret_pos.get(&v).copied())
    };
    println!(
        "{:>4} {:<44} {:<16} {:>10} | {:>6} {:>7} {:>7} | {:>6} {:>7} {:>7}",
        "op",
        "name",
        "kind",
        "scale",
        "accMax",
        "accMean",
        "accBias",
        "isoMax",
        "isoMean",
        "isoBias"
    );
    for (i, (o, r)) in probes.iter().enumerate() {
        let od = f.op(*o);
        if let Some(k) = &only {
            if od.kind.name() != k {
                continue;
            }
        }
        if matches!(od.kind, OpKind::Reshape) {
            continue;
        }
        let ty = f.ty(*r).clone();
        let scale = ty
            .quant()
            .and_then(|q| match &q.encoding {
                mllm_ir::Encoding::PerTensor { scale, .. } => Some(*scale),
                _ => None,
            })
            .unwrap_or(0.0);
        let (am, aa, ab) = err(&ty, &eq[nret + i], &ec[nret + i]);
        // Isolated: this op alone, fed the emulator's operand values.
        let mut g = f0.clone();
        let mut iso_ins = ins.clone();
        let operands: Vec<ValueId> = g.op(*o).operands.to_vec();
        // `x * sigmoid(x)` is one fused op on the HTP (and in the CPU reference): keep the
        // sigmoid and feed it the same argument as the product's other operand.
        let fused_sigmoid = |j: usize| {
            let other = operands.get(1 - j.min(1))?;
            let sop = g.def_op(operands[j])?;
            (od.kind == OpKind::Mul
                && operands.len() == 2
                && g.op(sop).kind == OpKind::Sigmoid
                && g.op(sop).operands.first() == Some(other))
            .then_some(sop)
        };
        let fused_at: Vec<Option<OpId>> = (0..operands.len()).map(fused_sigmoid).collect();
        let fused: Vec<OpId> = fused_at.iter().flatten().copied().collect();
        let mut ok = true;
        for (j, v) in operands.iter().enumerate() {
            if foldable(&g, *v) || g.def_op(*v).is_none() {
                continue;
            }
            if fused_at[j].is_some() {
                continue;
            }
            let Some(pos) = bytes_of(*v) else {
                ok = false;
                break;
            };
            let a = g.add_arg(g.ty(*v).clone(), Some(&format!("iso{j}")));
            g.op_mut(*o).operands[j] = a;
            for &sop in &fused {
                if g.op(sop).operands.first() == Some(v) {
                    g.op_mut(sop).operands[0] = a;
                }
            }
            iso_ins.push(eq[pos].clone());
        }
        let iso = if ok {
            let t = g.terminator().ok_or("no return")?;
            g.op_mut(t).operands = vec![*r].into();
            g.result_names = vec![Some("iso".into())];
            dce(&mut g);
            let g = g.compact();
            let c = cpu(&g, store, &mut cache, &iso_ins, rounding)?;
            if let (Some((sc, off)), true) = (per_tensor(&ty), std::env::var("RESID").is_ok()) {
                // The op's exact real result, to see how the emulator rounds.
                let mut h = g.clone();
                let rv = h.returned()[0];
                let fine = mllm_ir::QuantType {
                    storage: Storage::I32,
                    expressed: mllm_ir::Expressed::F32,
                    encoding: mllm_ir::Encoding::PerTensor {
                        scale: (sc / 1024.0) as f32,
                        offset: (off * 1024.0) as i32,
                    },
                };
                let fty = Type::tensor(ty.shape().to_vec(), ElemType::Quant(fine));
                h.set_ty(rv, fty.clone());
                let real = match cpu(&h, store, &mut cache, &iso_ins, rounding) {
                    Ok(r) => r,
                    Err(e) => {
                        println!("      resid: {e}");
                        vec![vec![0u8; fty.byte_size()]]
                    }
                };
                let x: Vec<f64> = codes(&fty, &real[0])
                    .iter()
                    .map(|c| (c + off * 1024.0) / 1024.0 * sc)
                    .collect();
                let e = codes(&ty, &eq[nret + i]);
                let (lo, hi) = ty
                    .quant()
                    .map(|q| (q.storage.min() as f64, q.storage.max() as f64))
                    .unwrap_or((0.0, 65535.0));
                if std::env::var("DETAIL")
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    == Some(i)
                {
                    for (j, (xv, ev)) in x.iter().zip(&e).enumerate() {
                        println!("      [{j}] exact {:.4} emu {ev}", xv / sc - off);
                    }
                    for (j, v) in operands.iter().enumerate() {
                        if let Some(p) = bytes_of(*v) {
                            let c = codes(f0.ty(*v), &eq[p]);
                            println!("      operand {j}: {:?}", c);
                        }
                    }
                }
                let mut hist = [0usize; 8];
                let (mut n, mut sum) = (0usize, 0.0f64);
                for (xv, ev) in x.iter().zip(&e) {
                    let t = xv / sc - off;
                    if t <= lo || t >= hi {
                        continue;
                    }
                    let r = ev - t;
                    n += 1;
                    sum += r;
                    let b = ((r + 1.0) * 4.0).floor().clamp(0.0, 7.0) as usize;
                    hist[b] += 1;
                }
                println!(
                    "      resid(emu - exact) n {n} mean {:+.3} hist[-1..1 by .25] {:?}",
                    sum / n.max(1) as f64,
                    hist
                );
            }
            Some(err(&ty, &eq[nret + i], &c[0]))
        } else {
            None
        };
        let name = od.name.clone().unwrap_or_default();
        let name = if name.len() > 44 {
            name[name.len() - 44..].to_string()
        } else {
            name
        };
        match iso {
            Some((im, ia, ib)) => println!(
                "{:>4} {:<44} {:<16} {:>10.3e} | {:>6} {:>7.3} {:>+7.3} | {:>6} {:>7.3} {:>+7.3}",
                i,
                name,
                od.kind.name(),
                scale,
                am,
                aa,
                ab,
                im,
                ia,
                ib
            ),
            None => println!(
                "{:>4} {:<44} {:<16} {:>10.3e} | {:>6} {:>7.3} {:>+7.3} |",
                i,
                name,
                od.kind.name(),
                scale,
                am,
                aa,
                ab
            ),
        }
    }
    Ok(())
}
