//! `mllm compile`: the whole pipeline, from a checkpoint to QNN context binaries, in one
//! command that accepts mllm's compiler flags:
//!
//! ```text
//! mllm compile -m qwen3_1.7b.mllm -c config_1.7B.json --aot_config qnn_aot_cfg_1.7B.json \
//!     -o qwen3-1.7B-lpbq-sha.bin
//! ```
//!
//! Inputs (`-m`), detected by content:
//! - a float checkpoint: a Hugging Face directory (`config.json` + safetensors, one file or
//!   sharded), a `.safetensors` file, or a float `.mllm` v2 file (`-c` gives the config when
//!   it is not next to the checkpoint). It is calibrated and quantized (`mllm quantize`:
//!   W4A16 LPBQ, u16 activations, u8 KV; `--calib` text, default the built-in text;
//!   `-t` tokenizer, default `tokenizer.json` next to the checkpoint, else the bundled
//!   Qwen3 tokenizer) into a work directory, in a child `mllm quantize` process (when
//!   running as `mllm`) so that its memory is returned before the compile stages;
//! - a pymllm export (quantized safetensors or `.mllm` with pymllm's names: `*.scale1`,
//!   `*_qdq.fake_quant.scale`): imported with its own weights and encodings (needs `-c`
//!   unless `config.json` is next to it);
//! - quantized textual IR (`.mlir`, e.g. `mllm quantize`'s `model.mlir`).
//!
//! Stages, each with a progress spinner, its wall time and peak RSS (from procfs: the
//! kernel's high-water mark when the stage raised it, else 20 ms samples; the mark is
//! never reset, so `/usr/bin/time -v` still reports the true process peak), summarized
//! in a table at the end: import -> quantize (float input) -> reload (parse the quantized IR,
//! map its weights) -> passes ([`npu_pipeline`]: sha-split, linear-to-conv2d, cleanup,
//! quant-fix, mask-fill-const, and `split-graph{shards=k}` when k > 1) -> lower + finalize (per context,
//! per graph; the biggest context first, each shard's IR dropped and the C heap trimmed after
//! its context, so one context's memory is resident at a time) -> write.
//!
//! Target and options: `--aot_config` (mllm's `qnn_aot_cfg_*.json`: `target_machine`, the
//! quantization recipe, `split_graph` as the least number of contexts when `--shards` is not
//! given; it is raised until no context holds more than `--max-shard-mb` of weights, see
//! [`auto_shards`]), `--soc` overrides its
//! chipset; `--ar-len` defaults to the AOT config's `ar_len` when it has one, else 32;
//! `--context-len` 1024. Weight sharing is on (device builds); `--no-weight-sharing` for
//! binaries that must run in the x86 emulator. Shard files: see
//! `mllm_backend_qnn::binary` (context 0 is `out.bin`, context i > 0 `out.{i}.bin`, each
//! with its `.json` manifest; `out.bin.json` lists the others).
//!
//! Failure: every error names the file; the output directory is checked before the long
//! stages; binaries and manifests are written to temporary files and renamed only once
//! every shard compiled, so a failed run leaves no output (and no work directory, unless
//! `--work-dir` was given).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser};
use indicatif::{ProgressBar, ProgressStyle};
use mllm_backend_qnn::manifest::{manifest_path, Manifest, ManifestShard};
use mllm_backend_qnn::{
    compile_module_with_progress, num_shards, shard_functions, shard_path, CompileEvent,
    CompileOptions, GraphStats,
};
use mllm_frontends::qwen3::BuildOptions;
use mllm_frontends::{Checkpoint, CheckpointFormat, Qwen3Config};
use mllm_ir::{AttrsExt, Module};

