//! Loading the QNN libraries and selecting compatible providers.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::discover::{self, LibDir, SearchInputs, HTP_LIBRARY, SYSTEM_LIBRARY};
use crate::error::{QnnError, Result};
use crate::sys;

/// Core API major version this crate is written for.
pub const REQUIRED_CORE_MAJOR: u32 = 2;
/// Minimum core API minor version: 2.40 is the first release (SDK 2.51) whose
/// HTP custom-config layouts match the ones declared in [`crate::sys`]
/// (older libraries read the device config union at offset 4).
pub const REQUIRED_CORE_MINOR: u32 = 40;
/// System API major version this crate is written for.
pub const REQUIRED_SYSTEM_MAJOR: u32 = 1;

/// A loaded pair of QNN libraries (HTP backend and system API).
///
/// The libraries are never unloaded: QNN backends do not support being
/// `dlclose`d and reloaded in one process, so [`QnnLibrary::load`] caches one
/// instance per directory for the life of the process.
pub struct QnnLibrary {
    dir: LibDir,
    htp_path: PathBuf,
    system_path: PathBuf,
    // Kept alive so the function pointers below stay valid.
    _htp: libloading::Library,
    _system: libloading::Library,
    pub(crate) core: sys::QnnInterfaceFunctions,
    pub(crate) system: sys::QnnSystemInterfaceFunctions,
    backend_id: u32,
    provider_name: String,
    api_version: sys::Qnn_ApiVersion_t,
    system_api_version: sys::Qnn_Version_t,
    build_id: String,
}

impl std::fmt::Debug for QnnLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QnnLibrary")
            .field("dir", &self.dir)
            .field("provider", &self.provider_name)
            .field("api_version", &self.api_version)
            .field("build_id", &self.build_id)
            .finish()
    }
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<QnnLibrary>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<QnnLibrary>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn fmt_version(v: &sys::Qnn_Version_t) -> String {
    format!("{}.{}.{}", v.major, v.minor, v.patch)
}

/// Copies a C string owned by the library (NULL -> empty).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn c_str_to_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

#[cfg(unix)]
mod c_stdio {
    use std::ffi::{c_int, c_void};
    extern "C" {
        pub fn dup(fd: c_int) -> c_int;
        pub fn dup2(old: c_int, new: c_int) -> c_int;
        pub fn close(fd: c_int) -> c_int;
        pub fn fflush(stream: *mut c_void) -> c_int;
    }
}

/// Points file descriptor 1 at file descriptor 2 until dropped (C stdio flushed on both
/// sides of the switch, so text the library buffered goes where it was written).
#[cfg(unix)]
struct StdoutOnStderr {
    saved: c_int,
}

#[cfg(unix)]
impl StdoutOnStderr {
    /// `None` when a descriptor cannot be duplicated (stdout then stays as it is).
    fn new() -> Option<StdoutOnStderr> {
        // SAFETY: fflush(NULL) flushes every C output stream; no pointer is read.
        unsafe { c_stdio::fflush(std::ptr::null_mut()) };
        // SAFETY: dup on a descriptor number; an invalid one returns -1.
        let saved = unsafe { c_stdio::dup(1) };
        if saved < 0 {
            return None;
        }
        // SAFETY: both are descriptor numbers; on failure fd 1 is unchanged.
        if unsafe { c_stdio::dup2(2, 1) } < 0 {
            // SAFETY: `saved` is our own descriptor from dup above.
            unsafe { c_stdio::close(saved) };
            return None;
        }
        Some(StdoutOnStderr { saved })
    }
}

#[cfg(unix)]
impl Drop for StdoutOnStderr {
    fn drop(&mut self) {
        // SAFETY: flushes the C streams (text written meanwhile goes to stderr), then puts
        // the saved descriptor back on 1 and closes our duplicate of it.
        unsafe {
            c_stdio::fflush(std::ptr::null_mut());
            c_stdio::dup2(self.saved, 1);
            c_stdio::close(self.saved);
        }
    }
}

