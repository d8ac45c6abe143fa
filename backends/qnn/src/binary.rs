//! Compiling a whole module into QNN context binaries plus their manifests.
//!
//! Every function of the module (e.g. prefill `model.0.s32` and decode `model.0.s1`)
//! becomes a graph of ONE context; each graph is lowered ([`crate::lower`]) and
//! finalized in turn, then the context is serialized. [`compile_module`] compiles one
//! context (all functions, or those in [`CompileOptions::functions`]).
//!
//! Weight sharing ([`CompileOptions::weight_sharing`], on by default): the HTP context
//! option WEIGHT_SHARING_ENABLED makes the graphs of one context share their static
//! weights, so the binary holds them once instead of once per graph. The x86 library
//! *creates* such binaries, but its HTP emulator refuses to *load* them ("Shared weights
//! buffer isn't supported on this platform", QNN error 1000), so binaries meant to run
//! in the emulator (tests, `mllm demo`) must be compiled with `weight_sharing: false`
//! (`--no-weight-sharing` on the command line). The manifest records the choice.
//!
//! Shards (`split_graph` / `--shards k`): a module split by the `split-graph` pass holds
//! graphs `model.{i}.s{N}` for shards `i = 0..k`; each shard becomes its own context and
//! file, compiled with [`compile_module`] restricted to that shard's functions
//! ([`shard_functions`]). File naming ([`shard_path`]): context 0 is always exactly the
//! requested path (`out.bin`, manifest `out.bin.json`), so the runtime is handed the same
//! file whatever the shard count; with k > 1 shards, context `i > 0` goes to
//! `out.{i}.bin` (the index inserted before the extension) with its own complete manifest
//! `out.{i}.bin.json`, and context 0's manifest lists those binaries (name, size,
//! SHA-256) in its `shards` field, in context order. Shard 0's graphs take `sequence` and return
//! `hidden_states`; shard `i > 0` takes `hidden_states` from shard `i - 1`; the last
//! shard returns `logits`; every shard reads and writes the KV cache of its own layers
//! under their global indices (`past_key_{l}`, `present_key_{l}`), which is how the
//! runtime (`GraphBindings::resolve`) recovers each shard's layer range.
//!
//! Crashes: a segfault inside the QNN library (seen with broken op configs, e.g. LPBQ
//! `FullyConnected` with N > K) kills the calling process. This crate does not
//! finalize in a child process; the lowering avoids the configurations known to crash
//! (LPBQ linears must be 1x1 convolutions), and a caller that compiles untrusted
//! shapes should run the compiler as a subprocess.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mllm_ir::attr::AttrsExt;
use mllm_ir::Module;
use mllm_qnn_sys::{
    Backend, Context, ContextOptions, Device, DeviceTarget, GraphBuilder, GraphOptions, QnnError,
    QnnLibrary, SystemContext, KNOWN_SOCS,
};

use crate::lower::{lower_function, IoTensor, LowerError, LoweredGraph};
use crate::manifest::{
    dtype_name, manifest_path, sha256_hex, write_atomic, Manifest, ManifestEncoding, ManifestError,
    ManifestGraph, ManifestQnn, ManifestTarget, ManifestTensor, MANIFEST_VERSION,
};

/// Options of [`compile_module`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// Directory holding the QNN libraries (else the usual search, see `mllm-qnn-sys`).
    pub lib_dir: Option<PathBuf>,
    /// `Qnn_SocModel_t` to prepare for (43 SM8550, 57 SM8650, 69 SM8750, 87 SM8850).
    /// `None` with `arch: None` is the library default (SM8350 / v68, ~20 LSB less
    /// accurate than v73+ targets).
    pub soc: Option<u32>,
    /// Hexagon architecture, when no SoC is given.
    pub arch: Option<u32>,
    /// VTCM size in MB.
    pub vtcm_mb: Option<u32>,
    /// HTP weight sharing between the graphs of a context (default: on; such binaries
    /// do not load in the x86 emulator, so turn it off for emulator runs).
    pub weight_sharing: bool,
    /// Float ops in FP16.
    pub fp16_precision: bool,
    /// HTP finalize optimization level (0..=3).
    pub optimization_level: Option<u32>,
    /// Only these functions (all when `None`).
    pub functions: Option<Vec<String>>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            lib_dir: None,
            soc: None,
            arch: None,
            vtcm_mb: None,
            weight_sharing: true,
            fp16_precision: true,
            optimization_level: Some(3),
            functions: None,
        }
    }
}

