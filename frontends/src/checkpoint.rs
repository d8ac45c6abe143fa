//! Memory-mapped, zero-copy access to the tensors of a checkpoint (safetensors file, sharded
//! safetensors directory, or `.mllm` v2 file).
//!
//! [`Checkpoint::open`] validates every header before trusting it, keeps the memory maps alive
//! (shared through `Arc`) and hands out [`TensorView`]s that borrow the mapped bytes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use half::{bf16, f16};
use memmap2::Mmap;
use rayon::prelude::*;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::{mllm_file, safetensors};

/// A read-only memory map of a whole file.
#[derive(Debug)]
pub(crate) struct MappedFile {
    /// The file's path, for error messages.
    pub(crate) path: PathBuf,
    /// `None` for an empty file (which cannot be mapped).
    map: Option<Mmap>,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub(crate) fn open(path: &Path) -> Result<Arc<MappedFile>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let map = if len == 0 {
            None
        } else {
            Some(map_file(&file).map_err(|e| Error::io(path, e))?)
        };
        Ok(Arc::new(MappedFile {
            path: path.to_path_buf(),
            map,
        }))
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Tells the kernel the pages of `[offset, offset + len)` are no longer needed, so that
    /// streaming over a big file does not keep it all resident. Purely advisory.
    pub(crate) fn release(&self, offset: u64, len: u64) {
        if let Some(map) = &self.map {
            release_pages(map, offset, len);
        }
    }
}

/// Maps a whole file read-only.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the map is private and read-only. Its contents are only ever read as plain bytes
    // (every header is validated as untrusted input, payloads are copied or converted, never
    // reinterpreted as typed Rust values), so a concurrent modification of the file by another
    // process can only yield wrong bytes, which the format checks treat like any corrupt input.
    // Truncation of the file while mapped would raise SIGBUS; checkpoints are not expected to be
    // truncated while being read, the same assumption every mmap-based model loader makes.
    unsafe { Mmap::map(file) }
}

/// `madvise(MADV_DONTNEED)` over the whole pages inside `[offset, offset + len)`.
#[allow(unsafe_code)]
fn release_pages(map: &Mmap, offset: u64, len: u64) {
    const PAGE: u64 = 4096;
    let start = offset.div_ceil(PAGE) * PAGE;
    let end = ((offset.saturating_add(len)) / PAGE * PAGE).min(map.len() as u64);
    if end <= start {
        return;
    }
    // SAFETY: this is a read-only, file-backed mapping: dropping its pages only discards cached
    // copies, and a later access faults the same file contents back in. No Rust reference
    // observes different data afterwards. The advice is best effort, so its result is ignored.
    let _ = unsafe {
        map.unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            start as usize,
            (end - start) as usize,
        )
    };
}

/// Where a tensor lives inside its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape (row-major; empty for a scalar).
    pub shape: Vec<usize>,
    /// Absolute byte offset of the payload in its file.
    pub offset: u64,
    /// Payload length in bytes.
    pub len: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A borrowed, zero-copy view of one tensor of a [`Checkpoint`].
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Shape (row-major; empty for a scalar).
    pub shape: &'a [usize],
    /// The raw little-endian payload, straight from the memory map.
    pub bytes: &'a [u8],
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .finish()
    }
}

