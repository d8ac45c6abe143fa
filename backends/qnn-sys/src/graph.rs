//! Building graphs op by op, finalizing them, and executing them with
//! caller-owned buffers.

use std::collections::HashSet;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::context::{Context, ContextInner};
use crate::error::{QnnError, Result};
use crate::library::{self, qnn_fn};
use crate::sys;
use crate::types::{
    c_name, validate_spec, Quant, RawTensor, ScalarValue, TensorInfo, TensorKind, TensorSpec,
};

/// Options of a new graph (HTP graph custom configs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphOptions {
    /// Run float ops in FP16 (`PRECISION = FLOAT16`).
    pub precision_fp16: bool,
    /// HTP finalize optimization level (e.g. 2 or 3).
    pub optimization_level: Option<u32>,
    /// VTCM size in MB to prepare for.
    pub vtcm_mb: Option<u32>,
}

/// Largest [`GraphOptions::vtcm_mb`] accepted.
pub const MAX_VTCM_MB: u32 = 64;

/// Handle of a tensor created in a [`GraphBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorId {
    graph: u64,
    index: u32,
}

/// An op parameter.
#[derive(Debug, Clone)]
pub enum Param<'d> {
    /// Scalar parameter.
    Scalar(String, ScalarValue),
    /// Tensor parameter; the spec must be [`TensorKind::Static`] (an empty
    /// name is replaced by `<op>__<param>`).
    Tensor(String, TensorSpec<'d>),
}

/// Default op package of QNN's built-in ops.
pub const DEFAULT_PACKAGE: &str = "qti.aisw";

/// Describes one node.
#[derive(Debug, Clone)]
pub struct OpSpec<'d> {
    /// Unique node name.
    pub name: String,
    /// Op package (usually [`DEFAULT_PACKAGE`]).
    pub package: String,
    /// Op type, e.g. `ElementWiseAdd`, `Conv2d`, `FullyConnected`.
    pub type_name: String,
    /// Parameters.
    pub params: Vec<Param<'d>>,
    /// Input tensors, in the op's order.
    pub inputs: Vec<TensorId>,
    /// Output tensors, in the op's order.
    pub outputs: Vec<TensorId>,
}

impl<'d> OpSpec<'d> {
    /// A node of `type_name` in the default package.
    pub fn new(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        OpSpec {
            name: name.into(),
            package: DEFAULT_PACKAGE.into(),
            type_name: type_name.into(),
            params: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }
    /// Appends inputs.
    pub fn inputs(mut self, ids: &[TensorId]) -> Self {
        self.inputs.extend_from_slice(ids);
        self
    }
    /// Appends outputs.
    pub fn outputs(mut self, ids: &[TensorId]) -> Self {
        self.outputs.extend_from_slice(ids);
        self
    }
    /// Adds a scalar parameter.
    pub fn scalar(mut self, name: impl Into<String>, value: ScalarValue) -> Self {
        self.params.push(Param::Scalar(name.into(), value));
        self
    }
    /// Adds a static tensor parameter.
    pub fn tensor_param(mut self, name: impl Into<String>, spec: TensorSpec<'d>) -> Self {
        self.params.push(Param::Tensor(name.into(), spec));
        self
    }
}

static NEXT_GRAPH_TAG: AtomicU64 = AtomicU64::new(1);

/// Builds one graph inside a context.
///
/// Static tensor data only needs to live for the [`GraphBuilder::add_tensor`] /
/// [`GraphBuilder::add_node`] call that passes it: `tensorCreateGraphTensor`
/// copies static data (documented by QNN and checked against the 2.51
/// library: overwriting the buffer after creation changes nothing), so a
/// compiler can stream weights one tensor at a time.
pub struct GraphBuilder {
    ctx: Arc<ContextInner>,
    handle: sys::Qnn_GraphHandle_t,
    name: String,
    tag: u64,
    tensors: Vec<RawTensor>,
    infos: Vec<TensorInfo>,
    tensor_names: HashSet<String>,
    node_names: HashSet<String>,
}

impl std::fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphBuilder")
            .field("name", &self.name)
            .field("tensors", &self.infos.len())
            .field("nodes", &self.node_names.len())
            .finish()
    }
}

