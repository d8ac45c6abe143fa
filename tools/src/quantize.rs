//! `mllm quantize`: float HF checkpoint -> quantized IR (W4A16 LPBQ, u16 activations,
//! u8 KV cache) in one command, no Python.
//!
//! 1. Calibration: the checkpoint is built as one full-length graph (`S = max_length`,
//!    a one-slot masked past), decomposed like the compiled graphs, and run on the CPU
//!    reference executor in float mode over calibration text (wrapped in the chat
//!    template, tokenized, cut into `max_length`-token samples). Global min/max
//!    observers record every op's range by op name.
//! 2. The prefill/decode module (`--ar-len`, `--context-len`) is built, decomposed and
//!    quantized from those ranges (`mllm_passes::quant::apply`), so both graphs get the
//!    same encodings and share bit-identical weights.
//! 3. Outputs in `-o DIR`: `model.mlir` (quantized IR; its `weights` attribute names
//!    `model.mllm`), `model.mllm` (every weight the IR references, .mllm v2),
//!    `model.safetensors` (the same weights and encodings in pymllm's export naming, see
//!    `crate::pymllm`), and `quantize.json` (summary: weight SQNR, time).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::{Checkpoint, DType, MllmLayout, MllmWriter, Qwen3Config, TensorSpec};
use mllm_ir::{Attr, AttrsExt, Module, WDType};
use mllm_passes::quant::apply::{
    quantize_linear_weight, quantize_module, Calibration, QuantizedLinear,
};
use mllm_passes::quant::recipe::Recipe;
use mllm_runtime::cpu::{CpuExecutor, NumericMode, TensorRef};
use mllm_runtime::tokenizer::{qwen3_prompt, Tokenizer};

/// Built-in calibration text (used by `mllm demo` and when `--calib` is omitted).
pub const BUILTIN_CALIBRATION: &str = include_str!("calibration.txt");

/// Arguments of `mllm quantize`.
#[derive(Debug, Clone, Args)]
pub struct QuantizeArgs {
    /// HF checkpoint: directory with config.json and model.safetensors (or sharded), or a .mllm file with -c.
    pub checkpoint: PathBuf,
    /// Calibration text: a file, or a directory of .txt files (default: built-in text).
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Number of calibration samples.
    #[arg(long = "num-samples", default_value_t = 128)]
    pub num_samples: usize,
    /// Tokens per calibration sample.
    #[arg(long = "max-length", default_value_t = 1024)]
    pub max_length: usize,
    /// LPBQ block size (when the AOT config does not give one).
    #[arg(long = "block-size", default_value_t = 16)]
    pub block_size: usize,
    /// mllm AOT config (qnn_aot_cfg_*.json): per-op schemes, KV cache, target.
    #[arg(long = "aot_config", alias = "aot-config")]
    pub aot_config: Option<PathBuf>,
    /// Model config.json (default: next to the checkpoint).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// tokenizer.json (default: next to the checkpoint).
    #[arg(short = 't', long = "tokenizer")]
    pub tokenizer: Option<PathBuf>,
    /// Prefill graph length of the output module.
    #[arg(long = "ar-len", alias = "ar_len", default_value_t = 32)]
    pub ar_len: usize,
    /// Context length of the output module.
    #[arg(long = "context-len", default_value_t = 1024)]
    pub context_len: usize,
    /// Output directory.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Quality report (`--report`, `--plot`, held-out text).
    #[command(flatten)]
    pub report: crate::report::ReportArgs,
}

/// What `run` produced.
#[derive(Debug, Clone)]
pub struct QuantizeSummary {
    /// Output IR.
    pub ir: PathBuf,
    /// Output weights.
    pub weights: PathBuf,
    /// Calibration tokens processed.
    pub calib_tokens: usize,
    /// Calibration wall time (s).
    pub calib_secs: f64,
    /// Mean weight SQNR (dB).
    pub mean_weight_sqnr: f64,
    /// Minimum weight SQNR (dB) and its weight.
    pub min_weight_sqnr: (f64, String),
    /// The quality report, when `--report` or `--plot` asked for one.
    pub report: Option<crate::report::QualityReport>,
}

fn sibling(ckpt: &Path, name: &str) -> PathBuf {
    if ckpt.is_dir() {
        ckpt.join(name)
    } else {
        ckpt.parent().unwrap_or(Path::new(".")).join(name)
    }
}

fn read_calibration(p: Option<&Path>) -> anyhow::Result<Vec<String>> {
    read_docs(p, BUILTIN_CALIBRATION, "calibration")
}