impl<'a> TensorView<'a> {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Converts every element to `f32` (bf16/f16 exactly, integers and bools by value).
    /// Errors for the packed 4-bit types.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.numel()];
        self.to_f32_into(&mut out)?;
        Ok(out)
    }

    /// Like [`TensorView::to_f32_vec`], into a caller-provided buffer of exactly `numel()` values.
    pub fn to_f32_into(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.numel() {
            return Err(self.err(format!(
                "output buffer has {} elements, tensor has {}",
                out.len(),
                self.numel()
            )));
        }
        convert_to_f32(self.dtype, self.bytes, out).map_err(|msg| self.err(msg))
    }

    /// The payload as `u16` values (for f16/bf16/u16/i16 tensors, e.g. pymllm's u16 norms).
    pub fn to_u16_vec(&self) -> Result<Vec<u16>> {
        if self.dtype.elem_size() != Some(2) {
            return Err(self.err(format!("dtype {} is not a 16-bit type", self.dtype)));
        }
        Ok(self
            .bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    /// Number of NaN or infinite values (0 for non-float types).
    pub fn count_non_finite(&self) -> usize {
        let chunk = 1 << 16;
        match self.dtype {
            DType::F32 => self
                .bytes
                .par_chunks(chunk * 4)
                .map(|c| {
                    c.chunks_exact(4)
                        .filter(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
                        .count()
                })
                .sum(),
            DType::BF16 => self
                .bytes
                .par_chunks(chunk * 2)
                .map(|c| {
                    c.chunks_exact(2)
                        // exponent all ones <=> inf or NaN
                        .filter(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 == 0x7f80)
                        .count()
                })
                .sum(),
            DType::F16 => self
                .bytes
                .par_chunks(chunk * 2)
                .map(|c| {
                    c.chunks_exact(2)
                        .filter(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 == 0x7c00)
                        .count()
                })
                .sum(),
            _ => 0,
        }
    }

    fn err(&self, msg: String) -> Error {
        Error::Tensor {
            tensor: self.name.to_string(),
            msg,
        }
    }
}

/// Converts a little-endian payload to `f32`; `out.len()` must equal the element count.
fn convert_to_f32(dtype: DType, bytes: &[u8], out: &mut [f32]) -> std::result::Result<(), String> {
    macro_rules! conv {
        ($n:expr, |$c:ident| $e:expr) => {{
            if bytes.len() != out.len() * $n {
                return Err(format!(
                    "payload has {} bytes, expected {}",
                    bytes.len(),
                    out.len() * $n
                ));
            }
            for (o, $c) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                *o = $e;
            }
        }};
    }
    match dtype {
        DType::F32 => conv!(4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        DType::F16 => conv!(2, |c| f16::from_bits(u16::from_le_bytes([c[0], c[1]]))
            .to_f32()),
        DType::BF16 => conv!(2, |c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]]))
            .to_f32()),
        DType::I8 => conv!(1, |c| c[0] as i8 as f32),
        DType::U8 | DType::Byte => conv!(1, |c| c[0] as f32),
        DType::Bool => conv!(1, |c| if c[0] != 0 { 1.0 } else { 0.0 }),
        DType::I16 => conv!(2, |c| i16::from_le_bytes([c[0], c[1]]) as f32),
        DType::U16 => conv!(2, |c| u16::from_le_bytes([c[0], c[1]]) as f32),
        DType::I32 => conv!(4, |c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
        DType::U32 => conv!(4, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
        DType::I64 => {
            conv!(
                8,
                |c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            )
        }
        DType::U64 => {
            conv!(
                8,
                |c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            )
        }
        DType::Int4 | DType::UInt4 => {
            return Err(format!("cannot convert packed {dtype} to f32"));
        }
    }
    Ok(())
}

/// The on-disk format of a [`Checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// One safetensors file.
    Safetensors,
    /// Several safetensors files listed by a `model.safetensors.index.json`.
    ShardedSafetensors,
    /// A `.mllm` v2 file.
    Mllm,
}

/// Progress of a long operation (conversion, generation), reported once per tensor.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Tensor just finished.
    pub tensor: &'a str,
    /// How many tensors are finished (1-based count).
    pub tensors_done: usize,
    /// Total number of tensors.
    pub tensors_total: usize,
    /// Payload bytes finished so far.
    pub bytes_done: u64,
    /// Total payload bytes.
    pub bytes_total: u64,
}

/// Summary of [`Checkpoint::scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Number of tensors read.
    pub tensors: usize,
    /// Payload bytes read.
    pub bytes: u64,
    /// Float tensors containing NaN/Inf, with the count of such values.
    pub non_finite: Vec<(String, usize)>,
}

