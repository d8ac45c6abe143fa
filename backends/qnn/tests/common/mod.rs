//! Shared harness of the live tests: library discovery (skip with a note when the QNN
//! library is absent), IR construction helpers, a deterministic RNG, running one
//! function both in the HTP emulator and in the CPU reference executor (fixed-point
//! mode: dequantize inputs -> f32 op -> requantize, round half away from zero, clamp),
//! and per-output error measurement.
#![allow(dead_code)]

use mllm_backend_qnn::emulate::{emulate_function, PROBE_OPTIONS};
use std::sync::{Arc, Mutex, MutexGuard};

use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, ElemType, Function, OpKind, Storage, Type, ValueId, WeightStore};
use mllm_qnn_sys::{QnnError, QnnLibrary};
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

/// SM8650 (v75): v73+ targets are ~1 LSB accurate, the default v68 is not.
pub const SOC: u32 = 57;

/// The live tests run one at a time (2-core machine, one process-wide library).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The QNN library, or `None` (with a printed note) when it is not installed.
pub fn library() -> Option<Arc<QnnLibrary>> {
    match QnnLibrary::load(None) {
        Ok(lib) => Some(lib),
        Err(QnnError::LibraryNotFound { .. }) => {
            println!("QNN library not found; run scripts/setup-qnn.sh (test skipped)");
            None
        }
        Err(e) => panic!("QNN library present but failed to load: {e}"),
    }
}

