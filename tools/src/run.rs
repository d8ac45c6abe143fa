//! `mllm-run` / `mllm run`: generate text with a model on the hybrid prefill/decode
//! scheduler.
//!
//! `-m` takes a checkpoint directory (float model built for `--ar_len` and the context
//! length, run on the CPU reference in float mode) or a textual IR file such as the
//! `model.mlir` written by `mllm quantize` (its `weights` attribute names the weight
//! file, relative to the IR file; quantized modules run in fixed-point mode, i.e. as the
//! NPU computes them). Flags follow mllm's runner (`-m`, `-t`, `-c`, `--ar_len`).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::Qwen3Config;
use mllm_ir::{AttrsExt, Module};
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::tokenizer::{qwen3_prompt, ChatSession};
use mllm_runtime::{
    Executor, GenerationStats, Sampler, SamplerConfig, Scheduler, SchedulerConfig, Tokenizer,
};

/// Numeric mode of the CPU reference.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    /// f32 math (quantized types treated as their real values).
    Float,
    /// Fixed-point emulation of the NPU (the default for quantized models).
    Fixed,
}

/// Which executor runs the model.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BackendArg {
    /// The CPU reference executor of the IR.
    Cpu,
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
    /// Model: a checkpoint directory, or an IR file (.mlir) from `mllm quantize` / `mllm-translate`.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// tokenizer.json (default: next to the model, or from the model's config directory).
    #[arg(short = 't', long = "tokenizer")]
    pub tokenizer: Option<PathBuf>,
    /// Model config.json (default: next to the checkpoint, or recorded in the IR).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Prefill chunk length: picks the prefill graph (default: the artifact's; 32 for a checkpoint).
    #[arg(long = "ar_len", alias = "ar-len")]
    pub ar_len: Option<usize>,
    /// Context length when building from a checkpoint (default: max_cache_length of the config, else 1024).
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
    /// Executor.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendArg,
    /// Numeric mode on the CPU reference (default: fixed for quantized models, else float).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
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

/// Loads `-m` (checkpoint or IR).
pub fn load(args: &RunArgs) -> anyhow::Result<Loaded> {
    let p = &args.model;
    let is_ir = p.extension().is_some_and(|e| e == "mlir");
    if is_ir {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
        let mut m = mllm_ir::parse::parse_verified(&text, &p.display().to_string())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let dir = p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        qwen3::load_weights(&mut m, Some(&dir))?;
        let cfg_path = match (&args.config, m.attrs.str("config")) {
            (Some(c), _) => c.clone(),
            (None, Some(c)) => PathBuf::from(c),
            (None, None) => dir.join("config.json"),
        };
        let config = Qwen3Config::from_file(&cfg_path)
            .with_context(|| format!("model config {} (give one with -c)", cfg_path.display()))?;
        let cfg_dir = cfg_path.parent().map(Path::to_path_buf).unwrap_or(dir);
        return Ok(Loaded {
            module: m,
            config,
            dir: cfg_dir,
        });
    }
    let cfg_path = args.config.clone().unwrap_or_else(|| p.join("config.json"));
    let config = Qwen3Config::from_file(&cfg_path)?;
    let ar_len = args.ar_len.unwrap_or(32);
    let context_len = args.context_len.or(config.max_cache_length).unwrap_or(1024);
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
        dir: if p.is_dir() {
            p.clone()
        } else {
            p.parent().map(Path::to_path_buf).unwrap_or_default()
        },
    })
}

