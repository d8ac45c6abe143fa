//! Hybrid scheduler: chunked prefill with the `s{N}` graph, decode with the `s1` graph.
//!
//! [`Scheduler::generate`] takes the full token sequence of the conversation so far, reuses the
//! longest prefix already in the KV cache (multi-turn chat re-sends the whole history), prefills
//! the rest in chunks of S tokens (the last chunk padded with the pad token, positions
//! continuing; pads are never committed), takes the first generated token from the logits row of
//! the last real prompt token, then decodes one token per step until EOS, the token budget, the
//! callback, or a full cache stops it.
//!
//! It works with a prefill and a decode graph (hybrid mode), with only a decode graph ("kv mode":
//! the prompt is fed token by token) or with only a prefill graph (decode steps run the S graph
//! with one real token). When the context length is not a multiple of S, the prompt tail that no
//! longer fits a chunk is fed through the decode graph.
//!
//! A model split into shards (`model.{i}.s{N}`, i = 0..k, each holding a contiguous range of
//! layers) runs its shards in order at every step, the `hidden_states` output of shard i feeding
//! shard i + 1 in place.
//!
//! # Cache capacity
//!
//! A step with a graph of ar_len S needs `n_past <= C - S` (the cache columns of its mask). New
//! K/V entries of a step that fit the current layout are written into the cache by the executor
//! during the step when it can ([`crate::StepExtras`], see [`Scheduler::set_step_extras`]) and
//! committed at once. Otherwise they are committed lazily, right before the next step, into the
//! layout of the graph that runs next; the last step of a generation therefore never needs room
//! in the cache, so with a decode graph exactly C tokens (prompt + generated, the final sampled
//! token not counted, since it is never fed back) can be processed: the last cache slot is used.
//!
//! # Allocation
//!
//! All buffers are allocated in [`Scheduler::new`] and at the start of `generate` (the vector
//! of generated ids). A decode step performs no heap allocation unless logits are recorded.

use std::time::{Duration, Instant};

use crate::buffer::AlignedBytes;
use crate::error::{Result, RuntimeError};
use crate::executor::{
    describe_graphs, parse_graph_name, Executor, GraphBindings, GraphDesc, GraphInput, InputRole,
    ModelDims, StepExtras, TensorDesc,
};
use crate::kv::KvCache;
use crate::sampler::Sampler;

/// Largest number of inputs or outputs a graph may have (I/O slice tables live on the stack).
pub const MAX_GRAPH_IO: usize = 512;

/// Qwen3's end-of-sequence ids (`<|endoftext|>`, `<|im_end|>`).
pub const QWEN3_EOS: [u32; 2] = [151643, 151645];

/// How to pick a graph.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum GraphSelect {
    /// Prefill: the graph with the largest ar_len > 1; decode: the graph with ar_len 1.
    #[default]
    Auto,
    /// The graph with this name.
    Name(String),
    /// The graph with this ar_len.
    ArLen(usize),
    /// Do not use a graph for this role.
    Disabled,
}

/// Scheduler settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// Maximum number of tokens to generate per [`Scheduler::generate`] call.
    pub max_new_tokens: usize,
    /// Generation stops after emitting any of these ids.
    pub eos_ids: Vec<u32>,
    /// Token id used to pad the last prefill chunk.
    pub pad_token: u32,
    /// Which graph prefills.
    pub prefill: GraphSelect,
    /// Which graph decodes.
    pub decode: GraphSelect,
    /// Record dequantized f32 logits of every processed prompt position and every decode step
    /// (allocates while recording).
    pub record_logits: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_new_tokens: 256,
            eos_ids: QWEN3_EOS.to_vec(),
            pad_token: 0,
            prefill: GraphSelect::Auto,
            decode: GraphSelect::Auto,
            record_logits: false,
        }
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// An EOS id was generated (it is included in the generated ids).
    Eos,
    /// `max_new_tokens` tokens were generated.
    MaxTokens,
    /// The context is full: the last generated token could not be fed back.
    CacheFull,
    /// The streaming callback asked to stop.
    Callback,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Eos => "end of sequence",
            StopReason::MaxTokens => "maximum number of new tokens reached",
            StopReason::CacheFull => "context full (KV cache has no free slot)",
            StopReason::Callback => "stopped by caller",
        })
    }
}

/// Recorded logits: one row of `vocab` f32 values per processed position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogitsRecord {
    /// Vocabulary size (row length).
    pub vocab: usize,
    /// Row-major `[rows, vocab]` values. Row k holds the logits computed at the k-th processed
    /// position of this call: first every prompt position that was not reused from the cache,
    /// then one row per decode step.
    pub data: Vec<f32>,
}

