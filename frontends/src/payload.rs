//! Streaming, atomic writer of "header + tensor payloads back to back" files, shared by the
//! safetensors and `.mllm` writers.
//!
//! The header (everything before the first payload byte) is known up front; payloads are then
//! appended in the declared order, in chunks of any size. Output goes to a temporary file in the
//! destination directory that is renamed over the destination only by [`PayloadWriter::finish`];
//! dropping the writer early deletes the temporary file.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file's prefix bytes (header) and its payloads' names and sizes, in order.
pub(crate) type Layout = (Vec<u8>, Vec<(String, u64)>);

/// Capacity of the write buffer.
const BUF_CAPACITY: usize = 4 << 20;

/// See the module documentation.
pub(crate) struct PayloadWriter {
    path: PathBuf,
    out: BufWriter<tempfile::NamedTempFile>,
    names: Vec<String>,
    lens: Vec<u64>,
    /// Index of the tensor being written.
    idx: usize,
    /// Bytes of tensor `idx` already written.
    done: u64,
}

impl PayloadWriter {
    /// Starts `path`: creates the temporary file and writes `prefix`.
    pub(crate) fn create(path: &Path, prefix: &[u8], tensors: Vec<(String, u64)>) -> Result<Self> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".to_string());
        let tmp_prefix = format!(".{file_name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&tmp_prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Ordinary output-file permissions instead of the temporary file's private 0600.
            builder.permissions(fs::Permissions::from_mode(0o644));
        }
        let tmp = builder.tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut out = BufWriter::with_capacity(BUF_CAPACITY, tmp);
        out.write_all(prefix).map_err(|e| Error::io(path, e))?;
        let (names, lens) = tensors.into_iter().unzip();
        let mut w = PayloadWriter {
            path: path.to_path_buf(),
            out,
            names,
            lens,
            idx: 0,
            done: 0,
        };
        w.settle();
        Ok(w)
    }

    /// Skips completed (and empty) tensors.
    fn settle(&mut self) {
        while self.idx < self.lens.len() && self.done == self.lens[self.idx] {
            self.idx += 1;
            self.done = 0;
        }
    }

    fn err(&self, msg: String) -> Error {
        Error::Write {
            path: self.path.clone(),
            msg,
        }
    }

    /// Name of the tensor whose bytes come next, `None` when all payloads are written.
    pub(crate) fn current(&self) -> Option<&str> {
        self.names.get(self.idx).map(String::as_str)
    }

    /// Appends payload bytes; they may span several tensors.
    pub(crate) fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let Some(&len) = self.lens.get(self.idx) else {
                return Err(self.err(format!(
                    "{} bytes written past the end of the last tensor",
                    data.len()
                )));
            };
            let room = (len - self.done).min(data.len() as u64) as usize;
            let (head, rest) = data.split_at(room);
            self.out
                .write_all(head)
                .map_err(|e| Error::io(&self.path, e))?;
            self.done += room as u64;
            data = rest;
            self.settle();
        }
        Ok(())
    }

    /// Writes the whole payload of tensor `name`, which must be the next one.
    pub(crate) fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            if let Some(pos) = self.names.iter().position(|n| n == name) {
                if self.lens[pos] == 0 {
                    return Ok(());
                }
            }
        }
        match self.current() {
            Some(cur) if cur == name => {}
            Some(cur) => return Err(self.err(format!("expected tensor {cur} next, got {name}"))),
            None => return Err(self.err(format!("tensor {name} written after the last tensor"))),
        }
        if self.done != 0 {
            return Err(self.err(format!("tensor {name} is partially written already")));
        }
        let want = self.lens[self.idx];
        if data.len() as u64 != want {
            return Err(self.err(format!(
                "tensor {name}: got {} bytes, expected {want}",
                data.len()
            )));
        }
        self.write(data)
    }

    /// Checks every payload was written, flushes, syncs and renames the file into place.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.settle();
        if let Some(cur) = self.current() {
            return Err(self.err(format!(
                "tensor {cur} incomplete: {} of {} bytes written",
                self.done, self.lens[self.idx]
            )));
        }
        let path = self.path.clone();
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let w = PayloadWriter::create(path, bytes, Vec::new())?;
    w.finish()
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}
