//! The sidecar manifest `model.bin.json` written next to a QNN context binary.
//!
//! It describes what the runtime needs without loading the binary: every graph with its
//! I/O tensors (names, shapes, QNN data types, encodings, IR types) and `ar_len` (tokens
//! per step), the target (SoC model, Hexagon arch), the QNN versions and build id the
//! binary was produced with, and the SHA-256 of the binary (QNN itself does not detect
//! a flipped byte). It lives here, below both the backend (which writes it) and the
//! runtime (which checks it before loading a binary), and depends on no IR.
//!
//! Format (JSON, `format_version` 1):
//!
//! ```json
//! { "format_version": 1, "generator": "mllm-backend-qnn 0.1.0",
//!   "binary": "model.bin", "binary_size": 123, "sha256": "ab12...",
//!   "target": { "soc_model": 57, "soc_name": "SM8650", "htp_arch": 75 },
//!   "qnn": { "core_api": [2, 40, 0], "backend_api": [5, 51, 0], "build_id": "v2.51.0..." },
//!   "weight_sharing": false,
//!   "graphs": [ { "name": "model.0.s32", "ar_len": 32,
//!                 "inputs": [ { "name": "x", "shape": [1, 32, 2048], "dtype": "ufixed16",
//!                               "ir_type": "tensor<...>",
//!                               "encoding": { "kind": "per_tensor", "scale": 0.001, "offset": -32768 } } ],
//!                 "outputs": [ ... ] } ] }
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataType, Quant};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Current manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// Errors reading, writing or verifying a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("{path}: invalid manifest: {source}")]
    Json {
        /// Manifest path.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Unknown format version.
    #[error("{path}: manifest format version {found}, this build reads {MANIFEST_VERSION}")]
    Version {
        /// Manifest path.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// The binary's size differs from the manifest's.
    #[error(
        "{path}: binary is {actual} bytes, its manifest says {expected} (truncated or replaced?)"
    )]
    Size {
        /// Binary path.
        path: PathBuf,
        /// Size in the manifest.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// The binary's SHA-256 differs from the manifest's.
    #[error("{path}: SHA-256 mismatch: manifest says {expected}, binary has {actual} (corrupt or replaced binary)")]
    Hash {
        /// Binary path.
        path: PathBuf,
        /// Hash in the manifest.
        expected: String,
        /// Actual hash.
        actual: String,
    },
}

/// The target a binary was prepared for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ManifestTarget {
    /// `Qnn_SocModel_t` (e.g. 57 = SM8650), if a SoC was set or reported.
    pub soc_model: Option<u32>,
    /// SoC name, when known.
    pub soc_name: Option<String>,
    /// Hexagon architecture (e.g. 75), when known.
    pub htp_arch: Option<u32>,
}

/// QNN versions the binary was built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ManifestQnn {
    /// Core API version.
    pub core_api: [u32; 3],
    /// HTP backend API version.
    pub backend_api: [u32; 3],
    /// Backend build id.
    pub build_id: String,
}

/// Quantization of an I/O tensor (`real = (q + offset) * scale`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestEncoding {
    /// Not quantized.
    None,
    /// One scale/offset.
    PerTensor {
        /// Scale.
        scale: f32,
        /// Offset (negated zero point).
        offset: i32,
    },
    /// Per channel along `axis`.
    PerAxis {
        /// Channel axis.
        axis: u32,
        /// Scales.
        scales: Vec<f32>,
        /// Offsets.
        offsets: Vec<i32>,
    },
    /// LPBQ.
    Blockwise {
        /// Channel axis.
        axis: u32,
        /// Blocks per channel.
        num_blocks: u32,
        /// Block-scale bit width.
        bits: u32,
        /// Channel scales.
        channel_scales: Vec<f32>,
        /// Block scales, channel-major.
        block_scales: Vec<u8>,
    },
    /// An encoding QNN reported that this crate does not model.
    Other {
        /// `Qnn_QuantizationEncoding_t`.
        encoding: u32,
    },
}

impl From<&Quant> for ManifestEncoding {
    fn from(q: &Quant) -> Self {
        match q {
            Quant::None => ManifestEncoding::None,
            Quant::ScaleOffset { scale, offset } => ManifestEncoding::PerTensor {
                scale: *scale,
                offset: *offset,
            },
            Quant::AxisScaleOffset {
                axis,
                scales,
                offsets,
            } => ManifestEncoding::PerAxis {
                axis: *axis,
                scales: scales.clone(),
                offsets: offsets.clone(),
            },
            Quant::BlockwiseExpansion {
                axis,
                channel_scales,
                num_blocks_per_axis,
                block_scale_bitwidth,
                block_scales_u8,
            } => ManifestEncoding::Blockwise {
                axis: *axis,
                num_blocks: *num_blocks_per_axis,
                bits: *block_scale_bitwidth,
                channel_scales: channel_scales.clone(),
                block_scales: block_scales_u8.clone(),
            },
            Quant::Other { encoding } => ManifestEncoding::Other {
                encoding: *encoding,
            },
        }
    }
}

