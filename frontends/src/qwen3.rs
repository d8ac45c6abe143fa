//! The Qwen3 graph builder: a [`Qwen3Config`] plus a [`WeightStore`] become an IR [`Module`]
//! holding the hybrid-mode graphs of mllm's QNN AOT flow, sharing one weight store:
//! prefill `model.{i}.s{N}` (N = `ar_len`) and decode `model.{i}.s1` (one function only when
//! `ar_len == 1`), for every shard `i` (one shard by default).
//!
//! # Graph I/O contract (float model; see `qwen3-flow.md` section 2)
//!
//! With S = ar_len, C = context length, L = layers, Hkv = KV heads, D = head_dim, V = vocab:
//!
//! | inputs, in order | type |
//! |---|---|
//! | `sequence` (shard 0) / `hidden_states` (other shards) | `i32 [1, S]` / `f32 [1, S, H]` |
//! | `position_ids` | `i32 [S]` |
//! | `causal_mask` | `f32 [1, 1, S, C]`: 1.0 = attend, anything else = masked |
//! | `past_key_{l}` for every layer l of the shard | `f32 [1, Hkv, C-S, D]` |
//! | `past_value_{l}` for every layer l of the shard | `f32 [1, Hkv, C-S, D]` |
//!
//! | outputs, in order | type |
//! |---|---|
//! | `logits` (last shard) / `hidden_states` (other shards) | `f32 [1, S, V]` / `f32 [1, S, H]` |
//! | `present_key_{l}` | `f32 [1, Hkv, S, D]` (only the S new entries) |
//! | `present_value_{l}` | `f32 [1, Hkv, S, D]` |
//!
//! Keys and values share one layout, one row of D per cached position and head, so the
//! runtime commits a new entry with one contiguous copy of D elements per head; the scores
//! read the keys transposed (`nn.matmul {transpose_b = true}`, QNN `MatMul` with
//! `transpose_in1`). Mask columns `[0, C-S)` address the cache, columns `[C-S, C)` the current
//! chunk. After quantization the mask becomes u16 with 65535 = attend, i.e. the same real
//! value 1.0.
//!
//! # Body
//!
//! Hugging Face Qwen3 semantics, ops named after HF module paths (`model.layers.3.self_attn.q_proj`,
//! `...q_norm`, `...rope_q`, `...qk_matmul`, `...softmax`, `model.layers.3.mlp.act`, `lm_head`) so
//! that quantization recipes can select ops by regex. Attention masks without -inf:
//! `attn = where(mask == 1, qk / sqrt(D), reduce_min(qk / sqrt(D)) - 20)`, then softmax.
//! Grouped-query attention uses no repeat: with G = Hq / Hkv, query heads `kv*G .. kv*G+G` are
//! contiguous, so `q [1, Hq, S, D]` reshapes to `[1, Hkv, G*S, D]` and multiplies the KV head's
//! keys directly. RoPE tables `model.rope.cos` / `model.rope.sin` ([C, D] f32, Hugging Face's
//! default rope) are computed here, inserted into the store as owned weights, and gathered by
//! `position_ids`.
//!
//! # Weight types
//!
//! `builtin.weight` ops refer to store entries by their Hugging Face name. The IR element type of a
//! weight is its *logical* type (f32 for a float checkpoint); the store keeps the *physical* bytes
//! (e.g. bf16, zero copy from the checkpoint) and consumers convert when reading.

use std::collections::HashMap;
use std::sync::Arc;

use mllm_ir::verify::{verify_module, verify_weights};
use mllm_ir::{attrs, Attr, Builder, ElemType, Function, IrError, Module, OpKind, Type, ValueId};
use mllm_ir::{WDType, Weight, WeightStore};

use crate::checkpoint::Checkpoint;
use crate::config::{LmHead, Qwen3Config, EMBED_TOKENS, FINAL_NORM, LM_HEAD};

/// Name of the RoPE cosine table weight ([C, D] f32).
pub const ROPE_COS: &str = "model.rope.cos";
/// Name of the RoPE sine table weight ([C, D] f32).
pub const ROPE_SIN: &str = "model.rope.sin";

/// Module attribute holding the RoPE base frequency (used by [`load_weights`]).
pub const ATTR_ROPE_THETA: &str = "rope_theta";
/// Module attribute naming the checkpoint the weights come from (used by [`load_weights`]).
pub const ATTR_WEIGHTS: &str = "weights";

