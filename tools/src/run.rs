//! `mllm-run` / `mllm run`: generate text with a model on the hybrid prefill/decode
//! scheduler.
//!
//! `-m` takes a compiled QNN context binary (`model.bin` with its `model.bin.json`
//! manifest, run through QNN: the NPU on a phone, the HTP emulator on x86), a checkpoint
//! directory (float model built for `--ar_len` and the context length, run on the CPU
//! reference in float mode) or a textual IR file such as the `model.mlir` written by
//! `mllm quantize` (its `weights` attribute names the weight file, relative to the IR file;
//! quantized modules run in fixed-point mode, i.e. as the NPU computes them). Flags follow
//! mllm's runner (`-m`, `-t`, `-c`, `--ar_len`) and are the same for every backend.
//!
//! For a binary, `--backend cpu` runs its reference IR on the CPU instead and `--compare`
//! runs both: the binary generates, the CPU reference is fed the same tokens
//! (teacher-forced), and the first diverging token and the logits error of every position
//! are reported. The reference IR is `--reference FILE`, else the first of
//! `model.npu.mlir`, `quantized/model.npu.mlir` (the graphs compiled into the binary, as
//! `mllm compile --work-dir` and `mllm demo` write them), `model.mlir` and
//! `quantized/model.mlir` (the pre-layout quantized IR: its logits also differ by what the
//! NPU passes change, e.g. `quant-fix`'s encodings) next to the binary. The model
//! config defaults to `config.json` next to the binary, else the one the reference IR
//! names; the tokenizer to `tokenizer.json` next to the config, else next to the binary.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::Qwen3Config;
use mllm_ir::{AttrsExt, Module};
use mllm_qnn_sys::manifest::manifest_path;
use mllm_runtime::cpu::{CpuExecutor, NumericMode, Rounding};
use mllm_runtime::executor::describe_graphs;
use mllm_runtime::qnn::ExecOverhead;
use mllm_runtime::scheduler::{GraphSelect, LogitsRecord};
use mllm_runtime::tokenizer::{qwen3_prompt, ChatSession};
use mllm_runtime::{
    Executor, GenerationStats, ModelDims, QnnExecutor, QnnOptions, Sampler, SamplerConfig,
    Scheduler, SchedulerConfig, Tokenizer,
};

/// Numeric mode of the CPU reference.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    /// f32 math (quantized types treated as their real values).
    Float,
    /// Fixed-point emulation of the NPU (the default for a quantized IR run on its own),
    /// rounding half away from zero at every requantization.
    Fixed,
    /// Fixed-point as the HTP computes: its integer arithmetic, measured in QNN's HTP
    /// emulator, for every op of a Qwen3 graph (u16 x LPBQ linear / conv, u16 x u8 matmul,
    /// add / sub, mul, fused SiLU, sigmoid, where, softmax, rms_norm, the u16 -> u8 KV
    /// requantize). On the tiny model the emulator's logits are within 4 LSB of it at
    /// every position (tools/tests/qnn_run.rs).
    FixedHtp,
}

/// Which executor runs the model.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BackendArg {
    /// The CPU reference executor of the IR.
    Cpu,
    /// QNN (HTP): runs a compiled context binary.
    Qnn,
}

/// Stats output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatsArg {
    /// Human-readable summary on stderr.
    Text,
    /// One JSON object on stdout after the text.
    Json,
}

