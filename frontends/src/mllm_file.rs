//! The `.mllm` v2 parameter file: validated memory-mapped reader, streaming writer in both of
//! mllm's layouts, and streaming conversion to and from safetensors.
//!
//! Layout (little-endian, packed), as in `qwen3-flow.md` section 5:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `i32` magic `0x519A` |
//! | 4 | 4 | `i32` version `2` |
//! | 8 | 512 | `char model_name[512]` (NUL-padded) |
//! | 520 | 4 | `u32` num_params |
//! | 524 | 8 | `u64` params_desc_offset (532 in files mllm writes) |
//!
//! then `num_params` descriptors of 352 bytes at `params_desc_offset + i * 352`:
//! `u32 id @0`, `u32 dtype @4`, `u64 size @8`, `u64 absolute data offset @16`,
//! `u64 shape_len @24 (<= 16)`, `i32 shape[16] @32`, `char name[256] @96` (NUL-terminated),
//! then raw row-major payloads, unaligned.
//!
//! The reader follows the absolute data offsets and never assumes where data starts, so it reads
//! both the *static* layout (exactly `num_params` descriptors, data right after them) and the
//! *streaming* layout (room for 1024 descriptors reserved, unused slots zero).

use std::io::Read;
use std::path::Path;

use crate::checkpoint::{Checkpoint, CheckpointFormat, MappedFile, Progress, TensorInfo};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::payload::{Layout, PayloadWriter};
use crate::safetensors::{self as st, TensorSpec};

/// Magic number at offset 0.
pub const MAGIC: i32 = 0x519A;
/// Format version at offset 4.
pub const VERSION: i32 = 2;
/// Size of the file header.
pub const HEADER_LEN: usize = 532;
/// Size of one parameter descriptor.
pub const DESCRIPTOR_LEN: usize = 352;
/// Capacity of the model name field (including its NUL padding).
pub const MODEL_NAME_LEN: usize = 512;
/// Capacity of a tensor name field (the name must be shorter: it needs a NUL terminator).
pub const NAME_LEN: usize = 256;
/// Largest rank a descriptor can hold.
pub const MAX_RANK: usize = 16;
/// Descriptor slots the streaming layout reserves.
pub const STREAMING_RESERVED: usize = 1024;

/// Where the writer puts the descriptors and the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MllmLayout {
    /// Exactly `N` descriptors, data right after them.
    Static,
    /// Room for [`STREAMING_RESERVED`] descriptors (unused slots zero), data after that room, as
    /// mllm's convertor writes. With more than 1024 tensors the room grows to exactly `N`
    /// descriptors (mllm itself would fail; readers follow offsets, so the file stays valid).
    #[default]
    Streaming,
}

impl MllmLayout {
    /// Number of descriptor slots reserved for `n` tensors.
    pub fn reserved_slots(self, n: usize) -> usize {
        match self {
            MllmLayout::Static => n,
            MllmLayout::Streaming => n.max(STREAMING_RESERVED),
        }
    }
}

/// One validated descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MllmTensor {
    /// The descriptor's id field.
    pub id: u32,
    /// Name, dtype, shape and absolute payload location.
    pub info: TensorInfo,
}

/// The validated header and descriptor table of a `.mllm` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MllmHeader {
    /// The model name (up to the first NUL).
    pub model_name: String,
    /// Offset of the descriptor table.
    pub params_desc_offset: u64,
    /// The descriptors, in table order.
    pub tensors: Vec<MllmTensor>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Validates the header and descriptors of the `.mllm` file whose full contents are `data`.