/// Documents (paragraphs) of a text file or of a directory of `.txt` files, or of
/// `builtin` when `p` is `None`.
pub(crate) fn read_docs(
    p: Option<&Path>,
    builtin: &str,
    what: &str,
) -> anyhow::Result<Vec<String>> {
    let Some(p) = p else {
        return Ok(builtin
            .split("\n\n")
            .map(str::to_owned)
            .filter(|s| !s.trim().is_empty())
            .collect());
    };
    let mut files = Vec::new();
    if p.is_dir() {
        for e in std::fs::read_dir(p).with_context(|| format!("{}: cannot list", p.display()))? {
            let e = e?.path();
            if e.extension().is_some_and(|x| x == "txt") {
                files.push(e);
            }
        }
        files.sort();
        if files.is_empty() {
            bail!("{}: no .txt files for {what}", p.display());
        }
    } else {
        files.push(p.to_path_buf());
    }
    let mut docs = Vec::new();
    for f in files {
        let t = std::fs::read_to_string(&f)
            .with_context(|| format!("{}: cannot read {what} text", f.display()))?;
        docs.extend(
            t.split("\n\n")
                .map(str::to_owned)
                .filter(|s| !s.trim().is_empty()),
        );
    }
    Ok(docs)
}

/// Token samples of exactly `len` tokens: documents wrapped in the chat template and
/// concatenated, then cut.
pub(crate) fn samples(
    tok: &Tokenizer,
    docs: &[String],
    len: usize,
    n: usize,
) -> anyhow::Result<Vec<Vec<i32>>> {
    let mut stream: Vec<i32> = Vec::new();
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < n {
        for d in docs {
            let ids = tok.encode(&qwen3_prompt(d.trim(), false))?;
            stream.extend(ids.iter().map(|i| *i as i32));
            while stream.len() >= len && out.len() < n {
                out.push(stream.drain(..len).collect());
            }
            if out.len() >= n {
                break;
            }
        }
        round += 1;
        if round > 1000 || (out.is_empty() && round > 10) {
            break;
        }
    }
    if out.is_empty() {
        bail!("the calibration text gives fewer than {len} tokens");
    }
    Ok(out)
}

/// Loads checkpoint + config into a module with the given options.
pub fn load_module(
    ckpt_path: &Path,
    config: Option<&Path>,
    opts: BuildOptions,
) -> anyhow::Result<(Qwen3Config, Module)> {
    let ckpt = Checkpoint::open(ckpt_path)?;
    let cfg_path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sibling(ckpt_path, "config.json"));
    let cfg = Qwen3Config::from_file(&cfg_path)?;
    let ckpt = Arc::new(ckpt);
    let store = qwen3::import_weights(&cfg, &ckpt)?;
    let mut m = qwen3::build_qwen3(&cfg, store, opts)?;
    if let Some(c) = std::fs::canonicalize(&cfg_path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
    {
        m.attrs.insert("config".into(), Attr::Str(c));
    }
    Ok((cfg, m))
}

fn decompose_all(m: &mut Module) -> anyhow::Result<()> {
    for f in m.functions.iter_mut() {
        mllm_passes::transforms::decompose::decompose(f)?;
    }
    Ok(())
}

/// The float full-length graph of calibration (and of the quality report): the
/// checkpoint built with `ar_len = len` and a one-slot masked past (`context = len + 1`),
/// only the `S = len` function, decomposed like the compiled graphs.
pub fn full_length_module(
    ckpt: &Path,
    config: Option<&Path>,
    len: usize,
) -> anyhow::Result<Module> {
    let (_, mut m) = load_module(
        ckpt,
        config,
        BuildOptions {
            ar_len: len,
            context_len: len + 1,
            num_shards: 1,
        },
    )?;
    m.functions
        .retain(|f| f.name.ends_with(&format!(".s{len}")));
    if m.functions.is_empty() {
        bail!("{}: no graph of length {len} was built", ckpt.display());
    }
    decompose_all(&mut m)?;
    Ok(m)
}

/// The inputs of a [`full_length_module`] graph besides the tokens: positions
/// `0..len`, the causal mask (row i attends chunk columns 1..=i+1; column 0 is the
/// empty past slot) and zero past K/V. The same real values serve the float graph and
/// its quantized form (quantized on entry in fixed-point mode).
pub struct FullLengthInputs {
    mask: Vec<f32>,
    pos: Vec<i32>,
    past: Vec<Vec<f32>>,
}