/// xorshift64* generator (deterministic, no dependency).
pub struct Rng(u64);
impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform integer in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    /// Uniform float in `[lo, hi)`.
    pub fn float(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// Per-tensor quantized element type covering `[lo, hi]`.
pub fn q(storage: Storage, lo: f32, hi: f32) -> ElemType {
    let levels = (storage.max() - storage.min()) as f32;
    let scale = (hi - lo) / levels;
    let offset = (lo / scale).round() as i32 - storage.min() as i32;
    per_tensor(storage, scale, offset)
}

/// u16 activation type `[lo, hi]`.
pub fn u16q(lo: f32, hi: f32) -> ElemType {
    q(Storage::U16, lo, hi)
}

/// u8 (KV-cache-like) type `[lo, hi]`.
pub fn u8q(lo: f32, hi: f32) -> ElemType {
    q(Storage::U8, lo, hi)
}

/// Tensor type shorthand.
pub fn t(shape: &[usize], e: ElemType) -> Type {
    Type::tensor(shape.to_vec(), e)
}

/// Appends an op with an explicit result type and returns its result.
pub fn op(f: &mut Function, kind: OpKind, operands: &[ValueId], attrs: Attrs, ty: Type) -> ValueId {
    let mut b = f.builder();
    let id = b.op_typed(kind, operands, attrs, &[ty]);
    b.func.op(id).results[0]
}

/// Returns `vals` from `f` under `names`.
pub fn ret(f: &mut Function, vals: &[ValueId], names: &[&str]) {
    f.builder().ret(vals);
    f.result_names = names.iter().map(|n| Some(n.to_string())).collect();
}

/// Random bytes for a value of type `ty`: uniform codes over the storage range for
/// quantized types, floats in [-4, 4), booleans, i32 in `0..int_hi`.
pub fn random_bytes(ty: &Type, rng: &mut Rng, int_hi: i64) -> Vec<u8> {
    let n = ty.numel();
    let mut out = Vec::with_capacity(ty.byte_size());
    for _ in 0..n {
        match ty.elem() {
            ElemType::Quant(qt) => {
                let v = rng.int(qt.storage.min(), qt.storage.max());
                match qt.storage.byte_size() {
                    1 => out.push(v as u8),
                    2 => out.extend_from_slice(&(v as u16).to_le_bytes()),
                    _ => out.extend_from_slice(&(v as u32).to_le_bytes()),
                }
            }
            ElemType::F32 => out.extend_from_slice(&rng.float(-4.0, 4.0).to_le_bytes()),
            ElemType::Bool => out.push(rng.int(0, 1) as u8),
            ElemType::I32 => out.extend_from_slice(&(rng.int(0, int_hi - 1) as i32).to_le_bytes()),
            e => panic!("no random generator for {e:?}"),
        }
    }
    out
}

/// Decodes element values of `ty` as f64 (codes for quantized types).
pub fn decode(ty: &Type, b: &[u8]) -> Vec<f64> {
    mllm_runtime::cpu::quant::element_values(ty.elem(), b)
}

/// Outputs of one function from QNN and from the CPU reference.
pub struct Run {
    /// Output types.
    pub types: Vec<Type>,
    /// QNN output bytes.
    pub qnn: Vec<Vec<u8>>,
    /// CPU reference output bytes.
    pub cpu: Vec<Vec<u8>>,
}

impl Run {
    /// Largest |qnn - cpu| of output `i` (LSB for quantized, absolute for float).
    pub fn max_err(&self, i: usize) -> f64 {
        let a = decode(&self.types[i], &self.qnn[i]);
        let b = decode(&self.types[i], &self.cpu[i]);
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }
    /// Mean |qnn - cpu| of output `i`.
    pub fn mean_err(&self, i: usize) -> f64 {
        let a = decode(&self.types[i], &self.qnn[i]);
        let b = decode(&self.types[i], &self.cpu[i]);
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
    }
    /// Largest |cpu| of output `i` in its units (to see that outputs are not trivial).
    pub fn spread(&self, i: usize) -> (f64, f64) {
        let b = decode(&self.types[i], &self.cpu[i]);
        let lo = b.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }
}

/// Lowers `f` into a fresh context for [`SOC`], finalizes, executes on `inputs`, and
/// runs the CPU reference in fixed-point mode on the same inputs.
pub fn run(
    lib: &Arc<QnnLibrary>,
    f: &Function,
    store: &WeightStore,
    inputs: &[Vec<u8>],
) -> Result<Run, String> {
    let types: Vec<Type> = f.returned().iter().map(|v| f.ty(*v).clone()).collect();
    let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    let qnn = emulate_function(lib, f, store, &ins, PROBE_OPTIONS).map_err(|e| e.to_string())?;
    let mut cache = WeightCache::new();
    let mut prog = CpuProgram::compile(
        f,
        store,
        NumericMode::Fixed(Rounding::HalfAwayFromZero),
        &mut cache,
    )
    .map_err(|e| format!("cpu reference: {e}"))?;
    let mut cpu: Vec<Vec<u8>> = types.iter().map(|t| vec![0u8; t.byte_size()]).collect();
    {
        let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
        let mut outs: Vec<&mut [u8]> = cpu.iter_mut().map(|v| v.as_mut_slice()).collect();
        prog.run_bytes(&ins, &mut outs, None)
            .map_err(|e| format!("cpu reference: {e}"))?;
    }
    Ok(Run { types, qnn, cpu })
}

/// Runs `f` on random inputs and asserts the max error of every output is within
/// `tol` (LSB for quantized outputs); prints the measured figures.
pub fn check(
    lib: &Arc<QnnLibrary>,
    label: &str,
    f: &Function,
    store: &WeightStore,
    seed: u64,
    int_hi: i64,
    tol: f64,
) -> Run {
    let mut rng = Rng::new(seed);
    let inputs: Vec<Vec<u8>> = f
        .args()
        .iter()
        .map(|v| random_bytes(f.ty(*v), &mut rng, int_hi))
        .collect();
    check_with(lib, label, f, store, &inputs, tol)
}

/// [`check`] with given inputs.
pub fn check_with(
    lib: &Arc<QnnLibrary>,
    label: &str,
    f: &Function,
    store: &WeightStore,
    inputs: &[Vec<u8>],
    tol: f64,
) -> Run {
    let r = run(lib, f, store, inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    for i in 0..r.types.len() {
        let (lo, hi) = r.spread(i);
        println!(
            "[{label}] output {i}: max err {:.4}, mean err {:.4} (reference range {lo}..{hi}, type {})",
            r.max_err(i),
            r.mean_err(i),
            r.types[i]
        );
        assert!(
            r.max_err(i) <= tol,
            "{label}: output {i} max error {} > {tol}",
            r.max_err(i)
        );
    }
    r
}
