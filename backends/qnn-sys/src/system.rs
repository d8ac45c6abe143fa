//! Reading context-binary metadata with libQnnSystem (without loading the binary).

use std::sync::{Arc, Mutex};

use crate::error::{QnnError, Result};
use crate::library::{self, c_str_to_string, QnnLibrary};
use crate::sys;
use crate::types::{tensor_info_from_raw, TensorInfo};

/// Inputs and outputs of one graph in a context binary.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphInfo {
    /// Graph name.
    pub name: String,
    /// Inputs, in execution order.
    pub inputs: Vec<TensorInfo>,
    /// Outputs, in execution order.
    pub outputs: Vec<TensorInfo>,
}

/// Metadata of a context binary.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryInfo {
    /// Version of the `BinaryInfo` struct the library returned (1, 2 or 3).
    pub info_version: u32,
    /// Backend id (6 = HTP).
    pub backend_id: u32,
    /// Build id of the library that wrote the binary.
    pub build_id: String,
    /// Core API version `(major, minor, patch)` that wrote it.
    pub core_api_version: (u32, u32, u32),
    /// Backend API version that wrote it.
    pub backend_api_version: (u32, u32, u32),
    /// SoC version string (may be empty).
    pub soc_version: String,
    /// SoC model (version 3 info only).
    pub soc_model: Option<u32>,
    /// Context blob format version.
    pub context_blob_version: (u32, u32, u32),
    /// Size of the context blob.
    pub context_blob_size: u64,
    /// Graphs, in binary order.
    pub graphs: Vec<GraphInfo>,
}

/// A libQnnSystem context.
pub struct SystemContext {
    lib: Arc<QnnLibrary>,
    handle: sys::QnnSystemContext_Handle_t,
    lock: Mutex<()>,
}

// SAFETY: opaque handle owned by this struct; calls are serialized by `lock`.
unsafe impl Send for SystemContext {}
// SAFETY: see `Send`.
unsafe impl Sync for SystemContext {}

impl std::fmt::Debug for SystemContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemContext").finish_non_exhaustive()
    }
}

impl Drop for SystemContext {
    fn drop(&mut self) {
        if let Some(free) = self.lib.system.systemContextFree {
            // SAFETY: created by systemContextCreate; results it returned were
            // copied out before.
            unsafe { free(self.handle) };
        }
    }
}

const MAX_GRAPHS: u32 = 1 << 16;
const MAX_IO: u32 = 1 << 20;

fn v3(v: sys::Qnn_Version_t) -> (u32, u32, u32) {
    (v.major, v.minor, v.patch)
}

impl SystemContext {
    /// Creates a system context.
    pub fn new(lib: &Arc<QnnLibrary>) -> Result<SystemContext> {
        let create = lib
            .system
            .systemContextCreate
            .ok_or(QnnError::MissingFunction {
                function: "systemContextCreate",
            })?;
        let mut handle: sys::QnnSystemContext_Handle_t = std::ptr::null_mut();
        let mark = library::log_mark();
        // SAFETY: valid out-pointer.
        let rc = unsafe { create(&mut handle) };
        lib.check(rc, "systemContextCreate", String::new, mark)?;
        Ok(SystemContext {
            lib: lib.clone(),
            handle,
            lock: Mutex::new(()),
        })
    }

    /// Reads the graphs and I/O tensors of a context binary.
    ///
    /// Uses `systemContextGetMetaData` (const buffer, no copy); libraries
    /// without it fall back to `systemContextGetBinaryInfo` on a private copy
    /// (that entry point takes a non-const buffer).
    pub fn binary_info(&self, bytes: &[u8]) -> Result<BinaryInfo> {
        if bytes.is_empty() {
            return Err(QnnError::invalid("context binary", "empty buffer"));
        }
        let subject = || format!("context binary of {} bytes", bytes.len());
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        let mut info: *const sys::QnnSystemContext_BinaryInfo_t = std::ptr::null();
        let function;
        if let Some(get_meta) = self.lib.system.systemContextGetMetaData {
            function = "systemContextGetMetaData";
            // SAFETY: `bytes` is valid for `len` reads and only read; valid
            // out-pointer.
            let rc = unsafe {
                get_meta(
                    self.handle,
                    bytes.as_ptr().cast(),
                    bytes.len() as u64,
                    &mut info,
                )
            };
            self.lib.check(rc, function, subject, mark)?;
        } else {
            function = "systemContextGetBinaryInfo";
            let get = self
                .lib
                .system
                .systemContextGetBinaryInfo
                .ok_or(QnnError::MissingFunction { function })?;
            // Never let the library write into the caller's (possibly
            // read-only, memory-mapped) bytes.
            let mut copy = bytes.to_vec();
            let mut info_size: u64 = 0;
            // SAFETY: `copy` is valid for `len` bytes; out-pointers are valid.
            let rc = unsafe {
                get(
                    self.handle,
                    copy.as_mut_ptr().cast(),
                    copy.len() as u64,
                    &mut info,
                    &mut info_size,
                )
            };
            self.lib.check(rc, function, subject, mark)?;
        }
        if info.is_null() {
            return Err(QnnError::Malformed {
                function,
                reason: "NULL binary info".into(),
            });
        }
        // SAFETY: non-null result owned by the system context, valid until
        // the next call on it or its free (we hold the lock).
        unsafe { read_binary_info(&*info, function) }
    }
}