impl FullLengthInputs {
    /// Inputs for the function `f` of sequence length `len`.
    pub fn new(f: &mllm_ir::Function, len: usize) -> FullLengthInputs {
        let c = len + 1;
        let mut mask = vec![0f32; len * c];
        for i in 0..len {
            for j in 0..=i {
                mask[i * c + 1 + j] = 1.0;
            }
        }
        let mut past = Vec::new();
        for (i, a) in f.args().iter().enumerate() {
            let name = f.arg_names[i].as_deref().unwrap_or_default();
            if name.starts_with("past_") {
                past.push(vec![0f32; f.ty(*a).numel()]);
            }
        }
        FullLengthInputs {
            mask,
            pos: (0..len as i32).collect(),
            past,
        }
    }

    /// The argument list of `f` for the token sample `s`.
    pub fn refs<'a>(
        &'a self,
        f: &mllm_ir::Function,
        s: &'a [i32],
    ) -> anyhow::Result<Vec<TensorRef<'a>>> {
        self.refs_with_hidden(f, s, &[])
    }

    /// The argument list of `f` for the token sample `s`, `hidden` being the
    /// `hidden_states` input of a shard after the first.
    pub fn refs_with_hidden<'a>(
        &'a self,
        f: &mllm_ir::Function,
        s: &'a [i32],
        hidden: &'a [f32],
    ) -> anyhow::Result<Vec<TensorRef<'a>>> {
        let mut inputs: Vec<TensorRef<'_>> = Vec::new();
        let mut past = self.past.iter();
        for name in f.arg_names.iter() {
            let name = name.as_deref().unwrap_or_default();
            match name {
                "sequence" => inputs.push(TensorRef::I32(s)),
                "hidden_states" => inputs.push(TensorRef::F32(hidden)),
                "position_ids" => inputs.push(TensorRef::I32(&self.pos)),
                "causal_mask" => inputs.push(TensorRef::F32(&self.mask)),
                _ => match past.next() {
                    Some(b) => inputs.push(TensorRef::F32(b)),
                    None => bail!("full-length graph has an unexpected input %{name}"),
                },
            }
        }
        Ok(inputs)
    }
}

/// What [`calibrate`] produced.
pub struct Calibrated {
    /// Ranges, plus the pre-quantized linear weights (`Calibration::weights`).
    pub calib: Calibration,
    /// Calibration tokens processed.
    pub tokens: usize,
    /// The linear weights quantized during calibration: `(float weight name, result)`;
    /// their payloads go into the output module's store.
    pub weights: Vec<(String, QuantizedLinear)>,
}