/// Runs `f` (a library call that prints to stdout) with stdout sent to stderr. Rust's
/// stdout is flushed first and locked meanwhile, so no other thread's output is diverted.
fn with_stdout_on_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    let out = std::io::stdout();
    let mut lock = out.lock();
    let _ = lock.flush();
    #[cfg(unix)]
    let guard = StdoutOnStderr::new();
    let r = f();
    #[cfg(unix)]
    drop(guard);
    drop(lock);
    r
}

impl QnnLibrary {
    /// Finds (see [`crate::discover`]) and loads the QNN libraries.
    ///
    /// `dir` is the caller's explicit directory (`--qnn-lib-dir`); `None`
    /// searches the environment and the project-local install.
    pub fn load(dir: Option<&Path>) -> Result<Arc<QnnLibrary>> {
        let inputs = SearchInputs::from_process(dir);
        let htp_dir = discover::find_lib_dir(&inputs, HTP_LIBRARY)?;
        Self::load_from(htp_dir)
    }

    /// Loads the libraries from an already-resolved directory.
    pub fn load_from(dir: LibDir) -> Result<Arc<QnnLibrary>> {
        let key = dir.dir.canonicalize().unwrap_or_else(|_| dir.dir.clone());
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lib) = cache.get(&key) {
            return Ok(lib.clone());
        }
        let lib = Arc::new(Self::open(dir)?);
        cache.insert(key, lib.clone());
        Ok(lib)
    }

    fn open(dir: LibDir) -> Result<QnnLibrary> {
        let htp_path = dir.dir.join(HTP_LIBRARY);
        let system_path = dir.dir.join(SYSTEM_LIBRARY);
        if !system_path.is_file() {
            return Err(QnnError::NotInDir {
                library: SYSTEM_LIBRARY,
                dir: dir.dir.clone(),
                source_name: dir.source.to_string(),
            });
        }
        // The HTP library's initialisers print a ` # LIBNATIVE: ...` line to stdout (C stdio,
        // flushed at exit); keep it out of the tools' machine-readable stdout.
        let (htp, system) = with_stdout_on_stderr(|| {
            // SAFETY: loading a shared library runs its initialisers; these are
            // Qualcomm's QNN libraries, which are designed to be dlopen'ed.
            let htp = unsafe { libloading::Library::new(&htp_path) }.map_err(|source| {
                QnnError::Load {
                    path: htp_path.clone(),
                    source,
                }
            })?;
            // SAFETY: as above.
            let system = unsafe { libloading::Library::new(&system_path) }.map_err(|source| {
                QnnError::Load {
                    path: system_path.clone(),
                    source,
                }
            })?;
            Ok::<_, QnnError>((htp, system))
        })?;

        // --- core providers ---
        // SAFETY: the symbol has the documented `QnnInterface_getProviders` signature.
        let get_providers: libloading::Symbol<sys::QnnInterfaceGetProvidersFn> = unsafe {
            htp.get(sys::QNN_INTERFACE_GET_PROVIDERS)
        }
        .map_err(|source| QnnError::MissingSymbol {
            path: htp_path.clone(),
            symbol: "QnnInterface_getProviders",
            source,
        })?;
        let mut list: *mut *const sys::QnnInterface_t = std::ptr::null_mut();
        let mut n: u32 = 0;
        // SAFETY: both out-pointers are valid for writes.
        let rc = unsafe { get_providers(&mut list, &mut n) };
        if rc != sys::QNN_SUCCESS || list.is_null() {
            return Err(QnnError::Api {
                function: "QnnInterface_getProviders",
                subject: htp_path.display().to_string(),
                code: sys::error_code(rc),
                handle: rc,
                message: "no providers".into(),
                log: Vec::new(),
            });
        }
        let mut found = Vec::new();
        let mut chosen: Option<&sys::QnnInterface_t> = None;
        for i in 0..n as usize {
            // SAFETY: the library returned an array of `n` provider pointers.
            let p = unsafe { *list.add(i) };
            if p.is_null() {
                continue;
            }
            // SAFETY: non-null provider pointer into the library's static data.
            // Only the header fields are read here; the function table is read
            // after the version check guarantees it has our declared slots.
            let (major, minor, patch, name) = unsafe {
                let v = (*p).apiVersion.coreApiVersion;
                (
                    v.major,
                    v.minor,
                    v.patch,
                    c_str_to_string((*p).providerName),
                )
            };
            found.push(format!("{name} core {major}.{minor}.{patch}"));
            if major == REQUIRED_CORE_MAJOR && minor >= REQUIRED_CORE_MINOR && chosen.is_none() {
                // SAFETY: version check passed: the table has >= 55 slots.
                chosen = Some(unsafe { &*p });
            }
        }
        let Some(provider) = chosen else {
            return Err(QnnError::Version {
                path: htp_path,
                api: "core",
                need_major: REQUIRED_CORE_MAJOR,
                need_minor: REQUIRED_CORE_MINOR,
                found: if found.is_empty() {
                    "no providers".into()
                } else {
                    found.join(", ")
                },
            });
        };
        let core = provider.functions;
        let api_version = provider.apiVersion;
        let backend_id = provider.backendId;
        // SAFETY: providerName is NULL or a static C string of the library.
        let provider_name = unsafe { c_str_to_string(provider.providerName) };

        let mut build_id = String::new();
        if let Some(f) = core.backendGetBuildId {
            let mut p: *const c_char = std::ptr::null();
            // SAFETY: valid out-pointer; the returned string is static in the library.
            if unsafe { f(&mut p) } == sys::QNN_SUCCESS {
                // SAFETY: NULL or a NUL-terminated string owned by the library.
                build_id = unsafe { c_str_to_string(p) };
            }
        }

        // --- system providers ---
        // SAFETY: the symbol has the documented `QnnSystemInterface_getProviders` signature.
        let get_sys: libloading::Symbol<sys::QnnSystemInterfaceGetProvidersFn> = unsafe {
            system.get(sys::QNN_SYSTEM_INTERFACE_GET_PROVIDERS)
        }
        .map_err(|source| QnnError::MissingSymbol {
            path: system_path.clone(),
            symbol: "QnnSystemInterface_getProviders",
            source,
        })?;
        let mut slist: *mut *const sys::QnnSystemInterface_t = std::ptr::null_mut();
        let mut sn: u32 = 0;
        // SAFETY: both out-pointers are valid for writes.
        let rc = unsafe { get_sys(&mut slist, &mut sn) };
        if rc != sys::QNN_SUCCESS || slist.is_null() {
            return Err(QnnError::Api {
                function: "QnnSystemInterface_getProviders",
                subject: system_path.display().to_string(),
                code: sys::error_code(rc),
                handle: rc,
                message: "no providers".into(),
                log: Vec::new(),
            });
        }
        let mut sfound = Vec::new();
        let mut schosen: Option<&sys::QnnSystemInterface_t> = None;
        for i in 0..sn as usize {
            // SAFETY: the library returned an array of `sn` provider pointers.
            let p = unsafe { *slist.add(i) };
            if p.is_null() {
                continue;
            }
            // SAFETY: non-null provider pointer into the library's static data.
            let v = unsafe { (*p).systemApiVersion };
            sfound.push(fmt_version(&v));
            if v.major == REQUIRED_SYSTEM_MAJOR && schosen.is_none() {
                // SAFETY: as above; system API 1.x always has slots 0..=3.
                schosen = Some(unsafe { &*p });
            }
        }
        let Some(sprovider) = schosen else {
            return Err(QnnError::Version {
                path: system_path,
                api: "system",
                need_major: REQUIRED_SYSTEM_MAJOR,
                need_minor: 0,
                found: if sfound.is_empty() {
                    "no providers".into()
                } else {
                    sfound.join(", ")
                },
            });
        };
        let system_fns = sprovider.functions;
        let system_api_version = sprovider.systemApiVersion;
        Ok(QnnLibrary {
            dir,
            htp_path,
            system_path,
            _htp: htp,
            _system: system,
            core,
            system: system_fns,
            backend_id,
            provider_name,
            api_version,
            system_api_version,
            build_id,
        })
    }

    /// Directory the libraries were loaded from, and how it was found.
    pub fn lib_dir(&self) -> &LibDir {
        &self.dir
    }
    /// Path of the HTP backend library.
    pub fn htp_path(&self) -> &Path {
        &self.htp_path
    }
    /// Path of the system library.
    pub fn system_path(&self) -> &Path {
        &self.system_path
    }
    /// Backend id of the chosen provider (6 = HTP).
    pub fn backend_id(&self) -> u32 {
        self.backend_id
    }
    /// Name of the chosen provider.
    pub fn provider_name(&self) -> &str {
        &self.provider_name
    }
    /// Core API version `(major, minor, patch)`.
    pub fn core_api_version(&self) -> (u32, u32, u32) {
        let v = self.api_version.coreApiVersion;
        (v.major, v.minor, v.patch)
    }
    /// Backend API version `(major, minor, patch)`.
    pub fn backend_api_version(&self) -> (u32, u32, u32) {
        let v = self.api_version.backendApiVersion;
        (v.major, v.minor, v.patch)
    }
    /// System API version `(major, minor, patch)`.
    pub fn system_api_version(&self) -> (u32, u32, u32) {
        let v = self.system_api_version;
        (v.major, v.minor, v.patch)
    }
    /// Build id reported by the backend (e.g. `v2.51.0...`).
    pub fn build_id(&self) -> &str {
        &self.build_id
    }

    /// Text of an error handle via `errorGetMessage`.
    pub fn error_message(&self, handle: sys::Qnn_ErrorHandle_t) -> String {
        let Some(f) = self.core.errorGetMessage else {
            return describe_code(sys::error_code(handle)).to_string();
        };
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: valid out-pointer; the message is owned by the library.
        let rc = unsafe { f(handle, &mut p) };
        if rc != sys::QNN_SUCCESS || p.is_null() {
            return describe_code(sys::error_code(handle)).to_string();
        }
        // SAFETY: non-null NUL-terminated string from the library.
        unsafe { c_str_to_string(p) }
    }

    /// Turns a QNN return value into a `Result`, attaching the message and the
    /// library's log lines emitted since `log_mark`.
    pub(crate) fn check(
        &self,
        rc: sys::Qnn_ErrorHandle_t,
        function: &'static str,
        subject: impl FnOnce() -> String,
        log_mark: u64,
    ) -> Result<()> {
        if rc == sys::QNN_SUCCESS {
            return Ok(());
        }
        Err(QnnError::Api {
            function,
            subject: subject(),
            code: sys::error_code(rc),
            handle: rc,
            message: self.error_message(rc),
            log: log_since(log_mark),
        })
    }
}