impl LogitsRecord {
    /// Number of recorded rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.vocab).unwrap_or(0)
    }

    /// Writes the rows as an f32 `[rows, vocab]` `.npy` file (atomically), for `--logits-out`.
    pub fn write_npy(&self, path: &std::path::Path) -> Result<()> {
        crate::npy::write_f32_2d(path, &self.data, self.rows(), self.vocab)
    }
}

/// Outcome and timings of one [`Scheduler::generate`] call.
#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    /// Tokens in the prompt given to `generate`.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV were reused from the cache (not recomputed).
    pub reused_tokens: usize,
    /// Generated ids, in order (an EOS id that stopped generation is included).
    pub generated: Vec<u32>,
    /// Why generation stopped (`None` only if nothing was generated because
    /// `max_new_tokens` is 0).
    pub stop: Option<StopReason>,
    /// Number of prefill graph executions (chunks / single tokens).
    pub prefill_steps: usize,
    /// Wall time of the prefill (all prompt steps, up to the logits of the last prompt token).
    pub prefill_time: Duration,
    /// Time from the call to the first generated token (prefill + first sampling).
    pub time_to_first_token: Duration,
    /// Number of decode steps (graph executions after the first token).
    pub decode_steps: usize,
    /// Wall time of the decode steps (callback time excluded).
    pub decode_time: Duration,
    /// Total time spent inside [`Executor::execute`] during decode.
    pub decode_execute_time: Duration,
    /// Host time (outside `execute`) of the first decode step alone. It includes the one-time
    /// switch of the cache from the prefill layout to the decode layout (re-striding every
    /// prompt entry), so it is reported apart from the steady-state steps.
    pub decode_first_host_time: Duration,
    /// Logits, if recording was enabled.
    pub logits: Option<LogitsRecord>,
}

impl GenerationStats {
    /// Prompt tokens processed per second of prefill.
    pub fn prefill_tok_per_s(&self) -> f64 {
        rate(self.prompt_tokens - self.reused_tokens, self.prefill_time)
    }

    /// Decode steps per second.
    pub fn decode_tok_per_s(&self) -> f64 {
        rate(self.decode_steps, self.decode_time)
    }

    /// Mean host time per steady-state decode step outside `execute` (scheduling, cache
    /// commit, mask, sampling): every decode step after the first, whose layout switch is
    /// [`GenerationStats::decode_first_host_time`]. With a single decode step, that step's time.
    pub fn host_overhead_per_step(&self) -> Duration {
        let host = self.decode_time.saturating_sub(self.decode_execute_time);
        match self.decode_steps {
            0 => Duration::ZERO,
            1 => host,
            n => host.saturating_sub(self.decode_first_host_time) / (n - 1) as u32,
        }
    }
}

fn rate(n: usize, t: Duration) -> f64 {
    let s = t.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Takes a layer's cache buffer out of its slot (each is bound to one input of one shard).
fn take_cache<'a>(slot: Option<&mut Option<&'a mut [u8]>>, graph: &str) -> Result<&'a mut [u8]> {
    slot.and_then(Option::take).ok_or_else(|| {
        RuntimeError::Cache(format!(
            "internal: a cache buffer of `{graph}` is missing or bound twice"
        ))
    })
}

/// One graph (one shard of a split model) with its output buffers.
struct Shard {
    b: GraphBindings,
    outs: Vec<AlignedBytes>,
    /// `(present output, past input)` of every K and V of the shard's layers
    /// ([`crate::CacheWrite::pairs`]).
    kv_pairs: Vec<(usize, usize)>,
    /// The executor wrote this shard's new entries into the cache in the last step.
    wrote: bool,
}

/// The graphs run for one step of a given ar_len: one graph, or the shards of a split model in
/// order, with the buffers they share.
struct Chain {
    ar_len: usize,
    shards: Vec<Shard>,
    tokens: AlignedBytes,
    positions: AlignedBytes,
    /// For each layer: (shard, present_key output, present_value output).
    present: Vec<(usize, usize, usize)>,
    /// Output index of the logits in the last shard.
    logits: usize,
    logits_desc: TensorDesc,
}

