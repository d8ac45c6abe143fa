//! One-shot execution of an IR function on the HTP (the x86 emulator here): build a graph
//! of the function, finalize it and run it once. What the op probes, op tests and drift
//! tools share; compiling a model for deployment goes through [`crate::binary`] instead.

use std::sync::Arc;

use mllm_ir::{Attrs, Function, OpKind, Type, ValueId, WeightStore};
use mllm_qnn_sys::{
    Backend, Context, ContextOptions, Device, DeviceTarget, GraphBuilder, GraphOptions, QnnError,
    QnnLibrary,
};

use crate::lower::{lower_function, LowerError};

/// SoC the emulator runs as (SM8650, HTP v75).
pub const EMULATOR_SOC: u32 = 57;

/// Graph options of the probes: FP16 precision, optimization level 3.
pub const PROBE_OPTIONS: GraphOptions = GraphOptions {
    precision_fp16: true,
    optimization_level: Some(3),
    vtcm_mb: None,
};

/// The value of environment variable `key` parsed as a `T`, else `default`: the knobs of the
/// probe examples (scales, offsets, sizes), e.g. `SCALE=4e-4 cargo run --example ...`.
pub fn probe_env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Why a one-shot run failed.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    /// The QNN library refused a call.
    #[error(transparent)]
    Qnn(#[from] QnnError),
    /// The function could not be lowered to QNN ops.
    #[error(transparent)]
    Lower(#[from] LowerError),
}

/// Appends one op of `kind` on `args` with result type `out` to `f` and makes its result
/// the function's only result, named `y` (the one-op graphs of the probes and op tests).
pub fn return_op(f: &mut Function, kind: OpKind, args: &[ValueId], attrs: Attrs, out: &Type) {
    let y = {
        let mut b = f.builder();
        let id = b.op_typed(kind, args, attrs, std::slice::from_ref(out));
        b.func.op(id).results[0]
    };
    f.builder().ret(&[y]);
    f.result_names = vec![Some("y".into())];
}

/// Runs `f` (weights from `store`) once on a fresh HTP context of SoC [`EMULATOR_SOC`]
/// with `opts`: `inputs[i]` holds argument `i`'s bytes; returns each result's bytes, in
/// order.
pub fn emulate_function(
    lib: &Arc<QnnLibrary>,
    f: &Function,
    store: &WeightStore,
    inputs: &[&[u8]],
    opts: GraphOptions,
) -> Result<Vec<Vec<u8>>, EmulateError> {
    let backend = Backend::new(lib)?;
    let device = Device::new(&backend, DeviceTarget::soc(EMULATOR_SOC))?;
    let ctx = Context::new(&backend, &device, ContextOptions::default())?;
    let mut g = GraphBuilder::create(&ctx, &f.name, opts)?;
    lower_function(&mut g, f, store)?;
    let mut graph = g.finalize()?;
    let mut outs: Vec<Vec<u8>> = f
        .returned()
        .iter()
        .map(|v| vec![0u8; f.ty(*v).byte_size()])
        .collect();
    let mut refs: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
    graph.execute_ordered(inputs, &mut refs)?;
    Ok(outs)
}