// SAFETY: the graph handle is owned by the context, whose calls are serialized
// by the context lock; the raw tensors own their storage (their client
// buffers are cleared after creation).
unsafe impl Send for GraphBuilder {}

struct OwnedParam {
    raw: sys::Qnn_Param_t,
    _name: CString,
}

impl GraphBuilder {
    /// Creates an empty graph named `name` in `ctx`.
    pub fn create(ctx: &Context, name: &str, options: GraphOptions) -> Result<GraphBuilder> {
        let inner = ctx.inner.clone();
        let lib = inner.lib().clone();
        let create = qnn_fn!(lib, graphCreate)?;
        let c_graph = c_name("graph name", name)?;
        if let Some(l) = options.optimization_level {
            if l > 3 {
                return Err(QnnError::invalid(
                    format!("graph '{name}'"),
                    format!("optimization level {l} not in 0..=3"),
                ));
            }
        }
        if let Some(mb) = options.vtcm_mb {
            // The library accepts any value (1000 MB is passed through
            // unchanged); no Hexagon has more than a few MB of VTCM.
            if !(1..=MAX_VTCM_MB).contains(&mb) {
                return Err(QnnError::invalid(
                    format!("graph '{name}'"),
                    format!("vtcm_mb {mb} not in 1..={MAX_VTCM_MB}"),
                ));
            }
        }
        let blank = || sys::QnnHtpGraph_CustomConfig_t {
            option: 0,
            u: sys::QnnHtpGraph_CustomConfigUnion { _size: [0; 6] },
        };
        let mut customs: Vec<Box<sys::QnnHtpGraph_CustomConfig_t>> = Vec::new();
        if options.precision_fp16 {
            let mut c = blank();
            c.option = sys::htp_graph_option::PRECISION;
            c.u.precision = sys::precision::FLOAT16;
            customs.push(Box::new(c));
        }
        if let Some(level) = options.optimization_level {
            let mut c = blank();
            c.option = sys::htp_graph_option::OPTIMIZATION;
            c.u.optimizationOption = sys::QnnHtpGraph_OptimizationOption_t {
                type_: sys::htp_graph_optimization::FINALIZE_OPTIMIZATION_FLAG,
                floatValue: level as f32,
            };
            customs.push(Box::new(c));
        }
        if let Some(mb) = options.vtcm_mb {
            let mut c = blank();
            c.option = sys::htp_graph_option::VTCM_SIZE_IN_MB;
            c.u.vtcmSizeInMB = mb;
            customs.push(Box::new(c));
        }
        let generic: Vec<sys::QnnGraph_Config_t> = customs
            .iter_mut()
            .map(|c| sys::QnnGraph_Config_t {
                option: sys::QNN_CONFIG_OPTION_CUSTOM,
                u: sys::Qnn_ConfigUnion {
                    customConfig: (&mut **c as *mut sys::QnnHtpGraph_CustomConfig_t).cast(),
                },
            })
            .collect();
        let mut list: Vec<*const sys::QnnGraph_Config_t> =
            generic.iter().map(|g| g as *const _).collect();
        list.push(std::ptr::null());
        let cfg = if generic.is_empty() {
            std::ptr::null()
        } else {
            list.as_ptr()
        };
        let _guard = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        let mut handle: sys::Qnn_GraphHandle_t = std::ptr::null_mut();
        // SAFETY: live context; NUL-terminated name; `cfg` is NULL or a
        // NULL-terminated list whose payloads outlive the call.
        let rc = unsafe { create(inner.handle, c_graph.as_ptr(), cfg, &mut handle) };
        lib.check(rc, "graphCreate", || format!("graph '{name}'"), mark)?;
        drop(_guard);
        Ok(GraphBuilder {
            ctx: inner,
            handle,
            name: name.to_string(),
            tag: NEXT_GRAPH_TAG.fetch_add(1, Ordering::Relaxed),
            tensors: Vec::new(),
            infos: Vec::new(),
            tensor_names: HashSet::new(),
            node_names: HashSet::new(),
        })
    }