/// Arguments of `mllm compile`.
#[derive(Debug, Clone, Args)]
pub struct CompileArgs {
    /// Model: a float HF checkpoint (directory or .safetensors), a .mllm v2 file (float or
    /// pymllm-quantized), a pymllm export, or quantized IR (.mlir).
    #[arg(short = 'm', long = "model", value_name = "PATH")]
    pub model: PathBuf,
    /// Model config (HF config.json, or mllm's config_*.json) [default: config.json next to
    /// the model].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// mllm AOT config (qnn_aot_cfg_*.json): target_machine, quant_recipe, split_graph.
    #[arg(
        long = "aot_config",
        visible_alias = "aot-config",
        value_name = "CFG.json"
    )]
    pub aot_config: Option<PathBuf>,
    /// Directory holding libQnnHtp.so / libQnnSystem.so (or a QNN SDK root).
    #[arg(
        long = "qnn_env_path",
        visible_alias = "qnn-lib-dir",
        value_name = "DIR"
    )]
    pub qnn_env_path: Option<PathBuf>,
    /// Output context binary (context 0; context i > 0 of a split model goes to
    /// <stem>.<i>.<ext>); each binary gets a <FILE>.json manifest.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Prefill graph length N (model.{i}.s{N}) [default: the AOT config's `ar_len`, else 32].
    #[arg(long = "ar-len", visible_alias = "ar_len", value_name = "N")]
    pub ar_len: Option<usize>,
    /// Context length C (KV cache plus current chunk).
    #[arg(
        long = "context-len",
        visible_alias = "context_len",
        value_name = "C",
        default_value_t = 1024
    )]
    pub context_len: usize,
    /// Split the layers evenly over K contexts [default: the AOT config's `split_graph`, raised
    /// so that no context holds more than --max-shard-mb of weights].
    #[arg(long, value_name = "K")]
    pub shards: Option<usize>,
    /// Weight budget per context (MiB of stored weights) used to pick the number of contexts
    /// when --shards is not given: finalizing and serializing a context takes several times
    /// its weights in memory.
    #[arg(long = "max-shard-mb", value_name = "MIB", default_value_t = DEFAULT_MAX_SHARD_MIB)]
    pub max_shard_mb: u64,
    /// Do not share weights between the graphs of a context (binaries for the x86 emulator,
    /// which refuses weight-shared binaries).
    #[arg(long)]
    pub no_weight_sharing: bool,
    /// Target SoC (SM8550, SM8650, SM8750, SM8850, SA8295 or a number) [default: the AOT
    /// config's htp_chipset].
    #[arg(long, value_name = "SOC")]
    pub soc: Option<String>,
    /// VTCM size in MB [default: from the AOT config].
    #[arg(long, value_name = "MB")]
    pub vtcm_mb: Option<u32>,
    /// HTP finalize optimization level (0..=3).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub optimization_level: u32,
    /// Calibration text for a float checkpoint: a file or a directory of .txt files
    /// [default: the built-in text].
    #[arg(long, value_name = "PATH")]
    pub calib: Option<PathBuf>,
    /// tokenizer.json for calibration [default: next to the checkpoint, else the bundled
    /// Qwen3 tokenizer].
    #[arg(short = 't', long = "tokenizer", value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Calibration samples.
    #[arg(long = "num-samples", default_value_t = 128)]
    pub num_samples: usize,
    /// Tokens per calibration sample.
    #[arg(long = "max-length", default_value_t = 1024)]
    pub max_length: usize,
    /// LPBQ block size when the AOT config does not give one [default: the model config's
    /// linear_block_size, else 16].
    #[arg(long = "block-size", value_name = "B")]
    pub block_size: Option<usize>,
    /// Keep the intermediate files (quantized IR and weights) in this directory
    /// [default: a temporary directory next to the output, removed at the end].
    #[arg(long = "work-dir", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// No progress display and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Default weight budget per context (MiB) of `--max-shard-mb`.
pub const DEFAULT_MAX_SHARD_MIB: u64 = 640;

/// Bytes of the stored weights that `funcs` use (each weight counted once).
pub fn weight_bytes_of(module: &Module, funcs: &[String]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    for f in module.functions.iter().filter(|f| funcs.contains(&f.name)) {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind != mllm_ir::OpKind::Weight {
                continue;
            }
            let name = o.attrs.str("name").unwrap_or_default();
            if seen.insert(name.to_string()) {
                if let Some(w) = module.weights.get(name) {
                    total += (w.numel() * w.dtype.size()) as u64;
                }
            }
        }
    }
    total
}

/// Number of decoder layers of the (unsplit) module: its first function's `past_key_{l}`
/// inputs.
fn num_layers(module: &Module) -> usize {
    module.functions.first().map_or(0, |f| {
        f.arg_names
            .iter()
            .flatten()
            .filter(|n| n.starts_with("past_key_"))
            .count()
    })
}

/// Contexts to split `module` into when `--shards` is not given: at least `min`, and enough
/// that each holds at most `budget` bytes of weights (the whole module's weights over the
/// shards; capped by the number of layers).
pub fn auto_shards(module: &Module, min: usize, budget: u64) -> usize {
    let names: Vec<String> = module.functions.iter().map(|f| f.name.clone()).collect();
    let total = weight_bytes_of(module, &names);
    let by_budget = usize::try_from(total.div_ceil(budget.max(1))).unwrap_or(usize::MAX);
    let layers = num_layers(module).max(1);
    min.max(by_budget.min(layers)).max(1)
}

/// Wall time and peak RSS of one stage.
#[derive(Debug, Clone)]
pub struct StageStat {
    /// Stage name.
    pub name: String,
    /// Wall time.
    pub secs: f64,
    /// Peak resident set size during the stage (bytes), when the kernel reports it.
    pub peak_rss: Option<u64>,
    /// Peak anonymous RSS (sampled every 20 ms): the part that is not mapped file pages.
    pub peak_anon: Option<u64>,
}

/// What [`run`] produced.
#[derive(Debug, Clone)]
pub struct CompileSummary {
    /// Binaries written, shard order (each has a `.json` manifest next to it).
    pub outputs: Vec<PathBuf>,
    /// Their manifests.
    pub manifests: Vec<Manifest>,
    /// Per-stage figures.
    pub stages: Vec<StageStat>,
    /// Per-graph figures, shard order.
    pub graphs: Vec<GraphStats>,
    /// Peak RSS (bytes) of this process and of the quantizer's child process, whichever
    /// is larger.
    pub process_peak_rss: Option<u64>,
    /// Total wall time.
    pub total_secs: f64,
}