/// `path` is only used in error messages.
pub fn parse(data: &[u8], path: &Path) -> Result<MllmHeader> {
    let err = |msg: String| Error::Mllm {
        path: path.to_path_buf(),
        msg,
    };
    let file_len = data.len() as u64;
    if data.len() < HEADER_LEN {
        return Err(err(format!(
            "truncated: file is {file_len} bytes, shorter than the {HEADER_LEN}-byte header"
        )));
    }
    let magic = u32_at(data, 0) as i32;
    if magic != MAGIC {
        return Err(err(format!("bad magic {magic:#x} (expected {MAGIC:#x})")));
    }
    let version = u32_at(data, 4) as i32;
    if version != VERSION {
        return Err(err(format!(
            "unsupported version {version} (expected {VERSION})"
        )));
    }
    let name_field = &data[8..8 + MODEL_NAME_LEN];
    let name_end = name_field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(MODEL_NAME_LEN);
    let model_name = String::from_utf8_lossy(&name_field[..name_end]).into_owned();
    let num_params = u32_at(data, 520) as u64;
    let desc_off = u64_at(data, 524);
    if desc_off < HEADER_LEN as u64 {
        return Err(err(format!(
            "descriptor table offset {desc_off} overlaps the {HEADER_LEN}-byte header"
        )));
    }
    let desc_end = num_params
        .checked_mul(DESCRIPTOR_LEN as u64)
        .and_then(|n| n.checked_add(desc_off))
        .filter(|&e| e <= file_len)
        .ok_or_else(|| {
            err(format!(
                "truncated: {num_params} descriptors at offset {desc_off} do not fit in {file_len} bytes"
            ))
        })?;

    let mut tensors = Vec::with_capacity(num_params as usize);
    let mut names = std::collections::HashSet::with_capacity(num_params as usize);
    for i in 0..num_params as usize {
        let start = desc_off as usize + i * DESCRIPTOR_LEN;
        let d = &data[start..start + DESCRIPTOR_LEN];
        let raw_name = &d[96..96 + NAME_LEN];
        let nul = raw_name.iter().position(|&b| b == 0).ok_or_else(|| {
            err(format!(
                "descriptor {i}: name is not NUL-terminated within {NAME_LEN} bytes"
            ))
        })?;
        let name = std::str::from_utf8(&raw_name[..nul])
            .map_err(|_| err(format!("descriptor {i}: name is not UTF-8")))?
            .to_string();
        if name.is_empty() {
            return Err(err(format!("descriptor {i}: empty tensor name")));
        }
        let terr = |msg: String| err(format!("tensor {name}: {msg}"));
        let id = u32_at(d, 0);
        let code = u32_at(d, 4);
        let size = u64_at(d, 8);
        let offset = u64_at(d, 16);
        let shape_len = u64_at(d, 24);
        let dtype = DType::from_mllm_code(code).ok_or_else(|| Error::UnknownDtypeCode {
            path: path.to_path_buf(),
            tensor: name.clone(),
            code,
        })?;
        if shape_len > MAX_RANK as u64 {
            return Err(terr(format!("shape_len {shape_len} > {MAX_RANK}")));
        }
        let mut shape = Vec::with_capacity(shape_len as usize);
        for k in 0..shape_len as usize {
            let dim = u32_at(d, 32 + 4 * k) as i32;
            if dim < 0 {
                return Err(terr(format!("negative dimension {dim} in shape")));
            }
            shape.push(dim as usize);
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |acc, &x| acc.checked_mul(x as u64))
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        let want = dtype
            .byte_size(numel)
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        if size != want {
            return Err(terr(format!(
                "size {size} != {want} (shape {shape:?} x dtype {dtype})"
            )));
        }
        let end = offset
            .checked_add(size)
            .filter(|&e| e <= file_len)
            .ok_or_else(|| {
                terr(format!(
                    "data [{offset}, {offset}+{size}) out of range: file is {file_len} bytes"
                ))
            })?;
        if size > 0 && offset < desc_end {
            return Err(terr(format!(
                "data at offset {offset} overlaps the header/descriptor table (ends at {desc_end})"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(err(format!("duplicate tensor name {name}")));
        }
        debug_assert!(end >= offset);
        tensors.push(MllmTensor {
            id,
            info: TensorInfo {
                name,
                dtype,
                shape,
                offset,
                len: size,
            },
        });
    }

    let mut ranges: Vec<(u64, u64, usize)> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| t.info.len > 0)
        .map(|(i, t)| (t.info.offset, t.info.offset + t.info.len, i))
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.0 < a.1 {
            return Err(err(format!(
                "tensor {} (data [{}, {})) overlaps tensor {} (data [{}, {}))",
                tensors[b.2].info.name, b.0, b.1, tensors[a.2].info.name, a.0, a.1
            )));
        }
    }
    Ok(MllmHeader {
        model_name,
        params_desc_offset: desc_off,
        tensors,
    })
}

/// Whether the file at `path` starts with the `.mllm` magic number.
pub fn has_magic(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map(|_| i32::from_le_bytes(buf) == MAGIC)
        .unwrap_or(false)
}

/// Opens a `.mllm` file as a [`Checkpoint`] (tensors in descriptor order).
pub fn open(path: &Path) -> Result<Checkpoint> {
    let map = MappedFile::open(path)?;
    let header = parse(map.bytes(), path)?;
    let tensors = header.tensors.into_iter().map(|t| (t.info, 0)).collect();
    Checkpoint::from_parts(
        path.to_path_buf(),
        CheckpointFormat::Mllm,
        vec![map],
        tensors,
        Some(header.model_name),
        Default::default(),
    )
}

/// Builds the header plus descriptor table (reserved room included) for `tensors` laid out back
/// to back after it, in order.
fn build_prefix(
    path: &Path,
    model_name: &str,
    tensors: &[TensorSpec],
    layout: MllmLayout,
) -> Result<Layout> {
    let err = |msg: String| Error::Write {
        path: path.to_path_buf(),
        msg,
    };
    if model_name.len() >= MODEL_NAME_LEN || model_name.contains('\0') {
        return Err(err(format!(
            "model name must be shorter than {MODEL_NAME_LEN} bytes and contain no NUL"
        )));
    }
    let n = tensors.len();
    let num_params =
        u32::try_from(n).map_err(|_| err(format!("{n} tensors do not fit a u32 count")))?;
    let slots = layout.reserved_slots(n);
    let data_start = (HEADER_LEN + slots * DESCRIPTOR_LEN) as u64;
    let mut out = vec![0u8; data_start as usize];
    out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&VERSION.to_le_bytes());
    out[8..8 + model_name.len()].copy_from_slice(model_name.as_bytes());
    out[520..524].copy_from_slice(&num_params.to_le_bytes());
    out[524..532].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    let mut names = std::collections::HashSet::with_capacity(n);
    let mut lens = Vec::with_capacity(n);
    let mut offset = data_start;
    for (i, t) in tensors.iter().enumerate() {
        let terr = |msg: String| err(format!("tensor {}: {msg}", t.name));
        if t.name.is_empty() || t.name.len() >= NAME_LEN || t.name.contains('\0') {
            return Err(terr(format!(
                "name must be 1..{} bytes without NUL",
                NAME_LEN - 1
            )));
        }
        if !names.insert(t.name.as_str()) {
            return Err(terr("duplicate tensor name".into()));
        }
        if t.shape.len() > MAX_RANK {
            return Err(terr(format!("rank {} > {MAX_RANK}", t.shape.len())));
        }
        let size = t
            .byte_len()
            .ok_or_else(|| terr(format!("shape {:?} overflows", t.shape)))?;
        let d = &mut out[HEADER_LEN + i * DESCRIPTOR_LEN..HEADER_LEN + (i + 1) * DESCRIPTOR_LEN];
        d[0..4].copy_from_slice(&(i as u32).to_le_bytes());
        d[4..8].copy_from_slice(&t.dtype.mllm_code().to_le_bytes());
        d[8..16].copy_from_slice(&size.to_le_bytes());
        d[16..24].copy_from_slice(&offset.to_le_bytes());
        d[24..32].copy_from_slice(&(t.shape.len() as u64).to_le_bytes());
        for (k, &dim) in t.shape.iter().enumerate() {
            let dim = i32::try_from(dim)
                .map_err(|_| terr(format!("dimension {dim} does not fit an i32")))?;
            d[32 + 4 * k..36 + 4 * k].copy_from_slice(&dim.to_le_bytes());
        }
        d[96..96 + t.name.len()].copy_from_slice(t.name.as_bytes());
        offset = offset
            .checked_add(size)
            .ok_or_else(|| terr("file size overflows".into()))?;
        lens.push((t.name.clone(), size));
    }
    Ok((out, lens))
}

