//! The QNN executor: runs the graphs of a compiled context binary through `libQnnHtp`
//! (the Hexagon NPU on a phone, the HTP emulator on x86).
//!
//! [`QnnExecutor::open`] loads `model.bin` in this order, refusing anything suspicious
//! before the backend sees it:
//!
//! 1. the sidecar manifest `model.bin.json` (and, for a model compiled into several
//!    contexts, the binaries it lists in `shards`, each with its own manifest);
//! 2. every binary is read once and checked against its manifest (size, SHA-256: QNN
//!    itself detects neither a truncated binary reliably nor a flipped byte);
//! 3. libQnnSystem reads each binary's metadata (graphs, I/O names, ids, shapes, data
//!    types, encodings, SoC, QNN versions), which must agree with the manifest;
//! 4. the QNN API versions that wrote the binary must be readable by the loaded library
//!    (same major, library minor not older) and the binary's SoC must be the device's
//!    (when the device SoC is given): a mismatch is refused with both values named;
//! 5. `contextCreateFromBinary`, then `graphRetrieve` of every graph.
//!
//! Graphs and I/O are described by name as the library reports them, never by position
//! ([`GraphDesc`] in the library's order; the scheduler binds tensors by name through
//! [`crate::GraphBindings`]).
//!
//! Execution is zero-copy and allocation-free: [`Executor::execute`] checks the exact byte
//! size of every caller buffer (the library does not, and would overrun a short output)
//! and hands the caller's slices — the KV cache buffers themselves and the scheduler's
//! reused I/O buffers — straight to `graphExecute` through tensor arrays prepared once per
//! graph (`mllm_qnn_sys::Graph::execute_ordered`).
//!
//! # Libraries
//!
//! Found by, in order: [`QnnOptions::lib_dir`] (`--qnn_env_path`), `MLLM_QNN_LIB_DIR`,
//! `$QNN_SDK_ROOT/lib/<target>` (`aarch64-android` when built for a phone), the project's
//! `.qnn/lib` (`scripts/setup-qnn.sh`). On a phone the HTP backend also needs its DSP-side
//! skeleton library (`libQnnHtpV75Skel.so` for SM8650, ...), which the DSP loader finds
//! through `ADSP_LIBRARY_PATH` (set it to the directory you pushed the libraries to).
//! Nothing here is specific to x86: the same code builds for `aarch64-linux-android`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mllm_qnn_sys::manifest::{self, Manifest, ManifestError};
use mllm_qnn_sys::{
    Backend, BinaryInfo, Context, DataType, Device, DeviceTarget, Graph, GraphInfo, QnnError,
    QnnLibrary, SystemContext, TensorInfo, KNOWN_SOCS,
};

use crate::error::{Result, RuntimeError};
use crate::executor::{parse_graph_name, DType, Executor, GraphDesc, Quant, TensorDesc};
use crate::executor::{HIDDEN_NAME, TOKENS_NAMES};

/// Environment variable naming the QNN library directory (same as `--qnn_env_path`).
pub const ENV_QNN_LIB_DIR: &str = mllm_qnn_sys::discover::ENV_LIB_DIR;

/// Options of [`QnnExecutor::open`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QnnOptions {
    /// Directory holding `libQnnHtp.so` and `libQnnSystem.so` (or a QNN SDK root);
    /// `None` searches `MLLM_QNN_LIB_DIR`, `QNN_SDK_ROOT`, then the project's `.qnn/lib`.
    pub lib_dir: Option<PathBuf>,
    /// `Qnn_SocModel_t` of the device the binary will run on, when known (e.g. 57 for
    /// SM8650). A binary prepared for another SoC is refused. `None` trusts the binary's
    /// own target (the x86 emulator runs binaries of every target).
    pub device_soc: Option<u32>,
}

