//! Contexts: containers of graphs, created empty (to build graphs) or from a
//! serialized context binary (to run them).

use std::sync::{Arc, Mutex};

use crate::backend::{Backend, BackendInner, Device, DeviceInner};
use crate::error::{QnnError, Result};
use crate::graph::Graph;
use crate::library::{self, qnn_fn, QnnLibrary};
use crate::sys;
use crate::system::{BinaryInfo, SystemContext};

pub(crate) struct ContextInner {
    pub backend: Arc<BackendInner>,
    // Held so the device outlives the context (free order: context, device, backend).
    _device: Arc<DeviceInner>,
    pub handle: sys::Qnn_ContextHandle_t,
    /// Serializes calls on this context and its graphs.
    pub lock: Mutex<()>,
    /// Graph descriptions when the context was created from a binary.
    pub binary_info: Option<BinaryInfo>,
}

// SAFETY: opaque handle owned by this struct; all calls on it and on its
// graphs go through `lock`.
unsafe impl Send for ContextInner {}
// SAFETY: see `Send`.
unsafe impl Sync for ContextInner {}

impl ContextInner {
    pub fn lib(&self) -> &Arc<QnnLibrary> {
        &self.backend.lib
    }
}

impl Drop for ContextInner {
    fn drop(&mut self) {
        if let Some(free) = self.backend.lib.core.contextFree {
            // SAFETY: created by contextCreate(FromBinary); graphs hold an Arc
            // to us, so none is alive any more.
            unsafe { free(self.handle, std::ptr::null_mut()) };
        }
    }
}

/// Options of a new (empty) context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextOptions {
    /// HTP weight sharing between the graphs of the context. Deduplicates
    /// static weights in the binary, but the x86 emulator refuses to load such
    /// binaries (error 1000): enable it for device builds only.
    pub weight_sharing: bool,
}

/// A QNN context.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("from_binary", &self.inner.binary_info.is_some())
            .finish()
    }
}

impl Context {
    /// Creates an empty context to build graphs in.
    pub fn new(backend: &Backend, device: &Device, options: ContextOptions) -> Result<Context> {
        let lib = backend.library();
        let create = qnn_fn!(lib, contextCreate)?;
        let mut custom = sys::QnnHtpContext_CustomConfig_t {
            option: sys::htp_context_option::WEIGHT_SHARING_ENABLED,
            u: sys::QnnHtpContext_CustomConfigUnion {
                fileReadMemoryBudgetInMb: 0,
            },
        };
        custom.u.weightSharingEnabled = true;
        let generic = sys::QnnContext_Config_t {
            option: sys::QNN_CONFIG_OPTION_CUSTOM,
            u: sys::Qnn_ConfigUnion {
                customConfig: (&mut custom as *mut sys::QnnHtpContext_CustomConfig_t).cast(),
            },
        };
        let list: [*const sys::QnnContext_Config_t; 2] = [&generic, std::ptr::null()];
        let cfg = if options.weight_sharing {
            list.as_ptr()
        } else {
            std::ptr::null()
        };
        let mark = library::log_mark();
        let mut handle: sys::Qnn_ContextHandle_t = std::ptr::null_mut();
        // SAFETY: handles are live (we hold Arcs); `cfg` is NULL or a
        // NULL-terminated list whose payload outlives the call.
        let rc = unsafe { create(backend.inner.handle, device.inner.handle, cfg, &mut handle) };
        lib.check(rc, "contextCreate", || format!("{options:?}"), mark)?;
        Ok(Context {
            inner: Arc::new(ContextInner {
                backend: backend.inner.clone(),
                _device: device.inner.clone(),
                handle,
                lock: Mutex::new(()),
                binary_info: None,
            }),
        })
    }

    /// Loads a serialized context binary. Its graph list and I/O tensors are
    /// read first with the system library (which also rejects malformed
    /// binaries before the backend sees them). `bytes` may be dropped after
    /// this returns.
    pub fn from_binary(backend: &Backend, device: &Device, bytes: &[u8]) -> Result<Context> {
        if bytes.is_empty() {
            return Err(QnnError::invalid("context binary", "empty buffer"));
        }
        let info = SystemContext::new(backend.library())?.binary_info(bytes)?;
        Self::from_binary_with_info(backend, device, bytes, info)
    }