/// Arguments of `mllm-run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Model: a QNN context binary (.bin, with its .bin.json manifest), a checkpoint
    /// directory, or an IR file (.mlir) from `mllm quantize` / `mllm-translate`.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// tokenizer.json (default: next to the model, or from the model's config directory).
    #[arg(short = 't', long = "tokenizer")]
    pub tokenizer: Option<PathBuf>,
    /// Model config.json (default: next to the checkpoint, or recorded in the IR).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Prefill chunk length: picks the prefill graph (default: the artifact's largest; for a
    /// checkpoint, the prompt rounded up to 32, at most 512, or 32 with --chat).
    #[arg(long = "ar_len", alias = "ar-len")]
    pub ar_len: Option<usize>,
    /// Context length when building from a checkpoint (default: the prompt plus
    /// --max-new-tokens rounded up to 128, at most max_cache_length of the config, else 1024;
    /// with --chat, that maximum).
    #[arg(long = "context-len")]
    pub context_len: Option<usize>,
    /// Prompt (default: read from stdin).
    #[arg(short = 'p', long = "prompt")]
    pub prompt: Option<String>,
    /// Raw prompt token ids (comma-separated), without tokenizer or chat template.
    #[arg(long = "prompt-ids", value_delimiter = ',')]
    pub prompt_ids: Option<Vec<u32>>,
    /// Maximum number of new tokens.
    #[arg(long = "max-new-tokens", default_value_t = 128)]
    pub max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Top-k (0 = off).
    #[arg(long = "top-k", default_value_t = 0)]
    pub top_k: usize,
    /// Top-p (1 = off).
    #[arg(long = "top-p", default_value_t = 1.0)]
    pub top_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long = "repetition-penalty", default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Interactive chat on stdin (one message per line).
    #[arg(long)]
    pub chat: bool,
    /// Enable Qwen3's thinking (the template's empty think block is omitted).
    #[arg(long)]
    pub think: bool,
    /// Write f32 logits of every prompt position and generated step as .npy [positions, vocab].
    #[arg(long = "logits-out")]
    pub logits_out: Option<PathBuf>,
    /// Stats format.
    #[arg(long, value_enum, default_value = "text")]
    pub stats: StatsArg,
    /// Commit each step's new K/V entries and sample on the host, after `execute`, instead
    /// of letting the CPU reference executor write them into the cache and take the greedy
    /// token inside it (same results; for comparing the host overhead).
    #[arg(long = "no-step-extras")]
    pub no_step_extras: bool,
    /// Executor [default: qnn for a context binary, cpu otherwise].
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Numeric mode on the CPU reference (default: fixed-htp for the reference of a context
    /// binary, fixed for other quantized models, else float).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Directory holding libQnnHtp.so / libQnnSystem.so, or a QNN SDK root
    /// [default: $MLLM_QNN_LIB_DIR, $QNN_SDK_ROOT, then the project's .qnn/lib].
    #[arg(
        long = "qnn_env_path",
        visible_alias = "qnn-lib-dir",
        value_name = "DIR"
    )]
    pub qnn_env_path: Option<PathBuf>,
    /// SoC of the device (SM8650, 57, ...): refuse binaries compiled for another one
    /// [default: trust the binary's target].
    #[arg(long, value_name = "SOC")]
    pub soc: Option<String>,
    /// Run the binary through QNN and its reference IR on the CPU side by side (teacher
    /// forced) and report the first diverging token and the logits error per position.
    #[arg(long)]
    pub compare: bool,
    /// Reference IR of a context binary, for `--compare` and `--backend cpu`
    /// [default, next to the binary: model.npu.mlir (the compiled graphs), else
    /// quantized/model.npu.mlir, model.mlir, quantized/model.mlir].
    #[arg(long, value_name = "MODEL.mlir")]
    pub reference: Option<PathBuf>,
}

impl RunArgs {
    /// Default arguments for model `model` (what the command line gives with only `-m`).
    pub fn new(model: impl Into<PathBuf>) -> RunArgs {
        RunArgs {
            model: model.into(),
            tokenizer: None,
            config: None,
            ar_len: None,
            context_len: None,
            prompt: None,
            prompt_ids: None,
            max_new_tokens: 128,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
            chat: false,
            think: false,
            logits_out: None,
            stats: StatsArg::Text,
            no_step_extras: false,
            backend: None,
            mode: None,
            qnn_env_path: None,
            soc: None,
            compare: false,
            reference: None,
        }
    }

    /// True when `-m` is a QNN context binary (`.bin`, or a file with a `.json` manifest).
    pub fn is_binary(&self) -> bool {
        self.model.extension().is_some_and(|e| e == "bin")
            || (self.model.is_file() && manifest_path(&self.model).is_file())
    }

    /// The executor to use.
    pub fn backend(&self) -> BackendArg {
        self.backend.unwrap_or(if self.is_binary() {
            BackendArg::Qnn
        } else {
            BackendArg::Cpu
        })
    }
}

/// A loaded model ready to run.
pub struct Loaded {
    /// The module.
    pub module: Module,
    /// Its config.
    pub config: Qwen3Config,
    /// Where the model came from (for tokenizer lookup).
    pub dir: PathBuf,
}

fn is_quantized(m: &Module) -> bool {
    m.functions
        .iter()
        .any(|f| f.args().iter().any(|a| f.ty(*a).quant().is_some()))
}

fn dir_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Loads a textual IR file with its weights; the config is `config` if given, else the
/// module's `config` attribute, else `config.json` next to the IR.
pub fn load_ir(p: &Path, config: Option<&Path>) -> anyhow::Result<Loaded> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
    let mut m = mllm_ir::parse::parse_verified(&text, &p.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = dir_of(p);
    qwen3::load_weights(&mut m, Some(&dir))?;
    let cfg_path = match (config, m.attrs.str("config")) {
        (Some(c), _) => c.to_path_buf(),
        (None, Some(c)) => PathBuf::from(c),
        (None, None) => dir.join("config.json"),
    };
    let config = Qwen3Config::from_file(&cfg_path)
        .with_context(|| format!("model config {} (give one with -c)", cfg_path.display()))?;
    let cfg_dir = dir_of(&cfg_path);
    Ok(Loaded {
        module: m,
        config,
        dir: cfg_dir,
    })
}