/// Errors of [`QnnExecutor::open`]. Every message names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum QnnLoadError {
    /// No sidecar manifest next to the binary.
    #[error(
        "{binary}: no manifest {manifest} next to the context binary; the runtime refuses \
         unverified binaries (compile with `mllm-translate --to-qnn`, which writes both)"
    )]
    MissingManifest {
        /// The binary.
        binary: PathBuf,
        /// Where its manifest was looked for.
        manifest: PathBuf,
    },
    /// Manifest unreadable, or the binary does not match it (size, SHA-256).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Reading a binary failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The QNN libraries could not be loaded or set up.
    #[error("QNN libraries: {0}")]
    Library(#[source] Box<QnnError>),
    /// The binary was written by a QNN version the loaded library cannot read.
    #[error(
        "{path}: the binary was built with QNN {binary}, but the loaded library ({library_path}) \
         is QNN {library}; install the QNN SDK it was built with or recompile the model with \
         this one"
    )]
    Version {
        /// The binary.
        path: PathBuf,
        /// Versions that wrote the binary.
        binary: String,
        /// Versions of the loaded library.
        library: String,
        /// The library file.
        library_path: PathBuf,
    },
    /// The binary was prepared for another SoC than the device's.
    #[error(
        "{path}: the binary was compiled for {binary}, but the device is {device}; recompile \
         for the device (`--soc`)"
    )]
    Soc {
        /// The binary.
        path: PathBuf,
        /// The binary's target.
        binary: String,
        /// The device.
        device: String,
    },
    /// A weight-shared binary on the x86_64 HTP emulator, which crashes inside
    /// `contextCreateFromBinary` on such binaries.
    #[error(
        "{path}: the binary was compiled with weight sharing, which the x86_64 HTP emulator \
         cannot load (it crashes inside the QNN library); recompile with `--no-weight-sharing` \
         to run it on this host, or run this binary on the device"
    )]
    WeightSharedOnEmulator {
        /// The binary.
        path: PathBuf,
    },
    /// The manifest and the binary's own metadata disagree.
    #[error("{path}: manifest and binary disagree: {msg}")]
    Mismatch {
        /// The binary.
        path: PathBuf,
        /// What differs (naming the graph / tensor / field).
        msg: String,
    },
    /// A graph uses something the runtime cannot run (e.g. an I/O encoding).
    #[error("{path}: graph `{graph}`: {msg}")]
    Unsupported {
        /// The binary.
        path: PathBuf,
        /// The graph.
        graph: String,
        /// What is unsupported (naming the tensor).
        msg: String,
    },
    /// The library refused the binary (create from binary, graph retrieve).
    #[error("{path}: {source}")]
    Qnn {
        /// The binary.
        path: PathBuf,
        /// The library error.
        #[source]
        source: Box<QnnError>,
    },
}

impl From<QnnLoadError> for RuntimeError {
    fn from(e: QnnLoadError) -> Self {
        RuntimeError::Config(e.to_string())
    }
}

/// Where the load time of [`QnnExecutor::open`] went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// The binaries loaded (context order).
    pub binaries: Vec<PathBuf>,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Loading the libraries, creating backend and device.
    pub library: Duration,
    /// Reading the binaries from disk.
    pub read: Duration,
    /// SHA-256 and size checks.
    pub verify: Duration,
    /// libQnnSystem metadata and the manifest / version / SoC checks.
    pub metadata: Duration,
    /// `contextCreateFromBinary`.
    pub create: Duration,
    /// `graphRetrieve` of every graph.
    pub retrieve: Duration,
    /// Everything, from the first manifest read to the last graph retrieved.
    pub total: Duration,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} binar{} ({:.1} MB) in {:.0} ms: libraries {:.0} ms, read {:.0} ms, SHA-256 {:.0} ms, \
             metadata {:.0} ms, contextCreateFromBinary {:.0} ms, graphRetrieve {:.0} ms",
            self.binaries.len(),
            if self.binaries.len() == 1 { "y" } else { "ies" },
            self.bytes as f64 / 1e6,
            ms(self.total),
            ms(self.library),
            ms(self.read),
            ms(self.verify),
            ms(self.metadata),
            ms(self.create),
            ms(self.retrieve)
        )
    }
}

/// Runs the graphs of one or more QNN context binaries (see the module docs).
pub struct QnnExecutor {
    descs: Vec<GraphDesc>,
    graphs: Vec<Graph>,
    contexts: Vec<Context>,
    manifests: Vec<Manifest>,
    infos: Vec<BinaryInfo>,
    lib: Arc<QnnLibrary>,
    target: DeviceTarget,
    report: LoadReport,
    calls: u64,
    execute_time: Duration,
    fastest: Option<Duration>,
}

/// Time accounting of [`QnnExecutor::execute`] calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecOverhead {
    /// Calls of [`Executor::execute`].
    pub calls: u64,
    /// Wall time inside [`Executor::execute`].
    pub execute_time: Duration,
    /// Wall time inside the library's `graphExecute` (part of `execute_time`).
    pub library_time: Duration,
    /// The smallest per-call overhead (`execute` minus `graphExecute`) seen since the
    /// executor was opened (means suffer from preemption on a loaded machine).
    pub fastest: Option<Duration>,
}

impl ExecOverhead {
    /// The executor's own time per call: `execute` minus `graphExecute`.
    pub fn per_call(&self) -> Duration {
        if self.calls == 0 {
            return Duration::ZERO;
        }
        self.execute_time.saturating_sub(self.library_time) / self.calls as u32
    }

    /// The accounting between two snapshots (`self` later than `earlier`).
    pub fn since(&self, earlier: &ExecOverhead) -> ExecOverhead {
        ExecOverhead {
            calls: self.calls - earlier.calls.min(self.calls),
            execute_time: self.execute_time.saturating_sub(earlier.execute_time),
            library_time: self.library_time.saturating_sub(earlier.library_time),
            fastest: self.fastest,
        }
    }
}

