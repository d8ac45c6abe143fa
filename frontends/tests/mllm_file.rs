//! `.mllm` v2: byte layout, both writer layouts, round trips with safetensors, and every
//! malformed-input error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mllm_frontends::mllm_file::{self, ConvertOptions, MllmLayout};
use mllm_frontends::{Checkpoint, CheckpointFormat, DType, Error, SafetensorsWriter, TensorSpec};

/// A fresh, empty scratch directory under the target dir's tmp.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mllm-frontends-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Tensors of many dtypes with recognisable payloads.
fn sample_tensors() -> Vec<(TensorSpec, Vec<u8>)> {
    let specs = vec![
        TensorSpec::new("model.embed_tokens.weight", DType::BF16, vec![4, 3]),
        TensorSpec::new("f32", DType::F32, vec![2, 2]),
        TensorSpec::new("f16", DType::F16, vec![5]),
        TensorSpec::new("i8", DType::I8, vec![1, 1, 3, 2]),
        TensorSpec::new("u8", DType::U8, vec![7]),
        TensorSpec::new("i16", DType::I16, vec![3]),
        TensorSpec::new("u16", DType::U16, vec![2, 3]),
        TensorSpec::new("i32.zero_point", DType::I32, vec![1]),
        TensorSpec::new("i64", DType::I64, vec![2]),
        TensorSpec::new("scalar", DType::F32, vec![]),
        TensorSpec::new("empty", DType::F32, vec![0, 4]),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.byte_len().unwrap() as usize;
            let bytes = (0..n).map(|k| (k * 7 + i * 31) as u8).collect();
            (s, bytes)
        })
        .collect()
}

