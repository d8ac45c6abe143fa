//! The CPU reference's u16 `nn.where` under `Rounding::Htp`
//! (`mllm_runtime::cpu::htp_select`) against the HTP emulator's `ElementWiseSelect`
//! (SoC 57): data read straight from graph inputs, and data produced by an op (a product
//! with a constant, as the attention's scaled scores), both bit-exact; the generic
//! dequantize / select / round-to-nearest path is shown to miss. Skipped with a note
//! when the QNN library is not installed.

mod common;

use common::*;
use mllm_backend_qnn::emulate::{emulate_function, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, ElemType, Function, OpKind, Storage, Type, WeightStore};
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

type Enc = (f32, i32);

/// Runs `f` on `inputs` in the emulator and in the CPU reference with `rounding`; returns
/// both results' u16 codes.
fn both(f: &Function, inputs: &[Vec<u8>], rounding: Rounding) -> Option<(Vec<u16>, Vec<u16>)> {
    let lib = library()?;
    let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    let store = WeightStore::new();
    let emu = emulate_function(&lib, f, &store, &ins, PROBE_OPTIONS)
        .expect("emulator run")
        .remove(0);
    let mut cache = WeightCache::new();
    let mut prog = CpuProgram::compile(f, &store, NumericMode::Fixed(rounding), &mut cache)
        .expect("cpu compile");
    let mut cpu = vec![0u8; emu.len()];
    prog.run_bytes(&ins, &mut [cpu.as_mut_slice()], None)
        .expect("cpu run");
    let codes = |b: &[u8]| -> Vec<u16> {
        b.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    };
    Some((codes(&emu), codes(&cpu)))
}