    /// Graph name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Description of a tensor of this graph.
    pub fn tensor_info(&self, id: TensorId) -> Result<&TensorInfo> {
        let i = self.index_of(id, "tensor_info")?;
        Ok(&self.infos[i])
    }

    fn index_of(&self, id: TensorId, what: &str) -> Result<usize> {
        if id.graph != self.tag || id.index as usize >= self.tensors.len() {
            return Err(QnnError::invalid(
                format!("graph '{}'", self.name),
                format!("{what}: tensor id {id:?} does not belong to this graph"),
            ));
        }
        Ok(id.index as usize)
    }

    fn create_tensor(&mut self, spec: &TensorSpec<'_>) -> Result<(RawTensor, TensorInfo)> {
        let subject = format!("tensor '{}' of graph '{}'", spec.name, self.name);
        validate_spec(&subject, spec)?;
        if self.tensor_names.contains(&spec.name) {
            return Err(QnnError::invalid(subject, "duplicate tensor name"));
        }
        let lib = self.ctx.lib().clone();
        let create = qnn_fn!(lib, tensorCreateGraphTensor)?;
        let mut t = RawTensor::build(
            0,
            &spec.name,
            spec.kind.raw(),
            spec.dtype,
            &spec.dims,
            &spec.quant,
            spec.data,
        )?;
        let _guard = self.ctx.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        // SAFETY: live graph handle; `t.raw` is a valid V1 tensor whose
        // pointers (name, dims, quant arrays, static data borrowed from
        // `spec`) are valid during the call; the library copies static data
        // and writes back the id.
        let rc = unsafe { create(self.handle, &mut t.raw) };
        // The borrowed static data must not be referenced after this call.
        t.clear_buffer();
        lib.check(rc, "tensorCreateGraphTensor", || subject.clone(), mark)?;
        self.tensor_names.insert(spec.name.clone());
        let info = TensorInfo {
            id: t.id(),
            name: spec.name.clone(),
            kind: Some(spec.kind),
            dtype: spec.dtype,
            dims: spec.dims.clone(),
            quant: spec.quant.clone(),
        };
        Ok((t, info))
    }

    /// Creates a graph tensor. Names must be unique within the graph.
    pub fn add_tensor(&mut self, spec: TensorSpec<'_>) -> Result<TensorId> {
        let (raw, info) = self.create_tensor(&spec)?;
        let index = u32::try_from(self.tensors.len())
            .map_err(|_| QnnError::invalid(format!("graph '{}'", self.name), "too many tensors"))?;
        self.tensors.push(raw);
        self.infos.push(info);
        Ok(TensorId {
            graph: self.tag,
            index,
        })
    }

    fn check_op_shape(&self, op: &OpSpec<'_>) -> Result<(CString, CString, CString)> {
        let subject = format!(
            "op '{}' ({}) of graph '{}'",
            op.name, op.type_name, self.name
        );
        let name = c_name(&subject, &op.name)?;
        let package = c_name(&subject, &op.package)?;
        let type_name = c_name(&subject, &op.type_name)?;
        if op.outputs.is_empty() {
            return Err(QnnError::invalid(subject, "op without outputs"));
        }
        for &id in &op.inputs {
            self.index_of(id, &subject)?;
        }
        for &id in &op.outputs {
            let i = self.index_of(id, &subject)?;
            match self.infos[i].kind {
                Some(TensorKind::Native) | Some(TensorKind::AppRead) => {}
                other => {
                    return Err(QnnError::invalid(
                        subject,
                        format!(
                            "output '{}' is {:?}; outputs must be Native or AppRead",
                            self.infos[i].name, other
                        ),
                    ))
                }
            }
        }
        let mut seen = HashSet::new();
        for p in &op.params {
            let pname = match p {
                Param::Scalar(n, _) | Param::Tensor(n, _) => n,
            };
            if pname.is_empty() || !seen.insert(pname.as_str()) {
                return Err(QnnError::invalid(
                    subject,
                    format!("empty or duplicate parameter name {pname:?}"),
                ));
            }
            if let Param::Tensor(_, spec) = p {
                if spec.kind != TensorKind::Static {
                    return Err(QnnError::invalid(
                        subject,
                        format!("tensor parameter '{pname}' must be Static"),
                    ));
                }
            }
        }
        Ok((name, package, type_name))
    }

