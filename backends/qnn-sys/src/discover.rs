//! Finding the directory that holds the QNN libraries.
//!
//! Order (first match wins):
//! 1. an explicit directory from the caller (`--qnn-lib-dir` / `--qnn_env_path`);
//! 2. the environment variable `MLLM_QNN_LIB_DIR`;
//! 3. `$QNN_SDK_ROOT/lib/<target>` (`x86_64-linux-clang`, or `aarch64-android`
//!    when built for Android/aarch64);
//! 4. the project-local install `.qnn/lib` written by `scripts/setup-qnn.sh`,
//!    looked for from the current directory upward, from the executable's
//!    directory upward, and at the workspace this crate was built from.
//!
//! An explicit directory (1 or 2) that lacks the library is an error rather
//! than a silent fall-through, so a typo does not pick up another copy.

use std::path::{Path, PathBuf};

use crate::error::{QnnError, Result};

/// File name of the HTP backend library.
pub const HTP_LIBRARY: &str = "libQnnHtp.so";
/// File name of the system library.
pub const SYSTEM_LIBRARY: &str = "libQnnSystem.so";
/// Environment variable naming the library directory.
pub const ENV_LIB_DIR: &str = "MLLM_QNN_LIB_DIR";
/// Environment variable naming a QNN SDK root.
pub const ENV_SDK_ROOT: &str = "QNN_SDK_ROOT";
/// Project-local install directory, relative to the workspace root.
pub const PROJECT_LIB_DIR: &str = ".qnn/lib";

/// The SDK's library subdirectory for the target this crate is built for.
pub const SDK_LIB_SUBDIR: &str = if cfg!(all(target_arch = "aarch64", target_os = "android")) {
    "aarch64-android"
} else if cfg!(target_arch = "aarch64") {
    "aarch64-oe-linux-gcc11.2"
} else {
    "x86_64-linux-clang"
};

/// Where a library directory came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibDirSource {
    /// Given by the caller.
    Explicit,
    /// `MLLM_QNN_LIB_DIR`.
    EnvLibDir,
    /// `QNN_SDK_ROOT`.
    SdkRoot,
    /// The project-local `.qnn/lib`.
    ProjectLocal,
}

impl std::fmt::Display for LibDirSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LibDirSource::Explicit => "--qnn-lib-dir",
            LibDirSource::EnvLibDir => ENV_LIB_DIR,
            LibDirSource::SdkRoot => ENV_SDK_ROOT,
            LibDirSource::ProjectLocal => "project-local .qnn/lib",
        })
    }
}

/// A directory found to hold the QNN libraries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibDir {
    /// The directory.
    pub dir: PathBuf,
    /// How it was found.
    pub source: LibDirSource,
}

/// Inputs of the discovery, separated from the process environment so it can be tested.
#[derive(Debug, Clone, Default)]
pub struct SearchInputs {
    /// Explicit directory from the caller.
    pub explicit: Option<PathBuf>,
    /// Value of `MLLM_QNN_LIB_DIR`.
    pub env_lib_dir: Option<PathBuf>,
    /// Value of `QNN_SDK_ROOT`.
    pub sdk_root: Option<PathBuf>,
    /// Directories whose ancestors are searched for `.qnn/lib`.
    pub project_anchors: Vec<PathBuf>,
}

impl SearchInputs {
    /// Inputs taken from this process: environment, current dir, executable, build-time workspace.
    pub fn from_process(explicit: Option<&Path>) -> Self {
        let nonempty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
        let mut anchors = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            anchors.push(cwd);
        }
        if let Ok(exe) = std::env::current_exe() {
            if let Some(parent) = exe.parent() {
                anchors.push(parent.to_path_buf());
            }
        }
        // backends/qnn-sys -> workspace root.
        anchors.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        SearchInputs {
            explicit: explicit.map(Path::to_path_buf),
            env_lib_dir: std::env::var_os(ENV_LIB_DIR).and_then(nonempty),
            sdk_root: std::env::var_os(ENV_SDK_ROOT).and_then(nonempty),
            project_anchors: anchors,
        }
    }
}

/// Resolves a user-given directory: the directory itself, or an SDK-like root
/// with `lib/<target>/` or `lib/` below it.
fn resolve_given(dir: &Path, library: &str) -> Option<PathBuf> {
    [
        dir.to_path_buf(),
        dir.join("lib").join(SDK_LIB_SUBDIR),
        dir.join("lib"),
    ]
    .into_iter()
    .find(|d| d.join(library).is_file())
}