/// The graph shape `(ar_len, context)` a checkpoint is built with for the CPU reference.
///
/// `--ar_len` and `--context-len` win. Otherwise, when the prompt's length is known (a
/// one-shot run), the graphs are sized to the job: one prefill chunk holds the whole prompt
/// (rounded up to 32 tokens, at most 512), and the context holds the prompt plus
/// `--max-new-tokens` (rounded up to 128), never more than the configured context
/// (`max_cache_length`, else 1024). The continuation is the same as with the largest graphs
/// (the cache never fills earlier), for less work: every prefill chunk streams all the
/// weights, and every step attends over the whole context. Without a prompt length
/// (`--chat`), ar_len 32 and the configured context.
pub fn checkpoint_shape(
    args: &RunArgs,
    config: &Qwen3Config,
    prompt_len: Option<usize>,
) -> (usize, usize) {
    let cap = config.max_cache_length.unwrap_or(1024);
    let Some(n) = prompt_len else {
        return (args.ar_len.unwrap_or(32), args.context_len.unwrap_or(cap));
    };
    let ar_len = args.ar_len.unwrap_or(n.div_ceil(32).clamp(1, 16) * 32);
    let context = args.context_len.unwrap_or_else(|| {
        let need = n.saturating_add(args.max_new_tokens).max(ar_len + 1);
        (need.min(cap).div_ceil(128) * 128).min(cap)
    });
    match args.ar_len {
        // A prefill chunk as long as the context would leave no past; keep half of it.
        None if ar_len >= context => (((context / 2) / 32 * 32).max(1), context),
        _ => (ar_len, context),
    }
}

/// Loads `-m` (checkpoint or IR; for a context binary, its reference IR). A checkpoint is
/// built with [`checkpoint_shape`] (`prompt_len`: the prompt's token count when known).
pub fn load(args: &RunArgs, prompt_len: Option<usize>) -> anyhow::Result<Loaded> {
    let p = &args.model;
    if args.is_binary() {
        let r = reference_ir(args)?;
        return load_ir(&r, args.config.as_deref());
    }
    if p.extension().is_some_and(|e| e == "mlir") {
        return load_ir(p, args.config.as_deref());
    }
    let cfg_path = args.config.clone().unwrap_or_else(|| p.join("config.json"));
    let config = Qwen3Config::from_file(&cfg_path)?;
    let (ar_len, context_len) = checkpoint_shape(args, &config, prompt_len);
    let (_, module) = crate::quantize::load_module(
        p,
        Some(&cfg_path),
        BuildOptions {
            ar_len,
            context_len,
            num_shards: 1,
        },
    )?;
    Ok(Loaded {
        module,
        config,
        dir: if p.is_dir() { p.clone() } else { dir_of(p) },
    })
}

/// The reference IR of a context binary: `--reference`, else the first of
/// `model.npu.mlir`, `quantized/model.npu.mlir` (the graphs compiled into the binary),
/// `model.mlir` and `quantized/model.mlir` (the pre-layout quantized IR) next to it.
pub fn reference_ir(args: &RunArgs) -> anyhow::Result<PathBuf> {
    if let Some(r) = &args.reference {
        return Ok(r.clone());
    }
    let dir = dir_of(&args.model);
    let q = dir.join("quantized");
    let candidates = [
        dir.join("model.npu.mlir"),
        q.join("model.npu.mlir"),
        dir.join("model.mlir"),
        q.join("model.mlir"),
    ];
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .with_context(|| {
            let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            format!(
                "no reference IR for {} (looked for {}); give the IR it was compiled from \
                 with --reference",
                args.model.display(),
                looked.join(", ")
            )
        })
}

/// The `config` attribute of an IR file's module, read from its header only.
fn ir_config_attr(ir: &Path) -> Option<PathBuf> {
    let f = std::fs::File::open(ir).ok()?;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.ok()?;
        if line.starts_with("module") {
            let rest = &line[line.find("config = \"")? + "config = \"".len()..];
            return Some(PathBuf::from(&rest[..rest.find('"')?]));
        }
        if line.starts_with("func") || line.starts_with("  func") {
            return None;
        }
    }
    None
}