fn write_safetensors(path: &Path, tensors: &[(TensorSpec, Vec<u8>)]) {
    let specs: Vec<TensorSpec> = tensors.iter().map(|t| t.0.clone()).collect();
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let mut w = SafetensorsWriter::create(path, &specs, &meta).unwrap();
    for (s, b) in tensors {
        w.write_tensor(&s.name, b).unwrap();
    }
    w.finish().unwrap();
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn round_trip_both_layouts_is_bit_exact() {
    let dir = scratch("roundtrip");
    let tensors = sample_tensors();
    let src = dir.join("model.safetensors");
    write_safetensors(&src, &tensors);
    for (layout, tag) in [
        (MllmLayout::Static, "static"),
        (MllmLayout::Streaming, "streaming"),
    ] {
        let mllm = dir.join(format!("{tag}.mllm"));
        let back = dir.join(format!("{tag}.safetensors"));
        let mut reports = 0;
        let opts = ConvertOptions {
            layout,
            model_name: Some("qwen3-test".into()),
        };
        let s = mllm_file::convert(&src, &mllm, &opts, &mut |_| reports += 1).unwrap();
        assert_eq!(s.tensors, tensors.len());
        assert_eq!(reports, tensors.len());
        mllm_file::convert(&mllm, &back, &ConvertOptions::default(), &mut |_| {}).unwrap();
        // Whole-file identity: same header, same order, same payloads.
        assert_eq!(
            std::fs::read(&src).unwrap(),
            std::fs::read(&back).unwrap(),
            "{tag}"
        );

        let ck = Checkpoint::open(&mllm).unwrap();
        assert_eq!(ck.format(), CheckpointFormat::Mllm);
        assert_eq!(ck.model_name(), Some("qwen3-test"));
        let names: Vec<&str> = ck.names().collect();
        let want: Vec<&str> = tensors.iter().map(|t| t.0.name.as_str()).collect();
        assert_eq!(names, want);
        for (spec, bytes) in &tensors {
            let v = ck.tensor(&spec.name).unwrap();
            assert_eq!(v.dtype, spec.dtype);
            assert_eq!(v.shape, &spec.shape[..]);
            assert_eq!(v.bytes, &bytes[..]);
        }
    }
}

#[test]
fn byte_layout_matches_the_spec() {
    let dir = scratch("layout");
    let tensors = sample_tensors();
    let specs: Vec<TensorSpec> = tensors.iter().map(|t| t.0.clone()).collect();
    for layout in [MllmLayout::Static, MllmLayout::Streaming] {
        let path = dir.join("m.mllm");
        let mut w = mllm_file::MllmWriter::create(&path, "name-x", &specs, layout).unwrap();
        for (s, b) in &tensors {
            w.write_tensor(&s.name, b).unwrap();
        }
        w.finish().unwrap();
        let b = std::fs::read(&path).unwrap();
        let n = tensors.len();
        assert_eq!(le_u32(&b, 0), 0x519A);
        assert_eq!(le_u32(&b, 4), 2);
        assert_eq!(&b[8..14], b"name-x");
        assert!(b[14..520].iter().all(|&x| x == 0));
        assert_eq!(le_u32(&b, 520) as usize, n);
        assert_eq!(le_u64(&b, 524), 532);
        let slots = match layout {
            MllmLayout::Static => n,
            MllmLayout::Streaming => 1024,
        };
        let data_start = 532 + slots * 352;
        let mut expect_off = data_start as u64;
        for (i, (spec, bytes)) in tensors.iter().enumerate() {
            let d = &b[532 + i * 352..532 + (i + 1) * 352];
            assert_eq!(le_u32(d, 0) as usize, i, "id");
            assert_eq!(le_u32(d, 4), spec.dtype.mllm_code());
            assert_eq!(le_u64(d, 8), bytes.len() as u64);
            assert_eq!(le_u64(d, 16), expect_off);
            assert_eq!(le_u64(d, 24) as usize, spec.shape.len());
            for k in 0..16 {
                let dim = i32::from_le_bytes(d[32 + 4 * k..36 + 4 * k].try_into().unwrap());
                assert_eq!(dim, spec.shape.get(k).map(|&x| x as i32).unwrap_or(0));
            }
            let name = &d[96..352];
            assert_eq!(&name[..spec.name.len()], spec.name.as_bytes());
            assert!(name[spec.name.len()..].iter().all(|&x| x == 0));
            let off = expect_off as usize;
            assert_eq!(&b[off..off + bytes.len()], &bytes[..]);
            expect_off += bytes.len() as u64;
        }
        // Unused streaming slots are zero, and nothing follows the last payload.
        assert!(b[532 + n * 352..data_start].iter().all(|&x| x == 0));
        assert_eq!(b.len() as u64, expect_off);
    }
}

#[test]
fn streaming_layout_with_more_than_1024_tensors_reserves_exactly_n() {
    let dir = scratch("many");
    let specs: Vec<TensorSpec> = (0..1100)
        .map(|i| TensorSpec::new(format!("t{i}"), DType::U8, vec![1]))
        .collect();
    let path = dir.join("many.mllm");
    let mut w = mllm_file::MllmWriter::create(&path, "m", &specs, MllmLayout::Streaming).unwrap();
    w.write(&(0..1100).map(|i| i as u8).collect::<Vec<_>>())
        .unwrap();
    w.finish().unwrap();
    let b = std::fs::read(&path).unwrap();
    assert_eq!(b.len(), 532 + 1100 * 352 + 1100);
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(ck.len(), 1100);
    assert_eq!(ck.tensor("t1099").unwrap().bytes, &[(1099 % 256) as u8]);
}

#[test]
fn reader_follows_absolute_offsets() {
    // Hand-made file: descriptor table not at 532 and payloads in reverse order with a gap.
    let mut b = vec![0u8; 2000];
    b[0..4].copy_from_slice(&0x519Ai32.to_le_bytes());
    b[4..8].copy_from_slice(&2i32.to_le_bytes());
    b[520..524].copy_from_slice(&2u32.to_le_bytes());
    b[524..532].copy_from_slice(&600u64.to_le_bytes());
    for (i, (name, off)) in [("a", 1900u64), ("b", 1500u64)].iter().enumerate() {
        let d = 600 + i * 352;
        b[d + 4..d + 8].copy_from_slice(&129u32.to_le_bytes());
        b[d + 8..d + 16].copy_from_slice(&3u64.to_le_bytes());
        b[d + 16..d + 24].copy_from_slice(&off.to_le_bytes());
        b[d + 24..d + 32].copy_from_slice(&1u64.to_le_bytes());
        b[d + 32..d + 36].copy_from_slice(&3i32.to_le_bytes());
        b[d + 96..d + 97].copy_from_slice(name.as_bytes());
        b[*off as usize..*off as usize + 3].copy_from_slice(&[i as u8 + 1; 3]);
    }
    let h = mllm_file::parse(&b, Path::new("x.mllm")).unwrap();
    assert_eq!(h.params_desc_offset, 600);
    assert_eq!(h.tensors[0].info.offset, 1900);
    assert_eq!(h.tensors[1].info.offset, 1500);
}

/// Builder of raw `.mllm` bytes for the malformed-input tests, independent of the writer.
struct Raw {
    bytes: Vec<u8>,
}

struct Desc<'a> {
    name: &'a [u8],
    code: u32,
    size: u64,
    offset: u64,
    shape_len: u64,
    shape: Vec<i32>,
}