/// What `-m` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelInput {
    /// A float checkpoint (safetensors or .mllm): calibrate and quantize.
    Float(PathBuf),
    /// A pymllm export (quantized weights and encodings).
    Pymllm(PathBuf),
    /// Quantized textual IR.
    Ir(PathBuf),
}

/// Classifies `path` by content (see the module docs).
pub fn classify(path: &Path) -> anyhow::Result<ModelInput> {
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    if path.extension().is_some_and(|e| e == "mlir") {
        return Ok(ModelInput::Ir(path.to_path_buf()));
    }
    let ckpt = Checkpoint::open(path).with_context(|| {
        format!(
            "{}: not a model (expected a Hugging Face checkpoint, a .safetensors or .mllm file, a pymllm export, or quantized .mlir)",
            path.display()
        )
    })?;
    let pymllm = ckpt
        .names()
        .any(|n| n.ends_with(".scale1") || n.ends_with("_qdq.fake_quant.scale"));
    Ok(if pymllm {
        ModelInput::Pymllm(path.to_path_buf())
    } else {
        ModelInput::Float(path.to_path_buf())
    })
}

/// The NPU pass pipeline run on the quantized module for one context. `mask-fill-const`
/// runs after quant-fix, on the final encodings: HTP graph preparation rewrites the
/// `reduce_min -> add -> where -> softmax` mask chain into an inexact kernel, the constant
/// fill runs exactly.
pub const NPU_PIPELINE: &str = "builtin.module(func.func(sha-split,linear-to-conv2d,canonicalize,cse,dce),quant-fix,func.func(mask-fill-const))";

/// [`NPU_PIPELINE`]; `shards > 1` appends `split-graph{shards=k}` (after quant-fix, so
/// every cut carries a final encoding).
pub fn npu_pipeline(shards: usize) -> String {
    match NPU_PIPELINE.strip_suffix(')') {
        Some(body) if shards > 1 => format!("{body},split-graph{{shards={shards}}})"),
        _ => NPU_PIPELINE.to_string(),
    }
}

/// Settings read from an AOT config beyond its target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AotExtras {
    /// `split_graph` (number of contexts).
    pub split_graph: Option<usize>,
    /// A top-level `ar_len`, when present.
    pub ar_len: Option<usize>,
}

/// Reads `split_graph` and `ar_len` of an AOT config.
pub fn read_aot_extras(path: &Path) -> anyhow::Result<AotExtras> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let uint = |key: &str| -> anyhow::Result<Option<usize>> {
        match v.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(x) => {
                let n = x.as_u64().filter(|n| *n >= 1).with_context(|| {
                    format!("{}: `{key}` must be a positive integer", path.display())
                })?;
                Ok(Some(usize::try_from(n).with_context(|| {
                    format!("{}: `{key}` is too large", path.display())
                })?))
            }
        }
    };
    Ok(AotExtras {
        split_graph: uint("split_graph")?,
        ar_len: uint("ar_len")?,
    })
}

