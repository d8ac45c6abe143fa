//! [`CpuExecutor`]: the programs of a module behind the runtime's [`Executor`] trait,
//! plus a typed API for tests and calibration.

use mllm_ir::types::{ElemType, Storage, Type};
use mllm_ir::Module;

use super::error::CpuError;
use super::program::{CpuProgram, OpOutput};
use super::weights::WeightCache;
use super::NumericMode;
use crate::error::{Result, RuntimeError};
use crate::executor::{
    DType, Executor, ExtrasDone, GraphDesc, GraphInput, Quant, StepExtras, TensorDesc, TOKENS_NAMES,
};

pub use super::program::TensorRef;

/// The CPU reference executor: one graph per function of a module.
#[derive(Debug)]
pub struct CpuExecutor {
    programs: Vec<CpuProgram>,
    graphs: Vec<GraphDesc>,
    cached_weights: usize,
}

/// The I/O description of a value of type `ty` called `name`.
pub fn tensor_desc(name: &str, ty: &Type) -> std::result::Result<TensorDesc, String> {
    let (dtype, quant) = match ty.elem() {
        ElemType::F32 => (DType::F32, Quant::None),
        ElemType::F16 => (DType::F16, Quant::None),
        ElemType::BF16 => (DType::BF16, Quant::None),
        ElemType::Bool => (DType::Bool, Quant::None),
        ElemType::I8 => (DType::I8, Quant::None),
        ElemType::I16 => (DType::I16, Quant::None),
        ElemType::I32 => (DType::I32, Quant::None),
        ElemType::I64 => (DType::I64, Quant::None),
        ElemType::U8 => (DType::U8, Quant::None),
        ElemType::U16 => (DType::U16, Quant::None),
        ElemType::Quant(q) => {
            let Some((scale, offset)) = q.encoding.per_tensor() else {
                return Err(format!(
                    "`{name}` has type {ty}: graph I/O must be per-tensor quantized"
                ));
            };
            let dtype = match q.storage {
                Storage::U8 => DType::U8,
                Storage::U16 => DType::U16,
                Storage::I8 | Storage::I4 => DType::I8,
                Storage::I16 => DType::I16,
                Storage::I32 => DType::I32,
            };
            (dtype, Quant::PerTensor { scale, offset })
        }
    };
    Ok(TensorDesc::new(name, dtype, ty.shape().to_vec()).with_quant(quant))
}

fn ar_len(name: &str, inputs: &[TensorDesc]) -> usize {
    if let Some(t) = inputs
        .iter()
        .find(|t| TOKENS_NAMES.contains(&t.name.as_str()))
    {
        return t.shape.last().copied().unwrap_or(1);
    }
    name.rsplit_once(".s")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

/// Runs `f` on a rayon worker thread, so that the parallel kernels it starts push
/// their jobs onto that worker's local deque instead of the pool's global injector
/// queue (which allocates a block every 63 injected jobs): one injection per call.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::join(f, || ()).0
}