/// Model config of a context binary: `-c`, else `config.json` next to the binary, else
/// the config the reference IR names.
fn binary_config(args: &RunArgs) -> anyhow::Result<(Qwen3Config, PathBuf)> {
    let path = match &args.config {
        Some(c) => c.clone(),
        None => {
            let next_to = dir_of(&args.model).join("config.json");
            if next_to.is_file() {
                next_to
            } else {
                reference_ir(args)
                    .ok()
                    .and_then(|r| ir_config_attr(&r))
                    .with_context(|| {
                        format!(
                            "no model config for {} (no {} and no reference IR naming one); give \
                             it with -c config.json",
                            args.model.display(),
                            next_to.display()
                        )
                    })?
            }
        }
    };
    let cfg = Qwen3Config::from_file(&path)
        .with_context(|| format!("model config {} (give one with -c)", path.display()))?;
    Ok((cfg, path))
}

/// Opens `-m` as a QNN context binary.
pub fn open_qnn(args: &RunArgs) -> anyhow::Result<QnnExecutor> {
    let device_soc = match &args.soc {
        Some(s) => Some(crate::qnn::parse_soc(s)?),
        None => None,
    };
    let opts = QnnOptions {
        lib_dir: args.qnn_env_path.clone(),
        device_soc,
    };
    Ok(QnnExecutor::open(&args.model, &opts)?)
}

/// Checks the model config against the dims of the executor's graphs.
pub fn check_config(cfg: &Qwen3Config, dims: &ModelDims, what: &str) -> anyhow::Result<()> {
    let pairs = [
        (
            "num_hidden_layers",
            cfg.num_hidden_layers,
            dims.layers,
            "layers",
        ),
        (
            "num_key_value_heads",
            cfg.num_key_value_heads,
            dims.kv_heads,
            "KV heads",
        ),
        ("head_dim", cfg.head_dim, dims.head_dim, "head dim"),
        ("vocab_size", cfg.vocab_size, dims.vocab, "vocabulary"),
    ];
    let bad: Vec<String> = pairs
        .iter()
        .filter(|(_, c, d, _)| c != d)
        .map(|(k, c, d, n)| format!("config {k} = {c}, but the graphs have {d} {n}"))
        .collect();
    if !bad.is_empty() {
        bail!(
            "the model config does not match {what}: {} (wrong -c for this model?)",
            bad.join("; ")
        );
    }
    Ok(())
}

/// Builds the scheduler over any executor: prefill graph from `--ar_len` (default: the
/// executor's largest ar_len), decode with the ar_len-1 graph; EOS ids from the config.
pub fn scheduler<E: Executor>(
    exec: E,
    config: &Qwen3Config,
    args: &RunArgs,
) -> anyhow::Result<Scheduler<E>> {
    let prefill = match args.ar_len {
        Some(n) => {
            if !exec.graphs().iter().any(|g| g.ar_len == n) {
                bail!(
                    "{} has no graph with ar_len {n}; available: {}",
                    args.model.display(),
                    describe_graphs(exec.graphs())
                );
            }
            if n == 1 {
                GraphSelect::Disabled
            } else {
                GraphSelect::ArLen(n)
            }
        }
        None => GraphSelect::Auto,
    };
    let eos = if config.eos_token_ids.is_empty() {
        mllm_runtime::scheduler::QWEN3_EOS.to_vec()
    } else {
        config.eos_token_ids.clone()
    };
    let cfg = SchedulerConfig {
        max_new_tokens: args.max_new_tokens,
        eos_ids: eos,
        prefill,
        record_logits: args.logits_out.is_some() || args.compare,
        ..Default::default()
    };
    let mut sched = Scheduler::new(exec, cfg)?;
    sched.set_step_extras(!args.no_step_extras);
    check_config(config, sched.dims(), &args.model.display().to_string())?;
    Ok(sched)
}

/// The CPU executor of a loaded module (`--mode`; by default fixed-point when quantized,
/// with the HTP's arithmetic when the module is the reference of a context binary).
pub fn cpu_executor(l: &Loaded, args: &RunArgs) -> anyhow::Result<CpuExecutor> {
    let mode = match args.mode {
        Some(ModeArg::Float) => NumericMode::Float,
        Some(ModeArg::Fixed) => NumericMode::Fixed(Default::default()),
        Some(ModeArg::FixedHtp) => NumericMode::Fixed(Rounding::Htp),
        None if is_quantized(&l.module) && args.is_binary() => NumericMode::Fixed(Rounding::Htp),
        None if is_quantized(&l.module) => NumericMode::Fixed(Default::default()),
        None => NumericMode::Float,
    };
    Ok(CpuExecutor::new(&l.module, mode)?)
}

/// Builds the scheduler over the CPU executor.
pub fn cpu_scheduler(l: &Loaded, args: &RunArgs) -> anyhow::Result<Scheduler<CpuExecutor>> {
    scheduler(cpu_executor(l, args)?, &l.config, args)
}

/// Executor-specific figures printed with the stats.
pub trait ExecFigures {
    /// Time accounting of the executor's own work, if it keeps one.
    fn overhead(&self) -> Option<ExecOverhead> {
        None
    }
}