/// An opened checkpoint: memory maps plus a validated tensor table.
///
/// Cloning is cheap (the maps are shared).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
    format: CheckpointFormat,
    files: Vec<Arc<MappedFile>>,
    /// Tensor infos with the index of their file, in file order.
    tensors: Vec<(TensorInfo, usize)>,
    by_name: HashMap<String, usize>,
    model_name: Option<String>,
    metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens a checkpoint:
    /// - a directory with `model.safetensors.index.json` (sharded), or with `model.safetensors`,
    ///   or with `model.mllm`;
    /// - a `*.safetensors.index.json` file (sharded, shards next to it);
    /// - a `.mllm` file (also recognised by its magic number whatever its extension);
    /// - any other file is read as safetensors.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            let index = path.join("model.safetensors.index.json");
            if index.is_file() {
                return safetensors::open_sharded(&index);
            }
            let single = path.join("model.safetensors");
            if single.is_file() {
                return safetensors::open_file(&single);
            }
            let mllm = path.join("model.mllm");
            if mllm.is_file() {
                return mllm_file::open(&mllm);
            }
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                msg:
                    "directory has no model.safetensors.index.json, model.safetensors or model.mllm"
                        .into(),
            });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".index.json") {
            return safetensors::open_sharded(path);
        }
        if name.ends_with(".mllm") || mllm_file::has_magic(path) {
            return mllm_file::open(path);
        }
        safetensors::open_file(path)
    }

    /// Builds a checkpoint from already validated parts (used by the format readers).
    pub(crate) fn from_parts(
        path: PathBuf,
        format: CheckpointFormat,
        files: Vec<Arc<MappedFile>>,
        tensors: Vec<(TensorInfo, usize)>,
        model_name: Option<String>,
        metadata: BTreeMap<String, String>,
    ) -> Result<Checkpoint> {
        let mut by_name = HashMap::with_capacity(tensors.len());
        for (i, (info, file)) in tensors.iter().enumerate() {
            if let Some(prev) = by_name.insert(info.name.clone(), i) {
                let prev_file = &files[tensors[prev].1].path;
                return Err(Error::Checkpoint {
                    path: path.clone(),
                    msg: format!(
                        "tensor {} appears twice ({} and {})",
                        info.name,
                        prev_file.display(),
                        files[*file].path.display()
                    ),
                });
            }
        }
        Ok(Checkpoint {
            path,
            format,
            files,
            tensors,
            by_name,
            model_name,
            metadata,
        })
    }

    /// The path the checkpoint was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The on-disk format.
    pub fn format(&self) -> CheckpointFormat {
        self.format
    }

    /// The model name stored in a `.mllm` header (`None` for safetensors).
    pub fn model_name(&self) -> Option<&str> {
        self.model_name.as_deref()
    }

    /// The safetensors `__metadata__` (merged over shards; empty for `.mllm`).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the checkpoint has no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Whether a tensor named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Tensor names in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tensors.iter().map(|(t, _)| t.name.as_str())
    }

    /// Tensor infos (name, dtype, shape, location) in file order.
    pub fn infos(&self) -> impl Iterator<Item = &TensorInfo> + '_ {
        self.tensors.iter().map(|(t, _)| t)
    }

    /// Info of the tensor `name`, if present.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i].0)
    }

    /// The tensor `name`, if present.
    pub fn get(&self, name: &str) -> Option<TensorView<'_>> {
        self.by_name.get(name).map(|&i| self.view(i))
    }

    /// The tensor `name`, or [`Error::TensorNotFound`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.get(name).ok_or_else(|| Error::TensorNotFound {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }

    /// All tensors, in file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'_>> + '_ {
        (0..self.tensors.len()).map(|i| self.view(i))
    }

    /// Total payload bytes.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|(t, _)| t.len).sum()
    }

    fn view(&self, i: usize) -> TensorView<'_> {
        let (info, file) = &self.tensors[i];
        let bytes = self.files[*file].bytes();
        // Offsets were validated against the file length when the checkpoint was opened.
        let start = info.offset as usize;
        let end = start + info.len as usize;
        TensorView {
            name: &info.name,
            dtype: info.dtype,
            shape: &info.shape,
            bytes: bytes.get(start..end).unwrap_or(&[]),
        }
    }

    /// Drops the resident pages of tensor `name` (advisory; used when streaming).
    pub fn release(&self, name: &str) {
        if let Some(&i) = self.by_name.get(name) {
            let (info, file) = &self.tensors[i];
            self.files[*file].release(info.offset, info.len);
        }
    }

    /// Drops the resident pages of `len` bytes at `offset` inside tensor `name` (advisory).
    pub fn release_range(&self, name: &str, offset: u64, len: u64) {
        if let Some(&i) = self.by_name.get(name) {
            let (info, file) = &self.tensors[i];
            let offset = offset.min(info.len);
            let len = len.min(info.len - offset);
            self.files[*file].release(info.offset + offset, len);
        }
    }

    /// Reads every payload byte once: counts NaN/Inf in float tensors. Works in 16 MB pieces,
    /// releasing pages as it goes, so resident memory stays small.
    pub fn scan(&self) -> ScanReport {
        const PIECE: usize = 16 << 20;
        let mut report = ScanReport::default();
        for t in self.tensors() {
            let mut bad = 0;
            let mut at = 0u64;
            for piece in t.bytes.chunks(PIECE) {
                if t.dtype.is_float() {
                    let sub = TensorView { bytes: piece, ..t };
                    bad += sub.count_non_finite();
                } else {
                    // Read non-float payloads too, so the scan touches every byte.
                    let x = piece
                        .par_chunks(1 << 20)
                        .map(|c| c.iter().fold(0u8, |a, &b| a ^ b))
                        .reduce(|| 0, |a, b| a ^ b);
                    std::hint::black_box(x);
                }
                self.release_range(t.name, at, piece.len() as u64);
                at += piece.len() as u64;
            }
            if bad > 0 {
                report.non_finite.push((t.name.to_string(), bad));
            }
            report.tensors += 1;
            report.bytes += t.bytes.len() as u64;
        }
        report
    }
}