/// Fallback description of an error code (used when the library has no
/// message, e.g. for libQnnSystem codes).
pub fn describe_code(code: u16) -> &'static str {
    use sys::error as e;
    match code {
        e::COMMON_NOT_SUPPORTED => "not supported",
        e::COMMON_MEM_ALLOC => "memory allocation failed",
        e::COMMON_INVALID_ARGUMENT => "invalid argument",
        e::COMMON_PLATFORM_NOT_SUPPORTED => "platform not supported",
        e::COMMON_INCOMPATIBLE_BINARIES => "incompatible binaries",
        e::CONTEXT_BINARY_VERSION => "context binary version not supported",
        e::CONTEXT_CREATE_FROM_BINARY => "failed to create context from binary",
        e::GRAPH_INVALID_TENSOR => "invalid tensor",
        e::GRAPH_INVALID_OP_CONFIG => "invalid op config",
        e::GRAPH_FINALIZE_FAILED => "graph finalize failed",
        e::TENSOR_INVALID_TENSOR_PARAM => "invalid tensor parameter",
        e::DEVICE_INVALID_CONFIG => "invalid device config",
        e::SYSTEM_CONTEXT_MALFORMED_BINARY => "malformed context binary",
        30000..=49999 => "system API error",
        _ => "no message from the library",
    }
}