/// Runs calibration, streaming the model one decoder layer at a time to bound memory:
/// the full-length graph is built in one shard per layer (shard 0 also embeds, the
/// last also normalizes and projects to logits); each shard is compiled on the CPU
/// executor (float mode) from a fresh mapping of the checkpoint, run on every sample
/// (its `hidden_states` output feeds the next shard; the arithmetic is the unsharded
/// graph's), and dropped. While a shard's weights are mapped, its linear weights are
/// quantized with `recipe` (handed to [`quantize_module`] through
/// [`Calibration::weights`]). Peak memory is one layer's weights plus the quantized
/// weights so far, instead of the whole model decoded.
#[allow(clippy::too_many_arguments)]
pub fn calibrate(
    ckpt: &Path,
    config: Option<&Path>,
    tok: &Tokenizer,
    docs: &[String],
    len: usize,
    n: usize,
    recipe: &Recipe,
    bar: &ProgressBar,
) -> anyhow::Result<Calibrated> {
    let cfg_path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sibling(ckpt, "config.json"));
    let cfg = Qwen3Config::from_file(&cfg_path)?;
    let (_, mut m) = load_module(
        ckpt,
        config,
        BuildOptions {
            ar_len: len,
            context_len: len + 1,
            num_shards: cfg.num_hidden_layers.max(1),
        },
    )?;
    m.functions
        .retain(|f| f.name.ends_with(&format!(".s{len}")));
    decompose_all(&mut m)?;
    // Computed tables (RoPE) are kept; checkpoint tensors are re-mapped per shard.
    let computed: Vec<(String, Arc<mllm_ir::Weight>)> = [qwen3::ROPE_COS, qwen3::ROPE_SIN]
        .iter()
        .filter_map(|n| m.weights.get(n).map(|w| (n.to_string(), w.clone())))
        .collect();
    m.weights = mllm_ir::WeightStore::default();
    let samples = samples(tok, docs, len, n)?;
    bar.set_length((samples.len() * m.functions.len()) as u64);
    let mut calib = Calibration::default();
    let mut quantized = Vec::new();
    let mut hidden: Vec<Vec<f32>> = vec![Vec::new(); samples.len()];
    let last = m.functions.len().saturating_sub(1);
    for (si, f) in m.functions.iter().enumerate() {
        let ck = Arc::new(Checkpoint::open(ckpt)?);
        let mut store = qwen3::import_weights(&cfg, &ck)?;
        for (n, w) in &computed {
            store.insert_arc(n.clone(), w.clone());
        }
        let sub = Module {
            attrs: m.attrs.clone(),
            functions: vec![f.clone()],
            weights: store,
            ..Default::default()
        };
        {
            let mut exec = CpuExecutor::new(&sub, NumericMode::Float)?;
            let fixed = FullLengthInputs::new(f, len);
            for (s, h) in samples.iter().zip(hidden.iter_mut()) {
                let inputs = fixed.refs_with_hidden(f, s, h)?;
                let out = exec.run_f32_observed(0, &inputs, &mut |o| {
                    if let Some(name) = o.name {
                        let (lo, hi) = o
                            .data
                            .iter()
                            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                                (a.min(*v), b.max(*v))
                            });
                        calib.observe(name, lo, hi);
                    }
                })?;
                *h = if si == last {
                    Vec::new()
                } else {
                    out.into_iter()
                        .next()
                        .context("a calibration shard returned no hidden states")?
                };
                bar.inc(1);
            }
        }
        // This shard's linear weights, while their pages are mapped.
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind != mllm_ir::OpKind::Linear {
                continue;
            }
            let Some(d) = o.operands.get(1).and_then(|v| f.def_op(*v)) else {
                continue;
            };
            if f.op(d).kind != mllm_ir::OpKind::Weight {
                continue;
            }
            let wname = f.op(d).attrs.str("name").unwrap_or_default().to_owned();
            let key = format!("linear:{wname}");
            if calib.weights.contains_key(&key) {
                continue;
            }
            let w = sub
                .weights
                .get(&wname)
                .with_context(|| format!("weight {wname} is not in the checkpoint"))?;
            let q = quantize_linear_weight(
                &wname,
                w,
                recipe.scheme_for(o.name.as_deref().unwrap_or("")),
            )?;
            calib.weights.insert(key, (q.name.clone(), q.elem.clone()));
            quantized.push((wname, q));
        }
    }
    Ok(Calibrated {
        calib,
        tokens: samples.iter().map(Vec::len).sum(),
        weights: quantized,
    })
}