impl Chain {
    /// Resolves and validates the graphs `chain` (in shard order) and allocates their buffers.
    fn new(graphs: &[GraphDesc], chain: &[usize], dims: &ModelDims) -> Result<Chain> {
        let mut shards = Vec::with_capacity(chain.len());
        for &g in chain {
            let b = GraphBindings::resolve(graphs, g, dims)?;
            let desc = &graphs[g];
            if desc.inputs.len() > MAX_GRAPH_IO || desc.outputs.len() > MAX_GRAPH_IO {
                return Err(RuntimeError::Contract {
                    graph: desc.name.clone(),
                    msg: format!("more than {MAX_GRAPH_IO} inputs or outputs"),
                });
            }
            let outs = desc
                .outputs
                .iter()
                .map(|t| AlignedBytes::zeroed(t.byte_size()))
                .collect();
            let kv_pairs = (0..b.layers.len())
                .flat_map(|i| {
                    [
                        (b.present_key[i], b.past_key[i]),
                        (b.present_value[i], b.past_value[i]),
                    ]
                })
                .collect();
            shards.push(Shard {
                b,
                outs,
                kv_pairs,
                wrote: false,
            });
        }
        let err = |g: usize, msg: String| RuntimeError::Contract {
            graph: graphs[g].name.clone(),
            msg,
        };
        let first = &shards[0].b;
        let s = first.ar_len;
        let n = shards.len();
        let mut next_layer = 0;
        for (k, sh) in shards.iter().enumerate() {
            let b = &sh.b;
            if b.ar_len != s {
                return Err(err(
                    b.graph,
                    format!("ar_len {} differs from shard 0's {s}", b.ar_len),
                ));
            }
            if (k == 0) != b.tokens.is_some() {
                return Err(err(
                    b.graph,
                    "only the first shard takes `sequence`, the others `hidden_states`".into(),
                ));
            }
            if (k + 1 == n) != b.logits.is_some() {
                return Err(err(
                    b.graph,
                    "only the last shard outputs `logits`, the others `hidden_states`".into(),
                ));
            }
            if b.layers.start != next_layer {
                return Err(err(
                    b.graph,
                    format!(
                        "holds layers {:?}, expected the next shard to start at layer {next_layer}",
                        b.layers
                    ),
                ));
            }
            next_layer = b.layers.end;
            if b.kv_dtype != first.kv_dtype || b.mask_dtype != first.mask_dtype {
                return Err(err(
                    b.graph,
                    "KV or mask dtype differs between shards".into(),
                ));
            }
            if k > 0 {
                let prev = &shards[k - 1].b;
                let out = &graphs[prev.graph].outputs[prev.hidden_out.unwrap_or(0)];
                let inp = &graphs[b.graph].inputs[b.hidden_in.unwrap_or(0)];
                if out.dtype != inp.dtype
                    || out.shape != inp.shape
                    || !out.quant.bit_identical(&inp.quant)
                {
                    return Err(err(
                        b.graph,
                        format!(
                            "input `hidden_states` ({} {:?} {:?}) does not match the output of \
                             `{}` ({} {:?} {:?})",
                            inp.dtype,
                            inp.shape,
                            inp.quant,
                            prev.name,
                            out.dtype,
                            out.shape,
                            out.quant
                        ),
                    ));
                }
            }
        }
        if next_layer != dims.layers {
            return Err(err(
                shards[n - 1].b.graph,
                format!("the shards cover layers 0..{next_layer} of {}", dims.layers),
            ));
        }
        let mut present = Vec::with_capacity(dims.layers);
        for (k, sh) in shards.iter().enumerate() {
            for i in 0..sh.b.layers.len() {
                present.push((k, sh.b.present_key[i], sh.b.present_value[i]));
            }
        }
        let last = &shards[n - 1].b;
        let (Some(logits), Some(logits_desc)) = (last.logits, last.logits_desc.clone()) else {
            return Err(err(last.graph, "no `logits` output".into()));
        };
        Ok(Chain {
            ar_len: s,
            tokens: AlignedBytes::zeroed(s * 4),
            positions: AlignedBytes::zeroed(s * 4),
            present,
            logits,
            logits_desc,
            shards,
        })
    }
}

/// The hybrid scheduler; owns the executor, the KV cache and every I/O buffer.
pub struct Scheduler<E: Executor> {
    exec: E,
    cfg: SchedulerConfig,
    dims: ModelDims,
    chains: Vec<Chain>,
    prefill: Option<usize>,
    decode: Option<usize>,
    kv: KvCache,
    /// Tokens processed so far (committed to the cache or pending).
    history: Vec<u32>,
    /// Chain and count of entries produced by the last step and not yet committed.
    pending: Option<(usize, usize)>,
    /// Ask the executor for [`StepExtras`] (see [`Scheduler::set_step_extras`]).
    extras: bool,
}