    /// Like [`Context::from_binary`], with the binary's metadata already read by
    /// [`SystemContext::binary_info`] on the same bytes (a loader that checks the
    /// metadata before loading does not parse it twice). Graphs are retrieved by the
    /// names in `info`, which must describe `bytes`.
    pub fn from_binary_with_info(
        backend: &Backend,
        device: &Device,
        bytes: &[u8],
        info: BinaryInfo,
    ) -> Result<Context> {
        if bytes.is_empty() {
            return Err(QnnError::invalid("context binary", "empty buffer"));
        }
        let lib = backend.library();
        let create = qnn_fn!(lib, contextCreateFromBinary)?;
        let mark = library::log_mark();
        let mut handle: sys::Qnn_ContextHandle_t = std::ptr::null_mut();
        // SAFETY: `bytes` is valid for `len` reads during the call; handles are
        // live; NULL config and profile are allowed.
        let rc = unsafe {
            create(
                backend.inner.handle,
                device.inner.handle,
                std::ptr::null(),
                bytes.as_ptr().cast(),
                bytes.len() as u64,
                &mut handle,
                std::ptr::null_mut(),
            )
        };
        lib.check(
            rc,
            "contextCreateFromBinary",
            || format!("binary of {} bytes", bytes.len()),
            mark,
        )?;
        Ok(Context {
            inner: Arc::new(ContextInner {
                backend: backend.inner.clone(),
                _device: device.inner.clone(),
                handle,
                lock: Mutex::new(()),
                binary_info: Some(info),
            }),
        })
    }

    /// The library this context belongs to.
    pub fn library(&self) -> &Arc<QnnLibrary> {
        self.inner.lib()
    }

    /// Description of the binary this context was loaded from.
    pub fn binary_info(&self) -> Option<&BinaryInfo> {
        self.inner.binary_info.as_ref()
    }

    /// Serializes the context (all finalized graphs) into a context binary.
    pub fn binary(&self) -> Result<Vec<u8>> {
        let lib = self.inner.lib();
        let get_size = qnn_fn!(lib, contextGetBinarySize)?;
        let get = qnn_fn!(lib, contextGetBinary)?;
        let _guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        let mut size: u64 = 0;
        // SAFETY: live handle, valid out-pointer.
        let rc = unsafe { get_size(self.inner.handle, &mut size) };
        lib.check(rc, "contextGetBinarySize", String::new, mark)?;
        let capacity = usize::try_from(size).map_err(|_| QnnError::Malformed {
            function: "contextGetBinarySize",
            reason: format!("size {size} does not fit in memory"),
        })?;
        let mut buf = vec![0u8; capacity];
        let mut written: u64 = 0;
        // SAFETY: `buf` is valid for `size` writes; valid out-pointer.
        let rc = unsafe {
            get(
                self.inner.handle,
                buf.as_mut_ptr().cast(),
                size,
                &mut written,
            )
        };
        lib.check(rc, "contextGetBinary", String::new, mark)?;
        if written > size {
            return Err(QnnError::Malformed {
                function: "contextGetBinary",
                reason: format!("wrote {written} bytes into a {size}-byte buffer"),
            });
        }
        buf.truncate(written as usize);
        Ok(buf)
    }

    /// Retrieves a graph of a context created with [`Context::from_binary`].
    pub fn retrieve_graph(&self, name: &str) -> Result<Graph> {
        let info = self.inner.binary_info.as_ref().ok_or_else(|| {
            QnnError::invalid(
                format!("graph '{name}'"),
                "retrieve_graph needs a context created from a binary",
            )
        })?;
        let graph_info = info
            .graphs
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = info.graphs.iter().map(|g| g.name.as_str()).collect();
                QnnError::invalid(
                    format!("graph '{name}'"),
                    format!("not in the context binary (graphs: {names:?})"),
                )
            })?
            .clone();
        let lib = self.inner.lib();
        let retrieve = qnn_fn!(lib, graphRetrieve)?;
        let c_name = crate::types::c_name("graph name", name)?;
        let _guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mark = library::log_mark();
        let mut handle: sys::Qnn_GraphHandle_t = std::ptr::null_mut();
        // SAFETY: live context handle, NUL-terminated name, valid out-pointer.
        let rc = unsafe { retrieve(self.inner.handle, c_name.as_ptr(), &mut handle) };
        lib.check(rc, "graphRetrieve", || format!("graph '{name}'"), mark)?;
        Graph::from_parts(
            self.inner.clone(),
            handle,
            graph_info.name,
            graph_info.inputs,
            graph_info.outputs,
        )
    }
}