impl<'a> Desc<'a> {
    fn u8s(name: &'a [u8], n: u64, offset: u64) -> Self {
        Desc {
            name,
            code: 129,
            size: n,
            offset,
            shape_len: 1,
            shape: vec![n as i32],
        }
    }
}

impl Raw {
    fn new(descs: &[Desc], file_len: usize) -> Raw {
        let mut b = vec![0u8; file_len.max(532 + descs.len() * 352)];
        b[0..4].copy_from_slice(&0x519Ai32.to_le_bytes());
        b[4..8].copy_from_slice(&2i32.to_le_bytes());
        b[8..12].copy_from_slice(b"test");
        b[520..524].copy_from_slice(&(descs.len() as u32).to_le_bytes());
        b[524..532].copy_from_slice(&532u64.to_le_bytes());
        for (i, d) in descs.iter().enumerate() {
            let o = 532 + i * 352;
            b[o..o + 4].copy_from_slice(&(i as u32).to_le_bytes());
            b[o + 4..o + 8].copy_from_slice(&d.code.to_le_bytes());
            b[o + 8..o + 16].copy_from_slice(&d.size.to_le_bytes());
            b[o + 16..o + 24].copy_from_slice(&d.offset.to_le_bytes());
            b[o + 24..o + 32].copy_from_slice(&d.shape_len.to_le_bytes());
            for (k, s) in d.shape.iter().enumerate().take(16) {
                b[o + 32 + 4 * k..o + 36 + 4 * k].copy_from_slice(&s.to_le_bytes());
            }
            let n = d.name.len().min(256);
            b[o + 96..o + 96 + n].copy_from_slice(&d.name[..n]);
        }
        Raw { bytes: b }
    }

    fn err(&self) -> String {
        let path = Path::new("bad.mllm");
        let e = mllm_file::parse(&self.bytes, path).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("bad.mllm"), "{s:?} names the file");
        s
    }
}

#[test]
fn malformed_files_are_rejected_with_precise_errors() {
    let data0 = 532 + 2 * 352; // data start with two descriptors
    let good = || {
        Raw::new(
            &[
                Desc::u8s(b"a", 4, data0 as u64),
                Desc::u8s(b"b", 4, data0 as u64 + 4),
            ],
            data0 + 8,
        )
    };
    assert!(mllm_file::parse(&good().bytes, Path::new("ok")).is_ok());

    // Truncated: shorter than the header, descriptor table cut off, payload cut off.
    let mut r = good();
    r.bytes.truncate(100);
    assert!(r.err().contains("truncated"));
    let mut r = good();
    r.bytes.truncate(532 + 352 + 10);
    assert!(r.err().contains("truncated"));
    let mut r = good();
    r.bytes.truncate(data0 + 6);
    let e = r.err();
    assert!(e.contains("tensor b") && e.contains("out of range"), "{e}");

    // Bad magic / version.
    let mut r = good();
    r.bytes[0] = 0x9B;
    assert!(r.err().contains("bad magic"));
    let mut r = good();
    r.bytes[4] = 1;
    assert!(r.err().contains("unsupported version 1"));

    // shape_len > 16.
    let mut d = Desc::u8s(b"wide", 4, data0 as u64);
    d.shape_len = 17;
    let e = Raw::new(&[d], data0 + 4).err();
    assert!(
        e.contains("tensor wide") && e.contains("shape_len 17 > 16"),
        "{e}"
    );

    // Name without NUL.
    let long = vec![b'n'; 256];
    let e = Raw::new(&[Desc::u8s(&long, 4, data0 as u64)], data0 + 4).err();
    assert!(e.contains("not NUL-terminated"), "{e}");

    // size != product(shape) * elem size.
    let mut d = Desc::u8s(b"sz", 4, data0 as u64);
    d.code = 0; // f32: 4 elements need 16 bytes
    let e = Raw::new(&[d], data0 + 4).err();
    assert!(e.contains("tensor sz") && e.contains("size 4 != 16"), "{e}");

    // Out-of-range offset, and offset overflow.
    let e = Raw::new(&[Desc::u8s(b"far", 4, 1 << 40)], data0 + 4).err();
    assert!(
        e.contains("tensor far") && e.contains("out of range"),
        "{e}"
    );
    let e = Raw::new(&[Desc::u8s(b"wrap", 4, u64::MAX - 1)], data0 + 4).err();
    assert!(e.contains("out of range"), "{e}");

    // Data inside the header/descriptor table.
    let e = Raw::new(&[Desc::u8s(b"hdr", 4, 10)], data0 + 4).err();
    assert!(
        e.contains("tensor hdr") && e.contains("overlaps the header"),
        "{e}"
    );

    // Overlapping payloads.
    let e = Raw::new(
        &[
            Desc::u8s(b"a", 4, data0 as u64),
            Desc::u8s(b"b", 4, data0 as u64 + 2),
        ],
        data0 + 8,
    )
    .err();
    assert!(
        e.contains("tensor b") && e.contains("overlaps tensor a"),
        "{e}"
    );

    // Duplicate names.
    let e = Raw::new(
        &[
            Desc::u8s(b"a", 4, data0 as u64),
            Desc::u8s(b"a", 4, data0 as u64 + 4),
        ],
        data0 + 8,
    )
    .err();
    assert!(e.contains("duplicate tensor name a"), "{e}");

    // Negative dimension.
    let mut d = Desc::u8s(b"neg", 4, data0 as u64);
    d.shape = vec![-4];
    let e = Raw::new(&[d], data0 + 4).err();
    assert!(e.contains("negative dimension"), "{e}");

    // Unknown dtype codes (a GGUF block type, a quantized code, an unassigned value).
    for code in [2u32, 140, 1000] {
        let mut d = Desc::u8s(b"q", 4, data0 as u64);
        d.code = code;
        let r = Raw::new(&[d], data0 + 4);
        let e = mllm_file::parse(&r.bytes, Path::new("bad.mllm")).unwrap_err();
        assert!(matches!(e, Error::UnknownDtypeCode { code: c, .. } if c == code));
        assert!(e
            .to_string()
            .contains(&format!("unknown dtype code {code} for tensor q")));
    }
}