    fn param_spec<'d>(op: &OpSpec<'_>, pname: &str, spec: &TensorSpec<'d>) -> TensorSpec<'d> {
        let mut s = spec.clone();
        if s.name.is_empty() {
            s.name = format!("{}__{}", op.name, pname);
        }
        s
    }

    /// Checks an op with `backendValidateOpConfig` without adding it. Tensor
    /// parameters are described but not created. Note: passing validation
    /// does not prove the op prepares or computes correctly.
    pub fn validate_op(&self, op: &OpSpec<'_>) -> Result<()> {
        let (name, package, type_name) = self.check_op_shape(op)?;
        let subject = || {
            format!(
                "op '{}' ({}) of graph '{}'",
                op.name, op.type_name, self.name
            )
        };
        let lib = self.ctx.lib().clone();
        let validate = qnn_fn!(lib, backendValidateOpConfig)?;
        let mut param_tensors = Vec::new();
        for p in &op.params {
            if let Param::Tensor(pname, spec) = p {
                let s = Self::param_spec(op, pname, spec);
                validate_spec(&subject(), &s)?;
                param_tensors.push(RawTensor::build(
                    0,
                    &s.name,
                    s.kind.raw(),
                    s.dtype,
                    &s.dims,
                    &s.quant,
                    s.data,
                )?);
            }
        }
        let param_raw: Vec<sys::Qnn_Tensor_t> = param_tensors.iter().map(|t| t.raw).collect();
        let mut params = Self::raw_params(op, &param_raw)?;
        let mut inputs = self.raw_list(&op.inputs);
        let mut outputs = self.raw_list(&op.outputs);
        let (_raw_params, cfg) = Self::op_config(
            &name,
            &package,
            &type_name,
            &mut params,
            &mut inputs,
            &mut outputs,
        );
        let _guard = self.ctx.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        // SAFETY: every pointer in `cfg` refers to storage alive until the
        // end of this function.
        let rc = unsafe { validate(self.ctx.backend.handle, cfg) };
        lib.check(rc, "backendValidateOpConfig", subject, mark)
    }

    fn raw_list(&self, ids: &[TensorId]) -> Vec<sys::Qnn_Tensor_t> {
        ids.iter()
            .map(|id| self.tensors[id.index as usize].raw)
            .collect()
    }

    fn raw_params(op: &OpSpec<'_>, tensors: &[sys::Qnn_Tensor_t]) -> Result<Vec<OwnedParam>> {
        let mut out = Vec::with_capacity(op.params.len());
        let mut tensors = tensors.iter();
        for p in &op.params {
            match p {
                Param::Scalar(n, v) => {
                    let c = c_name("parameter name", n)?;
                    out.push(OwnedParam {
                        raw: sys::Qnn_Param_t {
                            paramType: sys::param_type::SCALAR,
                            name: c.as_ptr(),
                            u: sys::Qnn_ParamUnion {
                                scalarParam: v.to_raw(),
                            },
                        },
                        _name: c,
                    });
                }
                Param::Tensor(n, _) => {
                    let c = c_name("parameter name", n)?;
                    let t = tensors.next().ok_or_else(|| {
                        QnnError::invalid(format!("op '{}'", op.name), "parameter tensor missing")
                    })?;
                    out.push(OwnedParam {
                        raw: sys::Qnn_Param_t {
                            paramType: sys::param_type::TENSOR,
                            name: c.as_ptr(),
                            u: sys::Qnn_ParamUnion { tensorParam: *t },
                        },
                        _name: c,
                    });
                }
            }
        }
        Ok(out)
    }

