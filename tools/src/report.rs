//! `mllm quantize --report report.json [--plot report.png]`: how close the quantized
//! model is to the float model.
//!
//! - **Per-layer SQNR** (dB) of the fixed-point reference (CPU executor,
//!   [`NumericMode::Fixed`], on the quantized IR) against the float reference (the
//!   float checkpoint, [`NumericMode::Float`]) on held-out text: the output hidden state
//!   of every decoder layer (`model.layers.{i}.mlp_residual`), the hidden state after
//!   its attention block (`...attn_residual`), the final norm and the logits. Both run
//!   the full-length graph of calibration (`S = --max-length`, zero past), quantized
//!   with the same calibration and recipe as the output (the encodings are keyed by op
//!   name, so they are the output's). SQNR accumulates signal and noise energy over
//!   every held-out sample: `10 log10(sum(ref^2) / sum((ref - fixed)^2))`.
//! - **Greedy-token agreement** over `--report-tokens` (64) generated tokens from the
//!   same prompt (the first held-out paragraph in the chat template), both on the
//!   output's prefill/decode graphs (u8 KV cache included): number of matching tokens,
//!   index of the first divergence, and the teacher-forced top-1 agreement (the fixed
//!   model is fed the float model's tokens; the rate at which its argmax predicts the
//!   float model's next token).
//!
//! Held-out text: `--heldout FILE|DIR`, or a built-in text disjoint from the built-in
//! calibration text. Measuring runs one executor at a time (float, then fixed), so
//! peak memory is that of the fixed-point executor (f32 panels for LPBQ weights).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use mllm_ir::Module;
use mllm_passes::quant::apply::{quantize_module, Calibration};
use mllm_passes::quant::recipe::Recipe;
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::tokenizer::{qwen3_prompt, Tokenizer};
use mllm_runtime::{Sampler, SamplerConfig, Scheduler, SchedulerConfig};

use crate::quantize::{full_length_module, read_docs, samples, FullLengthInputs};

/// Built-in held-out text (never part of the built-in calibration text).
pub const BUILTIN_HELDOUT: &str = include_str!("heldout.txt");

/// Options of the quality report (flattened into `mllm quantize`).
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Write a quality report (JSON): per-layer SQNR of the fixed-point reference vs
    /// float on held-out text, greedy-token agreement.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Draw the per-layer SQNR of the report to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Held-out text for the report: a file or a directory of .txt files (default:
    /// built-in text disjoint from the built-in calibration text).
    #[arg(long)]
    pub heldout: Option<PathBuf>,
    /// Held-out samples of --max-length tokens for the SQNR.
    #[arg(long = "heldout-samples", default_value_t = 1)]
    pub heldout_samples: usize,
    /// Tokens generated greedily by both models for the agreement.
    #[arg(long = "report-tokens", default_value_t = 64)]
    pub gen_tokens: usize,
}

impl Default for ReportArgs {
    fn default() -> Self {
        ReportArgs {
            report: None,
            plot: None,
            heldout: None,
            heldout_samples: 1,
            gen_tokens: 64,
        }
    }
}

impl ReportArgs {
    /// Whether a report is asked for (`--report` or `--plot`).
    pub fn wanted(&self) -> bool {
        self.report.is_some() || self.plot.is_some()
    }
}

/// What [`measure`] works on.
pub struct ReportInputs<'a> {
    /// The float checkpoint.
    pub checkpoint: &'a Path,
    /// Its config.json, if not next to it.
    pub config: Option<&'a Path>,
    /// Tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The recipe the output was quantized with.
    pub recipe: &'a Recipe,
    /// The calibration the output was quantized with.
    pub calib: &'a Calibration,
    /// Calibration sequence length (the full-length graph's S).
    pub len: usize,
    /// The float, decomposed module of the output's shape (prefill + decode graphs).
    pub float_module: Module,
    /// The quantized output module.
    pub quant_module: &'a Module,
    /// No progress messages.
    pub quiet: bool,
}