#[test]
fn every_doc_dtype_code_is_readable() {
    let codes = [
        0u32, 1, 16, 17, 18, 128, 129, 130, 131, 132, 133, 134, 136, 137, 156,
    ];
    for code in codes {
        let dtype = DType::from_mllm_code(code).unwrap();
        // 6 elements: a whole number of bytes for every type, packed 4-bit included.
        let size = dtype.byte_size(6).unwrap();
        let mut d = Desc::u8s(b"t", size, 532 + 352);
        d.code = code;
        d.shape = vec![2, 3];
        d.shape_len = 2;
        let r = Raw::new(&[d], 532 + 352 + size as usize);
        let h = mllm_file::parse(&r.bytes, Path::new("t.mllm")).unwrap();
        assert_eq!(h.tensors[0].info.dtype, dtype);
        assert_eq!(h.tensors[0].info.len, size);
    }
}

#[test]
fn writer_rejects_bad_tensors_and_leaves_no_file() {
    let dir = scratch("writer-errors");
    let path = dir.join("w.mllm");
    let long = "x".repeat(256);
    for spec in [
        TensorSpec::new(long.as_str(), DType::F32, vec![1]),
        TensorSpec::new("r", DType::F32, vec![1; 17]),
        TensorSpec::new("big", DType::U8, vec![1 << 31]),
    ] {
        assert!(mllm_file::MllmWriter::create(&path, "m", &[spec], MllmLayout::Static).is_err());
    }
    let dup = [
        TensorSpec::new("d", DType::U8, vec![1]),
        TensorSpec::new("d", DType::U8, vec![1]),
    ];
    assert!(mllm_file::MllmWriter::create(&path, "m", &dup, MllmLayout::Static).is_err());

    // Incomplete payload: finish fails, and an abandoned writer leaves nothing behind.
    let specs = [TensorSpec::new("a", DType::F32, vec![2])];
    let mut w = mllm_file::MllmWriter::create(&path, "m", &specs, MllmLayout::Static).unwrap();
    w.write(&[0; 4]).unwrap();
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("tensor a incomplete"), "{e}");
    let mut w = mllm_file::MllmWriter::create(&path, "m", &specs, MllmLayout::Static).unwrap();
    assert!(w.write_tensor("b", &[0; 8]).is_err());
    assert!(w.write(&[0; 9]).is_err());
    drop(w);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn int4_cannot_go_to_safetensors() {
    let dir = scratch("int4");
    let path = dir.join("q.mllm");
    let specs = [TensorSpec::new("w", DType::Int4, vec![4, 4])];
    let mut w = mllm_file::MllmWriter::create(&path, "m", &specs, MllmLayout::Static).unwrap();
    w.write_tensor("w", &[0x21; 8]).unwrap();
    w.finish().unwrap();
    let out = dir.join("q.safetensors");
    let e = mllm_file::convert(&path, &out, &ConvertOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("tensor w") && e.contains("int4"), "{e}");
    assert!(!out.exists());
}