/// RSS figures through procfs (Linux); `None` elsewhere.
mod rss {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A `Vm*` field of `/proc/self/status`, in bytes.
    pub fn status_field(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())?;
        Some(kib * 1024)
    }

    /// Current RSS.
    pub fn current() -> Option<u64> {
        status_field("VmRSS:")
    }

    /// Process peak RSS so far (the kernel's high-water mark, never reset here so that
    /// `/usr/bin/time` and `getrusage` keep reporting the true peak).
    pub fn peak() -> Option<u64> {
        status_field("VmHWM:")
    }

    /// Current anonymous RSS (heap and other non-file memory: what the kernel cannot
    /// reclaim by dropping mapped file pages).
    pub fn anon() -> Option<u64> {
        status_field("RssAnon:")
    }

    /// Samples the RSS (total and anonymous) every 20 ms into running maxima that each
    /// stage restarts.
    pub struct Sampler {
        max: Arc<AtomicU64>,
        max_anon: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Sampler {
        /// Starts the sampling thread.
        pub fn start() -> Sampler {
            let max = Arc::new(AtomicU64::new(current().unwrap_or(0)));
            let max_anon = Arc::new(AtomicU64::new(anon().unwrap_or(0)));
            let stop = Arc::new(AtomicBool::new(false));
            let (m, ma, st) = (max.clone(), max_anon.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !st.load(Ordering::Relaxed) {
                        if let Some(r) = current() {
                            m.fetch_max(r, Ordering::Relaxed);
                        }
                        if let Some(r) = anon() {
                            ma.fetch_max(r, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
                .ok();
            Sampler {
                max,
                max_anon,
                stop,
                thread,
            }
        }

        /// Restarts the running maximum at the current RSS.
        pub fn restart(&self) {
            self.max.store(current().unwrap_or(0), Ordering::Relaxed);
            self.max_anon.store(anon().unwrap_or(0), Ordering::Relaxed);
        }

        /// The running maximum of the anonymous RSS.
        pub fn max_anon(&self) -> u64 {
            self.max_anon
                .load(Ordering::Relaxed)
                .max(anon().unwrap_or(0))
        }

        /// The running maximum.
        pub fn max(&self) -> u64 {
            self.max.load(Ordering::Relaxed).max(current().unwrap_or(0))
        }
    }

    impl Drop for Sampler {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Runs stages, timing them and tracking their peak RSS, with one spinner each.
///
/// A stage's peak RSS is exact when the stage raised the process high-water mark (it is
/// then the new mark); otherwise it is the maximum of 20 ms samples of the RSS.
struct Stages {
    quiet: bool,
    total: usize,
    stats: Vec<StageStat>,
    sampler: rss::Sampler,
    /// Largest peak RSS of a child process.
    child_peak: u64,
}

impl Stages {
    fn spinner(&self, label: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_prefix(format!("[{}/{}] {label}", self.stats.len() + 1, self.total));
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }

    /// [`Stages::run`] for a stage whose work may happen in a child process that reports
    /// its own peak RSS and peak anonymous RSS.
    fn run_child(
        &mut self,
        name: &str,
        f: impl FnOnce(&ProgressBar) -> anyhow::Result<Option<(u64, u64)>>,
    ) -> anyhow::Result<()> {
        let child = self.run(name, f)?;
        if let (Some((peak, anon)), Some(st)) = (child, self.stats.last_mut()) {
            st.peak_rss = Some(st.peak_rss.unwrap_or(0).max(peak));
            st.peak_anon = Some(st.peak_anon.unwrap_or(0).max(anon));
            self.child_peak = self.child_peak.max(peak);
            if !self.quiet {
                eprintln!(
                    "      (in a child process: peak RSS {}, anonymous {})",
                    fmt_bytes(Some(peak)),
                    fmt_bytes(Some(anon))
                );
            }
        }
        Ok(())
    }

    fn run<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&ProgressBar) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let hwm_before = rss::peak();
        self.sampler.restart();
        let pb = self.spinner(name);
        let t = Instant::now();
        let r = f(&pb);
        let secs = t.elapsed().as_secs_f64();
        pb.finish_and_clear();
        let r = r?;
        let peak_rss = match (hwm_before, rss::peak()) {
            (Some(a), Some(b)) if b > a => Some(b),
            (Some(_), Some(_)) => Some(self.sampler.max()),
            _ => None,
        };
        let peak_anon = rss::anon().map(|_| self.sampler.max_anon());
        if !self.quiet {
            eprintln!(
                "[{}/{}] {name}: {secs:.2} s, peak RSS {} (anonymous {})",
                self.stats.len() + 1,
                self.total,
                fmt_bytes(peak_rss),
                fmt_bytes(peak_anon)
            );
        }
        self.stats.push(StageStat {
            name: name.to_string(),
            secs,
            peak_rss,
            peak_anon,
        });
        Ok(r)
    }
}

fn fmt_bytes(b: Option<u64>) -> String {
    match b {
        None => "n/a".into(),
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

/// Temporary files renamed into place only on success; removed otherwise.
#[derive(Default)]
struct PendingFiles {
    files: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<PathBuf>,
}

impl PendingFiles {
    fn temp_for(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.{}.part", std::process::id()))
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;
        let tmp = Self::temp_for(path);
        self.files.push((tmp.clone(), path.to_path_buf()));
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        Ok(())
    }

    fn commit(mut self) -> anyhow::Result<()> {
        while let Some((tmp, dst)) = self.files.first().cloned() {
            std::fs::rename(&tmp, &dst)
                .with_context(|| format!("{}: cannot write", dst.display()))?;
            self.files.remove(0);
        }
        Ok(())
    }
}

impl Drop for PendingFiles {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Checks that the output's directory exists and is writable (before the long stages).
fn check_output(out: &Path) -> anyhow::Result<()> {
    if out.is_dir() {
        bail!(
            "{}: is a directory (give a file name for the binary)",
            out.display()
        );
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "{}: the output directory {} does not exist",
            out.display(),
            dir.display()
        );
    }
    let probe = dir.join(format!(".mllm-compile-probe.{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("{}: the output directory is not writable", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.bin".into())
}

fn sibling(model: &Path, name: &str) -> PathBuf {
    if model.is_dir() {
        model.join(name)
    } else {
        model.parent().unwrap_or(Path::new(".")).join(name)
    }
}

fn config_path(args: &CompileArgs) -> anyhow::Result<PathBuf> {
    if let Some(c) = &args.config {
        if !c.is_file() {
            bail!("{}: config file not found", c.display());
        }
        return Ok(c.clone());
    }
    let p = sibling(&args.model, "config.json");
    if !p.is_file() {
        bail!(
            "{}: no config.json next to the model; give the model config with -c",
            args.model.display()
        );
    }
    Ok(p)
}

/// Whether any value of the module has a quantized type.
fn is_quantized(m: &Module) -> bool {
    m.functions.iter().any(|f| {
        f.args().iter().any(|v| f.ty(*v).elem().quant().is_some())
            || f.op_ids().iter().any(|op| {
                f.op(*op)
                    .results
                    .iter()
                    .any(|r| f.ty(*r).elem().quant().is_some())
            })
    })
}

/// Quantize arguments built through `mllm quantize`'s own parser (so options it adds keep
/// their defaults).
fn quantize_argv(
    args: &CompileArgs,
    ckpt: &Path,
    tokenizer: &Path,
    block_size: usize,
    ar_len: usize,
    out: &Path,
) -> Vec<std::ffi::OsString> {
    let mut argv: Vec<std::ffi::OsString> = vec!["quantize".into(), ckpt.into()];
    let mut push = |k: &str, v: std::ffi::OsString| {
        argv.push(k.into());
        argv.push(v);
    };
    push("--num-samples", args.num_samples.to_string().into());
    push("--max-length", args.max_length.to_string().into());
    push("--block-size", block_size.to_string().into());
    push("--ar-len", ar_len.to_string().into());
    push("--context-len", args.context_len.to_string().into());
    push("-t", tokenizer.into());
    push("-o", out.into());
    if let Some(c) = &args.calib {
        push("--calib", c.into());
    }
    if let Some(c) = &args.aot_config {
        push("--aot_config", c.into());
    }
    if let Some(c) = &args.config {
        push("-c", c.into());
    }
    argv.push("--quiet".into());
    argv
}

/// The `mllm` executable to run `mllm quantize` in, when this process is one.
fn mllm_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    (exe.file_stem()? == "mllm").then_some(exe)
}

/// Runs `mllm quantize` with `argv` (its own argument parser, so options it adds keep
/// their defaults). In a child `mllm quantize` process when this process is `mllm`, so
/// that every byte the quantizer allocated is returned before the compile stages (the
/// allocator keeps freed memory otherwise); returns the child's peak RSS and peak
/// anonymous RSS (sampled every 20 ms). In this process otherwise.
fn run_quantize(argv: &[std::ffi::OsString]) -> anyhow::Result<Option<(u64, u64)>> {
    let Some(exe) = mllm_exe() else {
        #[derive(Parser)]
        struct Q {
            #[command(flatten)]
            q: crate::quantize::QuantizeArgs,
        }
        let q = Q::try_parse_from(argv).context("building the quantize options")?;
        crate::quantize::run(&q.q)?;
        return Ok(None);
    };
    let mut child = std::process::Command::new(&exe)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("{}: cannot start `mllm quantize`", exe.display()))?;
    // Drain stderr on a thread so a chatty child never blocks on a full pipe.
    let err_reader = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            s
        })
    });
    let status_path = format!("/proc/{}/status", child.id());
    let field = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    let (mut peak, mut anon) = (0u64, 0u64);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            peak = peak.max(field(&text, "VmHWM:").unwrap_or(0));
            anon = anon.max(field(&text, "RssAnon:").unwrap_or(0));
        }
        if let Some(st) = child.try_wait().context("waiting for `mllm quantize`")? {
            break st;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        let msg: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("LIBNATIVE"))
            .collect();
        let msg = msg.join("; ");
        let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
        bail!("quantizing failed ({status}): {msg}");
    }
    Ok(Some((peak, anon)))
}