    fn op_config(
        name: &CString,
        package: &CString,
        type_name: &CString,
        params: &mut [OwnedParam],
        inputs: &mut [sys::Qnn_Tensor_t],
        outputs: &mut [sys::Qnn_Tensor_t],
    ) -> (Vec<sys::Qnn_Param_t>, sys::Qnn_OpConfig_t) {
        // The returned Vec's heap buffer is what `params` points at; moving
        // the Vec does not move that buffer.
        let mut raw: Vec<sys::Qnn_Param_t> = params.iter().map(|p| p.raw).collect();
        let ptr_or_null = |len: usize, p: *mut sys::Qnn_Tensor_t| {
            if len == 0 {
                std::ptr::null_mut()
            } else {
                p
            }
        };
        let cfg = sys::Qnn_OpConfig_t {
            version: sys::QNN_OPCONFIG_VERSION_1,
            v1: sys::Qnn_OpConfigV1_t {
                name: name.as_ptr(),
                packageName: package.as_ptr(),
                typeName: type_name.as_ptr(),
                numOfParams: raw.len() as u32,
                params: if raw.is_empty() {
                    std::ptr::null_mut()
                } else {
                    raw.as_mut_ptr()
                },
                numOfInputs: inputs.len() as u32,
                inputTensors: ptr_or_null(inputs.len(), inputs.as_mut_ptr()),
                numOfOutputs: outputs.len() as u32,
                outputTensors: ptr_or_null(outputs.len(), outputs.as_mut_ptr()),
            },
        };
        (raw, cfg)
    }

    /// Adds a node. Tensor parameters are first created as static graph tensors.
    pub fn add_node(&mut self, op: OpSpec<'_>) -> Result<()> {
        let (name, package, type_name) = self.check_op_shape(&op)?;
        let subject = format!(
            "op '{}' ({}) of graph '{}'",
            op.name, op.type_name, self.name
        );
        if self.node_names.contains(&op.name) {
            return Err(QnnError::invalid(subject, "duplicate node name"));
        }
        let lib = self.ctx.lib().clone();
        let add = qnn_fn!(lib, graphAddNode)?;
        // Parameter tensors are stored right away (their storage must live
        // until finalize); their TensorIds are never handed out.
        let mut param_raw = Vec::new();
        for p in &op.params {
            if let Param::Tensor(pname, spec) = p {
                let s = Self::param_spec(&op, pname, spec);
                let (raw, info) = self.create_tensor(&s)?;
                param_raw.push(raw.raw);
                self.tensors.push(raw);
                self.infos.push(info);
            }
        }
        let mut params = Self::raw_params(&op, &param_raw)?;
        let mut inputs = self.raw_list(&op.inputs);
        let mut outputs = self.raw_list(&op.outputs);
        let (_raw_params, cfg) = Self::op_config(
            &name,
            &package,
            &type_name,
            &mut params,
            &mut inputs,
            &mut outputs,
        );
        let guard = self.ctx.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        // SAFETY: live graph handle; every pointer in `cfg` refers to storage
        // alive until the end of this function or owned by `self.tensors`.
        let rc = unsafe { add(self.handle, cfg) };
        drop(guard);
        lib.check(rc, "graphAddNode", || subject.clone(), mark)?;
        self.node_names.insert(op.name);
        Ok(())
    }

