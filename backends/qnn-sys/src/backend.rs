//! Backend and device handles.

use std::sync::Arc;

use crate::error::{QnnError, Result};
use crate::library::{self, qnn_fn, QnnLibrary};
use crate::sys;

pub(crate) struct BackendInner {
    pub lib: Arc<QnnLibrary>,
    pub handle: sys::Qnn_BackendHandle_t,
    log: sys::Qnn_LogHandle_t,
}

// SAFETY: the handles are opaque tokens owned by this struct; QNN allows
// calls on a backend from any thread. Mutating calls that must not overlap
// are serialized by the context lock.
unsafe impl Send for BackendInner {}
// SAFETY: see `Send`.
unsafe impl Sync for BackendInner {}

impl Drop for BackendInner {
    fn drop(&mut self) {
        if let Some(free) = self.lib.core.backendFree {
            // SAFETY: the handle was created by backendCreate and every
            // context/device using it has been freed (they hold an Arc to us).
            unsafe { free(self.handle) };
        }
        if !self.log.is_null() {
            if let Some(free) = self.lib.core.logFree {
                // SAFETY: the log handle was created by logCreate; the backend
                // that used it is freed above, so it is released last.
                unsafe { free(self.log) };
            }
        }
    }
}

/// A QNN backend instance (HTP) with its log handle.
#[derive(Clone)]
pub struct Backend {
    pub(crate) inner: Arc<BackendInner>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("library", &self.inner.lib)
            .finish()
    }
}

impl Backend {
    /// Creates a backend (no backend config is needed for HTP). A log handle is
    /// attached so library errors can be reported; set `MLLM_QNN_LOG=<level>`
    /// to echo the library's log to stderr.
    pub fn new(lib: &Arc<QnnLibrary>) -> Result<Backend> {
        let create = qnn_fn!(lib, backendCreate)?;
        let mut log: sys::Qnn_LogHandle_t = std::ptr::null_mut();
        if let Some(log_create) = lib.core.logCreate {
            let level = library::log_create_level();
            // SAFETY: the callback is a valid `extern "C"` fn that never
            // unwinds; `log` is a valid out-pointer.
            let rc = unsafe { log_create(Some(library::log_callback), level, &mut log) };
            if rc != sys::QNN_SUCCESS {
                log = std::ptr::null_mut(); // logging is optional
            }
        }
        let mark = library::log_mark();
        let mut handle: sys::Qnn_BackendHandle_t = std::ptr::null_mut();
        // SAFETY: NULL config list is allowed; `handle` is a valid out-pointer.
        let rc = unsafe { create(log, std::ptr::null(), &mut handle) };
        if let Err(e) = lib.check(rc, "backendCreate", String::new, mark) {
            if !log.is_null() {
                if let Some(free) = lib.core.logFree {
                    // SAFETY: created above, not used by anything else.
                    unsafe { free(log) };
                }
            }
            return Err(e);
        }
        if handle.is_null() {
            return Err(QnnError::Malformed {
                function: "backendCreate",
                reason: "returned a NULL handle".into(),
            });
        }
        Ok(Backend {
            inner: Arc::new(BackendInner {
                lib: lib.clone(),
                handle,
                log,
            }),
        })
    }

    /// The library this backend was created from.
    pub fn library(&self) -> &Arc<QnnLibrary> {
        &self.inner.lib
    }

    pub(crate) fn log_handle(&self) -> sys::Qnn_LogHandle_t {
        self.inner.log
    }
}

/// HTP target of a device. All `None` = library default (SM8350 / v68).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceTarget {
    /// `Qnn_SocModel_t` value, e.g. 43 SM8550, 57 SM8650, 69 SM8750, 87 SM8850.
    pub soc_model: Option<u32>,
    /// Hexagon architecture (68, 69, 73, 75, 79, 81, 85).
    pub arch: Option<u32>,
    /// Use the signed process domain (phones).
    pub signed_pd: Option<bool>,
}

/// Well-known SoC models (`Qnn_SocModel_t`) with their Hexagon architecture:
/// `(name, soc model, arch)`.
pub const KNOWN_SOCS: [(&str, u32, u32); 7] = [
    ("SM8350", 30, 68),
    ("SM8450", 36, 69),
    ("SM8475", 42, 69),
    ("SM8550", 43, 73),
    ("SM8650", 57, 75),
    ("SM8750", 69, 79),
    ("SM8850", 87, 81),
];

/// Hexagon architectures accepted by [`DeviceTarget::arch`].
pub const KNOWN_HTP_ARCHS: [u32; 7] = [68, 69, 73, 75, 79, 81, 85];

impl DeviceTarget {
    /// Target a SoC model.
    pub fn soc(soc_model: u32) -> Self {
        DeviceTarget {
            soc_model: Some(soc_model),
            ..Default::default()
        }
    }