/// Largest RoPE table (in values) [`load_weights`] recomputes for a parsed module.
const MAX_ROPE_TABLE: usize = 1 << 28;

/// Real value of an "attend" entry of `causal_mask`.
pub const MASK_ATTEND: f32 = 1.0;
/// What masked attention scores are set to, relative to the row minimum.
pub const MASK_FILL_OFFSET: f32 = -20.0;

/// Errors of the Qwen3 builder. Every message names the tensor, option or op involved.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A checkpoint or config problem (missing tensor, wrong shape, ...).
    #[error(transparent)]
    Frontend(#[from] crate::Error),
    /// A weight the config needs is not in the weight store.
    #[error("missing tensor {name} for config")]
    MissingWeight {
        /// Tensor name.
        name: String,
    },
    /// A weight of the store has the wrong shape.
    #[error("tensor {name} has shape {got:?}, config needs {want:?}")]
    WeightShape {
        /// Tensor name.
        name: String,
        /// Shape in the store.
        got: Vec<usize>,
        /// Shape the config implies.
        want: Vec<usize>,
    },
    /// A weight whose storage type a float model cannot use.
    #[error(
        "tensor {name} has dtype {dtype:?}; a float Qwen3 model needs f32, f16 or bf16 weights"
    )]
    WeightDtype {
        /// Tensor name.
        name: String,
        /// Store dtype.
        dtype: WDType,
    },
    /// A module whose weights cannot be loaded (missing or bad `weights` / `rope_theta` attribute).
    #[error("cannot load the module's weights: {0}")]
    Load(String),
    /// A config the builder cannot use (zero sizes, heads not divisible, odd head_dim, ...).
    #[error("invalid config: {0}")]
    Config(String),
    /// Invalid [`BuildOptions`].
    #[error("invalid build options: {0}")]
    Options(String),
    /// The IR rejected an op or the finished module (a builder bug, reported with the op name).
    #[error("IR construction failed at {at}: {msg}")]
    Ir {
        /// Op (or stage) being built.
        at: String,
        /// The IR's message.
        msg: String,
    },
}

/// Result alias of the builder.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// An IR error's message without its `error: ` prefix.
fn ir_msg(e: &IrError) -> String {
    let msg = e.to_string();
    msg.strip_prefix("error: ").unwrap_or(&msg).to_string()
}

fn ir_err(at: &str, e: IrError) -> BuildError {
    BuildError::Ir {
        at: at.to_string(),
        msg: ir_msg(&e),
    }
}

/// Options of [`build_qwen3`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildOptions {
    /// Tokens per prefill step (S of the prefill graph); 1 builds the decode graph only.
    pub ar_len: usize,
    /// Context length C (KV cache plus current chunk); must exceed `ar_len`.
    pub context_len: usize,
    /// Number of shards: the layers are split evenly (earlier shards take the remainder) into
    /// this many graph pairs `model.{i}.s{N}`.
    pub num_shards: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            ar_len: 32,
            context_len: 1024,
            num_shards: 1,
        }
    }
}

impl BuildOptions {
    /// The sequence lengths of the graphs built, prefill first (`[ar_len, 1]`, or `[1]`).
    pub fn seq_lens(&self) -> Vec<usize> {
        if self.ar_len == 1 {
            vec![1]
        } else {
            vec![self.ar_len, 1]
        }
    }
}

/// Name of the graph of shard `shard` with sequence length `seq_len` (`model.0.s32`).
pub fn graph_name(shard: usize, seq_len: usize) -> String {
    format!("model.{shard}.s{seq_len}")
}