/// Errors of [`compile_module`] and [`write_model`].
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Setting up QNN failed (library, backend, device, context).
    #[error("QNN setup: {0}")]
    Setup(#[source] Box<QnnError>),
    /// A graph could not be lowered.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// QNN failed on a whole graph (create, finalize).
    #[error("graph '{graph}': {source}")]
    Graph {
        /// Graph name.
        graph: String,
        /// Library error.
        #[source]
        source: Box<QnnError>,
    },
    /// Serializing the context failed.
    #[error("serializing the context: {0}")]
    Binary(#[source] Box<QnnError>),
    /// Nothing to compile.
    #[error("{0}")]
    Empty(String),
    /// Writing the outputs failed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Timings and sizes of one compiled graph.
#[derive(Debug, Clone)]
pub struct GraphStats {
    /// Graph name.
    pub name: String,
    /// QNN nodes.
    pub nodes: usize,
    /// Static tensors (folded weights and constants).
    pub static_tensors: usize,
    /// Static bytes handed to QNN.
    pub static_bytes: u64,
    /// Seconds spent lowering (including weight folding and tensor creation).
    pub lower_secs: f64,
    /// Seconds spent in `graphFinalize`.
    pub finalize_secs: f64,
}

/// A compiled module.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The context binary.
    pub binary: Vec<u8>,
    /// Its manifest (`binary` is set to `model.bin`; [`write_model`] fixes it).
    pub manifest: Manifest,
    /// Per-graph statistics.
    pub stats: Vec<GraphStats>,
    /// Seconds spent serializing the context.
    pub serialize_secs: f64,
}

/// `N` of a graph named `model.{i}.s{N}`, or the function attribute `ar_len`.
fn ar_len_of(f: &mllm_ir::Function) -> Option<usize> {
    if let Some(n) = f.attrs.int("ar_len") {
        return usize::try_from(n).ok();
    }
    let last = f.name.rsplit('.').next()?;
    last.strip_prefix('s')?.parse().ok()
}

fn manifest_tensor(t: &IoTensor) -> ManifestTensor {
    ManifestTensor {
        name: t.name.clone(),
        shape: t.dims.clone(),
        dtype: dtype_name(t.dtype).to_string(),
        ir_type: Some(mllm_ir::print::type_to_string(&t.ty)),
        encoding: ManifestEncoding::from(&t.quant),
    }
}

/// Name and arch of a known SoC model.
pub fn soc_info(model: u32) -> Option<(&'static str, u32)> {
    KNOWN_SOCS
        .iter()
        .find(|(_, m, _)| *m == model)
        .map(|(n, _, a)| (*n, *a))
}

/// What [`compile_module_with_progress`] reports while it works.
#[derive(Debug, Clone, Copy)]
pub enum CompileEvent<'a> {
    /// Lowering graph `index` (of `total`) named `name` starts.
    Lower {
        /// Graph name.
        name: &'a str,
        /// 0-based index.
        index: usize,
        /// Number of graphs.
        total: usize,
    },
    /// Finalizing that graph starts.
    Finalize {
        /// Graph name.
        name: &'a str,
        /// 0-based index.
        index: usize,
        /// Number of graphs.
        total: usize,
    },
    /// Serializing the context starts.
    Serialize,
}