/// Lower-case name of a QNN data type as written in manifests (`ufixed16`, `float32`, ...).
pub fn dtype_name(d: DataType) -> &'static str {
    match d {
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float16 => "float16",
        DataType::BFloat16 => "bfloat16",
        DataType::Float32 => "float32",
        DataType::SFixed4 => "sfixed4",
        DataType::SFixed8 => "sfixed8",
        DataType::SFixed16 => "sfixed16",
        DataType::SFixed32 => "sfixed32",
        DataType::UFixed4 => "ufixed4",
        DataType::UFixed8 => "ufixed8",
        DataType::UFixed16 => "ufixed16",
        DataType::UFixed32 => "ufixed32",
        DataType::Bool8 => "bool8",
    }
}

/// Inverse of [`dtype_name`].
pub fn dtype_from_name(s: &str) -> Option<DataType> {
    use DataType::*;
    [
        Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64, Float16, BFloat16, Float32,
        SFixed4, SFixed8, SFixed16, SFixed32, UFixed4, UFixed8, UFixed16, UFixed32, Bool8,
    ]
    .into_iter()
    .find(|d| dtype_name(*d) == s)
}

/// One graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTensor {
    /// Tensor name (the runtime binds buffers by it).
    pub name: String,
    /// Dimensions.
    pub shape: Vec<u32>,
    /// QNN data type ([`dtype_name`]).
    pub dtype: String,
    /// IR type text, when the binary was compiled from IR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ir_type: Option<String>,
    /// Quantization.
    pub encoding: ManifestEncoding,
}

impl ManifestTensor {
    /// Byte size of the tensor's buffer (`None` for unknown / 4-bit types).
    pub fn byte_size(&self) -> Option<usize> {
        let es = dtype_from_name(&self.dtype)?.size_bytes()?;
        Some(self.shape.iter().map(|d| *d as usize).product::<usize>() * es)
    }
}

/// One graph of the binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestGraph {
    /// Graph name (e.g. `model.0.s32`).
    pub name: String,
    /// Tokens per step (`N` of `model.{i}.s{N}`), when known.
    pub ar_len: Option<usize>,
    /// Inputs in the graph's order.
    pub inputs: Vec<ManifestTensor>,
    /// Outputs in the graph's order.
    pub outputs: Vec<ManifestTensor>,
}

/// Another context binary of the same model, listed by the manifest of the binary the
/// runtime is given (see [`Manifest::shards`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestShard {
    /// File name of the shard's binary, relative to the listing manifest's directory. The
    /// shard has its own complete manifest next to it (`<binary>.json`).
    pub binary: String,
    /// Size of that binary in bytes.
    pub binary_size: u64,
    /// Lower-case hex SHA-256 of that binary.
    pub sha256: String,
}

/// The sidecar manifest of a context binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub format_version: u32,
    /// Tool that wrote it.
    pub generator: String,
    /// File name of the binary (relative to the manifest's directory).
    pub binary: String,
    /// Size of the binary in bytes.
    pub binary_size: u64,
    /// Lower-case hex SHA-256 of the binary.
    pub sha256: String,
    /// Target.
    pub target: ManifestTarget,
    /// QNN versions.
    pub qnn: ManifestQnn,
    /// Whether the graphs share weights (such binaries do not load in the x86 emulator).
    pub weight_sharing: bool,
    /// Graphs of this binary.
    pub graphs: Vec<ManifestGraph>,
    /// A model compiled into several contexts (`model.{i}.s{N}` graphs in context `i`) is
    /// written as one binary per context, each with its own manifest; the manifest of the
    /// binary handed to the runtime (context 0) lists the *other* binaries here, in context
    /// order, so the runtime verifies and loads them together and presents all their graphs.
    /// Empty for a single-context model (and omitted from the JSON).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ManifestShard>,
}