impl std::fmt::Debug for QnnExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QnnExecutor")
            .field("binaries", &self.report.binaries)
            .field(
                "graphs",
                &self.descs.iter().map(|g| &g.name).collect::<Vec<_>>(),
            )
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `a.b.c`.
fn ver(v: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// Describes a SoC model as `SM8650 (SoC model 57, HTP v75)`.
pub fn describe_soc(soc: u32) -> String {
    match KNOWN_SOCS.iter().find(|s| s.1 == soc) {
        Some((name, _, arch)) => format!("{name} (SoC model {soc}, HTP v{arch})"),
        None => format!("SoC model {soc}"),
    }
}

/// Checks that a library with API versions `lib_core` / `lib_backend` can read a binary
/// written with `bin_core` / `bin_backend`: same major versions, library minor versions
/// not older. Returns a description of both sides on mismatch (`(binary, library)`).
pub fn check_versions(
    bin_core: (u32, u32, u32),
    bin_backend: (u32, u32, u32),
    lib_core: (u32, u32, u32),
    lib_backend: (u32, u32, u32),
) -> std::result::Result<(), (String, String)> {
    let readable = |b: (u32, u32, u32), l: (u32, u32, u32)| b.0 == l.0 && l.1 >= b.1;
    if readable(bin_core, lib_core) && readable(bin_backend, lib_backend) {
        return Ok(());
    }
    Err((
        format!(
            "core API {} / HTP backend API {}",
            ver(bin_core),
            ver(bin_backend)
        ),
        format!(
            "core API {} / HTP backend API {}",
            ver(lib_core),
            ver(lib_backend)
        ),
    ))
}

/// Checks the binary's SoC against the device's: both must be equal when both are known.
/// Returns `(binary, device)` descriptions on mismatch.
pub fn check_soc(
    binary_soc: Option<u32>,
    device_soc: Option<u32>,
) -> std::result::Result<(), (String, String)> {
    match (binary_soc, device_soc) {
        (Some(b), Some(d)) if b != d => Err((describe_soc(b), describe_soc(d))),
        _ => Ok(()),
    }
}

/// Maps a QNN I/O tensor to the runtime's description.
fn tensor_desc(t: &TensorInfo) -> std::result::Result<TensorDesc, String> {
    let dtype = match t.dtype {
        DataType::UFixed8 | DataType::UInt8 => DType::U8,
        DataType::SFixed8 | DataType::Int8 => DType::I8,
        DataType::UFixed16 | DataType::UInt16 => DType::U16,
        DataType::SFixed16 | DataType::Int16 => DType::I16,
        DataType::UFixed32 | DataType::UInt32 => DType::U32,
        DataType::SFixed32 | DataType::Int32 => DType::I32,
        DataType::Int64 => DType::I64,
        DataType::Float32 => DType::F32,
        DataType::Float16 => DType::F16,
        DataType::BFloat16 => DType::BF16,
        DataType::Bool8 => DType::Bool,
        other => {
            return Err(format!(
                "tensor `{}` has data type {other:?}, which the runtime cannot bind",
                t.name
            ))
        }
    };
    let quant = match &t.quant {
        mllm_qnn_sys::Quant::None => Quant::None,
        mllm_qnn_sys::Quant::ScaleOffset { scale, offset } => Quant::PerTensor {
            scale: *scale,
            offset: *offset,
        },
        q => {
            return Err(format!(
                "tensor `{}` has encoding {q:?}; graph inputs and outputs must be per-tensor \
                 quantized or plain",
                t.name
            ))
        }
    };
    Ok(TensorDesc {
        name: t.name.clone(),
        dtype,
        shape: t.dims.iter().map(|&d| d as usize).collect(),
        quant,
    })
}

/// Converts one graph of a binary; `ar_len` from the manifest, the `model.{i}.s{N}` name,
/// or the token / hidden-state input's second dimension.
fn graph_desc(
    g: &GraphInfo,
    manifest_ar_len: Option<usize>,
) -> std::result::Result<GraphDesc, String> {
    let inputs = g
        .inputs
        .iter()
        .map(tensor_desc)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let outputs = g
        .outputs
        .iter()
        .map(tensor_desc)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let from_input = || {
        inputs
            .iter()
            .find(|t| TOKENS_NAMES.contains(&t.name.as_str()) || t.name == HIDDEN_NAME)
            .and_then(|t| t.shape.get(1).copied())
    };
    let ar_len = manifest_ar_len
        .or_else(|| parse_graph_name(&g.name).map(|(_, s)| s))
        .or_else(from_input)
        .ok_or_else(|| {
            "cannot tell its ar_len (no `model.{i}.s{N}` name, no ar_len in the manifest, no \
             `sequence` input)"
                .to_string()
        })?;
    Ok(GraphDesc {
        name: g.name.clone(),
        ar_len,
        inputs,
        outputs,
    })
}

/// Compares the manifest's description of a binary with the library's.
fn cross_check(m: &Manifest, info: &BinaryInfo) -> std::result::Result<(), String> {
    let names = |v: &mut dyn Iterator<Item = &str>| v.map(str::to_string).collect::<Vec<_>>();
    let mg = names(&mut m.graphs.iter().map(|g| g.name.as_str()));
    let bg = names(&mut info.graphs.iter().map(|g| g.name.as_str()));
    let (mut ms, mut bs) = (mg.clone(), bg.clone());
    ms.sort();
    bs.sort();
    if ms != bs {
        return Err(format!(
            "manifest lists graphs {mg:?}, the binary holds {bg:?}"
        ));
    }
    for g in &info.graphs {
        let Some(mgr) = m.graph(&g.name) else {
            continue;
        };
        for (what, mt, bt) in [
            ("inputs", &mgr.inputs, &g.inputs),
            ("outputs", &mgr.outputs, &g.outputs),
        ] {
            if mt.len() != bt.len() {
                return Err(format!(
                    "graph `{}`: manifest has {} {what}, binary {}",
                    g.name,
                    mt.len(),
                    bt.len()
                ));
            }
            for b in bt {
                let Some(t) = mt.iter().find(|t| t.name == b.name) else {
                    return Err(format!(
                        "graph `{}`: {what} tensor `{}` of the binary is not in the manifest",
                        g.name, b.name
                    ));
                };
                if t.shape != b.dims || t.dtype != manifest::dtype_name(b.dtype) {
                    return Err(format!(
                        "graph `{}` tensor `{}`: manifest says {} {:?}, binary has {} {:?}",
                        g.name,
                        b.name,
                        t.dtype,
                        t.shape,
                        manifest::dtype_name(b.dtype),
                        b.dims
                    ));
                }
            }
        }
    }
    let mv = |a: [u32; 3]| (a[0], a[1], a[2]);
    if mv(m.qnn.backend_api) != info.backend_api_version
        || mv(m.qnn.core_api) != info.core_api_version
    {
        return Err(format!(
            "manifest says QNN core {} / backend {}, binary says core {} / backend {}",
            ver(mv(m.qnn.core_api)),
            ver(mv(m.qnn.backend_api)),
            ver(info.core_api_version),
            ver(info.backend_api_version)
        ));
    }
    if let (Some(a), Some(b)) = (m.target.soc_model, info.soc_model) {
        if a != b {
            return Err(format!(
                "manifest says {}, binary says {}",
                describe_soc(a),
                describe_soc(b)
            ));
        }
    }
    Ok(())
}

fn read_manifest(bin: &Path) -> std::result::Result<Manifest, QnnLoadError> {
    let mp = manifest::manifest_path(bin);
    if !mp.is_file() {
        return Err(QnnLoadError::MissingManifest {
            binary: bin.to_path_buf(),
            manifest: mp,
        });
    }
    Ok(Manifest::read(&mp)?)
}

impl QnnExecutor {
    /// Loads the context binary `bin` (and the shard binaries its manifest lists) with
    /// every check described in the module docs.
    pub fn open(bin: &Path, opts: &QnnOptions) -> std::result::Result<QnnExecutor, QnnLoadError> {
        let t_start = Instant::now();
        let mut report = LoadReport::default();
        // 1. Manifests: the given binary's, then its shards'.
        let first = read_manifest(bin)?;
        let dir = bin.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut files = vec![(bin.to_path_buf(), first.clone())];
        for s in &first.shards {
            let p = dir.join(&s.binary);
            let m = read_manifest(&p)?;
            if m.sha256 != s.sha256 || m.binary_size != s.binary_size {
                return Err(QnnLoadError::Mismatch {
                    path: bin.to_path_buf(),
                    msg: format!(
                        "shard {} is listed with {} bytes / SHA-256 {}, its own manifest says \
                         {} bytes / {} (binaries from different compiles?)",
                        p.display(),
                        s.binary_size,
                        s.sha256,
                        m.binary_size,
                        m.sha256
                    ),
                });
            }
            files.push((p, m));
        }

        // 2. Libraries.
        let t = Instant::now();
        let lib = QnnLibrary::load(opts.lib_dir.as_deref())
            .map_err(|e| QnnLoadError::Library(Box::new(e)))?;
        let system = SystemContext::new(&lib).map_err(|e| QnnLoadError::Library(Box::new(e)))?;
        report.library += t.elapsed();

        // 3. Read, verify and describe every binary before loading any.
        let mut loaded: Vec<(PathBuf, Manifest, Vec<u8>, BinaryInfo)> = Vec::new();
        for (path, m) in files {
            let t = Instant::now();
            let bytes = std::fs::read(&path).map_err(|source| QnnLoadError::Io {
                path: path.clone(),
                source,
            })?;
            report.read += t.elapsed();
            report.bytes += bytes.len() as u64;
            let t = Instant::now();
            manifest::verify_bytes(&path, &bytes, &m)?;
            report.verify += t.elapsed();
            let t = Instant::now();
            let info = system.binary_info(&bytes).map_err(|e| QnnLoadError::Qnn {
                path: path.clone(),
                source: Box::new(e),
            })?;
            cross_check(&m, &info).map_err(|msg| QnnLoadError::Mismatch {
                path: path.clone(),
                msg,
            })?;
            check_versions(
                info.core_api_version,
                info.backend_api_version,
                lib.core_api_version(),
                lib.backend_api_version(),
            )
            .map_err(|(binary, library)| QnnLoadError::Version {
                path: path.clone(),
                binary: format!("{binary} (build {})", m.qnn.build_id),
                library: format!("{library} (build {})", lib.build_id()),
                library_path: lib.htp_path().to_path_buf(),
            })?;
            let soc = info.soc_model.or(m.target.soc_model);
            check_soc(soc, opts.device_soc).map_err(|(binary, device)| QnnLoadError::Soc {
                path: path.clone(),
                binary,
                device,
            })?;
            report.metadata += t.elapsed();
            loaded.push((path, m, bytes, info));
        }
        drop(system);

        // One device for every context: all shards must share the target.
        let target_of = |m: &Manifest, info: &BinaryInfo| DeviceTarget {
            soc_model: opts.device_soc.or(info.soc_model).or(m.target.soc_model),
            arch: None,
            signed_pd: None,
        };
        let target = target_of(&loaded[0].1, &loaded[0].3);
        for (path, m, _, info) in &loaded[1..] {
            let t2 = target_of(m, info);
            if t2.soc_model != target.soc_model {
                return Err(QnnLoadError::Mismatch {
                    path: path.clone(),
                    msg: format!(
                        "shard targets {} but {} targets {}",
                        t2.soc_model
                            .map(describe_soc)
                            .unwrap_or_else(|| "the default SoC".into()),
                        bin.display(),
                        target
                            .soc_model
                            .map(describe_soc)
                            .unwrap_or_else(|| "the default SoC".into())
                    ),
                });
            }
        }
        let t = Instant::now();
        let backend =
            Backend::new(&lib).map_err(|e| QnnLoadError::Library(Box::new(with_adsp_hint(e))))?;
        let device = Device::new(&backend, target)
            .map_err(|e| QnnLoadError::Library(Box::new(with_adsp_hint(e))))?;
        report.library += t.elapsed();

        // The x86_64 library prepares weight-shared binaries but its emulator crashes
        // loading them: refuse before handing it the bytes.
        if cfg!(target_arch = "x86_64") {
            if let Some((path, _, _, _)) = loaded.iter().find(|(_, m, _, _)| m.weight_sharing) {
                return Err(QnnLoadError::WeightSharedOnEmulator { path: path.clone() });
            }
        }

        // 4. Create the contexts, retrieve the graphs.
        let mut descs = Vec::new();
        let mut graphs = Vec::new();
        let mut contexts = Vec::new();
        let mut manifests = Vec::new();
        let mut infos = Vec::new();
        for (path, m, bytes, info) in loaded {
            let qnn_err = |e: QnnError| QnnLoadError::Qnn {
                path: path.clone(),
                source: Box::new(e),
            };
            let t = Instant::now();
            let ctx = Context::from_binary_with_info(&backend, &device, &bytes, info.clone())
                .map_err(qnn_err)?;
            drop(bytes);
            report.create += t.elapsed();
            let t = Instant::now();
            for g in &info.graphs {
                if descs.iter().any(|d: &GraphDesc| d.name == g.name) {
                    return Err(QnnLoadError::Mismatch {
                        path: path.clone(),
                        msg: format!("graph `{}` is in two of the model's binaries", g.name),
                    });
                }
                let ar = m.graph(&g.name).and_then(|mg| mg.ar_len);
                let desc = graph_desc(g, ar).map_err(|msg| QnnLoadError::Unsupported {
                    path: path.clone(),
                    graph: g.name.clone(),
                    msg,
                })?;
                let graph = ctx.retrieve_graph(&g.name).map_err(qnn_err)?;
                // The executor passes buffers in the desc's order to `execute_ordered`,
                // which uses the graph's order: both come from the same metadata, check.
                let same = graph
                    .input_infos()
                    .map(|t| &t.name)
                    .eq(desc.inputs.iter().map(|t| &t.name))
                    && graph
                        .output_infos()
                        .map(|t| &t.name)
                        .eq(desc.outputs.iter().map(|t| &t.name));
                if !same {
                    return Err(QnnLoadError::Mismatch {
                        path: path.clone(),
                        msg: format!(
                            "graph `{}`: retrieved I/O order differs from the metadata",
                            g.name
                        ),
                    });
                }
                descs.push(desc);
                graphs.push(graph);
            }
            report.retrieve += t.elapsed();
            report.binaries.push(path.clone());
            contexts.push(ctx);
            manifests.push(m);
            infos.push(info);
        }
        report.total = t_start.elapsed();
        Ok(QnnExecutor {
            descs,
            graphs,
            contexts,
            manifests,
            infos,
            lib,
            target,
            report,
            calls: 0,
            execute_time: Duration::ZERO,
            fastest: None,
        })
    }

    /// Where the load time went.
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// The manifests of the loaded binaries (context order; the first is the one given).
    pub fn manifests(&self) -> &[Manifest] {
        &self.manifests
    }

    /// The libQnnSystem metadata of the loaded binaries (context order).
    pub fn binary_infos(&self) -> &[BinaryInfo] {
        &self.infos
    }

    /// The loaded contexts (context order).
    pub fn contexts(&self) -> &[Context] {
        &self.contexts
    }

    /// The QNN library in use.
    pub fn library(&self) -> &Arc<QnnLibrary> {
        &self.lib
    }

    /// The device target the contexts were created for.
    pub fn target(&self) -> DeviceTarget {
        self.target
    }

    /// Calls, time in [`Executor::execute`] and time inside `graphExecute`, over all
    /// graphs since the executor was opened (take two snapshots and
    /// [`ExecOverhead::since`] to time a span).
    pub fn overhead(&self) -> ExecOverhead {
        let library_time = self.graphs.iter().map(|g| g.execute_stats().1).sum();
        ExecOverhead {
            calls: self.calls,
            execute_time: self.execute_time,
            library_time,
            fastest: self.fastest,
        }
    }
}

/// Adds the `ADSP_LIBRARY_PATH` hint to a backend/device error on Android.
fn with_adsp_hint(e: QnnError) -> QnnError {
    if cfg!(target_os = "android") && std::env::var_os("ADSP_LIBRARY_PATH").is_none() {
        QnnError::InvalidArgument {
            subject: "HTP backend".into(),
            reason: format!(
                "{e} (ADSP_LIBRARY_PATH is not set: point it at the directory holding \
                 libQnnHtpV*Skel.so)"
            ),
        }
    } else {
        e
    }
}

impl Executor for QnnExecutor {
    fn name(&self) -> &str {
        "qnn-htp"
    }

    fn graphs(&self) -> &[GraphDesc] {
        &self.descs
    }

    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        let Some(desc) = self.descs.get(graph) else {
            return Err(RuntimeError::Execute {
                executor: "qnn-htp".into(),
                graph: format!("#{graph}"),
                msg: format!("no such graph (the binary has {})", self.descs.len()),
            });
        };
        let t0 = Instant::now();
        // Buffer counts and exact sizes are checked once, by `execute_ordered` (the safe
        // wrapper must check them anyway: the library would overrun).
        let lib_before = self.graphs[graph].execute_stats().1;
        let r = self.graphs[graph]
            .execute_ordered(inputs, outputs)
            .map_err(|e| RuntimeError::Execute {
                executor: "qnn-htp".into(),
                graph: desc.name.clone(),
                msg: e.to_string(),
            });
        let total = t0.elapsed();
        let lib = self.graphs[graph]
            .execute_stats()
            .1
            .saturating_sub(lib_before);
        let own = total.saturating_sub(lib);
        self.calls += 1;
        self.execute_time += total;
        self.fastest = Some(self.fastest.map_or(own, |f| f.min(own)));
        r
    }
}

