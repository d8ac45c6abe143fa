//! Steady-state execution of the CPU executor allocates nothing: a counting global
//! allocator (counting on every thread, rayon workers included) around repeated
//! `Executor::execute` calls, in float mode on an attention block large enough to take
//! the parallel paths, and in fixed-point mode on a quantized LPBQ linear chain.
//! (The only allocations are rayon's amortized injector blocks, see [`BUDGET`].)

mod cpu_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cpu_common::*;
use mllm_ir::types::{per_tensor, ElemType, Encoding, Expressed, QuantType, Storage, Type};
use mllm_ir::{Attrs, Function, Module, OpKind, WDType, Weight};
use mllm_runtime::cpu::{CpuExecutor, NumericMode, Rounding};
use mllm_runtime::Executor;

/// Calls measured per mode.
const CALLS: usize = 128;
/// The executor itself allocates nothing. Each call hands one job to rayon's global
/// injector queue (the caller is not a pool thread), and that queue allocates one block
/// per 63 jobs: at most `CALLS / 63 + 1` allocations, i.e. none per call.
const BUDGET: u64 = (CALLS / 63 + 1) as u64;

static COUNT: AtomicU64 = AtomicU64::new(0);
static ON: AtomicBool = AtomicBool::new(false);

struct Counting;

fn bump() {
    if ON.load(Ordering::Relaxed) {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// only addition is an atomic counter, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as `GlobalAlloc::alloc`, upheld by our caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`, upheld by our caller.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System` (all our allocations forward to it).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` was returned by `System`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `execute` `n` times after two warm-up calls; returns the allocations counted.
fn allocs_of(ex: &mut CpuExecutor, g: usize, ins: &[Vec<u8>], n: usize) -> u64 {
    let desc = ex.graphs()[g].clone();
    let mut outs: Vec<Vec<u8>> = desc
        .outputs
        .iter()
        .map(|t| vec![0u8; t.byte_size()])
        .collect();
    let in_refs: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
    let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
    for _ in 0..2 {
        ex.execute(g, &in_refs, &mut out_refs).unwrap();
    }
    COUNT.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    for _ in 0..n {
        ex.execute(g, &in_refs, &mut out_refs).unwrap();
    }
    ON.store(false, Ordering::SeqCst);
    let c = COUNT.load(Ordering::SeqCst);
    // The outputs were really computed (not all zero).
    assert!(outs[0].iter().any(|b| *b != 0));
    c
}

fn quantized_chain() -> Module {
    let (m, k, n, bs) = (64, 256, 320, 32);
    let nb = k / bs;
    let a16 = |s: f32| per_tensor(Storage::U16, s, -32768);
    let lpbq = ElemType::Quant(QuantType {
        storage: Storage::I4,
        expressed: Expressed::F32,
        encoding: Encoding::Blockwise {
            axis: 0,
            block_size: bs as u32,
            block_scale_bits: 4,
            block_scales: (0..n * nb)
                .map(|i| (i % 16 + 1) as u8)
                .collect::<Vec<u8>>()
                .into(),
            channel_scales: (0..n)
                .map(|i| 0.001 + i as f32 * 1e-5)
                .collect::<Vec<f32>>()
                .into(),
        },
    });
    let mut f = Function::new("q");
    let x = f.add_arg(Type::tensor(vec![1, m, k], ElemType::F32), Some("x"));
    let mut b = f.builder();
    let xq = b.convert(OpKind::Quantize, x, Type::tensor(vec![1, m, k], a16(1e-4)));
    let w = b.weight("w", Type::tensor(vec![n, k], lpbq));
    let y = b.op_typed(
        OpKind::Linear,
        &[xq, w],
        Attrs::new(),
        &[Type::tensor(vec![1, m, n], a16(2e-4))],
    );
    let y = b.func.op(y).results[0];
    let s = b.op_typed(
        OpKind::Silu,
        &[y],
        Attrs::new(),
        &[Type::tensor(vec![1, m, n], a16(1e-4))],
    );
    let s = b.func.op(s).results[0];
    let t = b.transpose(s, &[0, 2, 1]).unwrap();
    let r = b.convert(
        OpKind::Requantize,
        t,
        Type::tensor(vec![1, n, m], a16(3e-4)),
    );
    let c = b.op_typed(
        OpKind::Concat,
        &[r, t],
        mllm_ir::attrs([("axis", mllm_ir::Attr::Int(2))]),
        &[Type::tensor(vec![1, n, 2 * m], a16(3e-4))],
    );
    let c = b.func.op(c).results[0];
    let d = b.convert(
        OpKind::Dequantize,
        c,
        Type::tensor(vec![1, n, 2 * m], ElemType::F32),
    );
    b.ret(&[d, s]);
    f.result_names = vec![Some("y".into()), Some("s".into())];
    let mut md = Module::new();
    md.functions.push(f);
    let codes: Vec<u8> = (0..n * k).map(|i| ((i * 7 % 15) as i8 - 7) as u8).collect();
    md.weights
        .insert("w", Weight::owned(WDType::I8, vec![n, k], codes).unwrap());
    mllm_ir::verify::verify_module(&md).unwrap();
    md
}

#[test]
fn steady_state_execute_allocates_nothing() {
    // Float mode, attention block with parallel GEMMs, batched matmuls and elementwise ops.
    let a = AttnDims {
        s: 32,
        c: 256,
        h: 8,
        hkv: 2,
        d: 64,
        hidden: 512,
    };
    let md = attention_module(&[("model.0.s32", a)], 3);
    let mut ex = CpuExecutor::new(&md, NumericMode::Float).unwrap();
    let mut r = rng(4);
    let ins: Vec<Vec<u8>> = ex.graphs()[0]
        .inputs
        .iter()
        .map(|t| {
            (0..t.numel())
                .flat_map(|_| {
                    let v: f32 = rand::Rng::gen_range(&mut r, -1.0f32..1.0);
                    let v = if t.name == "causal_mask" {
                        (v > -0.5) as u8 as f32
                    } else {
                        v
                    };
                    v.to_le_bytes()
                })
                .collect()
        })
        .collect();
    let n = allocs_of(&mut ex, 0, &ins, CALLS);
    assert!(
        n <= BUDGET,
        "float-mode execute allocated {n} times in {CALLS} calls"
    );

    // Fixed-point mode, quantized LPBQ linear chain with requantizing concat.
    let md = quantized_chain();
    let mut ex = CpuExecutor::new(&md, NumericMode::Fixed(Rounding::HalfAwayFromZero)).unwrap();
    let x: Vec<u8> = (0..64 * 256)
        .flat_map(|i| (((i * 13 % 101) as f32 - 50.0) * 0.05).to_le_bytes())
        .collect();
    let n = allocs_of(&mut ex, 0, &[x], CALLS);
    assert!(
        n <= BUDGET,
        "fixed-point execute allocated {n} times in {CALLS} calls"
    );
}