/// Streaming `.mllm` writer: declare all tensors up front, then write payloads in that order,
/// whole ([`MllmWriter::write_tensor`]) or in chunks ([`MllmWriter::write`]). Nothing appears at
/// the destination until [`MllmWriter::finish`] succeeds.
pub struct MllmWriter {
    inner: PayloadWriter,
}

impl MllmWriter {
    /// Starts writing `path`.
    pub fn create(
        path: impl AsRef<Path>,
        model_name: &str,
        tensors: &[TensorSpec],
        layout: MllmLayout,
    ) -> Result<Self> {
        let path = path.as_ref();
        let (prefix, lens) = build_prefix(path, model_name, tensors, layout)?;
        Ok(MllmWriter {
            inner: PayloadWriter::create(path, &prefix, lens)?,
        })
    }

    /// Name of the tensor whose payload comes next.
    pub fn next_tensor(&self) -> Option<&str> {
        self.inner.current()
    }

    /// Appends payload bytes (may span tensor boundaries).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.write(bytes)
    }

    /// Writes the whole payload of `name`, which must be the next tensor.
    pub fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.inner.write_tensor(name, bytes)
    }

    /// Checks completeness and moves the file into place.
    pub fn finish(self) -> Result<()> {
        self.inner.finish()
    }
}