fn bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `where(c, a', b')` over `[1, 65536]` with a random condition, `a` swept over every
/// code and `b` in reverse; `a'` / `b'` are the inputs themselves or, with `op`, their
/// products with the constant 0.25 (product encodings `a`, `b`, the inputs `4x` coarser).
/// Returns `(mismatches under Rounding::Htp, mismatches under half away from zero)`.
fn select(a: Enc, b: Enc, o: Enc, op: bool, seed: u64) -> Option<(usize, usize)> {
    let n = 65536;
    let u16t = |e: Enc| Type::tensor(vec![1, n], per_tensor(Storage::U16, e.0, e.1));
    let mut f = Function::new("select");
    let c = f.add_arg(Type::tensor(vec![1, n], ElemType::Bool), Some("c"));
    let mut data = Vec::new();
    for (e, name) in [(a, "a"), (b, "b")] {
        let xe = if op { (4.0 * e.0, e.1) } else { e };
        let x = f.add_arg(u16t(xe), Some(name));
        data.push(if op {
            let mut bld = f.builder();
            let k = bld.constant(
                vec![0.25],
                Type::tensor(vec![1], per_tensor(Storage::U16, 0.25 / 65535.0, 0)),
            );
            let m = bld.op_typed(OpKind::Mul, &[x, k], Attrs::new(), &[u16t(e)]);
            bld.func.op(m).results[0]
        } else {
            x
        });
    }
    let y = op_y(&mut f, &[c, data[0], data[1]], u16t(o));
    ret(&mut f, &[y], &["y"]);
    let mut rng = Rng::new(seed);
    let cond: Vec<u8> = (0..n).map(|_| (rng.next() & 1) as u8).collect();
    let xa: Vec<u16> = (0..=65535u16).collect();
    let xb: Vec<u16> = (0..=65535u16).rev().collect();
    let inputs = vec![cond, bytes(&xa), bytes(&xb)];
    let (emu, htp) = both(&f, &inputs, Rounding::Htp)?;
    let (_, plain) = both(&f, &inputs, Rounding::HalfAwayFromZero)?;
    let off = |v: &[u16]| v.iter().zip(&emu).filter(|(p, q)| p != q).count();
    let distinct = {
        let mut s = emu.clone();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    assert!(
        distinct > 1000,
        "degenerate output ({distinct} distinct codes)"
    );
    Some((off(&htp), off(&plain)))
}

fn op_y(f: &mut Function, args: &[mllm_ir::ValueId], ty: Type) -> mllm_ir::ValueId {
    let mut bld = f.builder();
    let w = bld.op_typed(OpKind::Where, args, Attrs::new(), &[ty]);
    bld.func.op(w).results[0]
}

/// Encoding triples `(a, b, out)`: the test model's attention select, ratios whose
/// multipliers are exact ties in f32, large and small ratios, offsets across the range.
const CASES: [(Enc, Enc, Enc); 6] = [
    (
        (1.097_141_9e-4, -32624),
        (4.148_946_3e-4, -56832),
        (4.148_946_3e-4, -56832),
    ),
    ((2e-3, -1000), (5e-4, -20000), (4.148_946_3e-4, -30000)),
    (
        (4.113_769e-5, -33432),
        (1.796_825e-5, -15455),
        (9.338_451e-6, -64937),
    ),
    (
        (8.953_39e-3, -55326),
        (1.931_959e-2, -24883),
        (1.261_866e-3, -39763),
    ),
    ((5.900_417e-3, -16940), (1e-6, -100), (1.749_014e-3, -55848)),
    (
        (1.194_36e-4, -50857),
        (1.849_338e-5, -50564),
        (2.513_665e-4, -26355),
    ),
];

/// Data read straight from graph inputs: the HTP's 2^18-multiplier path.
#[test]
fn graph_inputs_bit_exact() {
    let _g = serial();
    for (i, (a, b, o)) in CASES.into_iter().enumerate() {
        let Some((htp, plain)) = select(a, b, o, false, i as u64) else {
            return;
        };
        println!("graph inputs {a:?} {b:?} -> {o:?}: {htp} mismatches of 65536 (round to nearest: {plain})");
        assert_eq!(htp, 0, "case {i}");
        assert!(plain > 0, "case {i}: the generic path should miss");
    }
}

/// Data produced by an op (a product with a constant, modelled exactly by `HtpMul`):
/// the HTP's 15-bit-multiplier path, and its switch to the 2^18 path below ratio 2^-8
/// (case 4's `b`).
#[test]
fn op_produced_bit_exact() {
    let _g = serial();
    for (i, (a, b, o)) in CASES.into_iter().enumerate() {
        let Some((htp, plain)) = select(a, b, o, true, 10 + i as u64) else {
            return;
        };
        println!("op-produced {a:?} {b:?} -> {o:?}: {htp} mismatches of 65536 (round to nearest: {plain})");
        assert_eq!(htp, 0, "case {i}");
    }
}

/// The test model's attention pattern: `where(mask, scores * 0.25, fill)` on
/// `[1, 1, 32, 64]` with a constant `[1, 1, 1, 1]` fill at code 0 of the result's encoding.
#[test]
fn attention_mask_bit_exact() {
    let _g = serial();
    let (x, s, o) = (
        (4.388_567_5e-4f32, -32624),
        (1.097_141_9e-4f32, -32624),
        (4.148_946_3e-4f32, -56832),
    );
    let shape = vec![1, 1, 32, 64];
    let u16t = |e: Enc| Type::tensor(shape.clone(), per_tensor(Storage::U16, e.0, e.1));
    let mut f = Function::new("mask");
    let c = f.add_arg(Type::tensor(shape.clone(), ElemType::Bool), Some("c"));
    let xs = f.add_arg(u16t(x), Some("x"));
    let (scaled, fill) = {
        let mut bld = f.builder();
        let k = bld.constant(
            vec![0.25],
            Type::tensor(vec![1], per_tensor(Storage::U16, 3.814_755_5e-6, 0)),
        );
        let m = bld.op_typed(OpKind::Mul, &[xs, k], Attrs::new(), &[u16t(s)]);
        let fill = bld.constant(
            vec![-23.579_291_716_217_995],
            Type::tensor(vec![1, 1, 1, 1], per_tensor(Storage::U16, o.0, o.1)),
        );
        (bld.func.op(m).results[0], fill)
    };
    let y = op_y(&mut f, &[c, scaled, fill], u16t(o));
    ret(&mut f, &[y], &["y"]);
    let mut rng = Rng::new(3);
    let mut worst = 0;
    for rep in 0..8 {
        // A causal mask over 20 cached positions and random scores.
        let cond: Vec<u8> = (0..32 * 64)
            .map(|i| ((i % 64) <= 20 + i / 64 || rep % 4 == 3) as u8)
            .collect();
        let scores: Vec<u16> = (0..32 * 64).map(|_| rng.int(0, 65535) as u16).collect();
        let Some((emu, htp)) = both(&f, &[cond, bytes(&scores)], Rounding::Htp) else {
            return;
        };
        let off = emu.iter().zip(&htp).filter(|(p, q)| p != q).count();
        worst = worst.max(off);
    }
    println!("attention mask: at most {worst} of 2048 codes differ");
    assert_eq!(worst, 0);
}