impl<E: Executor> std::fmt::Debug for Scheduler<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |c: Option<usize>| {
            c.map(|c| {
                self.chains[c]
                    .shards
                    .iter()
                    .map(|s| s.b.name.clone())
                    .collect::<Vec<_>>()
            })
        };
        f.debug_struct("Scheduler")
            .field("executor", &self.exec.name())
            .field("dims", &self.dims)
            .field("prefill", &names(self.prefill))
            .field("decode", &names(self.decode))
            .field("kv", &self.kv)
            .finish()
    }
}

/// Expands graph `g` to all shards of its model (`model.{i}.s{N}` for i = 0..k), in order; a
/// graph whose name does not follow that pattern is a chain of one.
fn expand_shards(graphs: &[GraphDesc], g: usize) -> Result<Vec<usize>> {
    let Some((_, s)) = parse_graph_name(&graphs[g].name) else {
        return Ok(vec![g]);
    };
    let mut found: Vec<(usize, usize)> = graphs
        .iter()
        .enumerate()
        .filter_map(|(j, d)| match parse_graph_name(&d.name) {
            Some((i, s2)) if s2 == s => Some((i, j)),
            _ => None,
        })
        .collect();
    found.sort_unstable();
    for (want, &(i, _)) in found.iter().enumerate() {
        if i != want {
            return Err(RuntimeError::GraphNotFound {
                msg: format!(
                    "shards of `model.*.s{s}` are not numbered 0..{}",
                    found.len()
                ),
                available: describe_graphs(graphs),
            });
        }
    }
    Ok(found.into_iter().map(|(_, j)| j).collect())
}

fn select(graphs: &[GraphDesc], sel: &GraphSelect, decode: bool) -> Result<Option<Vec<usize>>> {
    let not_found = |msg: String| RuntimeError::GraphNotFound {
        msg,
        available: describe_graphs(graphs),
    };
    let role = if decode { "decode" } else { "prefill" };
    // Graphs with ar_len `s`, as one chain (one graph, or the shards of one model).
    let by_ar_len = |s: usize| -> Result<Option<Vec<usize>>> {
        let m: Vec<usize> = (0..graphs.len())
            .filter(|&i| graphs[i].ar_len == s)
            .collect();
        let Some(&g) = m.first() else { return Ok(None) };
        let chain = expand_shards(graphs, g)?;
        let mut sorted = chain.clone();
        sorted.sort_unstable();
        if sorted != m {
            return Err(not_found(format!(
                "several graphs have ar_len {s}; choose the {role} graph by name"
            )));
        }
        Ok(Some(chain))
    };
    match sel {
        GraphSelect::Disabled => Ok(None),
        GraphSelect::Name(n) => {
            let g = graphs
                .iter()
                .position(|g| &g.name == n)
                .ok_or_else(|| not_found(format!("no {role} graph named `{n}`")))?;
            expand_shards(graphs, g).map(Some)
        }
        GraphSelect::ArLen(s) => by_ar_len(*s)?
            .map(Some)
            .ok_or_else(|| not_found(format!("no {role} graph with ar_len {s}"))),
        GraphSelect::Auto => {
            if decode {
                by_ar_len(1)
            } else {
                match graphs.iter().map(|g| g.ar_len).filter(|&s| s > 1).max() {
                    Some(best) => by_ar_len(best),
                    None => Ok(None),
                }
            }
        }
    }
}