/// SQNR of one decoder layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSqnr {
    /// Layer index.
    pub layer: usize,
    /// SQNR (dB) of the layer's output hidden state (`model.layers.{i}.mlp_residual`).
    pub sqnr_db: f64,
    /// SQNR (dB) of the hidden state after the attention block (`...attn_residual`).
    pub attn_residual_sqnr_db: f64,
    /// SQNR (dB) of the layer's output with quantized weights but float activations (the
    /// quantized IR in float mode): the part of the error due to the weights alone.
    pub weights_only_sqnr_db: f64,
}

/// Greedy generation of both models from one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct GreedyAgreement {
    /// Prompt length (tokens).
    pub prompt_tokens: usize,
    /// Tokens the float model generated (compared).
    pub float_tokens: Vec<u32>,
    /// Tokens the fixed-point model generated.
    pub fixed_tokens: Vec<u32>,
    /// Positions where both generated the same token.
    pub matching: usize,
    /// First position where they differ (`None`: identical).
    pub first_divergence: Option<usize>,
    /// Teacher-forced: fraction of positions where the fixed model's argmax, fed the
    /// float model's tokens, is the float model's next token.
    pub teacher_forced_top1: f64,
    /// Generated positions whose float top-1 / top-2 margin is smaller than twice the
    /// largest logit error there (fixed, teacher-forced, vs float): only these can
    /// disagree, so `teacher_forced_top1 >= 1 - at_risk / generated`.
    pub at_risk: usize,
}

/// The quality report.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityReport {
    /// Where the held-out text came from (`built-in` or a path).
    pub heldout_source: String,
    /// Held-out samples.
    pub heldout_samples: usize,
    /// Tokens per sample.
    pub sequence_length: usize,
    /// One entry per decoder layer, in order.
    pub layers: Vec<LayerSqnr>,
    /// SQNR (dB) of the final norm's output.
    pub final_norm_sqnr_db: f64,
    /// SQNR (dB) of the logits.
    pub logits_sqnr_db: f64,
    /// Fraction of held-out positions where both models' logits have the same argmax.
    pub heldout_top1_agreement: f64,
    /// Held-out positions compared.
    pub heldout_positions: usize,
    /// Held-out positions whose float top-1 / top-2 logit margin is smaller than twice
    /// the largest logit error of that position: only these can change their argmax, so
    /// `heldout_top1_agreement >= 1 - at_risk / positions`.
    pub heldout_positions_at_risk: usize,
    /// Distinct argmax tokens of the float model over the held-out positions.
    pub heldout_distinct_top1: usize,
    /// Greedy generation.
    pub greedy: GreedyAgreement,
    /// Wall time of the measurements (s).
    pub seconds: f64,
}

/// JSON number for a dB value (`null` for an exact match, infinite SQNR).
fn db(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!((v * 1000.0).round() / 1000.0)
    } else {
        serde_json::Value::Null
    }
}