/// Layer ranges of `num_shards` even shards of `num_layers` layers (earlier shards take the
/// remainder).
pub fn shard_layers(num_layers: usize, num_shards: usize) -> Vec<std::ops::Range<usize>> {
    let n = num_shards.max(1);
    let (base, rem) = (num_layers / n, num_layers % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let len = base + usize::from(i < rem);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// Hugging Face's default RoPE tables for positions `0..len`: `inv_freq[i] = theta^(-2i/D)` (f32,
/// as HF computes it), angle = `pos * inv_freq` in f32, `emb = concat(angles, angles)`; returns
/// `(cos, sin)`, each `len * D` values row-major.
pub fn rope_tables(theta: f64, head_dim: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let exp = (2 * i) as f32 / head_dim as f32;
            1.0f32 / (theta as f32).powf(exp)
        })
        .collect();
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for p in 0..len {
        let angles: Vec<f32> = inv_freq.iter().map(|f| p as f32 * f).collect();
        for _ in 0..2 {
            cos.extend(angles.iter().map(|a| (*a as f64).cos() as f32));
            sin.extend(angles.iter().map(|a| (*a as f64).sin() as f32));
        }
    }
    (cos, sin)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Checks the config fields the builder relies on (a parsed config already satisfies them; a
/// config built by hand might not).
pub fn check_config(cfg: &Qwen3Config) -> Result<()> {
    let bad = |m: String| Err(BuildError::Config(m));
    for (name, v) in [
        ("vocab_size", cfg.vocab_size),
        ("hidden_size", cfg.hidden_size),
        ("intermediate_size", cfg.intermediate_size),
        ("num_hidden_layers", cfg.num_hidden_layers),
        ("num_attention_heads", cfg.num_attention_heads),
        ("num_key_value_heads", cfg.num_key_value_heads),
        ("head_dim", cfg.head_dim),
    ] {
        if v == 0 {
            return bad(format!("{name} must be positive"));
        }
    }
    if !cfg
        .num_attention_heads
        .is_multiple_of(cfg.num_key_value_heads)
    {
        return bad(format!(
            "num_attention_heads {} is not a multiple of num_key_value_heads {}",
            cfg.num_attention_heads, cfg.num_key_value_heads
        ));
    }
    if !cfg.head_dim.is_multiple_of(2) {
        return bad(format!("head_dim {} must be even for RoPE", cfg.head_dim));
    }
    if !(cfg.rope_theta.is_finite() && cfg.rope_theta > 0.0) {
        return bad(format!("rope_theta {} must be positive", cfg.rope_theta));
    }
    if !(cfg.rms_norm_eps.is_finite() && cfg.rms_norm_eps > 0.0) {
        return bad(format!(
            "rms_norm_eps {} must be positive",
            cfg.rms_norm_eps
        ));
    }
    Ok(())
}

/// Checks that `weights` holds every tensor `cfg` needs, with the right shape and a float dtype,
/// and decides where `lm_head` comes from (its own tensor when present, else the embedding when
/// the config ties them).
pub fn check_weights(cfg: &Qwen3Config, weights: &WeightStore) -> Result<LmHead> {
    let check = |name: &str, want: &[usize]| -> Result<()> {
        let w = weights.get(name).ok_or_else(|| BuildError::MissingWeight {
            name: name.to_string(),
        })?;
        if w.shape != want {
            return Err(BuildError::WeightShape {
                name: name.to_string(),
                got: w.shape.clone(),
                want: want.to_vec(),
            });
        }
        if !matches!(w.dtype, WDType::F32 | WDType::F16 | WDType::BF16) {
            return Err(BuildError::WeightDtype {
                name: name.to_string(),
                dtype: w.dtype,
            });
        }
        Ok(())
    };
    for (name, shape) in cfg.expected_tensors() {
        check(&name, &shape)?;
    }
    if weights.contains(LM_HEAD) {
        check(LM_HEAD, &cfg.lm_head_shape())?;
        Ok(LmHead::Separate)
    } else if cfg.tie_word_embeddings {
        Ok(LmHead::TiedToEmbedding)
    } else {
        Err(BuildError::MissingWeight {
            name: LM_HEAD.to_string(),
        })
    }
}

/// Imports exactly the tensors a Qwen3 model needs from `ckpt` (zero copy), after checking them
/// against the config with [`Qwen3Config::check_checkpoint`].
pub fn import_weights(cfg: &Qwen3Config, ckpt: &Arc<Checkpoint>) -> Result<WeightStore> {
    let lm_head = cfg.check_checkpoint(ckpt)?;
    let mut names: Vec<String> = cfg.expected_tensors().into_iter().map(|(n, _)| n).collect();
    if lm_head == LmHead::Separate {
        names.push(LM_HEAD.to_string());
    }
    Ok(crate::weights::import_tensors(
        ckpt,
        names.iter().map(String::as_str),
    )?)
}

/// Fills `module.weights` for a Qwen3 module read back from text: every `builtin.weight` is
/// imported (zero copy) from the checkpoint named by the module attribute `weights` (a relative
/// path is resolved against `base_dir`, typically the directory of the `.mlir` file). The RoPE
/// tables, which an imported Hugging Face checkpoint lacks, are recomputed from the module
/// attribute `rope_theta` and their IR shape `[C, D]` when the checkpoint does not hold them
/// (a file written after quantization does, as codes). The result is checked with
/// [`verify_weights`].
pub fn load_weights(module: &mut Module, base_dir: Option<&std::path::Path>) -> Result<()> {
    use mllm_ir::attr::AttrsExt;
    let Some(src) = module.attrs.str(ATTR_WEIGHTS) else {
        return Err(BuildError::Load(format!(
            "the module has no `{ATTR_WEIGHTS}` attribute naming its checkpoint"
        )));
    };
    let mut path = std::path::PathBuf::from(src);
    if path.is_relative() {
        if let Some(base) = base_dir {
            path = base.join(path);
        }
    }
    let ckpt = Arc::new(Checkpoint::open(&path)?);
    let mut wanted: Vec<(String, Type)> = Vec::new();
    for f in &module.functions {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind == OpKind::Weight {
                let name = o.attrs.str("name").unwrap_or_default().to_string();
                wanted.push((name, f.ty(o.results[0]).clone()));
            }
        }
    }
    let mut store = WeightStore::new();
    for (name, ty) in wanted {
        if store.contains(&name) {
            continue;
        }
        if ckpt.contains(&name) || (name != ROPE_COS && name != ROPE_SIN) {
            store.insert(name.as_str(), crate::weights::import_tensor(&ckpt, &name)?);
            continue;
        }
        let theta = module.attrs.float(ATTR_ROPE_THETA).ok_or_else(|| {
            BuildError::Load(format!(
                "weight {name} is not in {} and the module attribute `{ATTR_ROPE_THETA}` is missing",
                path.display()
            ))
        })?;
        let [c, d] = ty.shape()[..] else {
            return Err(BuildError::Load(format!(
                "weight {name} must be [context_len, head_dim], the IR declares {ty}"
            )));
        };
        if ty.elem() != &ElemType::F32 {
            return Err(BuildError::Load(format!(
                "weight {name} has type {ty}: only f32 RoPE tables can be recomputed, and {} lacks it",
                path.display()
            )));
        }
        if c.checked_mul(d).is_none_or(|n| n > MAX_ROPE_TABLE) {
            return Err(BuildError::Load(format!(
                "weight {name} of type {ty} is too large to recompute (more than {MAX_ROPE_TABLE} values)"
            )));
        }
        if !(d.is_multiple_of(2) && theta.is_finite() && theta > 0.0) {
            return Err(BuildError::Load(format!(
                "cannot build {name}: head_dim {d} must be even and rope_theta {theta} positive"
            )));
        }
        let (cos, sin) = rope_tables(theta, d, c);
        let table = if name == ROPE_COS { cos } else { sin };
        let w = Weight::owned(WDType::F32, vec![c, d], f32_bytes(&table))
            .map_err(|e| ir_err(&name, e))?;
        store.insert(name.as_str(), w);
    }
    module.weights = store;
    verify_weights(module).map_err(|e| BuildError::Load(ir_msg(&e)))
}

/// Builds the Qwen3 module (see the module docs for the graphs and their I/O contract). The
/// RoPE tables are added to `weights`, which becomes the module's store. The result passes
/// [`verify_module`] and [`verify_weights`].
pub fn build_qwen3(
    cfg: &Qwen3Config,
    mut weights: WeightStore,
    opts: BuildOptions,
) -> Result<Module> {
    let (s_max, c) = (opts.ar_len, opts.context_len);
    if s_max == 0 {
        return Err(BuildError::Options("ar_len must be at least 1".into()));
    }
    if c <= s_max {
        return Err(BuildError::Options(format!(
            "context_len ({c}) must be larger than ar_len ({s_max}): the graphs need room for a KV cache"
        )));
    }
    if c > cfg.max_position_embeddings {
        return Err(BuildError::Options(format!(
            "context_len ({c}) exceeds the model's max_position_embeddings ({})",
            cfg.max_position_embeddings
        )));
    }
    if opts.num_shards == 0 || opts.num_shards > cfg.num_hidden_layers {
        return Err(BuildError::Options(format!(
            "num_shards must be between 1 and the number of layers ({}), got {}",
            cfg.num_hidden_layers, opts.num_shards
        )));
    }
    check_config(cfg)?;
    let lm_head = check_weights(cfg, &weights)?;

    let (cos, sin) = rope_tables(cfg.rope_theta, cfg.head_dim, c);
    for (name, table) in [(ROPE_COS, &cos), (ROPE_SIN, &sin)] {
        let w = Weight::owned(WDType::F32, vec![c, cfg.head_dim], f32_bytes(table))
            .map_err(|e| ir_err(name, e))?;
        weights.insert(name, w);
    }

    let shards = shard_layers(cfg.num_hidden_layers, opts.num_shards);
    let mut module = Module::new();
    module
        .attrs
        .insert("model_type".into(), Attr::Str("qwen3".into()));
    // Enough to recompute the RoPE tables when the module is re-read from text.
    module
        .attrs
        .insert(ATTR_ROPE_THETA.into(), Attr::Float(cfg.rope_theta));
    for (i, layers) in shards.iter().enumerate() {
        for s in opts.seq_lens() {
            let g = GraphSpec {
                cfg,
                name: graph_name(i, s),
                seq_len: s,
                context_len: c,
                shard: i,
                layers: layers.clone(),
                first: i == 0,
                last: i + 1 == shards.len(),
                lm_head,
            };
            module.functions.push(g.build()?);
        }
    }
    module.weights = weights;
    verify_module(&module).map_err(|e| ir_err("verify_module", e))?;
    verify_weights(&module).map_err(|e| ir_err("verify_weights", e))?;
    Ok(module)
}

/// One graph to build.
struct GraphSpec<'a> {
    cfg: &'a Qwen3Config,
    name: String,
    seq_len: usize,
    context_len: usize,
    shard: usize,
    layers: std::ops::Range<usize>,
    first: bool,
    last: bool,
    lm_head: LmHead,
}