/// Runs `mllm quantize`.
pub fn run(args: &QuantizeArgs) -> anyhow::Result<QuantizeSummary> {
    let recipe = match &args.aot_config {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            Recipe::from_aot_json(&t, &p.display().to_string(), args.block_size)?
        }
        None => Recipe::default_lpbq(args.block_size),
    };
    let tok_path = args
        .tokenizer
        .clone()
        .unwrap_or_else(|| sibling(&args.checkpoint, "tokenizer.json"));
    let tok = Tokenizer::from_file(&tok_path)
        .with_context(|| format!("tokenizer {} (give one with -t)", tok_path.display()))?;
    let docs = read_calibration(args.calib.as_deref())?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "calibrating {bar:40} {pos}/{len} samples [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let t0 = Instant::now();
    let Calibrated {
        calib,
        tokens,
        weights: prequantized,
    } = calibrate(
        &args.checkpoint,
        args.config.as_deref(),
        &tok,
        &docs,
        args.max_length,
        args.num_samples,
        &recipe,
        &bar,
    )?;
    bar.finish_and_clear();
    let calib_secs = t0.elapsed().as_secs_f64();
    let opts = BuildOptions {
        ar_len: args.ar_len,
        context_len: args.context_len,
        num_shards: 1,
    };
    let (cfg, mut m) = load_module(&args.checkpoint, args.config.as_deref(), opts)?;
    if let Some(l) = recipe.config.as_ref().and_then(|c| c.quant_recipe.layers) {
        if l != cfg.num_hidden_layers {
            bail!(
                "the AOT config is for {l} layers but the model has {}",
                cfg.num_hidden_layers
            );
        }
    }
    decompose_all(&mut m)?;
    // The float module of the same shape, for the report's greedy comparison (weights
    // are shared, not copied).
    let float_m = args.report.wanted().then(|| m.clone());
    let mut pre_summary = Vec::new();
    for (name, q) in prequantized {
        pre_summary.push((name, q.scheme.to_owned(), q.sqnr_db));
        m.weights.insert(q.name, q.weight);
    }
    let mut summary = quantize_module(&mut m, &calib, &recipe)?;
    pre_summary.append(&mut summary.weights);
    summary.weights = pre_summary;
    mllm_ir::verify::verify_module(&m).context("quantized module does not verify")?;
    let report = match float_m {
        Some(fm) => Some(crate::report::measure(
            crate::report::ReportInputs {
                checkpoint: &args.checkpoint,
                config: args.config.as_deref(),
                tokenizer: &tok,
                recipe: &recipe,
                calib: &calib,
                len: args.max_length,
                float_module: fm,
                quant_module: &m,
                quiet: args.quiet,
            },
            &args.report,
        )?),
        None => None,
    };
    let sq: Vec<f64> = summary.weights.iter().map(|w| w.2).collect();
    let mean = sq.iter().sum::<f64>() / sq.len().max(1) as f64;
    let min = summary.weights.iter().map(|w| (w.2, w.0.clone())).fold(
        (f64::INFINITY, String::new()),
        |a, b| if b.0 < a.0 { b } else { a },
    );
    let mut q_json = serde_json::json!({
        "calibration": {"samples": tokens / args.max_length.max(1), "tokens": tokens, "seconds": calib_secs},
        "weights": summary.weights.iter().map(|(n, s, q)| serde_json::json!({"name": n, "scheme": s, "sqnr_db": q})).collect::<Vec<_>>(),
        "activations": summary.activations,
    });
    if let Some(r) = &report {
        q_json["report"] = r.summary_json();
    }

    // Every output is written to a staging directory (or, for --report / --plot paths
    // elsewhere, to a temporary sibling) and renamed into place only once all of them
    // are complete: an error or Ctrl-C leaves no half-written or mixed output.
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("{}: cannot create", args.output.display()))?;
    refuse_overwriting_input(&args.checkpoint, &args.output)?;
    let mut staged = Staging::new(&args.output)?;
    let weights_path = args.output.join("model.mllm");
    write_weights(&m, &staged.file("model.mllm"))?;
    crate::pymllm::write_export(&m, staged.dir(), &args.checkpoint)?;
    staged.add("model.safetensors");
    m.attrs
        .insert("weights".into(), Attr::Str("model.mllm".into()));
    let ir_path = args.output.join("model.mlir");
    crate::translate::write_output(
        &staged.file("model.mlir"),
        mllm_ir::print::print_module(&m).as_bytes(),
    )?;
    crate::translate::write_output(
        &staged.file("quantize.json"),
        serde_json::to_string_pretty(&q_json)?.as_bytes(),
    )?;
    if let Some(r) = &report {
        if let Some(p) = &args.report.report {
            let tmp = staged.sibling(p)?;
            crate::translate::write_output(
                &tmp,
                serde_json::to_string_pretty(&r.to_json())?.as_bytes(),
            )?;
        }
        if let Some(p) = &args.report.plot {
            let tmp = staged.sibling(p)?;
            crate::report::plot(r, &tmp)?;
        }
    }
    staged.commit()?;
    Ok(QuantizeSummary {
        ir: ir_path,
        weights: weights_path,
        calib_tokens: tokens,
        calib_secs,
        mean_weight_sqnr: mean,
        min_weight_sqnr: min,
        report,
    })
}