/// Runs `mllm compile` (see the module docs).
pub fn run(args: &CompileArgs) -> anyhow::Result<CompileSummary> {
    let start = Instant::now();
    // Cheap checks first: everything that can fail before hours of work.
    check_output(&args.output)?;
    let aot_target = match &args.aot_config {
        Some(p) => crate::qnn::read_aot_config(p)?,
        None => Default::default(),
    };
    let extras = match &args.aot_config {
        Some(p) => read_aot_extras(p)?,
        None => AotExtras::default(),
    };
    let soc = match &args.soc {
        Some(s) => Some(crate::qnn::parse_soc(s)?),
        None => aot_target.soc,
    };
    if args.shards == Some(0) {
        bail!("--shards must be at least 1");
    }
    if args.max_shard_mb == 0 {
        bail!("--max-shard-mb must be at least 1");
    }
    let ar_len = args.ar_len.or(extras.ar_len).unwrap_or(32);
    if ar_len == 0 {
        bail!("--ar-len must be at least 1");
    }
    if args.context_len <= ar_len {
        bail!(
            "--context-len ({}) must be larger than --ar-len ({ar_len})",
            args.context_len
        );
    }
    let input = classify(&args.model)?;
    // The library is needed at the end: fail now, not after quantizing.
    mllm_qnn_sys::QnnLibrary::load(args.qnn_env_path.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let float = matches!(input, ModelInput::Float(_));
    let mut stages = Stages {
        quiet: args.quiet,
        total: if float { 6 } else { 4 } + usize::from(args.work_dir.is_some()),
        stats: Vec::new(),
        sampler: rss::Sampler::start(),
        child_peak: 0,
    };
    let mut pending = PendingFiles::default();
    let work = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("{}: cannot create", d.display()))?;
            d.clone()
        }
        None => {
            let name = args
                .output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let d = args
                .output
                .with_file_name(format!(".{name}.work.{}", std::process::id()));
            if float {
                std::fs::create_dir_all(&d)
                    .with_context(|| format!("{}: cannot create", d.display()))?;
                pending.dirs.push(d.clone());
            }
            d
        }
    };

    // Stage 1: import.
    let imported: Option<Module> = stages.run("import", |pb| match &input {
        ModelInput::Float(p) => {
            pb.set_message(format!("checking {}", p.display()));
            let cfg_path = config_path(args)?;
            let cfg = Qwen3Config::from_file(&cfg_path)?;
            let ckpt = Checkpoint::open(p)?;
            if ckpt.format() == CheckpointFormat::Mllm && args.config.is_none() {
                // A .mllm file carries no config; make the choice explicit in errors.
                pb.set_message(format!("config {}", cfg_path.display()));
            }
            cfg.check_checkpoint(&ckpt)
                .with_context(|| format!("{}: does not match {}", p.display(), cfg_path.display()))?;
            Ok(None)
        }
        ModelInput::Pymllm(p) => {
            pb.set_message(format!("pymllm export {}", p.display()));
            let cfg_path = config_path(args)?;
            let cfg = Qwen3Config::from_file(&cfg_path)?;
            let m = crate::pymllm::import_pymllm(
                p,
                &cfg,
                BuildOptions {
                    ar_len,
                    context_len: args.context_len,
                    num_shards: 1,
                },
            )?;
            Ok(Some(m))
        }
        ModelInput::Ir(p) => {
            pb.set_message(format!("IR {}", p.display()));
            let m = crate::qnn::load_module(p)?;
            if !is_quantized(&m) {
                bail!(
                    "{}: the IR is not quantized; give the float checkpoint (or run `mllm quantize`) instead",
                    p.display()
                );
            }
            Ok(Some(m))
        }
    })?;

    // Stages 2-3 (float input): quantize, then reload the quantized IR.
    let mut module = match imported {
        Some(m) => m,
        None => {
            let ModelInput::Float(ckpt) = &input else {
                bail!("internal: no module imported");
            };
            let tokenizer = match &args.tokenizer {
                Some(t) => t.clone(),
                None => {
                    let t = sibling(ckpt, "tokenizer.json");
                    if t.is_file() {
                        t
                    } else {
                        let t = work.join("tokenizer.json");
                        crate::translate::write_output(&t, crate::demo::QWEN3_TOKENIZER)?;
                        t
                    }
                }
            };
            let block_size = match args.block_size {
                Some(b) => b,
                None => Qwen3Config::from_file(config_path(args)?)?
                    .linear_block_size
                    .unwrap_or(16),
            };
            let argv = quantize_argv(args, ckpt, &tokenizer, block_size, ar_len, &work);
            stages.run_child("quantize", |pb| {
                pb.set_message(format!(
                    "calibrating on {} samples of {} tokens, then quantizing",
                    args.num_samples, args.max_length
                ));
                run_quantize(&argv)
            })?;
            let ir = work.join("model.mlir");
            stages.run("reload", |pb| {
                pb.set_message(format!("{}", ir.display()));
                crate::qnn::load_module(&ir)
            })?
        }
    };

    // Number of contexts: --shards, else the AOT config's split_graph raised to the budget.
    let shards = match args.shards {
        Some(k) => k,
        None => {
            let min = extras.split_graph.unwrap_or(1).max(1);
            let k = auto_shards(&module, min, args.max_shard_mb.saturating_mul(1 << 20));
            if k > min && !args.quiet {
                eprintln!(
                    "      {k} contexts: {:.0} MiB of weights over at most {} MiB per context \
                     (--max-shard-mb; --shards overrides)",
                    weight_bytes_of(
                        &module,
                        &module
                            .functions
                            .iter()
                            .map(|f| f.name.clone())
                            .collect::<Vec<_>>()
                    ) as f64
                        / (1u64 << 20) as f64,
                    args.max_shard_mb
                );
            }
            k
        }
    };

    // Stage: passes.
    let pipeline = npu_pipeline(shards);
    stages.run("passes", |pb| {
        pb.set_message(pipeline.clone());
        let mut pm =
            mllm_passes::PassManager::parse(&pipeline, &mllm_passes::Registry::with_all())?;
        pm.run(&mut module, &mut [])
            .with_context(|| format!("{}: running {pipeline}", args.model.display()))?;
        Ok(())
    })?;
    if let Some(d) = &args.work_dir {
        // The NPU IR names its weights file by an absolute path (a relative one would be
        // resolved against the work directory by whoever reads it).
        let base = match &input {
            ModelInput::Ir(p) => p.parent().map(Path::to_path_buf),
            _ => Some(work.clone()),
        };
        if let (Some(w), Some(base)) = (module.attrs.str("weights"), base) {
            let w = PathBuf::from(w);
            if w.is_relative() {
                let abs = std::fs::canonicalize(base.join(&w)).unwrap_or(base.join(&w));
                if let Some(a) = abs.to_str() {
                    module
                        .attrs
                        .insert("weights".into(), mllm_ir::Attr::Str(a.to_string()));
                }
            }
        }
        let p = d.join("model.npu.mlir");
        stages.run("write NPU IR", |pb| {
            pb.set_message(format!("{}", p.display()));
            crate::translate::write_output(&p, mllm_ir::print::print_module(&module).as_bytes())
        })?;
    }
    let k = num_shards(&module);
    if k != shards {
        bail!(
            "{}: the module has {k} shard(s) after the passes, expected {shards}",
            args.model.display()
        );
    }

    // Stage: lower + finalize, one context per shard; binaries go to temporary files.
    let opts = CompileOptions {
        lib_dir: args.qnn_env_path.clone(),
        soc,
        arch: if soc.is_some() { None } else { aot_target.arch },
        vtcm_mb: args.vtcm_mb.or(aot_target.vtcm_mb),
        weight_sharing: !args.no_weight_sharing,
        fp16_precision: true,
        optimization_level: Some(args.optimization_level),
        functions: None,
    };
    let outputs: Vec<PathBuf> = (0..shards)
        .map(|i| shard_path(&args.output, i, shards))
        .collect();
    let mut graphs = Vec::new();
    let mut manifests = Vec::new();
    // Without a terminal (logs) the spinner is hidden: print each graph event instead.
    let log_events = !args.quiet && !std::io::stderr().is_terminal();
    let t_stage = Instant::now();
    let module_name = args.model.display().to_string();
    stages.run("lower+finalize", |pb| {
        let shard_funcs: Vec<Vec<String>> =
            (0..shards).map(|i| shard_functions(&module, i)).collect();
        if let Some(i) = shard_funcs.iter().position(Vec::is_empty) {
            bail!("{module_name}: shard {i} has no graphs");
        }
        // Biggest context first, while the heap is clean; after each context its IR is
        // dropped and the C heap trimmed (QNN's freed graphs would otherwise stay resident
        // in the allocator and add to the next context's peak).
        let mut order: Vec<usize> = (0..shards).collect();
        order.sort_by_cached_key(|&i| {
            (
                std::cmp::Reverse(weight_bytes_of(&module, &shard_funcs[i])),
                i,
            )
        });
        let mut done: Vec<Option<(Manifest, Vec<GraphStats>)>> =
            (0..shards).map(|_| None).collect();
        // The passes' temporaries too.
        mllm_qnn_sys::trim_heap();
        for &i in &order {
            let out = &outputs[i];
            let o = CompileOptions {
                functions: Some(shard_funcs[i].clone()),
                ..opts.clone()
            };
            let compiled = compile_module_with_progress(&module, &o, &mut |e| {
                let what = match e {
                    CompileEvent::Lower { name, index, total } => {
                        format!("lowering {name} ({}/{total})", index + 1)
                    }
                    CompileEvent::Finalize { name, index, total } => {
                        format!("finalizing {name} ({}/{total})", index + 1)
                    }
                    CompileEvent::Serialize => "serializing the context".into(),
                };
                let msg = format!("context {}/{shards}: {what}", i + 1);
                if log_events {
                    eprintln!(
                        "      [{:>7.1} s] {msg} (RSS {}, anonymous {})",
                        t_stage.elapsed().as_secs_f64(),
                        fmt_bytes(rss::current()),
                        fmt_bytes(rss::anon())
                    );
                }
                pb.set_message(msg);
            })
            .with_context(|| format!("compiling context {i} for {}", out.display()))?;
            let mut manifest = compiled.manifest;
            manifest.binary = file_name(out);
            pending.write(out, &compiled.binary)?;
            drop(compiled.binary);
            // This shard's graphs are no longer needed.
            module
                .functions
                .retain(|f| !shard_funcs[i].contains(&f.name));
            mllm_qnn_sys::trim_heap();
            done[i] = Some((manifest, compiled.stats));
        }
        for (manifest, stats) in done.into_iter().flatten() {
            manifests.push(manifest);
            graphs.extend(stats);
        }
        // Context 0's manifest lists the other contexts' binaries.
        let listed: Vec<ManifestShard> = manifests
            .iter()
            .skip(1)
            .map(|m| ManifestShard {
                binary: m.binary.clone(),
                binary_size: m.binary_size,
                sha256: m.sha256.clone(),
            })
            .collect();
        if let Some(m0) = manifests.first_mut() {
            m0.shards = listed;
        }
        for (out, m) in outputs.iter().zip(&manifests) {
            pending.write(&manifest_path(out), m.to_json().as_bytes())?;
        }
        Ok(())
    })?;
    drop(module);

    // Stage: write (rename into place) and clean up the work directory.
    stages.run("write", |pb| {
        pb.set_message(format!("{}", args.output.display()));
        std::mem::take(&mut pending).commit()
    })?;
    drop(pending);
    let process_peak = rss::peak().map(|p| p.max(stages.child_peak));
    Ok(CompileSummary {
        outputs,
        manifests,
        stages: stages.stats,
        graphs,
        process_peak_rss: process_peak,
        total_secs: start.elapsed().as_secs_f64(),
    })
}