impl QualityReport {
    /// The full report as JSON (`report.json`). Infinite SQNR (no error) is `null`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "heldout": {
                "source": self.heldout_source,
                "samples": self.heldout_samples,
                "sequence_length": self.sequence_length,
                "tokens": self.heldout_samples * self.sequence_length,
            },
            "layers": self.layers.iter().map(|l| serde_json::json!({
                "layer": l.layer,
                "tensor": format!("model.layers.{}.mlp_residual", l.layer),
                "sqnr_db": db(l.sqnr_db),
                "attn_residual_sqnr_db": db(l.attn_residual_sqnr_db),
                "weights_only_sqnr_db": db(l.weights_only_sqnr_db),
            })).collect::<Vec<_>>(),
            "final_norm_sqnr_db": db(self.final_norm_sqnr_db),
            "logits_sqnr_db": db(self.logits_sqnr_db),
            "heldout_top1_agreement": self.heldout_top1_agreement,
            "heldout_positions": self.heldout_positions,
            "heldout_positions_at_risk": self.heldout_positions_at_risk,
            "heldout_distinct_top1": self.heldout_distinct_top1,
            "greedy": {
                "prompt_tokens": self.greedy.prompt_tokens,
                "generated_tokens": self.greedy.float_tokens.len(),
                "distinct_float_tokens": distinct(&self.greedy.float_tokens),
                "matching_tokens": self.greedy.matching,
                "first_divergence": self.greedy.first_divergence,
                "teacher_forced_top1_agreement": self.greedy.teacher_forced_top1,
                "positions_at_risk": self.greedy.at_risk,
                "float_tokens": self.greedy.float_tokens,
                "fixed_tokens": self.greedy.fixed_tokens,
            },
            "seconds": self.seconds,
        })
    }

    /// Mean and minimum per-layer output SQNR (dB).
    pub fn layer_sqnr_mean_min(&self) -> (f64, f64) {
        let v: Vec<f64> = self.layers.iter().map(|l| l.sqnr_db).collect();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        (mean, min)
    }

    /// The headline numbers (for `quantize.json`).
    pub fn summary_json(&self) -> serde_json::Value {
        let (mean, min) = self.layer_sqnr_mean_min();
        serde_json::json!({
            "layer_sqnr_db_mean": db(mean),
            "layer_sqnr_db_min": db(min),
            "logits_sqnr_db": db(self.logits_sqnr_db),
            "heldout_top1_agreement": self.heldout_top1_agreement,
            "greedy_matching_tokens": self.greedy.matching,
            "greedy_generated_tokens": self.greedy.float_tokens.len(),
            "greedy_first_divergence": self.greedy.first_divergence,
            "teacher_forced_top1_agreement": self.greedy.teacher_forced_top1,
        })
    }

    /// One line for the terminal.
    pub fn one_line(&self) -> String {
        let (mean, min) = self.layer_sqnr_mean_min();
        format!(
            "layer SQNR mean {mean:.2} dB, min {min:.2} dB (weights only: min {:.2} dB); logits {:.2} dB; held-out top-1 {:.1}% ({} distinct); greedy {}/{} tokens match (first divergence {}), teacher-forced top-1 {:.1}%",
            self.layers
                .iter()
                .map(|l| l.weights_only_sqnr_db)
                .fold(f64::INFINITY, f64::min),
            self.logits_sqnr_db,
            100.0 * self.heldout_top1_agreement,
            self.heldout_distinct_top1,
            self.greedy.matching,
            self.greedy.float_tokens.len(),
            self.greedy
                .first_divergence
                .map_or("none".to_string(), |i| i.to_string()),
            100.0 * self.greedy.teacher_forced_top1
        )
    }
}

/// Number of distinct values.
pub fn distinct<T: Ord + Clone>(v: &[T]) -> usize {
    let mut s = v.to_vec();
    s.sort();
    s.dedup();
    s.len()
}

/// Signal and noise energy of one tensor.
#[derive(Debug, Default, Clone, Copy)]
struct Energy {
    signal: f64,
    noise: f64,
}

impl Energy {
    fn add(&mut self, reference: &[f32], approx: &[f32]) {
        for (r, a) in reference.iter().zip(approx) {
            let (r, a) = (*r as f64, *a as f64);
            self.signal += r * r;
            self.noise += (r - a) * (r - a);
        }
    }
    fn db(self) -> f64 {
        if self.noise == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (self.signal / self.noise).log10()
    }
}

/// Index of the largest value (the first of equal ones).
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Largest minus second largest value.
fn margin(v: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for x in v {
        if *x > a {
            b = a;
            a = *x;
        } else if *x > b {
            b = *x;
        }
    }
    a - b
}

/// The layer index of `model.layers.{i}.{suffix}`.
fn layer_of(name: &str, suffix: &str) -> Option<usize> {
    name.strip_prefix("model.layers.")?
        .strip_suffix(suffix)?
        .strip_suffix('.')?
        .parse()
        .ok()
}

const LOGITS: &str = "lm_head";
const FINAL_NORM: &str = "model.norm";

fn tracked(name: &str) -> bool {
    name == LOGITS
        || name == FINAL_NORM
        || layer_of(name, "mlp_residual").is_some()
        || layer_of(name, "attn_residual").is_some()
}