    /// Finalizes (prepares) the graph. Graph inputs are the `AppWrite`
    /// tensors and outputs the `AppRead` tensors, in creation order.
    pub fn finalize(self) -> Result<Graph> {
        let lib = self.ctx.lib().clone();
        let finalize = qnn_fn!(lib, graphFinalize)?;
        let guard = self.ctx.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        // SAFETY: live graph handle; NULL profile and signal are allowed; all
        // tensor descriptions are owned by `self`.
        let rc = unsafe { finalize(self.handle, std::ptr::null_mut(), std::ptr::null_mut()) };
        drop(guard);
        lib.check(
            rc,
            "graphFinalize",
            || format!("graph '{}'", self.name),
            mark,
        )?;
        let pick = |kind| {
            self.infos
                .iter()
                .filter(|i| i.kind == Some(kind))
                .cloned()
                .collect::<Vec<_>>()
        };
        let inputs = pick(TensorKind::AppWrite);
        let outputs = pick(TensorKind::AppRead);
        Graph::from_parts(
            self.ctx.clone(),
            self.handle,
            self.name.clone(),
            inputs,
            outputs,
        )
    }
}

/// A caller buffer bound to a graph input by name.
#[derive(Debug)]
pub struct Input<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Exactly the tensor's byte size.
    pub data: &'a [u8],
}

/// A caller buffer bound to a graph output by name.
#[derive(Debug)]
pub struct Output<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Exactly the tensor's byte size; the library writes into it.
    pub data: &'a mut [u8],
}

struct IoTensor {
    info: TensorInfo,
    raw: RawTensor,
    size: usize,
}

/// A finalized or retrieved graph, ready to execute.
pub struct Graph {
    ctx: Arc<ContextInner>,
    handle: sys::Qnn_GraphHandle_t,
    name: String,
    inputs: Vec<IoTensor>,
    outputs: Vec<IoTensor>,
    /// The tensor arrays handed to `graphExecute`, built once: each call only patches the
    /// client-buffer pointer and size of every entry (and clears them afterwards), so
    /// executing allocates nothing.
    exec_in: Vec<sys::Qnn_Tensor_t>,
    exec_out: Vec<sys::Qnn_Tensor_t>,
    /// Number of `graphExecute` calls and the wall time spent inside them.
    exec_calls: u64,
    exec_time: std::time::Duration,
}

/// Points a raw tensor's client buffer at `data` (`size` bytes).
fn set_client_buffer(t: &mut sys::Qnn_Tensor_t, data: *mut c_void, size: u32) {
    // Every raw I/O tensor is built as a V1 tensor by `RawTensor::build`; writing
    // plain-data union fields is safe.
    t.u.v1.memType = sys::mem_type::RAW;
    t.u.v1.mem.clientBuf = sys::Qnn_ClientBuffer_t {
        data,
        dataSize: size,
    };
}

/// Clears the client buffers of `ts` so no pointer to caller memory outlives a call.
fn clear_client_buffers(ts: &mut [sys::Qnn_Tensor_t]) {
    for t in ts {
        set_client_buffer(t, std::ptr::null_mut(), 0);
    }
}

// SAFETY: the graph handle belongs to the context, whose calls are serialized
// by the context lock; the I/O descriptions own their storage.
unsafe impl Send for Graph {}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("name", &self.name)
            .field("inputs", &self.input_infos().collect::<Vec<_>>())
            .field("outputs", &self.output_infos().collect::<Vec<_>>())
            .finish()
    }
}

fn io_tensors(graph: &str, infos: Vec<TensorInfo>, kind: TensorKind) -> Result<Vec<IoTensor>> {
    infos
        .into_iter()
        .map(|info| {
            let size = info.byte_size().ok_or_else(|| {
                QnnError::invalid(
                    format!("tensor '{}' of graph '{graph}'", info.name),
                    format!("{:?} I/O tensors are not supported", info.dtype),
                )
            })?;
            if size > u32::MAX as usize {
                return Err(QnnError::invalid(
                    format!("tensor '{}' of graph '{graph}'", info.name),
                    "I/O tensor larger than 4 GiB",
                ));
            }
            // Library-reported encodings we do not model are passed as "none";
            // execution only needs id, type and sizes to match.
            let quant = match &info.quant {
                Quant::Other { .. } => Quant::None,
                q => q.clone(),
            };
            let raw = RawTensor::build(
                info.id,
                &info.name,
                kind.raw(),
                info.dtype,
                &info.dims,
                &quant,
                None,
            )?;
            Ok(IoTensor { info, raw, size })
        })
        .collect()
}