/// Refuses an output directory whose `model.safetensors` / `model.mllm` is the input
/// checkpoint.
fn refuse_overwriting_input(ckpt: &Path, out: &Path) -> anyhow::Result<()> {
    let src = if ckpt.is_dir() {
        vec![ckpt.join("model.safetensors"), ckpt.join("model.mllm")]
    } else {
        vec![ckpt.to_path_buf()]
    };
    for name in ["model.safetensors", "model.mllm"] {
        let dst = out.join(name);
        for s in &src {
            if let (Ok(a), Ok(b)) = (std::fs::canonicalize(&dst), std::fs::canonicalize(s)) {
                if a == b {
                    bail!(
                        "{}: the output would overwrite the input checkpoint; choose another output directory",
                        dst.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// Prefix of the staging directories in an output directory.
const STAGING_PREFIX: &str = ".mllm-quantize.";

/// Outputs written to temporary paths and renamed into place together by
/// [`Staging::commit`]; dropped before that, it deletes them.
struct Staging {
    out: PathBuf,
    dir: PathBuf,
    /// `(temporary, final)` paths.
    files: Vec<(PathBuf, PathBuf)>,
    done: bool,
}

impl Staging {
    /// A fresh staging directory in `out`; stale ones of processes that no longer
    /// run (killed, e.g. by Ctrl-C) are removed first.
    fn new(out: &Path) -> anyhow::Result<Staging> {
        if let Ok(rd) = std::fs::read_dir(out) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name
                    .strip_prefix(STAGING_PREFIX)
                    .and_then(|r| r.strip_suffix(".tmp"))
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                let alive = pid == std::process::id()
                    || !Path::new("/proc").is_dir()
                    || Path::new(&format!("/proc/{pid}")).exists();
                if !alive {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = out.join(format!("{STAGING_PREFIX}{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir)
            .with_context(|| format!("{}: cannot create the staging directory", dir.display()))?;
        Ok(Staging {
            out: out.to_path_buf(),
            dir,
            files: Vec::new(),
            done: false,
        })
    }

    /// The staging directory.
    fn dir(&self) -> &Path {
        &self.dir
    }

    /// Registers `out/name`, written by the caller to `staging/name`.
    fn add(&mut self, name: &str) {
        self.files.push((self.dir.join(name), self.out.join(name)));
    }

    /// The temporary path of `out/name`.
    fn file(&mut self, name: &str) -> PathBuf {
        self.add(name);
        self.dir.join(name)
    }

    /// A temporary path next to `path` (anywhere), keeping its extension (the plot
    /// backend picks the image format from it).
    fn sibling(&mut self, path: &Path) -> anyhow::Result<PathBuf> {
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file name", path.display()))?
            .to_string_lossy();
        let ext = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp{ext}", std::process::id()));
        self.files.push((tmp.clone(), path.to_path_buf()));
        Ok(tmp)
    }

    /// Renames every output into place and removes the staging directory.
    fn commit(mut self) -> anyhow::Result<()> {
        for (tmp, dst) in &self.files {
            if !tmp.exists() {
                bail!("{}: output was not written", dst.display());
            }
        }
        for (tmp, dst) in &self.files {
            std::fs::rename(tmp, dst).with_context(|| {
                format!(
                    "{}: cannot move {} into place",
                    dst.display(),
                    tmp.display()
                )
            })?;
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn dtype_of(w: WDType) -> DType {
    match w {
        WDType::F32 => DType::F32,
        WDType::F16 => DType::F16,
        WDType::BF16 => DType::BF16,
        WDType::I8 => DType::I8,
        WDType::U8 => DType::U8,
        WDType::I16 => DType::I16,
        WDType::U16 => DType::U16,
        WDType::I32 => DType::I32,
        WDType::I64 => DType::I64,
    }
}

/// Writes every weight the module references to a `.mllm` v2 file (streaming layout).
pub fn write_weights(m: &Module, path: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = Vec::new();
    for f in &m.functions {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind == mllm_ir::OpKind::Weight {
                names.push(o.attrs.str("name").unwrap_or_default().to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    let mut specs = Vec::new();
    for n in &names {
        let w = m
            .weights
            .get(n)
            .with_context(|| format!("weight {n} is not in the store"))?;
        specs.push(TensorSpec::new(
            n.clone(),
            dtype_of(w.dtype),
            w.shape.clone(),
        ));
    }
    let mut wr = MllmWriter::create(path, "qwen3", &specs, MllmLayout::Streaming)?;
    for n in &names {
        let w = m
            .weights
            .get(n)
            .with_context(|| format!("weight {n} is not in the store"))?;
        wr.write_tensor(n, &w.bytes())?;
    }
    wr.finish()?;
    Ok(())
}

/// `mllm quantize` entry point.
pub fn main_with(args: &QuantizeArgs) -> anyhow::Result<()> {
    let t = Instant::now();
    let s = run(args)?;
    eprintln!(
        "quantized in {:.1} s (calibration {} tokens in {:.1} s, {:.0} tok/s); weight SQNR mean {:.2} dB, min {:.2} dB ({})",
        t.elapsed().as_secs_f64(),
        s.calib_tokens,
        s.calib_secs,
        s.calib_tokens as f64 / s.calib_secs.max(1e-9),
        s.mean_weight_sqnr,
        s.min_weight_sqnr.0,
        s.min_weight_sqnr.1
    );
    if let Some(r) = &s.report {
        eprintln!("quality: {}", r.one_line());
    }
    eprintln!("wrote {} and {}", s.ir.display(), s.weights.display());
    Ok(())
}