/// Finds the directory holding `library` (e.g. [`HTP_LIBRARY`]).
pub fn find_lib_dir(inputs: &SearchInputs, library: &'static str) -> Result<LibDir> {
    let mut searched = Vec::new();
    if let Some(dir) = &inputs.explicit {
        return resolve_given(dir, library)
            .map(|dir| LibDir {
                dir,
                source: LibDirSource::Explicit,
            })
            .ok_or_else(|| QnnError::NotInDir {
                library,
                dir: dir.clone(),
                source_name: "--qnn-lib-dir".into(),
            });
    }
    if let Some(dir) = &inputs.env_lib_dir {
        return resolve_given(dir, library)
            .map(|dir| LibDir {
                dir,
                source: LibDirSource::EnvLibDir,
            })
            .ok_or_else(|| QnnError::NotInDir {
                library,
                dir: dir.clone(),
                source_name: ENV_LIB_DIR.into(),
            });
    }
    if let Some(root) = &inputs.sdk_root {
        let dir = root.join("lib").join(SDK_LIB_SUBDIR);
        if dir.join(library).is_file() {
            return Ok(LibDir {
                dir,
                source: LibDirSource::SdkRoot,
            });
        }
        searched.push(format!("{} ({ENV_SDK_ROOT})", dir.display()));
    }
    for anchor in &inputs.project_anchors {
        for ancestor in anchor.ancestors() {
            let dir = ancestor.join(PROJECT_LIB_DIR);
            if dir.join(library).is_file() {
                let dir = dir.canonicalize().unwrap_or(dir);
                return Ok(LibDir {
                    dir,
                    source: LibDirSource::ProjectLocal,
                });
            }
        }
        searched.push(format!("{}/**/{PROJECT_LIB_DIR}", anchor.display()));
    }
    Err(QnnError::LibraryNotFound {
        library,
        searched: if searched.is_empty() {
            "nothing to search".into()
        } else {
            searched.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mllm-qnn-discover-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }

    #[test]
    fn missing_everywhere_mentions_setup_script() {
        let d = temp_dir("none");
        let inputs = SearchInputs {
            project_anchors: vec![d.clone()],
            ..Default::default()
        };
        let err = find_lib_dir(&inputs, HTP_LIBRARY).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("scripts/setup-qnn.sh"), "{msg}");
        assert!(msg.contains(HTP_LIBRARY), "{msg}");
    }

    #[test]
    fn explicit_dir_wins_and_missing_explicit_is_error() {
        let d = temp_dir("explicit");
        touch(&d.join("a").join(HTP_LIBRARY));
        touch(&d.join("proj/.qnn/lib").join(HTP_LIBRARY));
        let mut inputs = SearchInputs {
            explicit: Some(d.join("a")),
            env_lib_dir: Some(d.join("proj/.qnn/lib")),
            project_anchors: vec![d.join("proj")],
            ..Default::default()
        };
        let found = find_lib_dir(&inputs, HTP_LIBRARY).unwrap();
        assert_eq!(found.source, LibDirSource::Explicit);
        assert_eq!(found.dir, d.join("a"));

        inputs.explicit = Some(d.join("nope"));
        let err = find_lib_dir(&inputs, HTP_LIBRARY).unwrap_err();
        assert!(err.to_string().contains("scripts/setup-qnn.sh"));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn env_then_sdk_then_project() {
        let d = temp_dir("order");
        touch(&d.join("env").join(HTP_LIBRARY));
        touch(&d.join("sdk/lib").join(SDK_LIB_SUBDIR).join(HTP_LIBRARY));
        touch(&d.join("proj/.qnn/lib").join(HTP_LIBRARY));
        std::fs::create_dir_all(d.join("proj/sub/deeper")).unwrap();
        let mut inputs = SearchInputs {
            explicit: None,
            env_lib_dir: Some(d.join("env")),
            sdk_root: Some(d.join("sdk")),
            project_anchors: vec![d.join("proj/sub/deeper")],
        };
        assert_eq!(
            find_lib_dir(&inputs, HTP_LIBRARY).unwrap().source,
            LibDirSource::EnvLibDir
        );
        inputs.env_lib_dir = None;
        let sdk = find_lib_dir(&inputs, HTP_LIBRARY).unwrap();
        assert_eq!(sdk.source, LibDirSource::SdkRoot);
        assert_eq!(sdk.dir, d.join("sdk/lib").join(SDK_LIB_SUBDIR));
        inputs.sdk_root = Some(d.join("no-sdk"));
        let proj = find_lib_dir(&inputs, HTP_LIBRARY).unwrap();
        assert_eq!(proj.source, LibDirSource::ProjectLocal);
        assert!(proj.dir.ends_with(".qnn/lib"));
    }

    #[test]
    fn given_sdk_root_resolves_lib_subdir() {
        let d = temp_dir("sdkroot");
        touch(&d.join("lib").join(SDK_LIB_SUBDIR).join(SYSTEM_LIBRARY));
        let inputs = SearchInputs {
            explicit: Some(d.clone()),
            ..Default::default()
        };
        let found = find_lib_dir(&inputs, SYSTEM_LIBRARY).unwrap();
        assert_eq!(found.dir, d.join("lib").join(SDK_LIB_SUBDIR));
    }
}