impl CpuExecutor {
    /// Compiles every function of `module`. Weights are decoded once and shared between
    /// the functions (e.g. the prefill and decode graphs).
    pub fn new(module: &Module, mode: NumericMode) -> std::result::Result<CpuExecutor, CpuError> {
        let mut cache = WeightCache::new();
        let mut programs = Vec::new();
        let mut graphs = Vec::new();
        for f in &module.functions {
            let p = CpuProgram::compile(f, &module.weights, mode, &mut cache)?;
            let desc = |names: &[String], tys: Vec<&Type>| {
                names
                    .iter()
                    .zip(tys)
                    .map(|(n, t)| tensor_desc(n, t))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|msg| CpuError::Unsupported {
                        func: f.name.clone(),
                        op: "func.func".into(),
                        msg,
                    })
            };
            let inputs = desc(p.arg_names(), p.arg_types().collect())?;
            let outputs = desc(p.result_names(), p.result_types().collect())?;
            graphs.push(GraphDesc {
                name: f.name.clone(),
                ar_len: ar_len(&f.name, &inputs),
                inputs,
                outputs,
            });
            programs.push(p);
        }
        Ok(CpuExecutor {
            programs,
            graphs,
            cached_weights: cache.len(),
        })
    }

    /// Index of the graph (function) called `name`.
    pub fn graph_index(&self, name: &str) -> Option<usize> {
        self.graphs.iter().position(|g| g.name == name)
    }

    /// The compiled program of graph `g`.
    pub fn program(&self, g: usize) -> Option<&CpuProgram> {
        self.programs.get(g)
    }

    /// The compiled program of graph `g`, mutably (e.g. to turn profiling on).
    pub fn program_mut(&mut self, g: usize) -> Option<&mut CpuProgram> {
        self.programs.get_mut(g)
    }

    /// Number of decoded weight tensors (plain and packed) shared by the programs.
    pub fn decoded_weights(&self) -> usize {
        self.cached_weights
    }

    fn prog(&mut self, g: usize) -> std::result::Result<&mut CpuProgram, CpuError> {
        let n = self.programs.len();
        self.programs
            .get_mut(g)
            .ok_or_else(|| CpuError::NotFound(format!("graph index {g} out of range (have {n})")))
    }

    /// Runs graph `g` on typed inputs; returns every output in real units.
    pub fn run_f32(
        &mut self,
        g: usize,
        inputs: &[TensorRef<'_>],
    ) -> std::result::Result<Vec<Vec<f32>>, CpuError> {
        let p = self.prog(g)?;
        on_pool(|| p.run_f32(inputs, None))
    }

    /// Like [`CpuExecutor::run_f32`], calling `obs` with every op's output (in real
    /// units, by op and value id and op name), e.g. for calibration min/max or per-layer
    /// SQNR. Weights and constants are not reported.
    pub fn run_f32_observed(
        &mut self,
        g: usize,
        inputs: &[TensorRef<'_>],
        obs: &mut dyn FnMut(&OpOutput<'_>),
    ) -> std::result::Result<Vec<Vec<f32>>, CpuError> {
        self.prog(g)?.run_f32(inputs, Some(obs))
    }

    /// [`Executor::execute`] with an observer.
    pub fn execute_observed(
        &mut self,
        g: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        obs: &mut dyn FnMut(&OpOutput<'_>),
    ) -> Result<()> {
        self.execute_inner(g, inputs, outputs, Some(obs))
    }

    fn execute_inner(
        &mut self,
        g: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        obs: Option<&mut dyn FnMut(&OpOutput<'_>)>,
    ) -> Result<()> {
        let Some(desc) = self.graphs.get(g) else {
            return Err(RuntimeError::GraphNotFound {
                msg: format!("graph index {g}"),
                available: crate::executor::describe_graphs(&self.graphs),
            });
        };
        desc.check_buffers(inputs, outputs)?;
        let p = &mut self.programs[g];
        let r = match obs {
            Some(o) => p.run_bytes(inputs, outputs, Some(o)),
            None => on_pool(|| p.run_bytes(inputs, outputs, None)),
        };
        r.map_err(|e| RuntimeError::Execute {
            executor: "cpu".into(),
            graph: p.name().to_owned(),
            msg: e.to_string(),
        })
    }
}

impl Executor for CpuExecutor {
    fn name(&self) -> &str {
        "cpu"
    }

    fn graphs(&self) -> &[GraphDesc] {
        &self.graphs
    }

    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        self.execute_inner(graph, inputs, outputs, None)
    }

    /// Does both extras: the new K/V entries are written into the cache right after the graph's
    /// last read of each cache buffer, and the greedy token of f32 logits is taken as they are
    /// written out ([`CpuProgram::run_bytes_with`]).
    fn execute_with(
        &mut self,
        graph: usize,
        inputs: &mut [GraphInput<'_>],
        outputs: &mut [&mut [u8]],
        extras: &StepExtras<'_>,
    ) -> Result<ExtrasDone> {
        let Some(desc) = self.graphs.get(graph) else {
            return Err(RuntimeError::GraphNotFound {
                msg: format!("graph index {graph}"),
                available: crate::executor::describe_graphs(&self.graphs),
            });
        };
        desc.check_graph_inputs(inputs, outputs)?;
        let contract = |msg: String| RuntimeError::Contract {
            graph: desc.name.clone(),
            msg,
        };
        if let Some(cw) = &extras.cache {
            for &(j, i) in cw.pairs {
                let (Some(out), Some(inp)) = (outputs.get(j), inputs.get(i)) else {
                    return Err(contract(format!(
                        "cache write pair ({j}, {i}) out of range"
                    )));
                };
                cw.check(&desc.name, out, inp)?;
            }
        }
        let argmax = match extras.argmax {
            Some((j, row)) => {
                let Some(d) = desc.outputs.get(j) else {
                    return Err(contract(format!("argmax of output {j}: out of range")));
                };
                let vocab = d.shape.last().copied().unwrap_or(0);
                if vocab == 0 || (row + 1) * vocab > d.numel() {
                    return Err(contract(format!(
                        "argmax of row {row} of `{}` {:?}: out of range",
                        d.name, d.shape
                    )));
                }
                Some((j, row, d))
            }
            None => None,
        };
        let p = &mut self.programs[graph];
        let cache = extras.cache.as_ref();
        let token = on_pool(|| p.run_bytes_with(inputs, outputs, cache, argmax)).map_err(|e| {
            RuntimeError::Execute {
                executor: "cpu".into(),
                graph: p.name().to_owned(),
                msg: e.to_string(),
            }
        })?;
        Ok(ExtrasDone {
            cache_written: extras.cache.is_some(),
            argmax: token,
        })
    }
}