/// Op emission helpers over a [`Builder`], with weight ops cached per name.
struct Emit<'b, 'f> {
    b: &'b mut Builder<'f>,
    weights: HashMap<String, ValueId>,
}

impl Emit<'_, '_> {
    fn weight(&mut self, name: &str, shape: &[usize]) -> ValueId {
        if let Some(v) = self.weights.get(name) {
            return *v;
        }
        let v = self
            .b
            .weight(name, Type::tensor(shape.to_vec(), ElemType::F32));
        self.weights.insert(name.to_string(), v);
        v
    }

    fn op(
        &mut self,
        name: &str,
        kind: OpKind,
        operands: &[ValueId],
        a: mllm_ir::Attrs,
    ) -> Result<ValueId> {
        self.b
            .named(name, kind, operands, a)
            .map_err(|e| ir_err(name, e))
    }

    fn plain(&mut self, name: &str, kind: OpKind, operands: &[ValueId]) -> Result<ValueId> {
        self.op(name, kind, operands, mllm_ir::Attrs::new())
    }

    fn reshape(&mut self, name: &str, x: ValueId, shape: &[usize]) -> Result<ValueId> {
        let s = shape.iter().map(|d| *d as i64).collect();
        self.op(
            name,
            OpKind::Reshape,
            &[x],
            attrs([("shape", Attr::Ints(s))]),
        )
    }