/// Returns the function in a slot or a [`QnnError::MissingFunction`].
macro_rules! qnn_fn {
    ($lib:expr, $name:ident) => {
        $lib.core
            .$name
            .ok_or($crate::error::QnnError::MissingFunction {
                function: stringify!($name),
            })
    };
}
pub(crate) use qnn_fn;

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

const LOG_RING: usize = 256;

struct LogState {
    next_seq: u64,
    entries: VecDeque<(u64, String)>,
    echo_level: u32,
}

fn log_state() -> &'static Mutex<LogState> {
    static STATE: OnceLock<Mutex<LogState>> = OnceLock::new();
    STATE.get_or_init(|| {
        Mutex::new(LogState {
            next_seq: 0,
            entries: VecDeque::new(),
            echo_level: parse_level(std::env::var("MLLM_QNN_LOG").ok().as_deref()).unwrap_or(0),
        })
    })
}

/// Parses a log level name (`error`, `warn`, `info`, `verbose`, `debug`).
pub(crate) fn parse_level(s: Option<&str>) -> Option<u32> {
    match s?.to_ascii_lowercase().as_str() {
        "error" => Some(sys::log_level::ERROR),
        "warn" | "warning" => Some(sys::log_level::WARN),
        "info" => Some(sys::log_level::INFO),
        "verbose" => Some(sys::log_level::VERBOSE),
        "debug" => Some(sys::log_level::DEBUG),
        _ => None,
    }
}