impl Graph {
    pub(crate) fn from_parts(
        ctx: Arc<ContextInner>,
        handle: sys::Qnn_GraphHandle_t,
        name: String,
        inputs: Vec<TensorInfo>,
        outputs: Vec<TensorInfo>,
    ) -> Result<Graph> {
        let inputs = io_tensors(&name, inputs, TensorKind::AppWrite)?;
        let outputs = io_tensors(&name, outputs, TensorKind::AppRead)?;
        let blank = |ts: &[IoTensor]| -> Vec<sys::Qnn_Tensor_t> {
            ts.iter()
                .map(|t| t.raw.with_buffer(std::ptr::null_mut(), 0))
                .collect()
        };
        let exec_in = blank(&inputs);
        let exec_out = blank(&outputs);
        Ok(Graph {
            ctx,
            handle,
            name,
            inputs,
            outputs,
            exec_in,
            exec_out,
            exec_calls: 0,
            exec_time: std::time::Duration::ZERO,
        })
    }

    /// Graph name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of `graphExecute` calls made on this graph and the total wall time spent
    /// inside the library call itself (what the caller's host overhead is measured against).
    pub fn execute_stats(&self) -> (u64, std::time::Duration) {
        (self.exec_calls, self.exec_time)
    }

    /// Input tensors, in execution order.
    pub fn input_infos(&self) -> impl Iterator<Item = &TensorInfo> {
        self.inputs.iter().map(|t| &t.info)
    }

    /// Output tensors, in execution order.
    pub fn output_infos(&self) -> impl Iterator<Item = &TensorInfo> {
        self.outputs.iter().map(|t| &t.info)
    }

    fn check_size(&self, t: &IoTensor, actual: usize) -> Result<()> {
        if actual != t.size {
            return Err(QnnError::BufferSize {
                graph: self.name.clone(),
                tensor: t.info.name.clone(),
                expected: t.size,
                actual,
            });
        }
        Ok(())
    }

    /// Executes with buffers given in the graph's input/output order
    /// (see [`Graph::input_infos`]). Every buffer must have exactly the
    /// tensor's byte size: the library does not check and would overrun.
    ///
    /// Zero copy and no allocation: the library reads and writes the caller's
    /// buffers directly through tensor arrays prepared when the graph was
    /// created (only their client-buffer pointers change per call).
    pub fn execute_ordered(&mut self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        if inputs.len() != self.inputs.len() || outputs.len() != self.outputs.len() {
            return Err(QnnError::invalid(
                format!("graph '{}'", self.name),
                format!(
                    "{} inputs / {} outputs given, graph has {} / {}",
                    inputs.len(),
                    outputs.len(),
                    self.inputs.len(),
                    self.outputs.len()
                ),
            ));
        }
        for (t, buf) in self.inputs.iter().zip(inputs) {
            self.check_size(t, buf.len())?;
        }
        for (t, buf) in self.outputs.iter().zip(outputs.iter()) {
            self.check_size(t, buf.len())?;
        }
        for (raw, buf) in self.exec_in.iter_mut().zip(inputs) {
            // The library only reads APP_WRITE buffers; the C field is non-const.
            // Sizes fit in u32 (checked when the graph was created).
            set_client_buffer(raw, buf.as_ptr() as *mut c_void, buf.len() as u32);
        }
        for (raw, buf) in self.exec_out.iter_mut().zip(outputs.iter_mut()) {
            set_client_buffer(raw, buf.as_mut_ptr().cast(), buf.len() as u32);
        }
        self.execute_prepared()
    }

