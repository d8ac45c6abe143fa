//! Safetensors reading (validated, memory-mapped, zero copy) and streaming writing.
//!
//! A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON mapping
//! tensor names to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the data
//! section, plus an optional `"__metadata__"` string map), then the data section.
//!
//! [`parse_header`] checks everything before any payload is trusted: the header length fits the
//! file, the header is a JSON object without duplicate keys, each dtype is supported, each
//! `shape × element size` equals its byte range, and the ranges cover the data section exactly
//! (in range, no overlap, no gap, no trailing bytes), as the format requires. Every error names the
//! file and, where one is involved, the tensor.
//!
//! [`SafetensorsWriter`] streams payloads to disk tensor by tensor (or chunk by chunk) into a
//! temporary file that is renamed into place when complete.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::checkpoint::{Checkpoint, CheckpointFormat, MappedFile, Progress, TensorInfo};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::payload::{Layout, PayloadWriter};

/// Largest header accepted (same limit as the reference implementation).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The validated header of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsHeader {
    /// Tensors sorted by payload offset; offsets are absolute within the file.
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` map (empty when absent).
    pub metadata: BTreeMap<String, String>,
    /// Absolute offset of the data section (`8 + header length`).
    pub data_start: u64,
}

/// The top-level JSON object, kept as an ordered list so that duplicate keys can be detected.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    v.push(entry);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Validates the header of the safetensors file whose full contents are `data`. `path` is only
/// used in error messages.
pub fn parse_header(data: &[u8], path: &Path) -> Result<SafetensorsHeader> {
    let err = |msg: String| Error::Safetensors {
        path: path.to_path_buf(),
        msg,
    };
    let file_len = data.len() as u64;
    let Some(len_bytes) = data.get(..8) else {
        return Err(err(format!(
            "file is {file_len} bytes, too short for the 8-byte header length"
        )));
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len_bytes);
    let header_len = u64::from_le_bytes(n);
    if header_len > file_len - 8 {
        return Err(err(format!(
            "header length {header_len} goes beyond the end of the file ({file_len} bytes)"
        )));
    }
    if header_len > MAX_HEADER_LEN {
        return Err(err(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        )));
    }
    let data_start = 8 + header_len;
    let data_len = file_len - data_start;
    let header = &data[8..data_start as usize];
    let text = std::str::from_utf8(header).map_err(|e| err(format!("header is not UTF-8: {e}")))?;
    let entries: Entries = serde_json::from_str(text.trim_end_matches([' ', '\0']))
        .map_err(|e| err(format!("header is not a JSON object: {e}")))?;

    let mut seen = std::collections::HashSet::new();
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(entries.0.len());
    let mut ranges = Vec::with_capacity(entries.0.len());
    for (name, value) in entries.0 {
        if !seen.insert(name.clone()) {
            return Err(err(format!("key {name:?} appears twice in the header")));
        }
        if name == "__metadata__" {
            let Value::Object(map) = value else {
                return Err(err("__metadata__ is not an object".into()));
            };
            for (k, v) in map {
                let Value::String(s) = v else {
                    return Err(err(format!("__metadata__ value of {k:?} is not a string")));
                };
                metadata.insert(k, s);
            }
            continue;
        }
        let terr = |msg: String| err(format!("tensor {name}: {msg}"));
        let Value::Object(map) = value else {
            return Err(terr("entry is not an object".into()));
        };
        let mut dtype = None;
        let mut shape = None;
        let mut offsets = None;
        for (k, v) in map {
            match k.as_str() {
                "dtype" => {
                    let Value::String(s) = v else {
                        return Err(terr("dtype is not a string".into()));
                    };
                    dtype = Some(
                        DType::from_safetensors_name(&s)
                            .ok_or_else(|| terr(format!("unsupported dtype {s:?}")))?,
                    );
                }
                "shape" => {
                    let Value::Array(dims) = v else {
                        return Err(terr("shape is not an array".into()));
                    };
                    let mut s = Vec::with_capacity(dims.len());
                    for d in dims {
                        let d = d
                            .as_u64()
                            .and_then(|d| usize::try_from(d).ok())
                            .ok_or_else(|| {
                                terr(format!("shape entry {d} is not a valid dimension"))
                            })?;
                        s.push(d);
                    }
                    shape = Some(s);
                }
                "data_offsets" => {
                    let pair = match &v {
                        Value::Array(a) if a.len() == 2 => a[0].as_u64().zip(a[1].as_u64()),
                        _ => None,
                    };
                    offsets = Some(pair.ok_or_else(|| {
                        terr(format!(
                            "data_offsets {v} is not a pair of unsigned integers"
                        ))
                    })?);
                }
                other => return Err(terr(format!("unexpected key {other:?}"))),
            }
        }
        let dtype = dtype.ok_or_else(|| terr("missing dtype".into()))?;
        let shape: Vec<usize> = shape.ok_or_else(|| terr("missing shape".into()))?;
        let (begin, end) = offsets.ok_or_else(|| terr("missing data_offsets".into()))?;
        if end < begin {
            return Err(terr(format!(
                "data_offsets [{begin}, {end}] end before they begin"
            )));
        }
        if end > data_len {
            return Err(terr(format!(
                "data_offsets [{begin}, {end}] out of range: the data section has {data_len} bytes"
            )));
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        let want = dtype
            .byte_size(numel)
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        if want != end - begin {
            return Err(terr(format!(
                "dtype {} with shape {shape:?} needs {want} bytes, but data_offsets [{begin}, {end}] hold {}",
                dtype.safetensors_name().unwrap_or("?"),
                end - begin
            )));
        }
        ranges.push((begin, end, tensors.len()));
        tensors.push(TensorInfo {
            name,
            dtype,
            shape,
            offset: data_start + begin,
            len: end - begin,
        });
    }

    // The data section must be covered exactly: sorted ranges, each starting where the previous
    // one ended.
    ranges.sort_unstable();
    let mut cursor = 0u64;
    let mut prev: Option<usize> = None;
    for &(begin, end, i) in &ranges {
        if begin < cursor {
            let p = prev.map(|p| tensors[p].name.as_str()).unwrap_or("?");
            return Err(err(format!(
                "tensor {} (data_offsets [{begin}, {end}]) overlaps tensor {p}",
                tensors[i].name
            )));
        }
        if begin > cursor {
            return Err(err(format!(
                "gap of {} unindexed bytes before tensor {}",
                begin - cursor,
                tensors[i].name
            )));
        }
        cursor = end;
        prev = Some(i);
    }
    if cursor != data_len {
        return Err(err(format!(
            "{} bytes after the last tensor are not indexed",
            data_len - cursor
        )));
    }
    let order: Vec<usize> = ranges.iter().map(|r| r.2).collect();
    let mut slots: Vec<Option<TensorInfo>> = tensors.into_iter().map(Some).collect();
    let tensors = order.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok(SafetensorsHeader {
        tensors,
        metadata,
        data_start,
    })
}

/// Opens one safetensors file.
pub fn open_file(path: &Path) -> Result<Checkpoint> {
    let map = MappedFile::open(path)?;
    let header = parse_header(map.bytes(), path)?;
    let tensors = header.tensors.into_iter().map(|t| (t, 0)).collect();
    Checkpoint::from_parts(
        path.to_path_buf(),
        CheckpointFormat::Safetensors,
        vec![map],
        tensors,
        None,
        header.metadata,
    )
}

/// The content of a `model.safetensors.index.json`.
#[derive(Deserialize)]
struct ShardIndex {
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
    weight_map: BTreeMap<String, String>,
}

/// Opens a sharded checkpoint from its index file; the shards are next to the index.
pub fn open_sharded(index_path: &Path) -> Result<Checkpoint> {
    let err = |msg: String| Error::Checkpoint {
        path: index_path.to_path_buf(),
        msg,
    };
    let text = std::fs::read_to_string(index_path).map_err(|e| Error::io(index_path, e))?;
    let index: ShardIndex =
        serde_json::from_str(&text).map_err(|e| err(format!("bad index JSON: {e}")))?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let mut shard_names: Vec<&str> = index.weight_map.values().map(String::as_str).collect();
    shard_names.sort_unstable();
    shard_names.dedup();
    let mut files = Vec::new();
    let mut tensors = Vec::new();
    let mut metadata = BTreeMap::new();
    if let Some(meta) = index.metadata {
        for (k, v) in meta {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            metadata.insert(k, s);
        }
    }
    for (fi, shard) in shard_names.iter().enumerate() {
        let p = Path::new(shard);
        let plain = p.components().count() == 1
            && matches!(p.components().next(), Some(std::path::Component::Normal(_)));
        if !plain {
            return Err(err(format!(
                "shard name {shard:?} is not a plain file name"
            )));
        }
        let shard_path = dir.join(p);
        let map = MappedFile::open(&shard_path)?;
        let header = parse_header(map.bytes(), &shard_path)?;
        for t in header.tensors {
            match index.weight_map.get(&t.name) {
                Some(f) if f == shard => tensors.push((t, fi)),
                Some(f) => {
                    return Err(err(format!(
                        "tensor {} is in shard {shard} but the index puts it in {f}",
                        t.name
                    )))
                }
                None => {
                    return Err(err(format!(
                        "tensor {} in shard {shard} is not listed in the index",
                        t.name
                    )))
                }
            }
        }
        for (k, v) in header.metadata {
            metadata.entry(k).or_insert(v);
        }
        files.push(map);
    }
    let present: std::collections::HashSet<&str> =
        tensors.iter().map(|(t, _)| t.name.as_str()).collect();
    if let Some((name, shard)) = index
        .weight_map
        .iter()
        .find(|(n, _)| !present.contains(n.as_str()))
    {
        return Err(err(format!(
            "the index lists tensor {name} in {shard}, which does not contain it"
        )));
    }
    Checkpoint::from_parts(
        index_path.to_path_buf(),
        CheckpointFormat::ShardedSafetensors,
        files,
        tensors,
        None,
        metadata,
    )
}

/// Name, dtype and shape of a tensor to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// A new spec.
    pub fn new(name: impl Into<String>, dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorSpec {
            name: name.into(),
            dtype,
            shape: shape.into(),
        }
    }

    /// Number of elements, `None` on overflow.
    pub fn numel(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
    }

    /// Payload size in bytes, `None` on overflow.
    pub fn byte_len(&self) -> Option<u64> {
        self.numel().and_then(|n| self.dtype.byte_size(n))
    }
}

impl From<&TensorInfo> for TensorSpec {
    fn from(t: &TensorInfo) -> Self {
        TensorSpec::new(t.name.clone(), t.dtype, t.shape.clone())
    }
}

/// Builds the 8-byte length plus JSON header (padded with spaces to a multiple of 8) for tensors
/// laid out back to back in the given order. Returns the header and the payload sizes.
fn build_header(
    path: &Path,
    tensors: &[TensorSpec],
    metadata: &BTreeMap<String, String>,
) -> Result<Layout> {
    let err = |msg: String| Error::Write {
        path: path.to_path_buf(),
        msg,
    };
    let mut json = String::from("{");
    let mut first = true;
    if !metadata.is_empty() {
        let meta = serde_json::to_string(metadata).map_err(|e| err(e.to_string()))?;
        json.push_str("\"__metadata__\":");
        json.push_str(&meta);
        first = false;
    }
    let mut names = std::collections::HashSet::new();
    let mut lens = Vec::with_capacity(tensors.len());
    let mut offset = 0u64;
    for t in tensors {
        if t.name == "__metadata__" || !names.insert(t.name.as_str()) {
            return Err(err(format!("duplicate or reserved tensor name {}", t.name)));
        }
        let dt = t.dtype.safetensors_name().ok_or_else(|| {
            err(format!(
                "tensor {}: dtype {} has no safetensors equivalent",
                t.name, t.dtype
            ))
        })?;
        let len = t
            .byte_len()
            .ok_or_else(|| err(format!("tensor {}: shape {:?} overflows", t.name, t.shape)))?;
        if !first {
            json.push(',');
        }
        first = false;
        let name = serde_json::to_string(&t.name).map_err(|e| err(e.to_string()))?;
        let shape = serde_json::to_string(&t.shape).map_err(|e| err(e.to_string()))?;
        json.push_str(&format!(
            "{name}:{{\"dtype\":\"{dt}\",\"shape\":{shape},\"data_offsets\":[{offset},{}]}}",
            offset + len
        ));
        offset += len;
        lens.push((t.name.clone(), len));
    }
    json.push('}');
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    Ok((out, lens))
}

/// Streaming safetensors writer: declare all tensors up front, then write their payloads in that
/// order, whole ([`SafetensorsWriter::write_tensor`]) or in chunks ([`SafetensorsWriter::write`]).
/// Nothing appears at the destination until [`SafetensorsWriter::finish`] succeeds.
pub struct SafetensorsWriter {
    inner: PayloadWriter,
}

impl SafetensorsWriter {
    /// Starts writing `path` with these tensors (payloads in this order) and metadata.
    pub fn create(
        path: impl AsRef<Path>,
        tensors: &[TensorSpec],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let (header, lens) = build_header(path, tensors, metadata)?;
        Ok(SafetensorsWriter {
            inner: PayloadWriter::create(path, &header, lens)?,
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

/// Writes every tensor of `ckpt` to the safetensors file `out`, streaming tensor by tensor from
/// the memory map (pages are released after each tensor). The metadata is the checkpoint's own
/// (none for `.mllm`) with `"format": "pt"` added when absent, so that a safetensors file written
/// by this crate survives a trip through `.mllm` byte for byte.
pub fn write_checkpoint(
    ckpt: &Checkpoint,
    out: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<()> {
    let specs: Vec<TensorSpec> = ckpt.infos().map(TensorSpec::from).collect();
    let mut metadata = ckpt.metadata().clone();
    metadata
        .entry("format".into())
        .or_insert_with(|| "pt".into());
    let mut w = SafetensorsWriter::create(out, &specs, &metadata)?;
    stream_tensors(ckpt, progress, |bytes| w.write(bytes))?;
    w.finish()
}

/// Bytes copied between page releases when streaming.
const STREAM_CHUNK: usize = 16 << 20;

/// Feeds every payload byte of `ckpt` to `sink` in file order, in chunks of at most
/// [`STREAM_CHUNK`] bytes (so resident memory stays bounded even for a huge tensor), releasing the
/// mapped pages behind it and reporting progress after each tensor.
pub(crate) fn stream_tensors(
    ckpt: &Checkpoint,
    progress: &mut dyn FnMut(Progress<'_>),
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let total = ckpt.total_bytes();
    let count = ckpt.len();
    let mut done = 0u64;
    for (i, t) in ckpt.tensors().enumerate() {
        let mut at = 0usize;
        for chunk in t.bytes.chunks(STREAM_CHUNK) {
            sink(chunk)?;
            ckpt.release_range(t.name, at as u64, chunk.len() as u64);
            at += chunk.len();
        }
        done += t.bytes.len() as u64;
        progress(Progress {
            tensor: t.name,
            tensors_done: i + 1,
            tensors_total: count,
            bytes_done: done,
            bytes_total: total,
        });
    }
    Ok(())
}

/// Path of the single-file checkpoint inside a model directory.
pub fn default_file(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data_len: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.resize(v.len() + data_len, 0);
        v
    }

    #[test]
    fn writer_header_is_accepted_by_the_reference_crate() {
        let specs = vec![
            TensorSpec::new("a", DType::BF16, vec![2, 3]),
            TensorSpec::new("b\"q", DType::I64, vec![]),
        ];
        let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        let (mut bytes, lens) = build_header(Path::new("x"), &specs, &meta).unwrap();
        assert_eq!(lens.iter().map(|l| l.1).sum::<u64>(), 20);
        assert_eq!((bytes.len() - 8) % 8, 0);
        bytes.extend((0..20u8).collect::<Vec<_>>());
        let st = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("a").unwrap().shape(), &[2, 3]);
        assert_eq!(
            st.tensor("b\"q").unwrap().data(),
            &(12..20u8).collect::<Vec<_>>()[..]
        );
        let ours = parse_header(&bytes, Path::new("x")).unwrap();
        assert_eq!(ours.tensors[1].name, "b\"q");
        assert_eq!(ours.metadata, meta);
    }

    #[test]
    fn rejects_malformed_headers() {
        let p = Path::new("m.safetensors");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1, 2, 3], "too short"),
            (
                {
                    let mut v = 1000u64.to_le_bytes().to_vec();
                    v.extend_from_slice(b"{}");
                    v
                },
                "beyond the end",
            ),
            (file("not json", 0), "not a JSON object"),
            (file("[1,2]", 0), "not a JSON object"),
            (
                file(
                    r#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#,
                    8,
                ),
                "tensor a: unsupported dtype",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                    8,
                ),
                "tensor a: dtype F32 with shape [3] needs 12 bytes",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                    4,
                ),
                "tensor a: data_offsets [0, 8] out of range",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    8,
                ),
                "overlaps tensor a",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    8,
                ),
                "gap of 4 unindexed bytes before tensor a",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                    8,
                ),
                "4 bytes after the last tensor",
            ),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#,
                    0,
                ),
                "appears twice",
            ),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#,
                    0,
                ),
                "not a valid dimension",
            ),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}"#,
                    0,
                ),
                "overflows",
            ),
            (file(r#"{"__metadata__":{"k":1}}"#, 0), "not a string"),
        ];
        for (bytes, want) in cases {
            let e = parse_header(&bytes, p).unwrap_err().to_string();
            assert!(e.contains(want), "error {e:?} should contain {want:?}");
            assert!(
                e.contains("m.safetensors"),
                "error {e:?} should name the file"
            );
        }
    }
}