/// The per-stage summary table printed at the end.
pub fn summary_table(s: &CompileSummary) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<28} {:>10} {:>12} {:>12}",
        "stage", "time", "peak RSS", "(anonymous)"
    );
    for st in &s.stages {
        let _ = writeln!(
            t,
            "{:<28} {:>8.2} s {:>12} {:>12}",
            st.name,
            st.secs,
            fmt_bytes(st.peak_rss),
            fmt_bytes(st.peak_anon)
        );
        if st.name == "lower+finalize" {
            for g in &s.graphs {
                let _ = writeln!(
                    t,
                    "  {:<26} lower {:.2} s, finalize {:.2} s, {} QNN nodes, {:.1} MiB static",
                    g.name,
                    g.lower_secs,
                    g.finalize_secs,
                    g.nodes,
                    g.static_bytes as f64 / (1u64 << 20) as f64
                );
            }
        }
    }
    let _ = writeln!(
        t,
        "{:<28} {:>8.2} s {:>12}",
        "total",
        s.total_secs,
        fmt_bytes(s.process_peak_rss)
    );
    for (o, m) in s.outputs.iter().zip(&s.manifests) {
        let graphs: Vec<&str> = m.graphs.iter().map(|g| g.name.as_str()).collect();
        let _ = writeln!(
            t,
            "wrote {} ({:.1} MiB, {}, weight sharing {}) + {}",
            o.display(),
            m.binary_size as f64 / (1u64 << 20) as f64,
            graphs.join(", "),
            if m.weight_sharing { "on" } else { "off" },
            manifest_path(o).display()
        );
    }
    t
}