    /// Executes with buffers bound by tensor name. Every input and output of
    /// the graph must be bound exactly once, with exactly its byte size.
    /// Allocates nothing unless it fails.
    pub fn execute(&mut self, inputs: &[Input<'_>], outputs: &mut [Output<'_>]) -> Result<()> {
        let subject = || format!("graph '{}'", self.name);
        for b in inputs {
            if inputs.iter().filter(|o| o.name == b.name).count() > 1 {
                return Err(QnnError::invalid(
                    subject(),
                    format!("input '{}' bound twice", b.name),
                ));
            }
            if !self.inputs.iter().any(|t| t.info.name == b.name) {
                return Err(QnnError::invalid(
                    subject(),
                    format!("'{}' is not an input of the graph", b.name),
                ));
            }
        }
        for b in outputs.iter() {
            if outputs.iter().filter(|o| o.name == b.name).count() > 1 {
                return Err(QnnError::invalid(
                    subject(),
                    format!("output '{}' bound twice", b.name),
                ));
            }
            if !self.outputs.iter().any(|t| t.info.name == b.name) {
                return Err(QnnError::invalid(
                    subject(),
                    format!("'{}' is not an output of the graph", b.name),
                ));
            }
        }
        for t in &self.inputs {
            let b = inputs
                .iter()
                .find(|b| b.name == t.info.name)
                .ok_or_else(|| {
                    QnnError::invalid(subject(), format!("input '{}' not bound", t.info.name))
                })?;
            self.check_size(t, b.data.len())?;
        }
        for t in &self.outputs {
            let b = outputs
                .iter()
                .find(|b| b.name == t.info.name)
                .ok_or_else(|| {
                    QnnError::invalid(subject(), format!("output '{}' not bound", t.info.name))
                })?;
            self.check_size(t, b.data.len())?;
        }
        for (t, raw) in self.inputs.iter().zip(self.exec_in.iter_mut()) {
            if let Some(b) = inputs.iter().find(|b| b.name == t.info.name) {
                set_client_buffer(raw, b.data.as_ptr() as *mut c_void, b.data.len() as u32);
            }
        }
        for (t, raw) in self.outputs.iter().zip(self.exec_out.iter_mut()) {
            if let Some(b) = outputs.iter_mut().find(|b| b.name == t.info.name) {
                set_client_buffer(raw, b.data.as_mut_ptr().cast(), b.data.len() as u32);
            }
        }
        self.execute_prepared()
    }

    /// Calls `graphExecute` on the prepared tensor arrays, then clears their
    /// buffer pointers. The caller has pointed every entry at a live buffer of
    /// exactly the tensor's size.
    fn execute_prepared(&mut self) -> Result<()> {
        let result = (|| {
            let lib = self.ctx.lib();
            let execute = qnn_fn!(lib, graphExecute)?;
            let _guard = self.ctx.lock.lock().unwrap_or_else(|e| e.into_inner());
            let mark = library::log_mark();
            let t0 = std::time::Instant::now();
            // SAFETY: live graph handle (the context is kept alive by `self.ctx`);
            // every entry of the tensor arrays was built by `RawTensor::build`
            // (name, dims and quant storage owned by `self.inputs` /
            // `self.outputs`) and points at a caller buffer whose size was
            // checked to equal the tensor's byte size, borrowed for the whole
            // call by `execute_ordered` / `execute`; NULL profile/signal are
            // allowed.
            let rc = unsafe {
                execute(
                    self.handle,
                    self.exec_in.as_ptr(),
                    self.exec_in.len() as u32,
                    self.exec_out.as_mut_ptr(),
                    self.exec_out.len() as u32,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            self.exec_time += t0.elapsed();
            self.exec_calls += 1;
            lib.check(
                rc,
                "graphExecute",
                || format!("graph '{}'", self.name),
                mark,
            )
        })();
        clear_client_buffers(&mut self.exec_in);
        clear_client_buffers(&mut self.exec_out);
        result
    }
}