/// The functions of shard `shard` in `module` (`model.{shard}.s{N}`), in module order.
pub fn shard_functions(module: &Module, shard: usize) -> Vec<String> {
    let prefix = format!("model.{shard}.s");
    module
        .functions
        .iter()
        .filter(|f| {
            f.name
                .strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|f| f.name.clone())
        .collect()
}

/// Number of shards of a module: one more than the largest `i` of its `model.{i}.s{N}`
/// functions (1 when it has none).
pub fn num_shards(module: &Module) -> usize {
    module
        .functions
        .iter()
        .filter_map(|f| {
            let rest = f.name.strip_prefix("model.")?;
            let (i, n) = rest.split_once(".s")?;
            n.parse::<usize>().ok()?;
            i.parse::<usize>().ok()
        })
        .max()
        .map_or(1, |i| i + 1)
}

/// The file of context `shard` of `shards` for the requested output `path` (see the
/// module docs): `path` itself for context 0, else `stem.{shard}.ext` (`out.bin` ->
/// `out.1.bin`; `out` -> `out.1`).
pub fn shard_path(path: &Path, shard: usize, shards: usize) -> PathBuf {
    if shards <= 1 || shard == 0 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{shard}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{shard}"),
    };
    path.with_file_name(name)
}

/// Builds every function of `module` (or those in `opts.functions`) as a graph of one
/// context, finalizes them and returns the context binary with its manifest.
pub fn compile_module(module: &Module, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    compile_module_with_progress(module, opts, &mut |_| {})
}