/// `mllm compile` entry point.
pub fn main_with(args: &CompileArgs) -> anyhow::Result<()> {
    let s = run(args)?;
    if !args.quiet {
        eprint!("{}", summary_table(&s));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module of `layers` layers whose one function uses a 4 KiB weight per layer (and
    /// one of them twice).
    fn module_with_weights(layers: usize) -> Module {
        let args: Vec<String> = (0..layers)
            .map(|l| format!("%past_key_{l}: tensor<1x4xf32>"))
            .collect();
        let mut body = String::new();
        for l in 0..layers {
            body += &format!("    %w{l} = builtin.weight {{name = \"w{l}\"}} : tensor<1024xf32>\n");
        }
        body += "    %again = builtin.weight {name = \"w0\"} : tensor<1024xf32>\n";
        let text = format!(
            "module {{\n  func.func @model.0.s1({}) -> (tensor<1024xf32> {{name = \"out\"}}) {{\n{body}    func.return %again\n  }}\n}}\n",
            args.join(", ")
        );
        let mut m = mllm_ir::parse::parse_verified(&text, "test.mlir").unwrap();
        for l in 0..layers {
            let bytes = std::sync::Arc::new(vec![0u8; 4096]);
            let w = mllm_ir::Weight::from_range(mllm_ir::WDType::F32, vec![1024], bytes, 0, 4096)
                .unwrap();
            m.weights.insert(format!("w{l}"), w);
        }
        m
    }

    #[test]
    fn contexts_follow_the_weight_budget() {
        let m = module_with_weights(6);
        let all: Vec<String> = m.functions.iter().map(|f| f.name.clone()).collect();
        assert_eq!(
            weight_bytes_of(&m, &all),
            6 * 4096,
            "each weight counted once"
        );
        assert_eq!(auto_shards(&m, 1, 1 << 30), 1);
        assert_eq!(auto_shards(&m, 1, 3 * 4096), 2);
        assert_eq!(auto_shards(&m, 1, 4 * 4096), 2);
        assert_eq!(
            auto_shards(&m, 3, 4 * 4096),
            3,
            "the AOT config's split_graph is a floor"
        );
        assert_eq!(auto_shards(&m, 1, 1), 6, "at most one context per layer");
    }

    #[test]
    fn pipeline_and_aot_extras() {
        assert!(!npu_pipeline(1).contains("split-graph"));
        assert_eq!(npu_pipeline(1), NPU_PIPELINE);
        assert!(npu_pipeline(2).ends_with("(mask-fill-const),split-graph{shards=2})"));
        mllm_passes::PassManager::parse(&npu_pipeline(3), &mllm_passes::Registry::with_all())
            .unwrap();
        let dir = std::env::temp_dir().join(format!("mllm-compile-aot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cfg.json");
        std::fs::write(&p, r#"{"split_graph": 2, "target_machine": {}}"#).unwrap();
        assert_eq!(
            read_aot_extras(&p).unwrap(),
            AotExtras {
                split_graph: Some(2),
                ar_len: None
            }
        );
        std::fs::write(&p, r#"{"split_graph": 0}"#).unwrap();
        let e = read_aot_extras(&p).unwrap_err().to_string();
        assert!(e.contains("split_graph") && e.contains("cfg.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_inputs_name_the_file() {
        let e = classify(Path::new("/nonexistent/model.mllm")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/model.mllm"), "{e}");
        let dir = std::env::temp_dir().join(format!("mllm-compile-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.mllm");
        std::fs::write(&junk, b"not a model").unwrap();
        let e = format!("{:#}", classify(&junk).unwrap_err());
        assert!(e.contains("junk.mllm") && e.contains("not a model"), "{e}");
        let e = check_output(&dir.join("no/such/dir/out.bin")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = check_output(&dir).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