/// Writes `path` (and its manifest) holding one decode graph `model.0.s1` that follows the
/// I/O contract for `dims` with trivial compute: `present_key_{l}` / `present_value_{l}`
/// are the first cache row of `past_key_{l}` / `past_value_{l}` (both in row layout,
/// `[1, Hkv, C-1, D]`), and the logits
/// are the causal mask tiled to the vocabulary. Its `graphExecute` is cheap, so it measures
/// the host side of a decode step at a real model's I/O shape (and tests the executor
/// without compiling a model). KV tensors are u8 (offset -128), mask and logits u16.
pub fn write_contract_binary(
    path: &Path,
    dims: &crate::ModelDims,
    lib_dir: Option<&Path>,
    soc: u32,
) -> std::result::Result<Manifest, QnnLoadError> {
    use mllm_qnn_sys::manifest::{
        dtype_name, ManifestEncoding, ManifestGraph, ManifestQnn, ManifestTarget, ManifestTensor,
        MANIFEST_VERSION,
    };
    use mllm_qnn_sys::{
        ContextOptions, GraphBuilder, GraphOptions, OpSpec, Quant as QQuant, TensorKind, TensorSpec,
    };
    let lib_err = |e: QnnError| QnnLoadError::Library(Box::new(e));
    let dim = |v: usize, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| QnnLoadError::Unsupported {
                path: path.to_path_buf(),
                graph: "model.0.s1".into(),
                msg: format!("{what} {v} out of range"),
            })
    };
    let (l, h, d, c, v) = (
        dim(dims.layers, "layers")?,
        dim(dims.kv_heads, "kv_heads")?,
        dim(dims.head_dim, "head_dim")?,
        dim(dims.context, "context")?,
        dim(dims.vocab, "vocab")?,
    );
    if c < 2 {
        return Err(QnnLoadError::Unsupported {
            path: path.to_path_buf(),
            graph: "model.0.s1".into(),
            msg: "context must be at least 2".into(),
        });
    }
    let lib = QnnLibrary::load(lib_dir).map_err(lib_err)?;
    let backend = Backend::new(&lib).map_err(lib_err)?;
    let device = Device::new(&backend, DeviceTarget::soc(soc)).map_err(lib_err)?;
    let ctx = Context::new(&backend, &device, ContextOptions::default()).map_err(lib_err)?;
    let qnn_err = |e: QnnError| QnnLoadError::Qnn {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    let mut g =
        GraphBuilder::create(&ctx, "model.0.s1", GraphOptions::default()).map_err(qnn_err)?;
    let kv_q = |i: u32| QQuant::ScaleOffset {
        scale: 0.01 + i as f32 * 1e-4,
        offset: -128,
    };
    let mask_q = QQuant::ScaleOffset {
        scale: 1.0 / 65535.0,
        offset: 0,
    };
    let mut man_in = Vec::new();
    let mut man_out = Vec::new();
    let describe = |s: &TensorSpec<'_>| ManifestTensor {
        name: s.name.clone(),
        shape: s.dims.clone(),
        dtype: dtype_name(s.dtype).into(),
        ir_type: None,
        encoding: ManifestEncoding::from(&s.quant),
    };
    let add = |g: &mut GraphBuilder,
               list: &mut Vec<ManifestTensor>,
               s: TensorSpec<'static>|
     -> std::result::Result<mllm_qnn_sys::TensorId, QnnLoadError> {
        list.push(describe(&s));
        g.add_tensor(s).map_err(qnn_err)
    };
    let ranges = |r: &[(u32, u32)]| -> Vec<u8> {
        r.iter()
            .flat_map(|&(a, b)| [a as i32, b as i32, 1])
            .flat_map(|x| x.to_le_bytes())
            .collect()
    };
    let aw = TensorKind::AppWrite;
    add(
        &mut g,
        &mut man_in,
        TensorSpec::new("sequence", aw, DataType::Int32, &[1, 1], QQuant::None),
    )?;
    add(
        &mut g,
        &mut man_in,
        TensorSpec::new("position_ids", aw, DataType::Int32, &[1], QQuant::None),
    )?;
    let mask = add(
        &mut g,
        &mut man_in,
        TensorSpec::new(
            "causal_mask",
            aw,
            DataType::UFixed16,
            &[1, 1, 1, c],
            mask_q.clone(),
        ),
    )?;
    let mut past = Vec::new();
    // Keys and values both in row layout, [1, Hkv, C-1, D].
    for (kind, shape) in [("key", [1, h, c - 1, d]), ("value", [1, h, c - 1, d])] {
        for i in 0..l {
            let q = kv_q(if kind == "key" { i } else { i + 100 });
            let s = TensorSpec::new(
                format!("past_{kind}_{i}"),
                aw,
                DataType::UFixed8,
                &shape,
                q.clone(),
            );
            past.push((kind, i, q, add(&mut g, &mut man_in, s)?));
        }
    }
    let reps = v.div_ceil(c);
    let tiled = g
        .add_tensor(TensorSpec::new(
            "tiled_mask",
            TensorKind::Native,
            DataType::UFixed16,
            &[1, 1, 1, c * reps],
            mask_q.clone(),
        ))
        .map_err(qnn_err)?;
    let mult: Vec<u8> = [1u32, 1, 1, reps]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    g.add_node(
        OpSpec::new("tile_mask", "Tile")
            .inputs(&[mask])
            .outputs(&[tiled])
            .tensor_param(
                "multiples",
                TensorSpec::constant("", DataType::UInt32, &[4], QQuant::None, &mult),
            ),
    )
    .map_err(qnn_err)?;
    let cut = g
        .add_tensor(TensorSpec::new(
            "cut_mask",
            TensorKind::Native,
            DataType::UFixed16,
            &[1, 1, 1, v],
            mask_q.clone(),
        ))
        .map_err(qnn_err)?;
    let r = ranges(&[(0, 1), (0, 1), (0, 1), (0, v)]);
    g.add_node(
        OpSpec::new("cut_mask", "StridedSlice")
            .inputs(&[tiled])
            .outputs(&[cut])
            .tensor_param(
                "ranges",
                TensorSpec::constant("", DataType::Int32, &[4, 3], QQuant::None, &r),
            ),
    )
    .map_err(qnn_err)?;
    let ls = TensorSpec::new(
        "logits",
        TensorKind::AppRead,
        DataType::UFixed16,
        &[1, 1, v],
        mask_q,
    );
    man_out.push(describe(&ls));
    let logits = g.add_tensor(ls).map_err(qnn_err)?;
    g.add_node(
        OpSpec::new("logits", "Reshape")
            .inputs(&[cut])
            .outputs(&[logits]),
    )
    .map_err(qnn_err)?;
    for (kind, i, q, id) in past {
        let (shape, r) = ([1, h, 1, d], ranges(&[(0, 1), (0, h), (0, 1), (0, d)]));
        let s = TensorSpec::new(
            format!("present_{kind}_{i}"),
            TensorKind::AppRead,
            DataType::UFixed8,
            &shape,
            q,
        );
        man_out.push(describe(&s));
        let out = g.add_tensor(s).map_err(qnn_err)?;
        g.add_node(
            OpSpec::new(format!("slice_{kind}_{i}"), "StridedSlice")
                .inputs(&[id])
                .outputs(&[out])
                .tensor_param(
                    "ranges",
                    TensorSpec::constant("", DataType::Int32, &[4, 3], QQuant::None, &r),
                ),
        )
        .map_err(qnn_err)?;
    }
    drop(g.finalize().map_err(qnn_err)?);
    let bytes = ctx.binary().map_err(qnn_err)?;
    let info = SystemContext::new(&lib)
        .and_then(|s| s.binary_info(&bytes))
        .map_err(qnn_err)?;
    let (cv, bv) = (lib.core_api_version(), lib.backend_api_version());
    let known = KNOWN_SOCS.iter().find(|s| s.1 == soc);
    let m = Manifest {
        format_version: MANIFEST_VERSION,
        generator: format!("mllm-runtime {} contract graph", env!("CARGO_PKG_VERSION")),
        binary: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model.bin".into()),
        binary_size: bytes.len() as u64,
        sha256: manifest::sha256_hex(&bytes),
        target: ManifestTarget {
            soc_model: info.soc_model.or(Some(soc)),
            soc_name: known.map(|s| s.0.to_string()),
            htp_arch: known.map(|s| s.2),
        },
        qnn: ManifestQnn {
            core_api: [cv.0, cv.1, cv.2],
            backend_api: [bv.0, bv.1, bv.2],
            build_id: lib.build_id().to_string(),
        },
        weight_sharing: false,
        graphs: vec![ManifestGraph {
            name: "model.0.s1".into(),
            ar_len: Some(1),
            inputs: man_in,
            outputs: man_out,
        }],
        shards: Vec::new(),
    };
    manifest::write_atomic(path, &bytes)?;
    manifest::write_atomic(&manifest::manifest_path(path), m.to_json().as_bytes())?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        let core = (2, 40, 0);
        let be = (5, 51, 0);
        assert!(check_versions(core, be, core, be).is_ok());
        // A newer library reads older binaries of the same major version.
        assert!(check_versions(core, be, (2, 41, 0), (5, 52, 1)).is_ok());
        // An older library, or another major version, is refused with both values named.
        let (b, l) = check_versions(core, be, (2, 40, 0), (5, 50, 0)).unwrap_err();
        assert!(b.contains("5.51.0") && l.contains("5.50.0"), "{b} / {l}");
        assert!(check_versions(core, be, (3, 0, 0), be).is_err());
        assert!(check_versions(core, be, core, (6, 51, 0)).is_err());
    }

    #[test]
    fn soc_rule() {
        assert!(check_soc(Some(57), None).is_ok());
        assert!(check_soc(None, Some(57)).is_ok());
        assert!(check_soc(Some(57), Some(57)).is_ok());
        let (b, d) = check_soc(Some(57), Some(69)).unwrap_err();
        assert!(b.contains("SM8650") && b.contains("v75"), "{b}");
        assert!(d.contains("SM8750") && d.contains("v79"), "{d}");
    }

    fn info(name: &str, dtype: DataType, dims: &[u32], quant: mllm_qnn_sys::Quant) -> TensorInfo {
        TensorInfo {
            id: 1,
            name: name.into(),
            kind: None,
            dtype,
            dims: dims.to_vec(),
            quant,
        }
    }

    #[test]
    fn tensor_and_graph_conversion() {
        let q = mllm_qnn_sys::Quant::ScaleOffset {
            scale: 0.5,
            offset: -32768,
        };
        let t = tensor_desc(&info("logits", DataType::UFixed16, &[1, 4, 10], q)).unwrap();
        assert_eq!(t.dtype, DType::U16);
        assert_eq!(t.shape, vec![1, 4, 10]);
        assert_eq!(
            t.quant,
            Quant::PerTensor {
                scale: 0.5,
                offset: -32768
            }
        );
        let e = tensor_desc(&info(
            "w",
            DataType::SFixed4,
            &[4],
            mllm_qnn_sys::Quant::None,
        ))
        .unwrap_err();
        assert!(e.contains("`w`"), "{e}");
        let axis = mllm_qnn_sys::Quant::AxisScaleOffset {
            axis: 0,
            scales: vec![1.0],
            offsets: vec![0],
        };
        let e = tensor_desc(&info("x", DataType::UFixed8, &[1], axis)).unwrap_err();
        assert!(e.contains("per-tensor"), "{e}");
        // ar_len: manifest, then name, then the `sequence` input.
        let g = GraphInfo {
            name: "decoder".into(),
            inputs: vec![info(
                "sequence",
                DataType::Int32,
                &[1, 7],
                mllm_qnn_sys::Quant::None,
            )],
            outputs: vec![],
        };
        assert_eq!(graph_desc(&g, None).unwrap().ar_len, 7);
        assert_eq!(graph_desc(&g, Some(3)).unwrap().ar_len, 3);
        let mut g2 = g.clone();
        g2.name = "model.0.s5".into();
        assert_eq!(graph_desc(&g2, None).unwrap().ar_len, 5);
        let mut g3 = g;
        g3.inputs.clear();
        assert!(graph_desc(&g3, None).is_err());
    }
}