/// Writes every tensor of `ckpt` (any format) to the `.mllm` file `out`, streaming tensor by
/// tensor from the memory map.
pub fn write_checkpoint(
    ckpt: &Checkpoint,
    out: &Path,
    model_name: &str,
    layout: MllmLayout,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<()> {
    let specs: Vec<TensorSpec> = ckpt.infos().map(TensorSpec::from).collect();
    let mut w = MllmWriter::create(out, model_name, &specs, layout)?;
    st::stream_tensors(ckpt, progress, |bytes| w.write(bytes))?;
    w.finish()
}

/// Which way [`convert`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// safetensors (file, index or directory) to `.mllm`.
    SafetensorsToMllm,
    /// `.mllm` to safetensors.
    MllmToSafetensors,
}

/// Options of [`convert`].
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Layout of a `.mllm` output.
    pub layout: MllmLayout,
    /// Model name of a `.mllm` output; default: the safetensors metadata `mllm_model_name`, else
    /// the input's directory name (for `model.safetensors`) or file stem.
    pub model_name: Option<String>,
}

/// What [`convert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Conversion direction.
    pub direction: Direction,
    /// Tensors copied.
    pub tensors: usize,
    /// Payload bytes copied.
    pub bytes: u64,
}

/// Picks the direction from the output extension: `.mllm` means safetensors to `.mllm`,
/// `.safetensors` means `.mllm` to safetensors; anything else is ambiguous (`None`).
pub fn direction_for(output: &Path) -> Option<Direction> {
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("mllm") => Some(Direction::SafetensorsToMllm),
        Some("safetensors") => Some(Direction::MllmToSafetensors),
        _ => None,
    }
}

fn default_model_name(ckpt: &Checkpoint, input: &Path) -> String {
    if let Some(n) = ckpt.metadata().get("mllm_model_name") {
        return n.clone();
    }
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let is_generic = |s: &str| s == "model" || s.starts_with("model.safetensors");
    let mut name = if input.is_dir() {
        input
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    } else {
        stem(input).filter(|s| !is_generic(s)).or_else(|| {
            input.canonicalize().ok().and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
        })
    }
    .unwrap_or_else(|| "model".to_string());
    while name.len() >= MODEL_NAME_LEN {
        name.pop();
    }
    name
}

/// Converts between safetensors and `.mllm`, streaming tensor by tensor. The direction comes
/// from the file extensions (see [`direction_for`]); the input must actually be of the expected
/// format.
pub fn convert(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ConvertSummary> {
    let direction = direction_for(output).ok_or_else(|| Error::Checkpoint {
        path: output.to_path_buf(),
        msg: "cannot tell the conversion direction: the output must end in .mllm or .safetensors"
            .into(),
    })?;
    let ckpt = Checkpoint::open(input)?;
    let input_is_mllm = ckpt.format() == CheckpointFormat::Mllm;
    match direction {
        Direction::SafetensorsToMllm if input_is_mllm => {
            return Err(Error::Checkpoint {
                path: input.to_path_buf(),
                msg: "input is a .mllm file but the output asks for .mllm too".into(),
            })
        }
        Direction::MllmToSafetensors if !input_is_mllm => {
            return Err(Error::Checkpoint {
                path: input.to_path_buf(),
                msg: "input is safetensors but the output asks for safetensors too".into(),
            })
        }
        _ => {}
    }
    match direction {
        Direction::SafetensorsToMllm => {
            let name = opts
                .model_name
                .clone()
                .unwrap_or_else(|| default_model_name(&ckpt, input));
            write_checkpoint(&ckpt, output, &name, opts.layout, progress)?;
        }
        Direction::MllmToSafetensors => st::write_checkpoint(&ckpt, output, progress)?,
    }
    Ok(ConvertSummary {
        direction,
        tensors: ckpt.len(),
        bytes: ckpt.total_bytes(),
    })
}