    /// Target a SoC by name (`"SM8650"`, case-insensitive, see [`KNOWN_SOCS`])
    /// or by its numeric model (`"57"`).
    pub fn parse_soc(text: &str) -> Result<Self> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u32>() {
            let target = DeviceTarget::soc(n);
            target.validate()?;
            return Ok(target);
        }
        KNOWN_SOCS
            .iter()
            .find(|(name, _, _)| name.eq_ignore_ascii_case(t))
            .map(|&(_, soc, _)| DeviceTarget::soc(soc))
            .ok_or_else(|| {
                let names: Vec<&str> = KNOWN_SOCS.iter().map(|s| s.0).collect();
                QnnError::invalid(
                    "device target",
                    format!("unknown SoC {text:?} (known: {names:?}, or a numeric model)"),
                )
            })
    }

    /// Hexagon architecture of the target, when known.
    pub fn hexagon_arch(&self) -> Option<u32> {
        self.arch.or_else(|| {
            let soc = self.soc_model?;
            KNOWN_SOCS.iter().find(|s| s.1 == soc).map(|s| s.2)
        })
    }

    fn validate(&self) -> Result<()> {
        if let Some(arch) = self.arch {
            if !KNOWN_HTP_ARCHS.contains(&arch) {
                return Err(QnnError::invalid(
                    "device target",
                    format!("unknown HTP arch {arch} (known: {KNOWN_HTP_ARCHS:?})"),
                ));
            }
        }
        if let Some(soc) = self.soc_model {
            if soc == 0 || soc > 0xFFFF {
                return Err(QnnError::invalid(
                    "device target",
                    format!("SoC model {soc} out of range"),
                ));
            }
        }
        Ok(())
    }
}

pub(crate) struct DeviceInner {
    pub backend: Arc<BackendInner>,
    pub handle: sys::Qnn_DeviceHandle_t,
    pub target: DeviceTarget,
}

// SAFETY: opaque handle owned by this struct; see `BackendInner`.
unsafe impl Send for DeviceInner {}
// SAFETY: see `Send`.
unsafe impl Sync for DeviceInner {}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        if self.handle.is_null() {
            return;
        }
        if let Some(free) = self.backend.lib.core.deviceFree {
            // SAFETY: created by deviceCreate; contexts using it hold an Arc
            // to us, so they are already freed.
            unsafe { free(self.handle) };
        }
    }
}

/// A QNN device (the HTP target a context is prepared for / runs on).
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Arc<DeviceInner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("target", &self.inner.target)
            .finish()
    }
}

impl Device {
    /// Creates a device for `target` using HTP device custom configs.
    pub fn new(backend: &Backend, target: DeviceTarget) -> Result<Device> {
        target.validate()?;
        let lib = &backend.inner.lib;
        let create = qnn_fn!(lib, deviceCreate)?;
        let mut customs: Vec<Box<sys::QnnHtpDevice_CustomConfig_t>> = Vec::new();
        let zeroed = || sys::QnnHtpDevice_CustomConfig_t {
            option: 0,
            u: sys::QnnHtpDevice_CustomConfigUnion {
                arch: sys::QnnHtpDevice_Arch_t::default(),
            },
        };
        if let Some(soc) = target.soc_model {
            let mut c = zeroed();
            c.option = sys::htp_device_option::SOC;
            c.u.socModel = soc;
            customs.push(Box::new(c));
        }
        if let Some(arch) = target.arch {
            let mut c = zeroed();
            c.option = sys::htp_device_option::ARCH;
            c.u.arch = sys::QnnHtpDevice_Arch_t { deviceId: 0, arch };
            customs.push(Box::new(c));
        }
        if let Some(signed) = target.signed_pd {
            let mut c = zeroed();
            c.option = sys::htp_device_option::SIGNEDPD;
            c.u.useSignedProcessDomain = sys::QnnHtpDevice_SignedPd_t {
                deviceId: 0,
                useSignedProcessDomain: signed,
            };
            customs.push(Box::new(c));
        }
        let generic: Vec<sys::QnnDevice_Config_t> = customs
            .iter_mut()
            .map(|c| sys::QnnDevice_Config_t {
                option: sys::QNN_CONFIG_OPTION_CUSTOM,
                u: sys::Qnn_ConfigUnion {
                    customConfig: (&mut **c as *mut sys::QnnHtpDevice_CustomConfig_t).cast(),
                },
            })
            .collect();
        let mut list: Vec<*const sys::QnnDevice_Config_t> =
            generic.iter().map(|g| g as *const _).collect();
        list.push(std::ptr::null());
        let cfg = if generic.is_empty() {
            std::ptr::null()
        } else {
            list.as_ptr()
        };
        let mark = library::log_mark();
        let mut handle: sys::Qnn_DeviceHandle_t = std::ptr::null_mut();
        // SAFETY: `cfg` is NULL or a NULL-terminated array of configs that,
        // with their custom payloads, live until this call returns.
        let rc = unsafe { create(backend.log_handle(), cfg, &mut handle) };
        lib.check(rc, "deviceCreate", || format!("{target:?}"), mark)?;
        Ok(Device {
            inner: Arc::new(DeviceInner {
                backend: backend.inner.clone(),
                handle,
                target,
            }),
        })
    }

    /// The target this device was created for.
    pub fn target(&self) -> DeviceTarget {
        self.inner.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soc_names_parse() {
        assert_eq!(
            DeviceTarget::parse_soc("sm8650").unwrap().soc_model,
            Some(57)
        );
        assert_eq!(
            DeviceTarget::parse_soc("SM8750").unwrap().hexagon_arch(),
            Some(79)
        );
        assert_eq!(
            DeviceTarget::parse_soc("43").unwrap().hexagon_arch(),
            Some(73)
        );
        assert!(DeviceTarget::parse_soc("SM9999").is_err());
        assert!(DeviceTarget::parse_soc("0").is_err());
        let t = DeviceTarget {
            arch: Some(81),
            ..Default::default()
        };
        assert_eq!(t.hexagon_arch(), Some(81));
    }
}
