//! Minimal `.npy` (format 1.0) writer for f32 matrices, written atomically.

use std::io::Write;
use std::path::Path;

use crate::error::{Result, RuntimeError};

/// Encodes a little-endian f32 C-order array of `shape` as `.npy` bytes.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Result<Vec<u8>> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(RuntimeError::Config(format!(
            "npy: shape {shape:?} holds {n} values, got {}",
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // magic(6) + version(2) + header length(2) + header, padded with spaces, ending in '\n',
    // total a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let hlen = u16::try_from(header.len())
        .map_err(|_| RuntimeError::Config(format!("npy: shape {shape:?} header too long")))?;
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    Ok(out)
}

/// Writes `data` (`[rows, cols]`, row-major) to `path` as `.npy`: written to a temporary file in
/// the same directory, then renamed over `path`.
pub fn write_f32_2d(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    let bytes = encode_f32(data, &[rows, cols])?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_payload() {
        let data = [1.0f32, -2.5, 3.0, 0.0, 5.0, 6.0];
        let b = encode_f32(&data, &[2, 3]).unwrap();
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'descr': '<f4'"));
        assert!(header.contains("'shape': (2, 3)"));
        assert!(header.ends_with('\n'));
        let payload = &b[10 + hlen..];
        assert_eq!(payload.len(), 24);
        assert_eq!(&payload[4..8], &(-2.5f32).to_le_bytes());
        assert!(encode_f32(&data, &[4, 2]).is_err());
        let one = encode_f32(&[1.0], &[1]).unwrap();
        assert!(
            std::str::from_utf8(&one[10..])
                .unwrap_or("")
                .contains("(1,)")
                || {
                    let h = u16::from_le_bytes([one[8], one[9]]) as usize;
                    std::str::from_utf8(&one[10..10 + h])
                        .unwrap()
                        .contains("(1,)")
                }
        );
    }

    #[test]
    fn atomic_write() {
        let dir = std::env::temp_dir().join(format!("mllm-npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("l.npy");
        write_f32_2d(&p, &[1.0, 2.0], 1, 2).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[b.len() - 4..], &2.0f32.to_le_bytes());
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        assert!(write_f32_2d(&dir.join("no/such/dir/x.npy"), &[1.0], 1, 1).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