/// Builds the scheduler over the CPU executor.
pub fn cpu_scheduler(l: &Loaded, args: &RunArgs) -> anyhow::Result<Scheduler<CpuExecutor>> {
    let mode = match args.mode {
        Some(ModeArg::Float) => NumericMode::Float,
        Some(ModeArg::Fixed) => NumericMode::Fixed(Default::default()),
        None if is_quantized(&l.module) => NumericMode::Fixed(Default::default()),
        None => NumericMode::Float,
    };
    let exec = CpuExecutor::new(&l.module, mode)?;
    let prefill = match args.ar_len {
        Some(n) => {
            if !exec.graphs().iter().any(|g| g.ar_len == n) {
                let have: Vec<String> = exec
                    .graphs()
                    .iter()
                    .map(|g| format!("{} (ar_len {})", g.name, g.ar_len))
                    .collect();
                bail!(
                    "the model has no graph with ar_len {n}; available: {}",
                    have.join(", ")
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
    let eos = if l.config.eos_token_ids.is_empty() {
        mllm_runtime::scheduler::QWEN3_EOS.to_vec()
    } else {
        l.config.eos_token_ids.clone()
    };
    let cfg = SchedulerConfig {
        max_new_tokens: args.max_new_tokens,
        eos_ids: eos,
        prefill,
        record_logits: args.logits_out.is_some(),
        ..Default::default()
    };
    Ok(Scheduler::new(exec, cfg)?)
}

fn stats_json(s: &GenerationStats) -> serde_json::Value {
    serde_json::json!({
        "prompt_tokens": s.prompt_tokens,
        "generated_tokens": s.generated.len(),
        "generated_ids": s.generated,
        "stop": s.stop.map(|r| r.to_string()),
        "prefill_tok_per_s": s.prefill_tok_per_s(),
        "decode_tok_per_s": s.decode_tok_per_s(),
        "time_to_first_token_ms": s.time_to_first_token.as_secs_f64() * 1e3,
        "host_overhead_per_decode_step_us": s.host_overhead_per_step().as_secs_f64() * 1e6,
    })
}

fn print_stats(s: &GenerationStats, how: StatsArg) {
    match how {
        StatsArg::Json => println!("{}", stats_json(s)),
        StatsArg::Text => eprintln!(
            "\n[{} prompt tokens, {} generated ({})] prefill {:.1} tok/s, decode {:.1} tok/s, time to first token {:.1} ms, host overhead {:.1} us/step",
            s.prompt_tokens,
            s.generated.len(),
            s.stop.map(|r| r.to_string()).unwrap_or_else(|| "nothing generated".into()),
            s.prefill_tok_per_s(),
            s.decode_tok_per_s(),
            s.time_to_first_token.as_secs_f64() * 1e3,
            s.host_overhead_per_step().as_secs_f64() * 1e6
        ),
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

/// Runs `mllm-run`.
pub fn main_with(args: &RunArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let loaded = load(args)?;
    let tok = if args.prompt_ids.is_some() && !args.chat {
        None
    } else {
        let tp = args
            .tokenizer
            .clone()
            .unwrap_or_else(|| loaded.dir.join("tokenizer.json"));
        Some(
            Tokenizer::from_file(&tp)
                .with_context(|| format!("tokenizer {} (give one with -t)", tp.display()))?,
        )
    };
    let mut sched = match args.backend {
        BackendArg::Cpu => cpu_scheduler(&loaded, args)?,
    };
    let load_secs = t0.elapsed().as_secs_f64();
    let vocab = sched.dims().vocab;
    let mut sampler = Sampler::new(
        SamplerConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        },
        vocab,
    )?;
    if args.stats == StatsArg::Text {
        eprintln!("loaded {} in {:.2} s", args.model.display(), load_secs);
    }
    if args.chat {
        let tok = tok.as_ref().context("--chat needs a tokenizer")?;
        let mut session = ChatSession::new();
        let stdin = std::io::stdin();
        eprint!("> ");
        for line in stdin.lock().lines() {
            let line = line?;
            if line.trim().is_empty() {
                eprint!("> ");
                continue;
            }
            session.push_user(line.trim());
            let ids = tok.encode(&session.render())?;
            let stats = generate_once(&mut sched, Some(tok), &ids, &mut sampler, false)?;
            let reply = tok.decode(&stats.generated, true)?;
            session.push_assistant(&reply);
            print_stats(&stats, args.stats);
            eprint!("> ");
        }
        return Ok(());
    }
    let ids: Vec<u32> = match (&args.prompt_ids, &tok) {
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
    };
    let stats = generate_once(&mut sched, tok.as_ref(), &ids, &mut sampler, false)?;
    println!();
    if let (Some(path), Some(rec)) = (&args.logits_out, &stats.logits) {
        rec.write_npy(path)?;
    }
    print_stats(&stats, args.stats);
    Ok(())
}