    fn transpose(&mut self, name: &str, x: ValueId, perm: &[i64]) -> Result<ValueId> {
        self.op(
            name,
            OpKind::Transpose,
            &[x],
            attrs([("perm", Attr::Ints(perm.to_vec()))]),
        )
    }

    fn concat(&mut self, name: &str, xs: &[ValueId], axis: i64) -> Result<ValueId> {
        self.op(name, OpKind::Concat, xs, attrs([("axis", Attr::Int(axis))]))
    }

    fn rms_norm(&mut self, name: &str, x: ValueId, w: ValueId, eps: f64) -> Result<ValueId> {
        self.op(
            name,
            OpKind::RmsNorm,
            &[x, w],
            attrs([("epsilon", Attr::Float(eps))]),
        )
    }

    fn scalar(&mut self, v: f32) -> ValueId {
        self.b.scalar(v as f64, ElemType::F32)
    }

    fn linear(
        &mut self,
        name: &str,
        x: ValueId,
        weight: &str,
        shape: [usize; 2],
    ) -> Result<ValueId> {
        let w = self.weight(weight, &shape);
        self.plain(name, OpKind::Linear, &[x, w])
    }
}

impl GraphSpec<'_> {
    fn build(&self) -> Result<Function> {
        let cfg = self.cfg;
        let (s, c) = (self.seq_len, self.context_len);
        let (h, d, hq, hkv) = (
            cfg.hidden_size,
            cfg.head_dim,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
        );
        let f32t = |shape: Vec<usize>| Type::tensor(shape, ElemType::F32);
        let mut f = Function::new(self.name.clone());
        f.attrs.insert("ar_len".into(), Attr::Int(s as i64));
        f.attrs.insert("context_len".into(), Attr::Int(c as i64));
        f.attrs.insert("shard".into(), Attr::Int(self.shard as i64));
        f.attrs.insert(
            "layers".into(),
            Attr::Ints(vec![self.layers.start as i64, self.layers.end as i64]),
        );

        let input = if self.first {
            f.add_arg(Type::tensor(vec![1, s], ElemType::I32), Some("sequence"))
        } else {
            f.add_arg(f32t(vec![1, s, h]), Some("hidden_states"))
        };
        let pos = f.add_arg(Type::tensor(vec![s], ElemType::I32), Some("position_ids"));
        let mask = f.add_arg(f32t(vec![1, 1, s, c]), Some("causal_mask"));
        let past_k: Vec<ValueId> = self
            .layers
            .clone()
            .map(|l| f.add_arg(f32t(vec![1, hkv, c - s, d]), Some(&format!("past_key_{l}"))))
            .collect();
        let past_v: Vec<ValueId> = self
            .layers
            .clone()
            .map(|l| {
                f.add_arg(
                    f32t(vec![1, hkv, c - s, d]),
                    Some(&format!("past_value_{l}")),
                )
            })
            .collect();

        let mut b = f.builder();
        let mut e = Emit {
            b: &mut b,
            weights: HashMap::new(),
        };

        let mut x = if self.first {
            let table = e.weight(EMBED_TOKENS, &[cfg.vocab_size, h]);
            e.plain("model.embed_tokens", OpKind::Embedding, &[input, table])?
        } else {
            input
        };

        // Shared by every layer: the RoPE rows of this chunk and the attend/masked condition.
        let cos_t = e.weight(ROPE_COS, &[c, d]);
        let sin_t = e.weight(ROPE_SIN, &[c, d]);
        let gather = attrs([("axis", Attr::Int(0))]);
        let cos = e.op(
            "model.rope.gather_cos",
            OpKind::Gather,
            &[cos_t, pos],
            gather.clone(),
        )?;
        let sin = e.op(
            "model.rope.gather_sin",
            OpKind::Gather,
            &[sin_t, pos],
            gather,
        )?;
        let one = e.scalar(MASK_ATTEND);
        let attend = e.plain("model.mask_equal", OpKind::Equal, &[mask, one])?;

        let mut present_k = Vec::new();
        let mut present_v = Vec::new();
        for (li, l) in self.layers.clone().enumerate() {
            let p = Qwen3Config::layer_prefix(l);
            let a = format!("{p}.self_attn");
            let eps = cfg.rms_norm_eps;
            let g = hq / hkv;

            let w = e.weight(&format!("{p}.input_layernorm.weight"), &[h]);
            let hs = e.rms_norm(&format!("{p}.input_layernorm"), x, w, eps)?;

            // Projections to heads [1, heads, S, D].
            let heads = |e: &mut Emit, which: &str, n: usize, norm: bool| -> Result<ValueId> {
                let y = e.linear(
                    &format!("{a}.{which}_proj"),
                    hs,
                    &format!("{a}.{which}_proj.weight"),
                    [n * d, h],
                )?;
                let y = e.reshape(&format!("{a}.{which}_reshape"), y, &[1, s, n, d])?;
                let y = e.transpose(&format!("{a}.{which}_transpose"), y, &[0, 2, 1, 3])?;
                if norm {
                    let w = e.weight(&format!("{a}.{which}_norm.weight"), &[d]);
                    let y = e.rms_norm(&format!("{a}.{which}_norm"), y, w, eps)?;
                    e.plain(&format!("{a}.rope_{which}"), OpKind::Rope, &[y, cos, sin])
                } else {
                    Ok(y)
                }
            };
            let q = heads(&mut e, "q", hq, true)?;
            let k = heads(&mut e, "k", hkv, true)?;
            let v = heads(&mut e, "v", hkv, false)?;

            // New cache entries and the full K / V, both [1, Hkv, C, D].
            present_k.push(k);
            present_v.push(v);
            let k_all = e.concat(&format!("{a}.k_concat"), &[past_k[li], k], 2)?;
            let v_all = e.concat(&format!("{a}.v_concat"), &[past_v[li], v], 2)?;

            // Scores per KV head: [1, Hkv, G*S, D] x [1, Hkv, C, D]^T.
            let qg = e.reshape(&format!("{a}.q_group_reshape"), q, &[1, hkv, g * s, d])?;
            let qk = e.op(
                &format!("{a}.qk_matmul"),
                OpKind::MatMul,
                &[qg, k_all],
                attrs([("transpose_b", Attr::Bool(true))]),
            )?;
            let qk = e.reshape(&format!("{a}.qk_reshape"), qk, &[1, hq, s, c])?;
            let scale = e.scalar(1.0 / (d as f32).sqrt());
            let scores = e.plain(&format!("{a}.qk_scale"), OpKind::Mul, &[qk, scale])?;
            let rmin = e.op(
                &format!("{a}.reduce_min"),
                OpKind::ReduceMin,
                &[scores],
                attrs([
                    ("axes", Attr::Ints(vec![-1])),
                    ("keepdims", Attr::Bool(true)),
                ]),
            )?;
            let off = e.scalar(MASK_FILL_OFFSET);
            let fill = e.plain(&format!("{a}.mask_fill"), OpKind::Add, &[rmin, off])?;
            let masked = e.plain(
                &format!("{a}.mask_where"),
                OpKind::Where,
                &[attend, scores, fill],
            )?;
            let probs = e.op(
                &format!("{a}.softmax"),
                OpKind::Softmax,
                &[masked],
                attrs([("axis", Attr::Int(-1))]),
            )?;
            let pg = e.reshape(
                &format!("{a}.probs_group_reshape"),
                probs,
                &[1, hkv, g * s, c],
            )?;
            let o = e.plain(&format!("{a}.pv_matmul"), OpKind::MatMul, &[pg, v_all])?;
            let o = e.reshape(&format!("{a}.pv_reshape"), o, &[1, hq, s, d])?;
            let o = e.transpose(&format!("{a}.o_transpose"), o, &[0, 2, 1, 3])?;
            let o = e.reshape(&format!("{a}.o_reshape"), o, &[1, s, hq * d])?;
            let o = e.linear(
                &format!("{a}.o_proj"),
                o,
                &format!("{a}.o_proj.weight"),
                [h, hq * d],
            )?;
            x = e.plain(&format!("{p}.attn_residual"), OpKind::Add, &[x, o])?;

            // MLP.
            let m = format!("{p}.mlp");
            let i = cfg.intermediate_size;
            let w = e.weight(&format!("{p}.post_attention_layernorm.weight"), &[h]);
            let hs = e.rms_norm(&format!("{p}.post_attention_layernorm"), x, w, eps)?;
            let gate = e.linear(
                &format!("{m}.gate_proj"),
                hs,
                &format!("{m}.gate_proj.weight"),
                [i, h],
            )?;
            let act = e.plain(&format!("{m}.act"), OpKind::Silu, &[gate])?;
            let up = e.linear(
                &format!("{m}.up_proj"),
                hs,
                &format!("{m}.up_proj.weight"),
                [i, h],
            )?;
            let prod = e.plain(&format!("{m}.mul"), OpKind::Mul, &[act, up])?;
            let down = e.linear(
                &format!("{m}.down_proj"),
                prod,
                &format!("{m}.down_proj.weight"),
                [h, i],
            )?;
            x = e.plain(&format!("{p}.mlp_residual"), OpKind::Add, &[x, down])?;
        }

        let head = if self.last {
            let w = e.weight(FINAL_NORM, &[h]);
            let xn = e.rms_norm("model.norm", x, w, cfg.rms_norm_eps)?;
            e.linear(
                "lm_head",
                xn,
                self.lm_head.tensor_name(),
                [cfg.vocab_size, h],
            )?
        } else {
            x
        };

        let mut outs = vec![head];
        outs.extend(&present_k);
        outs.extend(&present_v);
        b.ret(&outs);

        let mut names = vec![Some(
            if self.last { "logits" } else { "hidden_states" }.to_string(),
        )];
        names.extend(
            self.layers
                .clone()
                .map(|l| Some(format!("present_key_{l}"))),
        );
        names.extend(
            self.layers
                .clone()
                .map(|l| Some(format!("present_value_{l}"))),
        );
        f.result_names = names;
        Ok(f)
    }
}