impl Manifest {
    /// The graph named `name`.
    pub fn graph(&self, name: &str) -> Option<&ManifestGraph> {
        self.graphs.iter().find(|g| g.name == name)
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses manifest text (`path` is used in errors).
    pub fn from_json(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_str(text).map_err(|source| ManifestError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        if m.format_version != MANIFEST_VERSION {
            return Err(ManifestError::Version {
                path: path.to_path_buf(),
                found: m.format_version,
            });
        }
        Ok(m)
    }

    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::from_json(&text, path)
    }
}

/// The manifest path of a binary: `model.bin` -> `model.bin.json`.
pub fn manifest_path(bin: &Path) -> PathBuf {
    let mut s = bin.as_os_str().to_os_string();
    s.push(".json");
    PathBuf::from(s)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 and size of a file, streamed in 4 MiB chunks.
pub fn sha256_file(path: &Path) -> Result<(String, u64), ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex(&h.finalize()), total))
}

/// Checks bytes already read from `bin_path` against a manifest: size, then SHA-256.
pub fn verify_bytes(bin_path: &Path, bytes: &[u8], m: &Manifest) -> Result<(), ManifestError> {
    check_digest(bin_path, m, bytes.len() as u64, || sha256_hex(bytes))
}

fn check_digest(
    bin_path: &Path,
    m: &Manifest,
    size: u64,
    digest: impl FnOnce() -> String,
) -> Result<(), ManifestError> {
    if size != m.binary_size {
        return Err(ManifestError::Size {
            path: bin_path.to_path_buf(),
            expected: m.binary_size,
            actual: size,
        });
    }
    let actual = digest();
    if actual != m.sha256 {
        return Err(ManifestError::Hash {
            path: bin_path.to_path_buf(),
            expected: m.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Loader-side check: reads `<bin>.json`, checks the binary's size and SHA-256 against
/// it, and returns the manifest.
pub fn verify_manifest(bin_path: &Path) -> Result<Manifest, ManifestError> {
    let m = Manifest::read(&manifest_path(bin_path))?;
    let (actual, size) = sha256_file(bin_path)?;
    if size != m.binary_size {
        return Err(ManifestError::Size {
            path: bin_path.to_path_buf(),
            expected: m.binary_size,
            actual: size,
        });
    }
    if actual != m.sha256 {
        return Err(ManifestError::Hash {
            path: bin_path.to_path_buf(),
            expected: m.sha256.clone(),
            actual,
        });
    }
    Ok(m)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
    use std::io::Write;
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format_version: MANIFEST_VERSION,
            generator: "test".into(),
            binary: "model.bin".into(),
            binary_size: 3,
            sha256: sha256_hex(b"abc"),
            target: ManifestTarget {
                soc_model: Some(57),
                soc_name: Some("SM8650".into()),
                htp_arch: Some(75),
            },
            qnn: ManifestQnn::default(),
            weight_sharing: false,
            graphs: vec![ManifestGraph {
                name: "g".into(),
                ar_len: Some(1),
                inputs: vec![ManifestTensor {
                    name: "x".into(),
                    shape: vec![1, 4],
                    dtype: dtype_name(DataType::UFixed16).into(),
                    ir_type: None,
                    encoding: ManifestEncoding::PerTensor {
                        scale: 0.5,
                        offset: -3,
                    },
                }],
                outputs: vec![],
            }],
            shards: vec![],
        }
    }

    #[test]
    fn json_round_trip_and_sizes() {
        let m = sample();
        let back = Manifest::from_json(&m.to_json(), Path::new("m.json")).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.graphs[0].inputs[0].byte_size(), Some(8));
        // Known SHA-256 of "abc" (FIPS 180-2 test vector).
        assert_eq!(
            m.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut v = m.clone();
        v.format_version = 99;
        assert!(matches!(
            Manifest::from_json(&v.to_json(), Path::new("m.json")),
            Err(ManifestError::Version { found: 99, .. })
        ));
        assert!(Manifest::from_json("{", Path::new("m.json")).is_err());
        // Without shards the key is omitted (older readers see the same JSON) and reads back
        // empty; a shard list round-trips.
        assert!(!m.to_json().contains("shards"));
        let mut sh = m.clone();
        sh.shards.push(ManifestShard {
            binary: "model.1.bin".into(),
            binary_size: 9,
            sha256: sha256_hex(b"x"),
        });
        let back = Manifest::from_json(&sh.to_json(), Path::new("m.json")).unwrap();
        assert_eq!(back.shards, sh.shards);
        // verify_bytes: size first, then digest.
        assert!(verify_bytes(Path::new("b"), b"abc", &m).is_ok());
        assert!(matches!(
            verify_bytes(Path::new("b"), b"abd", &m),
            Err(ManifestError::Hash { .. })
        ));
        assert!(matches!(
            verify_bytes(Path::new("b"), b"ab", &m),
            Err(ManifestError::Size { .. })
        ));
        for d in [DataType::UFixed8, DataType::Float32, DataType::Bool8] {
            assert_eq!(dtype_from_name(dtype_name(d)), Some(d));
        }
    }
}