/// Level the backend log handle is created with: errors and warnings are
/// kept for error reports; `MLLM_QNN_LOG=<level>` raises it and echoes to stderr.
pub(crate) fn log_create_level() -> u32 {
    let state = log_state().lock().unwrap_or_else(|e| e.into_inner());
    state.echo_level.max(sys::log_level::WARN)
}

/// Sequence number marking "now" in the log ring.
pub(crate) fn log_mark() -> u64 {
    log_state()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .next_seq
}

/// Error and warning lines logged since `mark`.
pub(crate) fn log_since(mark: u64) -> Vec<String> {
    let state = log_state().lock().unwrap_or_else(|e| e.into_inner());
    state
        .entries
        .iter()
        .filter(|(seq, _)| *seq >= mark)
        .map(|(_, s)| s.clone())
        .collect()
}

extern "C" {
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, args: *mut c_void) -> c_int;
}

/// The log callback handed to `logCreate`. Never unwinds.
pub(crate) unsafe extern "C" fn log_callback(
    fmt: *const c_char,
    level: u32,
    _timestamp: u64,
    args: *mut c_void,
) {
    if fmt.is_null() {
        return;
    }
    let mut buf = [0u8; 1024];
    // SAFETY: `fmt` and `args` come straight from the library's printf-style
    // call; on LP64 x86_64 and AAPCS64 a `va_list` parameter is passed as one
    // pointer, so forwarding it to vsnprintf is the C idiom `vsnprintf(.., ap)`.
    // The buffer is valid for `buf.len()` bytes and vsnprintf NUL-terminates.
    let n = unsafe { vsnprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, args) };
    if n < 0 {
        return;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let text = String::from_utf8_lossy(&buf[..len]);
    let text = text.trim_end();
    let tag = match level {
        sys::log_level::ERROR => "ERROR",
        sys::log_level::WARN => "WARN",
        sys::log_level::INFO => "INFO",
        sys::log_level::VERBOSE => "VERBOSE",
        _ => "DEBUG",
    };
    let line = format!("{tag}: {text}");
    let mut state = log_state().lock().unwrap_or_else(|e| e.into_inner());
    if level <= state.echo_level {
        eprintln!("[qnn] {line}");
    }
    if level <= sys::log_level::WARN {
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.push_back((seq, line));
        while state.entries.len() > LOG_RING {
            state.entries.pop_front();
        }
    }
}