impl ExecFigures for CpuExecutor {}

impl ExecFigures for QnnExecutor {
    fn overhead(&self) -> Option<ExecOverhead> {
        Some(QnnExecutor::overhead(self))
    }
}

fn stats_json(
    s: &GenerationStats,
    backend: BackendArg,
    o: Option<&ExecOverhead>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "backend": match backend { BackendArg::Cpu => "cpu", BackendArg::Qnn => "qnn" },
        "prompt_tokens": s.prompt_tokens,
        "generated_tokens": s.generated.len(),
        "generated_ids": s.generated,
        "stop": s.stop.map(|r| r.to_string()),
        "prefill_tok_per_s": s.prefill_tok_per_s(),
        "decode_tok_per_s": s.decode_tok_per_s(),
        "time_to_first_token_ms": s.time_to_first_token.as_secs_f64() * 1e3,
        "host_overhead_per_decode_step_us": s.host_overhead_per_step().as_secs_f64() * 1e6,
        "first_decode_step_host_us": s.decode_first_host_time.as_secs_f64() * 1e6,
    });
    if let (Some(o), Some(map)) = (o, v.as_object_mut()) {
        map.insert(
            "executor_overhead_per_call_us".into(),
            (o.per_call().as_secs_f64() * 1e6).into(),
        );
        map.insert(
            "executor_overhead_fastest_call_us".into(),
            (o.fastest.unwrap_or_default().as_secs_f64() * 1e6).into(),
        );
        map.insert("executor_calls".into(), o.calls.into());
        map.insert(
            "graph_execute_ms".into(),
            (o.library_time.as_secs_f64() * 1e3).into(),
        );
    }
    v
}

fn print_stats(s: &GenerationStats, how: StatsArg, backend: BackendArg, o: Option<&ExecOverhead>) {
    match how {
        StatsArg::Json => println!("{}", stats_json(s, backend, o)),
        StatsArg::Text => {
            eprintln!(
                "\n[{} prompt tokens, {} generated ({})] prefill {:.1} tok/s, decode {:.1} tok/s, time to first token {:.1} ms, host overhead {:.1} us/step",
                s.prompt_tokens,
                s.generated.len(),
                s.stop.map(|r| r.to_string()).unwrap_or_else(|| "nothing generated".into()),
                s.prefill_tok_per_s(),
                s.decode_tok_per_s(),
                s.time_to_first_token.as_secs_f64() * 1e3,
                s.host_overhead_per_step().as_secs_f64() * 1e6
            );
            if let Some(o) = o {
                eprintln!(
                    "[qnn] {} graphExecute calls, {:.1} ms inside the library; executor overhead outside graphExecute {:.1} us/call mean, {:.1} us fastest",
                    o.calls,
                    o.library_time.as_secs_f64() * 1e3,
                    o.per_call().as_secs_f64() * 1e6,
                    o.fastest.unwrap_or_default().as_secs_f64() * 1e6
                );
            }
        }
    }
}

/// Generates for one prompt, streaming text to stdout; returns the stats.
pub fn generate_once<E: Executor>(
    sched: &mut Scheduler<E>,
    tok: Option<&Tokenizer>,
    ids: &[u32],
    sampler: &mut Sampler,
    quiet: bool,
) -> anyhow::Result<GenerationStats> {
    let mut out = std::io::stdout();
    let mut dec = tok.map(|t| t.stream(true));
    let stats = sched.generate(ids, sampler, |id| {
        if !quiet {
            match dec.as_mut() {
                Some(d) => {
                    if let Ok(Some(s)) = d.push(id) {
                        let _ = out.write_all(s.as_bytes());
                        let _ = out.flush();
                    }
                }
                None => {
                    let _ = write!(out, "{id} ");
                    let _ = out.flush();
                }
            }
        }
        true
    })?;
    if let Some(d) = dec.as_mut() {
        if let Ok(Some(s)) = d.flush() {
            if !quiet {
                let _ = out.write_all(s.as_bytes());
            }
        }
    }
    Ok(stats)
}

fn sampler_config(args: &RunArgs) -> SamplerConfig {
    SamplerConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repetition_penalty: args.repetition_penalty,
        seed: args.seed,
    }
}