/// Measures the report (see the module documentation).
pub fn measure(inp: ReportInputs<'_>, args: &ReportArgs) -> anyhow::Result<QualityReport> {
    let t0 = Instant::now();
    let say = |m: &str| {
        if !inp.quiet {
            eprintln!("report: {m}");
        }
    };
    let docs = read_docs(args.heldout.as_deref(), BUILTIN_HELDOUT, "held-out")?;
    let source = args
        .heldout
        .as_ref()
        .map_or("built-in".to_string(), |p| p.display().to_string());
    let len = inp.len;
    let held = samples(inp.tokenizer, &docs, len, args.heldout_samples.max(1))?;

    // Float reference on the full-length graph.
    say(&format!(
        "float reference on {} held-out sample(s) of {len} tokens",
        held.len()
    ));
    let fm = full_length_module(inp.checkpoint, inp.config, len)?;
    let f = &fm.functions[0];
    let fixed_inputs = FullLengthInputs::new(f, len);
    let mut refs: Vec<HashMap<String, Vec<f32>>> = Vec::new();
    {
        let mut exec = CpuExecutor::new(&fm, NumericMode::Float)?;
        for s in &held {
            let mut seen: HashMap<String, Vec<f32>> = HashMap::new();
            exec.run_f32_observed(0, &fixed_inputs.refs(f, s)?, &mut |o| {
                if let Some(n) = o.name.filter(|n| tracked(n)) {
                    seen.insert(n.to_owned(), o.data.to_vec());
                }
            })?;
            refs.push(seen);
        }
    }
    let layers = refs
        .first()
        .map(|r| {
            r.keys()
                .filter_map(|n| layer_of(n, "mlp_residual"))
                .max()
                .map_or(0, |m| m + 1)
        })
        .unwrap_or(0);
    if layers == 0 {
        bail!(
            "the graph has no op named model.layers.N.mlp_residual: cannot report per-layer SQNR"
        );
    }
    for need in [LOGITS, FINAL_NORM] {
        if !refs[0].contains_key(need) {
            bail!("the graph has no op named {need}");
        }
    }

    // The same graph quantized like the output: in float mode (quantized weights,
    // float activations), then in fixed-point mode.
    let mut qm = fm.clone();
    // Weights quantized ahead (during calibration) are shared with the output module.
    for (name, _) in inp.calib.weights.values() {
        if let Some(w) = inp.quant_module.weights.get(name) {
            qm.weights.insert_arc(name.clone(), w.clone());
        }
    }
    quantize_module(&mut qm, inp.calib, inp.recipe)?;
    drop(fm);
    say("quantized weights, float activations, on the held-out samples");
    let weights_only = compare(&qm, NumericMode::Float, &held, &refs, &fixed_inputs)?;
    say("fixed-point reference on the held-out samples");
    let fixed = compare(
        &qm,
        NumericMode::Fixed(Default::default()),
        &held,
        &refs,
        &fixed_inputs,
    )?;
    drop(qm);
    let sq = |c: &Comparison, n: &str| c.energy.get(n).map_or(f64::NAN, |e| e.db());
    let layer_sqnr: Vec<LayerSqnr> = (0..layers)
        .map(|l| {
            let out = format!("model.layers.{l}.mlp_residual");
            LayerSqnr {
                layer: l,
                sqnr_db: sq(&fixed, &out),
                attn_residual_sqnr_db: sq(&fixed, &format!("model.layers.{l}.attn_residual")),
                weights_only_sqnr_db: sq(&weights_only, &out),
            }
        })
        .collect();

    // Greedy generation on the output's graphs.
    let prompt_ids = inp.tokenizer.encode(&qwen3_prompt(docs[0].trim(), false))?;
    let greedy = greedy_agreement(
        &inp.float_module,
        inp.quant_module,
        &prompt_ids,
        args.gen_tokens,
        &say,
    )?;
    Ok(QualityReport {
        heldout_source: source,
        heldout_samples: held.len(),
        sequence_length: len,
        layers: layer_sqnr,
        final_norm_sqnr_db: sq(&fixed, FINAL_NORM),
        logits_sqnr_db: sq(&fixed, LOGITS),
        heldout_top1_agreement: fixed.agree as f64 / fixed.positions.max(1) as f64,
        heldout_positions: fixed.positions,
        heldout_positions_at_risk: fixed.at_risk,
        heldout_distinct_top1: distinct(&fixed.float_top1),
        greedy,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Errors and argmax agreement of one run against the float reference.
#[derive(Default)]
struct Comparison {
    energy: BTreeMap<String, Energy>,
    agree: usize,
    positions: usize,
    at_risk: usize,
    float_top1: Vec<usize>,
}

/// Runs the full-length graph of `m` in `mode` on every sample and compares the tracked
/// tensors with the float reference `refs`.
fn compare(
    m: &Module,
    mode: NumericMode,
    held: &[Vec<i32>],
    refs: &[HashMap<String, Vec<f32>>],
    inputs: &FullLengthInputs,
) -> anyhow::Result<Comparison> {
    let mut exec = CpuExecutor::new(m, mode)?;
    let f = &m.functions[0];
    let mut c = Comparison::default();
    for (s, r) in held.iter().zip(refs) {
        let mut err: Option<String> = None;
        exec.run_f32_observed(0, &inputs.refs(f, s)?, &mut |o| {
            let Some(n) = o.name.filter(|n| tracked(n)) else {
                return;
            };
            let Some(reference) = r.get(n) else { return };
            if reference.len() != o.data.len() {
                err = Some(format!(
                    "{n}: {} values in the quantized graph, {} in the float graph",
                    o.data.len(),
                    reference.len()
                ));
                return;
            }
            c.energy
                .entry(n.to_owned())
                .or_default()
                .add(reference, o.data);
            if n == LOGITS {
                let v = o.shape.last().copied().unwrap_or(1).max(1);
                for (a, b) in reference.chunks(v).zip(o.data.chunks(v)) {
                    let top = argmax(a);
                    c.agree += usize::from(top == argmax(b));
                    c.positions += 1;
                    c.float_top1.push(top);
                    let worst = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0f32, f32::max);
                    c.at_risk += usize::from(margin(a) < 2.0 * worst);
                }
            }
        })?;
        if let Some(e) = err {
            bail!("report: {e}");
        }
    }
    Ok(c)
}

fn scheduler(m: &Module, mode: NumericMode, n: usize) -> anyhow::Result<Scheduler<CpuExecutor>> {
    let exec = CpuExecutor::new(m, mode)?;
    Ok(Scheduler::new(
        exec,
        SchedulerConfig {
            max_new_tokens: n,
            // Always `n` tokens: an EOS does not stop the comparison.
            eos_ids: vec![],
            prefill: GraphSelect::Auto,
            ..Default::default()
        },
    )?)
}

/// Greedy generation of `n` tokens by the float module (float mode) and the quantized
/// module (fixed-point mode) from `prompt` (cut so that prompt and generation fit the
/// context), and the fixed model's teacher-forced top-1 agreement on the float tokens.
pub fn greedy_agreement(
    float_m: &Module,
    quant_m: &Module,
    prompt: &[u32],
    n: usize,
    say: &dyn Fn(&str),
) -> anyhow::Result<GreedyAgreement> {
    if prompt.is_empty() || n == 0 {
        bail!("greedy agreement needs a prompt and at least one token to generate");
    }
    // Float.
    let mut s = scheduler(float_m, NumericMode::Float, n)?;
    let context = s.dims().context;
    if context < 2 {
        bail!("context length {context} leaves no room to generate");
    }
    let n = n.min(context - 1);
    let p = prompt.len().min(context - n).min(64);
    let prompt = &prompt[..p];
    say(&format!(
        "greedy generation of {n} tokens from a {p}-token prompt (float, then fixed-point)"
    ));
    let vocab = s.dims().vocab;
    s.config_mut().max_new_tokens = n;
    s.config_mut().record_logits = true;
    let mut sampler = Sampler::new(SamplerConfig::greedy(), vocab)?;
    let st = s.generate(prompt, &mut sampler, |_| true)?;
    drop(s);
    let float_tokens = st.generated;
    let float_logits = st
        .logits
        .context("the scheduler recorded no logits for the float generation")?;
    if float_tokens.is_empty() {
        bail!("the float model generated no token");
    }
    // Fixed: free-running, then teacher-forced on the float tokens.
    let mut s = scheduler(quant_m, NumericMode::Fixed(Default::default()), n)?;
    if s.dims().vocab != vocab || s.dims().context != context {
        bail!("the quantized module's vocabulary or context differs from the float module's");
    }
    let mut sampler = Sampler::new(SamplerConfig::greedy(), vocab)?;
    let fixed_tokens = s.generate(prompt, &mut sampler, |_| true)?.generated;
    s.reset();
    s.config_mut().max_new_tokens = 1;
    s.config_mut().record_logits = true;
    let mut forced: Vec<u32> = prompt.to_vec();
    forced.extend_from_slice(&float_tokens[..float_tokens.len() - 1]);
    let st = s.generate(&forced, &mut sampler, |_| true)?;
    let rec = st
        .logits
        .context("the scheduler recorded no logits for the teacher-forced pass")?;
    if rec.rows() < forced.len() {
        bail!(
            "teacher-forced pass recorded {} logit rows for {} positions",
            rec.rows(),
            forced.len()
        );
    }
    let v = rec.vocab;
    if float_logits.vocab != v || float_logits.rows() < p - 1 + float_tokens.len() {
        bail!(
            "float generation recorded {} logit rows for {} positions",
            float_logits.rows(),
            p - 1 + float_tokens.len()
        );
    }
    let (mut hits, mut at_risk) = (0, 0);
    for (j, t) in float_tokens.iter().enumerate() {
        let row = p - 1 + j;
        let fixed = &rec.data[row * v..(row + 1) * v];
        let float = &float_logits.data[row * v..(row + 1) * v];
        if argmax(fixed) == *t as usize {
            hits += 1;
        }
        let worst = float
            .iter()
            .zip(fixed)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        at_risk += usize::from(margin(float) < 2.0 * worst);
    }
    let matching = float_tokens
        .iter()
        .zip(&fixed_tokens)
        .filter(|(a, b)| a == b)
        .count();
    let first_divergence =
        (0..float_tokens.len()).find(|&i| fixed_tokens.get(i) != float_tokens.get(i));
    Ok(GreedyAgreement {
        prompt_tokens: p,
        teacher_forced_top1: hits as f64 / float_tokens.len() as f64,
        at_risk,
        float_tokens,
        fixed_tokens,
        matching,
        first_divergence,
    })
}

/// Draws the per-layer SQNR of `r` to the PNG `path`: decoder-layer outputs and
/// attention residuals per layer, the logits' SQNR and a 20 dB guide as horizontal
/// lines, and the layer outputs with quantized weights but float activations. Text needs
/// a TrueType font on the system (DejaVu, Liberation or FreeFont sans, or `MLLM_PLOT_FONT`);
/// without one the chart is drawn without text.
pub fn plot(r: &QualityReport, path: &Path) -> anyhow::Result<()> {
    let drawn = register_font().and_then(|()| draw(r, path, true));
    match drawn {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!(
                "report: plot text unavailable ({e}); drawing {} without labels",
                path.display()
            );
            draw(r, path, false)
                .map_err(|e| anyhow::anyhow!("{}: cannot draw: {e}", path.display()))
        }
    }
}

/// Registers a system TrueType font as plotters' "sans-serif" (once per process).
fn register_font() -> Result<(), String> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let mut candidates: Vec<std::path::PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("MLLM_PLOT_FONT") {
            candidates.push(p.into());
        }
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
                "/system/fonts/Roboto-Regular.ttf",
            ]
            .map(std::path::PathBuf::from),
        );
        let path = candidates
            .iter()
            .find(|p| p.is_file())
            .ok_or_else(|| "no TrueType font found (set MLLM_PLOT_FONT)".to_string())?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // Plotters keeps registered fonts for the process's lifetime.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a usable TrueType font", path.display()))
    })
    .clone()
}