impl<E: Executor> Scheduler<E> {
    /// Selects the prefill and decode graphs (with all their shards when the model is split
    /// into `model.{i}.s{N}` graphs), validates them against the I/O contract and against each
    /// other (same dims, KV dtype and encodings, mask dtype) and allocates the cache and every
    /// buffer.
    pub fn new(exec: E, cfg: SchedulerConfig) -> Result<Scheduler<E>> {
        let graphs = exec.graphs();
        let prefill = select(graphs, &cfg.prefill, false)?;
        let decode = select(graphs, &cfg.decode, true)?;
        if let (Some(p), Some(d)) = (&prefill, &decode) {
            if p.iter().any(|g| d.contains(g)) {
                return Err(RuntimeError::Config(format!(
                    "graph `{}` selected for both prefill and decode; select one role or the other",
                    graphs[p[0]].name
                )));
            }
        }
        let chosen: Vec<&Vec<usize>> = prefill.iter().chain(decode.iter()).collect();
        if chosen.is_empty() {
            return Err(RuntimeError::GraphNotFound {
                msg: "no prefill or decode graph selected".into(),
                available: describe_graphs(graphs),
            });
        }
        let first: Vec<&GraphDesc> = chosen[0].iter().map(|&g| &graphs[g]).collect();
        let dims = ModelDims::infer_chain(&first)?;
        let chains = chosen
            .iter()
            .map(|c| Chain::new(graphs, c, &dims))
            .collect::<Result<Vec<_>>>()?;
        if let [a, b] = &chains[..] {
            let (sa, sb) = (&a.shards[0].b, &b.shards[0].b);
            let err = |msg: String| RuntimeError::Contract {
                graph: sb.name.clone(),
                msg: format!("{msg} (graph `{}` differs)", sa.name),
            };
            if sa.kv_dtype != sb.kv_dtype {
                return Err(err(format!("KV dtype {}", sb.kv_dtype)));
            }
            if sa.mask_dtype != sb.mask_dtype {
                return Err(err(format!("mask dtype {}", sb.mask_dtype)));
            }
            // Per layer, the past K/V encodings of both chains must be bit-identical.
            let enc = |c: &Chain, l: usize| {
                let (k, _, _) = c.present[l];
                let b = &c.shards[k].b;
                let i = l - b.layers.start;
                let g = &graphs[b.graph];
                (&g.inputs[b.past_key[i]], &g.inputs[b.past_value[i]])
            };
            for l in 0..dims.layers {
                let (ka, va) = enc(a, l);
                let (kb, vb) = enc(b, l);
                for (x, y) in [(ka, kb), (va, vb)] {
                    if !x.quant.bit_identical(&y.quant) {
                        return Err(err(format!(
                            "`{}` encoding {:?} (the graphs share one KV cache and need \
                             bit-identical KV encodings)",
                            y.name, y.quant
                        )));
                    }
                }
            }
        }
        let ar_lens: Vec<usize> = chains.iter().map(|c| c.ar_len).collect();
        let b0 = &chains[0].shards[0].b;
        if dims.layers > MAX_GRAPH_IO {
            return Err(RuntimeError::Config(format!(
                "{} layers: at most {MAX_GRAPH_IO} are supported",
                dims.layers
            )));
        }
        let kv = KvCache::new(&dims, b0.kv_dtype.size(), b0.mask_dtype, &ar_lens)?;
        let prefill = prefill.map(|_| 0);
        let decode = decode.map(|_| chains.len() - 1);
        Ok(Scheduler {
            exec,
            cfg,
            dims,
            chains,
            prefill,
            decode,
            kv,
            history: Vec::with_capacity(dims.context + 1),
            pending: None,
            extras: true,
        })
    }