fn load_tokenizer(args: &RunArgs, dirs: &[PathBuf]) -> anyhow::Result<Option<Tokenizer>> {
    if args.prompt_ids.is_some() && !args.chat {
        return Ok(None);
    }
    let tp = match &args.tokenizer {
        Some(t) => t.clone(),
        None => dirs
            .iter()
            .map(|d| d.join("tokenizer.json"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| dirs[0].join("tokenizer.json")),
    };
    Ok(Some(Tokenizer::from_file(&tp).with_context(|| {
        format!("tokenizer {} (give one with -t)", tp.display())
    })?))
}

fn prompt_ids(args: &RunArgs, tok: Option<&Tokenizer>) -> anyhow::Result<Vec<u32>> {
    Ok(match (&args.prompt_ids, tok) {
        (Some(ids), _) => ids.clone(),
        (None, Some(t)) => {
            let text = match &args.prompt {
                Some(p) => p.clone(),
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                }
            };
            t.encode(&qwen3_prompt(text.trim_end(), args.think))?
        }
        (None, None) => bail!("give a prompt with -p, --prompt-ids or on stdin"),
    })
}

/// Runs the prompt (or the chat) on a ready scheduler and prints the stats.
fn drive<E: Executor + ExecFigures>(
    sched: &mut Scheduler<E>,
    tok: Option<&Tokenizer>,
    args: &RunArgs,
    ids: Option<Vec<u32>>,
) -> anyhow::Result<GenerationStats> {
    let backend = args.backend();
    let mut sampler = Sampler::new(sampler_config(args), sched.dims().vocab)?;
    if args.chat {
        let tok = tok.context("--chat needs a tokenizer")?;
        let mut session = ChatSession::new();
        let stdin = std::io::stdin();
        let mut last = GenerationStats::default();
        eprint!("> ");
        for line in stdin.lock().lines() {
            let line = line?;
            if line.trim().is_empty() {
                eprint!("> ");
                continue;
            }
            session.push_user(line.trim());
            let ids = tok.encode(&session.render())?;
            let before = sched.executor().overhead();
            let stats = generate_once(sched, Some(tok), &ids, &mut sampler, false)?;
            let o = sched
                .executor()
                .overhead()
                .zip(before)
                .map(|(a, b)| a.since(&b));
            let reply = tok.decode(&stats.generated, true)?;
            session.push_assistant(&reply);
            print_stats(&stats, args.stats, backend, o.as_ref());
            last = stats;
            eprint!("> ");
        }
        return Ok(last);
    }
    let ids = match ids {
        Some(ids) => ids,
        None => prompt_ids(args, tok)?,
    };
    let before = sched.executor().overhead();
    let stats = generate_once(sched, tok, &ids, &mut sampler, false)?;
    let o = sched
        .executor()
        .overhead()
        .zip(before)
        .map(|(a, b)| a.since(&b));
    println!();
    if let (Some(path), Some(rec)) = (&args.logits_out, &stats.logits) {
        rec.write_npy(path)?;
    }
    print_stats(&stats, args.stats, backend, o.as_ref());
    Ok(stats)
}

/// Runs `mllm-run`.
pub fn main_with(args: &RunArgs) -> anyhow::Result<()> {
    run_with(args).map(|_| ())
}

/// Runs `mllm-run` and returns the stats of the (last) generation.
pub fn run_with(args: &RunArgs) -> anyhow::Result<GenerationStats> {
    let t0 = Instant::now();
    let is_bin = args.is_binary();
    if args.compare {
        if !is_bin {
            bail!(
                "--compare needs a QNN context binary (-m model.bin); {} is not one",
                args.model.display()
            );
        }
        return compare_main(args).map(|c| c.qnn);
    }
    match (args.backend(), is_bin) {
        (BackendArg::Qnn, false) => bail!(
            "--backend qnn runs a compiled context binary (model.bin + model.bin.json); {} is \
             not one (compile it with `mllm-translate --to-qnn`)",
            args.model.display()
        ),
        (BackendArg::Qnn, true) => {
            let (config, cfg_path) = binary_config(args)?;
            let exec = open_qnn(args)?;
            let report = exec.load_report().clone();
            let mut sched = scheduler(exec, &config, args)?;
            let tok = load_tokenizer(args, &[dir_of(&cfg_path), dir_of(&args.model)])?;
            if args.stats == StatsArg::Text {
                eprintln!(
                    "loaded {} in {:.2} s (QNN: {report})",
                    args.model.display(),
                    t0.elapsed().as_secs_f64()
                );
            }
            drive(&mut sched, tok.as_ref(), args, None)
        }
        (BackendArg::Cpu, _) => {
            let is_ir = args.model.extension().is_some_and(|e| e == "mlir");
            let (loaded, tok, ids) = if !is_bin && !is_ir && !args.chat {
                // A checkpoint for one prompt: tokenize first, so the graphs fit the job.
                let dir = if args.model.is_dir() {
                    args.model.clone()
                } else {
                    dir_of(&args.model)
                };
                let tok = load_tokenizer(args, &[dir, dir_of(&args.model)])?;
                let ids = prompt_ids(args, tok.as_ref())?;
                (load(args, Some(ids.len()))?, tok, Some(ids))
            } else {
                let loaded = load(args, None)?;
                let tok = load_tokenizer(args, &[loaded.dir.clone(), dir_of(&args.model)])?;
                (loaded, tok, None)
            };
            let mut sched = cpu_scheduler(&loaded, args)?;
            if args.stats == StatsArg::Text {
                let d = sched.dims();
                eprintln!(
                    "loaded {} in {:.2} s (CPU reference; graphs: {}, context {})",
                    args.model.display(),
                    t0.elapsed().as_secs_f64(),
                    describe_graphs(sched.executor().graphs()),
                    d.context
                );
            }
            drive(&mut sched, tok.as_ref(), args, ids)
        }
    }
}