fn draw(r: &QualityReport, path: &Path, text: bool) -> Result<(), String> {
    use plotters::prelude::*;
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let clamp = |v: f64| if v.is_finite() { v } else { 150.0 };
    let out: Vec<(f64, f64)> = r
        .layers
        .iter()
        .map(|l| (l.layer as f64, clamp(l.sqnr_db)))
        .collect();
    let attn: Vec<(f64, f64)> = r
        .layers
        .iter()
        .map(|l| (l.layer as f64, clamp(l.attn_residual_sqnr_db)))
        .collect();
    let wonly: Vec<(f64, f64)> = r
        .layers
        .iter()
        .map(|l| (l.layer as f64, clamp(l.weights_only_sqnr_db)))
        .collect();
    let logits = clamp(r.logits_sqnr_db);
    let ymax = out
        .iter()
        .chain(&attn)
        .chain(&wonly)
        .map(|p| p.1)
        .chain([logits, 20.0])
        .filter(|v| v.is_finite())
        .fold(0f64, f64::max)
        * 1.15
        + 1.0;
    let xmax = r.layers.len().max(1) as f64 - 0.5;
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut b = ChartBuilder::on(&root);
    b.margin(20);
    if text {
        b.caption(
            "SQNR of the fixed-point reference vs float, per decoder layer",
            ("sans-serif", 22),
        )
        .x_label_area_size(45)
        .y_label_area_size(60);
    }
    let mut chart = b
        .build_cartesian_2d(-0.5f64..xmax, 0f64..ymax)
        .map_err(|x| e(&x))?;
    if text {
        chart
            .configure_mesh()
            .x_desc("decoder layer")
            .y_desc("SQNR (dB)")
            .x_labels(r.layers.len().clamp(2, 40))
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-6 && *x > -0.5 {
                    format!("{:.0}", x.round().abs())
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|x| e(&x))?;
    } else {
        let mut y = 0.0;
        while y <= ymax {
            chart
                .draw_series(LineSeries::new(
                    [(-0.5, y), (xmax, y)],
                    RGBColor(220, 220, 220),
                ))
                .map_err(|x| e(&x))?;
            y += 10.0;
        }
    }
    let guide = RGBColor(214, 39, 40);
    let out_c = RGBColor(31, 119, 180);
    let attn_c = RGBColor(255, 127, 14);
    let logit_c = RGBColor(44, 160, 44);
    let w_c = RGBColor(148, 103, 189);
    let s = chart
        .draw_series(LineSeries::new([(-0.5, 20.0), (xmax, 20.0)], guide))
        .map_err(|x| e(&x))?;
    if text {
        s.label("20 dB")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], guide));
    }
    let s = chart
        .draw_series(LineSeries::new([(-0.5, logits), (xmax, logits)], logit_c))
        .map_err(|x| e(&x))?;
    if text {
        s.label(format!("logits ({:.1} dB)", r.logits_sqnr_db))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], logit_c));
    }
    let s = chart
        .draw_series(LineSeries::new(wonly.clone(), w_c.stroke_width(1)))
        .map_err(|x| e(&x))?;
    if text {
        s.label("layer output, quantized weights only")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], w_c));
    }
    chart
        .draw_series(
            wonly
                .iter()
                .map(|p| TriangleMarker::new(*p, 4, w_c.filled())),
        )
        .map_err(|x| e(&x))?;
    let s = chart
        .draw_series(LineSeries::new(attn.clone(), attn_c.stroke_width(2)))
        .map_err(|x| e(&x))?;
    if text {
        s.label("after attention (attn_residual)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], attn_c));
    }
    chart
        .draw_series(attn.iter().map(|p| Circle::new(*p, 3, attn_c.filled())))
        .map_err(|x| e(&x))?;
    let s = chart
        .draw_series(LineSeries::new(out.clone(), out_c.stroke_width(2)))
        .map_err(|x| e(&x))?;
    if text {
        s.label("layer output (mlp_residual)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], out_c));
    }
    chart
        .draw_series(out.iter().map(|p| Circle::new(*p, 4, out_c.filled())))
        .map_err(|x| e(&x))?;
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