/// Copies a library-owned `BinaryInfo` into owned Rust data.
///
/// # Safety
/// `info` and everything it points to must be valid for reads.
unsafe fn read_binary_info(
    info: &sys::QnnSystemContext_BinaryInfo_t,
    function: &'static str,
) -> Result<BinaryInfo> {
    let malformed = |reason: String| QnnError::Malformed { function, reason };
    let (mut out, num_graphs, graphs) = match info.version {
        sys::system_info_version::V1 | sys::system_info_version::V2 => {
            // SAFETY: the version selects the member; V2 starts with V1.
            let b = unsafe { info.u.contextBinaryInfoV1 };
            (
                BinaryInfo {
                    info_version: info.version,
                    backend_id: b.backendId,
                    // SAFETY: NULL or C string owned by the library.
                    build_id: unsafe { c_str_to_string(b.buildId) },
                    core_api_version: v3(b.coreApiVersion),
                    backend_api_version: v3(b.backendApiVersion),
                    // SAFETY: as above.
                    soc_version: unsafe { c_str_to_string(b.socVersion) },
                    soc_model: None,
                    context_blob_version: v3(b.contextBlobVersion),
                    context_blob_size: b.contextBlobSize,
                    graphs: Vec::new(),
                },
                b.numGraphs,
                b.graphs,
            )
        }
        sys::system_info_version::V3 => {
            // SAFETY: the version selects the member.
            let b = unsafe { info.u.contextBinaryInfoV3 };
            (
                BinaryInfo {
                    info_version: info.version,
                    backend_id: b.backendId,
                    // SAFETY: NULL or C string owned by the library.
                    build_id: unsafe { c_str_to_string(b.buildId) },
                    core_api_version: v3(b.coreApiVersion),
                    backend_api_version: v3(b.backendApiVersion),
                    // SAFETY: as above.
                    soc_version: unsafe { c_str_to_string(b.socVersion) },
                    soc_model: Some(b.socModel),
                    context_blob_version: v3(b.contextBlobVersion),
                    context_blob_size: b.contextBlobSize,
                    graphs: Vec::new(),
                },
                b.numGraphs,
                b.graphs,
            )
        }
        v => return Err(malformed(format!("unknown binary info version {v}"))),
    };
    if num_graphs > MAX_GRAPHS || (num_graphs > 0 && graphs.is_null()) {
        return Err(malformed(format!("{num_graphs} graphs at {graphs:p}")));
    }
    for i in 0..num_graphs as usize {
        // SAFETY: array of `num_graphs` GraphInfo structs owned by the library.
        let g = unsafe { &*graphs.add(i) };
        if !(1..=3).contains(&g.version) {
            return Err(malformed(format!(
                "graph {i}: unknown graph info version {}",
                g.version
            )));
        }
        // SAFETY: every graph info version starts with the V1 fields.
        let v = unsafe { g.u.graphInfoV1 };
        // SAFETY: NULL or C string owned by the library.
        let name = unsafe { c_str_to_string(v.graphName) };
        let read = |n: u32, p: *mut sys::Qnn_Tensor_t, what: &str| -> Result<Vec<TensorInfo>> {
            if n > MAX_IO || (n > 0 && p.is_null()) {
                return Err(malformed(format!("graph '{name}': {n} {what} at {p:p}")));
            }
            (0..n as usize)
                // SAFETY: array of `n` tensors owned by the library.
                .map(|j| unsafe { tensor_info_from_raw(&*p.add(j), function) })
                .collect()
        };
        let inputs = read(v.numGraphInputs, v.graphInputs, "inputs")?;
        let outputs = read(v.numGraphOutputs, v.graphOutputs, "outputs")?;
        out.graphs.push(GraphInfo {
            name,
            inputs,
            outputs,
        });
    }
    Ok(out)
}