    /// Model dimensions (inferred from the graphs).
    pub fn dims(&self) -> &ModelDims {
        &self.dims
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// Mutable configuration (e.g. to change `max_new_tokens` between chat turns).
    pub fn config_mut(&mut self) -> &mut SchedulerConfig {
        &mut self.cfg
    }

    /// Bindings of the prefill graph (its shards in order when the model is split), if one is
    /// used.
    pub fn prefill_bindings(&self) -> Option<Vec<&GraphBindings>> {
        self.prefill
            .map(|c| self.chains[c].shards.iter().map(|s| &s.b).collect())
    }

    /// Bindings of the decode graph (its shards in order when the model is split), if one is
    /// used.
    pub fn decode_bindings(&self) -> Option<Vec<&GraphBindings>> {
        self.decode
            .map(|c| self.chains[c].shards.iter().map(|s| &s.b).collect())
    }

    /// Description (dtype, quantization) of the logits.
    pub fn logits_desc(&self) -> &TensorDesc {
        &self.chains[0].logits_desc
    }

    /// Whether steps ask the executor for [`StepExtras`] (on by default): an executor that
    /// can (the CPU executor) then writes each step's new K/V entries into the cache while
    /// they are still in the processor's caches, instead of the scheduler copying them before
    /// the next step, and takes the greedy token as it writes the logits out. Results are
    /// identical either way; off, every step commits and samples on the host (for
    /// comparisons).
    pub fn set_step_extras(&mut self, on: bool) {
        self.extras = on;
    }

    /// The KV cache.
    pub fn kv(&self) -> &KvCache {
        &self.kv
    }

    /// Tokens processed so far in this conversation (their KV is in the cache or about to be).
    pub fn history(&self) -> &[u32] {
        &self.history
    }

    /// The executor.
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// The executor, mutably.
    pub fn executor_mut(&mut self) -> &mut E {
        &mut self.exec
    }

    /// Gives the executor back.
    pub fn into_executor(self) -> E {
        self.exec
    }

    /// Forgets the conversation (empties the cache).
    pub fn reset(&mut self) {
        self.kv.reset();
        self.history.clear();
        self.pending = None;
    }

    /// Positions in the cache once the pending entries are committed.
    fn n_cached(&self) -> usize {
        self.kv.n_past() + self.pending.map_or(0, |p| p.1)
    }

    /// Picks the chain and token count for the next step, given `n_past` cached positions and
    /// `remaining` tokens to feed. `None` when no graph can run (context full).
    fn plan(&self, n_past: usize, remaining: usize) -> Option<(usize, usize)> {
        let c = self.dims.context;
        let fits = |ch: usize| n_past + self.chains[ch].ar_len <= c;
        let pre = self.prefill.filter(|&p| fits(p));
        let dec = self.decode.filter(|&d| fits(d));
        let chunk = |p: usize| (p, remaining.min(self.chains[p].ar_len));
        match (pre, dec) {
            (Some(p), _) if remaining >= 2 => Some(chunk(p)),
            (_, Some(d)) => Some((d, 1)),
            (Some(p), None) => Some(chunk(p)),
            (None, None) => None,
        }
    }

    /// Commits the entries of the previous step into the layout of chain `next`.
    fn flush_pending(&mut self, next: usize) -> Result<()> {
        self.kv.set_layout(self.chains[next].ar_len)?;
        if let Some((p, n)) = self.pending.take() {
            let ch = &self.chains[p];
            self.kv.commit(ch.ar_len, n, |l| {
                let (k, ko, vo) = ch.present[l];
                let outs = &ch.shards[k].outs;
                (outs[ko].as_bytes(), outs[vo].as_bytes())
            })?;
        }
        Ok(())
    }

    /// Runs one step of chain `g` on `tokens` (1..=S real tokens). Returns the time spent in
    /// `execute` and, when `greedy_row` asks for it and the executor computed it, the greedy
    /// token of that logits row.
    ///
    /// With step extras on and room in the current layout, the executor is asked to write the
    /// new entries into the cache itself; they are then committed at once, otherwise (the
    /// executor cannot, or the entries only fit the next layout) before the next step.
    fn step(
        &mut self,
        g: usize,
        tokens: &[u32],
        greedy_row: Option<usize>,
    ) -> Result<(Duration, Option<u32>)> {
        self.flush_pending(g)?;
        let n_past = self.kv.n_past();
        let n = tokens.len();
        let through = self.extras && self.kv.has_room(n);
        let geometry = self.kv.geometry(self.chains[g].ar_len, n)?;
        let Scheduler {
            exec,
            cfg,
            chains,
            kv,
            extras: extras_on,
            ..
        } = self;
        let Chain {
            ar_len,
            shards,
            tokens: tok_buf,
            positions,
            logits,
            ..
        } = &mut chains[g];
        if tokens.is_empty() || n > *ar_len || !kv.has_room(0) {
            return Err(RuntimeError::Cache(format!(
                "internal: step of {n} tokens on `{}` at n_past {n_past}",
                shards[0].b.name
            )));
        }
        for (i, cell) in tok_buf.as_bytes_mut().chunks_exact_mut(4).enumerate() {
            let t = tokens.get(i).copied().unwrap_or(cfg.pad_token);
            cell.copy_from_slice(&(t as i32).to_le_bytes());
        }
        for (i, cell) in positions.as_bytes_mut().chunks_exact_mut(4).enumerate() {
            cell.copy_from_slice(&((n_past + i) as i32).to_le_bytes());
        }
        let mut dt = Duration::ZERO;
        let mut token = None;
        let n_shards = shards.len();
        let (mask, mut key_it, mut value_it) = kv.split_mut();
        let mut keys: [Option<&mut [u8]>; MAX_GRAPH_IO] = std::array::from_fn(|_| key_it.next());
        let mut values: [Option<&mut [u8]>; MAX_GRAPH_IO] =
            std::array::from_fn(|_| value_it.next());
        drop((key_it, value_it));
        for k in 0..n_shards {
            let (prev, rest) = shards.split_at_mut(k);
            let cur = &mut rest[0];
            let hidden: &[u8] = match prev.last() {
                Some(p) => p.outs[p.b.hidden_out.unwrap_or(0)].as_bytes(),
                None => &[],
            };
            let mut ins: [GraphInput<'_>; MAX_GRAPH_IO] =
                std::array::from_fn(|_| GraphInput::Read(&[]));
            for (dst, role) in ins.iter_mut().zip(&cur.b.input_roles) {
                let name = &cur.b.name;
                *dst = match *role {
                    InputRole::Tokens => GraphInput::Read(tok_buf.as_bytes()),
                    InputRole::HiddenStates => GraphInput::Read(hidden),
                    InputRole::Positions => GraphInput::Read(positions.as_bytes()),
                    InputRole::Mask => GraphInput::Read(mask),
                    InputRole::PastKey(l) => GraphInput::Cache(take_cache(keys.get_mut(l), name)?),
                    InputRole::PastValue(l) => {
                        GraphInput::Cache(take_cache(values.get_mut(l), name)?)
                    }
                };
            }
            let mut outs: [&mut [u8]; MAX_GRAPH_IO] = std::array::from_fn(|_| Default::default());
            let n_out = cur.outs.len();
            for (dst, buf) in outs.iter_mut().zip(cur.outs.iter_mut()) {
                *dst = buf.as_bytes_mut();
            }
            let n_in = cur.b.input_roles.len();
            let extras = StepExtras {
                cache: through.then(|| crate::executor::CacheWrite {
                    pairs: &cur.kv_pairs,
                    ..geometry
                }),
                argmax: greedy_row
                    .filter(|_| *extras_on && k + 1 == n_shards)
                    .map(|row| (*logits, row)),
            };
            let t0 = Instant::now();
            let done =
                exec.execute_with(cur.b.graph, &mut ins[..n_in], &mut outs[..n_out], &extras)?;
            dt += t0.elapsed();
            cur.wrote = through && done.cache_written;
            if k + 1 == n_shards {
                token = done.argmax;
            }
        }
        if shards.iter().any(|sh| sh.wrote) {
            // Entries of a shard whose executor did not write them (its outputs hold them) are
            // committed now; the others are in the cache already, their outputs unwritten.
            for sh in shards.iter().filter(|sh| !sh.wrote) {
                for (i, l) in sh.b.layers.clone().enumerate() {
                    let (k, v) = (sh.b.present_key[i], sh.b.present_value[i]);
                    kv.commit_layer(l, sh.outs[k].as_bytes(), sh.outs[v].as_bytes(), *ar_len, n)?;
                }
            }
            kv.advance(n)?;
        } else {
            self.pending = Some((g, n));
        }
        self.history.extend_from_slice(tokens);
        Ok((dt, token))
    }

    /// Bytes of logits row `row` of chain `g`'s last output.
    fn logits_row(&self, g: usize, row: usize) -> &[u8] {
        let ch = &self.chains[g];
        let e = ch.logits_desc.dtype.size();
        let v = self.dims.vocab;
        let last = &ch.shards[ch.shards.len() - 1];
        &last.outs[ch.logits].as_bytes()[row * v * e..(row + 1) * v * e]
    }

    fn record(&self, rec: &mut Option<LogitsRecord>, g: usize, rows: usize) {
        if let Some(rec) = rec {
            let desc = &self.chains[g].logits_desc;
            for r in 0..rows {
                let bytes = self.logits_row(g, r);
                rec.data
                    .extend((0..rec.vocab).map(|i| desc.read_real(bytes, i).unwrap_or(f32::NAN)));
            }
        }
    }

    /// Checks that `n_total` tokens can be fed starting from `n_past` cached positions.
    fn check_fits(&self, n_past: usize, n_total: usize) -> Result<()> {
        let c = self.dims.context;
        let too_long = |detail: String| RuntimeError::PromptTooLong {
            prompt: n_total,
            context: c,
            detail,
        };
        if n_total > c {
            return Err(too_long(String::new()));
        }
        let mut np = n_past;
        while np < n_total {
            match self.plan(np, n_total - np) {
                Some((_, n)) => np += n,
                None => {
                    return Err(too_long(format!(
                        " with the selected graphs ({}): positions from {np} on cannot be \
                         processed",
                        self.chains
                            .iter()
                            .map(|c| format!("`{}` ar_len {}", c.shards[0].b.name, c.ar_len))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
        Ok(())
    }

    /// Generates a continuation of `prompt` (the complete token sequence of the conversation so
    /// far; a prefix already in the cache is reused).
    ///
    /// `on_token` is called with every generated id as soon as it is sampled (including an EOS
    /// that stops generation); returning `false` stops generation. Errors: empty prompt, token id
    /// outside the vocabulary, prompt longer than the context (nothing is run), executor
    /// failure.
    pub fn generate<F: FnMut(u32) -> bool>(
        &mut self,
        prompt: &[u32],
        sampler: &mut Sampler,
        mut on_token: F,
    ) -> Result<GenerationStats> {
        let start = Instant::now();
        let v = self.dims.vocab;
        if prompt.is_empty() {
            return Err(RuntimeError::Config("empty prompt".into()));
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= v) {
            return Err(RuntimeError::Config(format!(
                "prompt token id {bad} is outside the vocabulary of {v}"
            )));
        }
        if sampler.vocab() != v {
            return Err(RuntimeError::Config(format!(
                "sampler built for a vocabulary of {}, model has {v}",
                sampler.vocab()
            )));
        }
        if prompt.len() > self.dims.context {
            return Err(RuntimeError::PromptTooLong {
                prompt: prompt.len(),
                context: self.dims.context,
                detail: String::new(),
            });
        }
        // Reuse the cached prefix; at least one token must run to get logits.
        let common = self
            .history
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        // Entries not yet committed can be kept only when the whole history is reused;
        // otherwise they are recomputed rather than partially committed.
        let mut keep = if common == self.history.len() {
            common
        } else {
            common.min(self.kv.n_past())
        };
        if let Err(e) = self.check_fits(keep, prompt.len()) {
            // A shorter reuse may let the chunks fit (prefill-only graphs need n_past <= C - S).
            let limit = keep.min(self.kv.n_past());
            keep = (0..=limit)
                .rev()
                .find(|&k| self.check_fits(k, prompt.len()).is_ok())
                .ok_or(e)?;
        }
        if keep < self.history.len() {
            self.pending = None;
            self.kv.truncate(keep)?;
            self.history.truncate(keep);
        }
        let common = keep;

        let mut stats = GenerationStats {
            prompt_tokens: prompt.len(),
            reused_tokens: common,
            // No more tokens than the context holds can be generated, whatever the limit.
            generated: Vec::with_capacity(self.cfg.max_new_tokens.min(self.dims.context + 1)),
            ..Default::default()
        };
        let mut rec = self.cfg.record_logits.then(|| LogitsRecord {
            vocab: v,
            data: Vec::with_capacity((prompt.len() - common) * v),
        });

        // Prefill.
        let mut pos = common;
        let mut last = (0, 0);
        let mut last_token = None;
        while pos < prompt.len() {
            let Some((g, n)) = self.plan(self.n_cached(), prompt.len() - pos) else {
                return Err(RuntimeError::PromptTooLong {
                    prompt: prompt.len(),
                    context: self.dims.context,
                    detail: String::new(),
                });
            };
            let greedy = (pos + n == prompt.len()
                && sampler.takes_greedy_token(&self.chains[g].logits_desc))
            .then_some(n - 1);
            last_token = self.step(g, &prompt[pos..pos + n], greedy)?.1;
            self.record(&mut rec, g, n);
            stats.prefill_steps += 1;
            pos += n;
            last = (g, n);
        }
        stats.prefill_time = start.elapsed();
        if self.cfg.max_new_tokens == 0 {
            stats.time_to_first_token = start.elapsed();
            stats.logits = rec;
            return Ok(stats);
        }
        let mut next = match last_token {
            Some(t) => t,
            None => {
                let row = self.logits_row(last.0, last.1 - 1);
                sampler.sample(row, &self.chains[last.0].logits_desc, &self.history)?
            }
        };
        stats.time_to_first_token = start.elapsed();

        // Decode.
        loop {
            stats.generated.push(next);
            if !on_token(next) {
                stats.stop = Some(StopReason::Callback);
                break;
            }
            if self.cfg.eos_ids.contains(&next) {
                stats.stop = Some(StopReason::Eos);
                break;
            }
            if stats.generated.len() >= self.cfg.max_new_tokens {
                stats.stop = Some(StopReason::MaxTokens);
                break;
            }
            let t0 = Instant::now();
            let Some((g, _)) = self.plan(self.n_cached(), 1) else {
                stats.stop = Some(StopReason::CacheFull);
                break;
            };
            let greedy = sampler
                .takes_greedy_token(&self.chains[g].logits_desc)
                .then_some(0);
            let (exec, token) = self.step(g, &[next], greedy)?;
            self.record(&mut rec, g, 1);
            next = match token {
                Some(t) => t,
                None => {
                    let row = self.logits_row(g, 0);
                    sampler.sample(row, &self.chains[g].logits_desc, &self.history)?
                }
            };
            let dt = t0.elapsed();
            if stats.decode_steps == 0 {
                stats.decode_first_host_time = dt.saturating_sub(exec);
            }
            stats.decode_execute_time += exec;
            stats.decode_time += dt;
            stats.decode_steps += 1;
        }
        stats.logits = rec;
        Ok(stats)
    }
}