/// [`compile_module`], reporting each graph's lowering and finalization to `progress`.
pub fn compile_module_with_progress(
    module: &Module,
    opts: &CompileOptions,
    progress: &mut dyn FnMut(CompileEvent<'_>),
) -> Result<Compiled, CompileError> {
    let funcs: Vec<&mllm_ir::Function> = match &opts.functions {
        None => module.functions.iter().collect(),
        Some(names) => {
            let mut v = Vec::new();
            for n in names {
                v.push(module.function(n).ok_or_else(|| {
                    CompileError::Empty(format!("the module has no function '{n}'"))
                })?);
            }
            v
        }
    };
    if funcs.is_empty() {
        return Err(CompileError::Empty(
            "the module has no functions to compile".into(),
        ));
    }
    let lib =
        QnnLibrary::load(opts.lib_dir.as_deref()).map_err(|e| CompileError::Setup(Box::new(e)))?;
    let backend = Backend::new(&lib).map_err(|e| CompileError::Setup(Box::new(e)))?;
    let target = DeviceTarget {
        soc_model: opts.soc,
        arch: if opts.soc.is_some() { None } else { opts.arch },
        signed_pd: None,
    };
    let device = Device::new(&backend, target).map_err(|e| CompileError::Setup(Box::new(e)))?;
    let ctx = Context::new(
        &backend,
        &device,
        ContextOptions {
            weight_sharing: opts.weight_sharing,
        },
    )
    .map_err(|e| CompileError::Setup(Box::new(e)))?;
    let gopts = GraphOptions {
        precision_fp16: opts.fp16_precision,
        optimization_level: opts.optimization_level,
        vtcm_mb: opts.vtcm_mb,
    };
    let mut lowered: Vec<(LoweredGraph, Option<usize>)> = Vec::new();
    let mut stats = Vec::new();
    let total = funcs.len();
    for (index, f) in funcs.iter().enumerate() {
        progress(CompileEvent::Lower {
            name: &f.name,
            index,
            total,
        });
        let t0 = Instant::now();
        let mut g =
            GraphBuilder::create(&ctx, &f.name, gopts).map_err(|source| CompileError::Graph {
                graph: f.name.clone(),
                source: Box::new(source),
            })?;
        let lg = lower_function(&mut g, f, &module.weights)?;
        let lower_secs = t0.elapsed().as_secs_f64();
        progress(CompileEvent::Finalize {
            name: &f.name,
            index,
            total,
        });
        let t1 = Instant::now();
        let graph = g.finalize().map_err(|source| CompileError::Graph {
            graph: f.name.clone(),
            source: Box::new(source),
        })?;
        drop(graph);
        stats.push(GraphStats {
            name: f.name.clone(),
            nodes: lg.nodes,
            static_tensors: lg.static_tensors,
            static_bytes: lg.static_bytes,
            lower_secs,
            finalize_secs: t1.elapsed().as_secs_f64(),
        });
        lowered.push((lg, ar_len_of(f)));
    }
    progress(CompileEvent::Serialize);
    let t2 = Instant::now();
    let binary = ctx
        .binary()
        .map_err(|e| CompileError::Binary(Box::new(e)))?;
    let serialize_secs = t2.elapsed().as_secs_f64();
    // Free the context's graphs and weights before anything else is computed.
    drop(ctx);
    drop(device);
    drop(backend);
    // The SoC the library recorded in the binary (the default target reports its own).
    let reported_soc = SystemContext::new(&lib)
        .and_then(|s| s.binary_info(&binary))
        .ok()
        .and_then(|i| i.soc_model);
    let soc_model = opts.soc.or(reported_soc);
    let (soc_name, soc_arch) = match soc_model.and_then(soc_info) {
        Some((n, a)) => (Some(n.to_string()), Some(a)),
        None => (None, None),
    };
    let manifest = Manifest {
        format_version: MANIFEST_VERSION,
        generator: format!("mllm-backend-qnn {}", env!("CARGO_PKG_VERSION")),
        binary: "model.bin".into(),
        binary_size: binary.len() as u64,
        sha256: sha256_hex(&binary),
        target: ManifestTarget {
            soc_model,
            soc_name,
            htp_arch: opts.arch.filter(|_| opts.soc.is_none()).or(soc_arch),
        },
        qnn: ManifestQnn {
            core_api: {
                let (a, b, c) = lib.core_api_version();
                [a, b, c]
            },
            backend_api: {
                let (a, b, c) = lib.backend_api_version();
                [a, b, c]
            },
            build_id: lib.build_id().to_string(),
        },
        weight_sharing: opts.weight_sharing,
        graphs: lowered
            .iter()
            .map(|(g, ar)| ManifestGraph {
                name: g.name.clone(),
                ar_len: *ar,
                inputs: g.inputs.iter().map(manifest_tensor).collect(),
                outputs: g.outputs.iter().map(manifest_tensor).collect(),
            })
            .collect(),
        shards: Vec::new(),
    };
    Ok(Compiled {
        binary,
        manifest,
        stats,
        serialize_secs,
    })
}

/// Writes `compiled.binary` to `path` and the manifest to `<path>.json`, both
/// atomically (the binary first, so a manifest never describes a missing binary).
pub fn write_model(path: &Path, compiled: &Compiled) -> Result<Manifest, CompileError> {
    let mut manifest = compiled.manifest.clone();
    manifest.binary = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.bin".into());
    write_atomic(path, &compiled.binary)?;
    write_atomic(&manifest_path(path), manifest.to_json().as_bytes())?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_file_names() {
        let p = Path::new("/x/qwen3-1.7B-lpbq-sha.bin");
        assert_eq!(shard_path(p, 0, 1), p);
        assert_eq!(
            shard_path(p, 1, 2),
            Path::new("/x/qwen3-1.7B-lpbq-sha.1.bin")
        );
        assert_eq!(shard_path(p, 0, 2), p);
        assert_eq!(shard_path(Path::new("out"), 2, 3), Path::new("out.2"));
    }

    #[test]
    fn shards_of_a_module() {
        let mut m = Module::new();
        assert_eq!(num_shards(&m), 1);
        for n in [
            "model.0.s32",
            "model.0.s1",
            "model.1.s32",
            "model.1.s1",
            "other",
        ] {
            m.functions.push(mllm_ir::Function::new(n));
        }
        assert_eq!(num_shards(&m), 2);
        assert_eq!(shard_functions(&m, 1), ["model.1.s32", "model.1.s1"]);
        assert!(shard_functions(&m, 2).is_empty());
    }
}