/// Logits error of one position, QNN vs the CPU reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionError {
    /// Largest |qnn - reference| over the vocabulary, dequantized.
    pub max_abs: f32,
    /// The same in output LSB (the logits' quantization step), when quantized.
    pub max_lsb: Option<f32>,
    /// Argmax of the QNN logits.
    pub argmax_qnn: u32,
    /// Argmax of the reference logits.
    pub argmax_ref: u32,
    /// Gap between the reference's two largest logits (dequantized).
    pub ref_top2_gap: f32,
}

impl PositionError {
    /// The argmaxes differ.
    pub fn argmax_differs(&self) -> bool {
        self.argmax_qnn != self.argmax_ref
    }
}

fn argmax_and_gap(row: &[f32]) -> (u32, f32) {
    let (mut best, mut i_best, mut second) = (f32::NEG_INFINITY, 0usize, f32::NEG_INFINITY);
    for (i, &v) in row.iter().enumerate() {
        if v > best {
            second = best;
            best = v;
            i_best = i;
        } else if v > second {
            second = v;
        }
    }
    (i_best as u32, best - second)
}

/// Compares two logits records row by row (`[rows, vocab]`, dequantized); `lsb` is the
/// logits' quantization step. Compares the rows both have.
pub fn compare_rows(
    qnn: &LogitsRecord,
    reference: &LogitsRecord,
    lsb: Option<f32>,
) -> Vec<PositionError> {
    let v = qnn.vocab;
    if v == 0 || reference.vocab != v {
        return Vec::new();
    }
    qnn.data
        .chunks_exact(v)
        .zip(reference.data.chunks_exact(v))
        .map(|(a, b)| {
            let max_abs = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            let (argmax_qnn, _) = argmax_and_gap(a);
            let (argmax_ref, ref_top2_gap) = argmax_and_gap(b);
            PositionError {
                max_abs,
                max_lsb: lsb.filter(|l| *l > 0.0).map(|l| max_abs / l),
                argmax_qnn,
                argmax_ref,
                ref_top2_gap,
            }
        })
        .collect()
}

/// Outcome of `--compare`.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Stats of the QNN generation.
    pub qnn: GenerationStats,
    /// Prompt length (rows `0..prompt` of `positions` are prompt positions).
    pub prompt: usize,
    /// Per-position errors: prompt positions, then one per generated token fed back.
    pub positions: Vec<PositionError>,
    /// Index (into the generated tokens) of the first one the reference would not have
    /// chosen (argmax of its logits at that position), if any.
    pub first_divergence: Option<usize>,
}

impl Comparison {
    /// Largest error in output LSB over every position (None when not quantized).
    pub fn max_lsb(&self) -> Option<f32> {
        self.positions
            .iter()
            .filter_map(|p| p.max_lsb)
            .reduce(f32::max)
    }

    /// Largest dequantized error over every position.
    pub fn max_abs(&self) -> f32 {
        self.positions.iter().map(|p| p.max_abs).fold(0.0, f32::max)
    }
}

/// `--compare`: generates with the binary on QNN, feeds the same tokens to the CPU
/// reference (teacher forcing) and compares every position's logits.
pub fn compare_main(args: &RunArgs) -> anyhow::Result<Comparison> {
    let (config, cfg_path) = binary_config(args)?;
    let reference = reference_ir(args)?;
    let mut rargs = args.clone();
    rargs.compare = true;
    let exec = open_qnn(&rargs)?;
    let report = exec.load_report().clone();
    let mut qs = scheduler(exec, &config, &rargs)?;
    let loaded = load_ir(&reference, Some(&cfg_path))?;
    let mut cargs = rargs.clone();
    cargs.max_new_tokens = 1;
    let mut cs = scheduler(cpu_executor(&loaded, &cargs)?, &config, &cargs)?;
    if qs.dims() != cs.dims() {
        bail!(
            "reference {} has dims {:?}, the binary {:?}: not the IR it was compiled from",
            reference.display(),
            cs.dims(),
            qs.dims()
        );
    }
    let tok = load_tokenizer(args, &[dir_of(&cfg_path), dir_of(&args.model)])?;
    let ids = prompt_ids(args, tok.as_ref())?;
    if args.stats == StatsArg::Text {
        eprintln!(
            "compare: {} on QNN ({report}) vs {} on the CPU reference",
            args.model.display(),
            reference.display()
        );
    }
    let mut sampler = Sampler::new(sampler_config(args), qs.dims().vocab)?;
    let qstats = generate_once(&mut qs, tok.as_ref(), &ids, &mut sampler, false)?;
    println!();
    let mut forced = ids.clone();
    if let Some((_, fed)) = qstats.generated.split_last() {
        forced.extend_from_slice(fed);
    }
    let mut greedy = Sampler::new(SamplerConfig::greedy(), cs.dims().vocab)?;
    let cstats = cs.generate(&forced, &mut greedy, |_| true)?;
    let (Some(qrec), Some(crec)) = (&qstats.logits, &cstats.logits) else {
        bail!("logits were not recorded");
    };
    let lsb = match qs.logits_desc().quant {
        mllm_runtime::Quant::PerTensor { scale, .. } => Some(scale),
        mllm_runtime::Quant::None => None,
    };
    let positions = compare_rows(qrec, crec, lsb);
    let (qrows, crows) = (qrec.rows(), crec.rows());
    let prompt = ids.len();
    // Position prompt-1+k produced generated token k.
    let first_divergence = qstats.generated.iter().enumerate().find_map(|(k, _)| {
        positions
            .get(prompt - 1 + k)
            .filter(|p| p.argmax_differs())
            .map(|_| k)
    });
    let cmp = Comparison {
        qnn: qstats,
        prompt,
        positions,
        first_divergence,
    };
    print_comparison(&cmp, args.stats, qrows, crows);
    Ok(cmp)
}

fn print_comparison(c: &Comparison, how: StatsArg, qrows: usize, crows: usize) {
    let lsb = |p: &PositionError| {
        p.max_lsb
            .map(|l| format!(" ({l:.1} LSB)"))
            .unwrap_or_default()
    };
    let differ = c.positions.iter().filter(|p| p.argmax_differs()).count();
    let near_ties = c
        .positions
        .iter()
        .filter(|p| p.argmax_differs() && p.ref_top2_gap <= 2.0 * p.max_abs)
        .count();
    match how {
        StatsArg::Json => println!(
            "{}",
            serde_json::json!({
                "compared_positions": c.positions.len(),
                "prompt_tokens": c.prompt,
                "generated_ids": c.qnn.generated,
                "first_divergence": c.first_divergence,
                "max_abs": c.max_abs(),
                "max_lsb": c.max_lsb(),
                "argmax_differs": differ,
                "per_position_max_abs": c.positions.iter().map(|p| p.max_abs).collect::<Vec<_>>(),
                "per_position_max_lsb": c.positions.iter().map(|p| p.max_lsb).collect::<Vec<_>>(),
            })
        ),
        StatsArg::Text => {
            eprintln!(
                "\ncompare ({} positions: {} prompt + {} generated fed back; QNN rows {qrows}, reference rows {crows}):",
                c.positions.len(),
                c.prompt.min(c.positions.len()),
                c.positions.len().saturating_sub(c.prompt)
            );
            let prompt_max = c.positions[..c.prompt.min(c.positions.len())]
                .iter()
                .map(|p| p.max_abs)
                .fold(0.0f32, f32::max);
            eprintln!("  prompt positions: max |logit error| {prompt_max:.4}");
            for (k, p) in c
                .positions
                .iter()
                .enumerate()
                .skip(c.prompt.saturating_sub(1))
            {
                let step = k + 1 - c.prompt;
                eprintln!(
                    "  step {step:3}: qnn token {:6} ref argmax {:6}{} max |error| {:.4}{} ref top-2 gap {:.4}",
                    p.argmax_qnn,
                    p.argmax_ref,
                    if p.argmax_differs() { " DIFFERS" } else { "" },
                    p.max_abs,
                    lsb(p),
                    p.ref_top2_gap
                );
            }
            eprintln!(
                "  max error {:.4}{} over all positions; argmax differs at {differ} position(s), {near_ties} of them where the reference's top-2 gap is within twice the error",
                c.max_abs(),
                c.max_lsb().map(|l| format!(" ({l:.1} LSB)")).unwrap_or_default()
            );
            match c.first_divergence {
                Some(k) => eprintln!(
                    "  first diverging token: generated #{k} (id {})",
                    c.qnn.generated.get(k).copied().unwrap_or_default()
                ),
                None => eprintln!(
                    "  no diverging token: the reference picks every generated token ({})",
                    c.qnn.generated.len()
                ),
            }
            print_stats(&c.qnn, how, BackendArg::Qnn, None);
        }
    }
}
