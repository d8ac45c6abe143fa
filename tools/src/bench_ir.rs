//! `mllm bench ir`: throughput of the IR on a synthetic Qwen3-1.7B decode graph.
//!
//! The generator builds, with the IR builder, a module shaped like a one-token decode
//! step of Qwen3 (28 layers, 16 query heads, 8 KV heads, head dim 128, hidden 2048,
//! intermediate 6144, a KV cache of `--context` tokens), fully quantized the way a QNN
//! graph is: every activation has its own u16 per-tensor encoding, weights are LPBQ
//! (4-bit with per-block scales, realistic encoding sizes) in the first
//! `--lpbq-layers` layers and i8 per-tensor elsewhere (so the text stays a few MB).
//!
//! Two variants:
//! - `mha`: one op per projection / attention step (~1.5k ops);
//! - `sha`: the single-head-attention form the QNN flow produces, with per-head
//!   1x1 conv projections, per-head q/k norms, RoPE (decomposed into slices for the
//!   query heads), sliding-window KV cache updates and per-head attention (~11k
//!   ops). Per-head copies of the attention scale constant are left for `cse` to
//!   merge.
//!
//! For each variant it measures build, print (MB of text), parse (MB/s), verify and a
//! `cse,dce` pipeline run through the pass manager, checks the print/parse round trip,
//! and reports the peak RSS (`VmHWM`, reset per variant where the kernel allows).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mllm_ir::equiv::module_eq;
use mllm_ir::infer::infer_shape;
use mllm_ir::parse::parse_module;
use mllm_ir::print::print_module;
use mllm_ir::types::{per_tensor, Storage};
use mllm_ir::verify::verify_module;
use mllm_ir::{
    attrs, Attr, Attrs, Builder, ElemType, Encoding, Expressed, Function, Module, OpKind,
    QuantType, Type, ValueId,
};
use mllm_passes::{PassManager, Registry};

/// Which graph shape to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// Multi-head attention: one op per projection.
    Mha,
    /// Single-head attention: per-head ops (~11k ops for Qwen3-1.7B).
    Sha,
    /// Both, one after the other.
    Both,
}

/// Options of `mllm bench ir`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchIrArgs {
    /// Decoder layers.
    #[arg(long, default_value_t = 28)]
    pub layers: usize,
    /// Query heads.
    #[arg(long, default_value_t = 16)]
    pub heads: usize,
    /// Key/value heads (GQA).
    #[arg(long = "kv-heads", default_value_t = 8)]
    pub kv_heads: usize,
    /// Head dimension.
    #[arg(long = "head-dim", default_value_t = 128)]
    pub head_dim: usize,
    /// Hidden size.
    #[arg(long, default_value_t = 2048)]
    pub hidden: usize,
    /// MLP intermediate size.
    #[arg(long, default_value_t = 6144)]
    pub intermediate: usize,
    /// Vocabulary size (embedding table and LM head).
    #[arg(long, default_value_t = 151_936)]
    pub vocab: usize,
    /// KV-cache length attended by the decoded token.
    #[arg(long, default_value_t = 1024)]
    pub context: usize,
    /// Layers whose weights get full LPBQ encodings (the others are i8 per-tensor).
    #[arg(long = "lpbq-layers", default_value_t = 2)]
    pub lpbq_layers: usize,
    /// LPBQ block size (elements per block along the reduction axis).
    #[arg(long = "lpbq-block", default_value_t = 64)]
    pub lpbq_block: usize,
    /// Graph variant.
    #[arg(long, value_enum, default_value = "both")]
    pub variant: Variant,
    /// Repetitions of every measurement (the best time is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also write the printed module of each variant to `<DIR>/<variant>.mlir`.
    #[arg(long, value_name = "DIR")]
    pub emit: Option<PathBuf>,
}

impl Default for BenchIrArgs {
    fn default() -> Self {
        BenchIrArgs {
            layers: 28,
            heads: 16,
            kv_heads: 8,
            head_dim: 128,
            hidden: 2048,
            intermediate: 6144,
            vocab: 151_936,
            context: 1024,
            lpbq_layers: 2,
            lpbq_block: 64,
            variant: Variant::Both,
            repeat: 3,
            emit: None,
        }
    }
}

/// splitmix64, for reproducible synthetic encodings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The graph generator: a builder plus the encoding factory.
struct Gen<'a> {
    b: Builder<'a>,
    rng: Rng,
    args: &'a BenchIrArgs,
}

impl Gen<'_> {
    /// A fresh u16 per-tensor activation element type.
    fn act_elem(&mut self) -> ElemType {
        let scale = 1e-4 * (1.0 + 9.0 * self.rng.unit());
        let offset = -(self.rng.below(65_536) as i32);
        per_tensor(Storage::U16, scale, offset)
    }

    /// A weight of `shape` whose output channels are on `axis`, reducing over the rest:
    /// LPBQ in the first layers, i8 per-tensor elsewhere.
    fn weight(
        &mut self,
        name: &str,
        shape: &[usize],
        axis: usize,
        layer: Option<usize>,
    ) -> ValueId {
        let lpbq = layer.is_some_and(|l| l < self.args.lpbq_layers);
        let elem = if lpbq {
            let ch = shape[axis];
            let per: usize = shape.iter().product::<usize>() / ch;
            let mut block = self.args.lpbq_block.clamp(1, per);
            while !per.is_multiple_of(block) {
                block -= 1;
            }
            let nb = per / block;
            let channel_scales: Vec<f32> =
                (0..ch).map(|_| 1e-3 * (0.5 + self.rng.unit())).collect();
            let block_scales: Vec<u8> =
                (0..ch * nb).map(|_| 1 + self.rng.below(16) as u8).collect();
            ElemType::Quant(QuantType {
                storage: Storage::I4,
                expressed: Expressed::F32,
                encoding: Encoding::Blockwise {
                    axis: axis as u32,
                    block_size: block as u32,
                    block_scale_bits: 4,
                    block_scales: block_scales.into(),
                    channel_scales: channel_scales.into(),
                },
            })
        } else {
            per_tensor(Storage::I8, 1e-3 * (0.5 + self.rng.unit()), 0)
        };
        self.b.weight(name, Type::tensor(shape.to_vec(), elem))
    }

    /// A small quantized (u16) weight such as a norm scale.
    fn small_weight(&mut self, name: &str, shape: &[usize]) -> ValueId {
        let e = self.act_elem();
        self.b.weight(name, Type::tensor(shape.to_vec(), e))
    }

    /// A compute op whose result gets a fresh activation encoding.
    fn op(&mut self, kind: OpKind, operands: &[ValueId], a: Attrs) -> Result<ValueId> {
        let tys: Vec<Type> = operands
            .iter()
            .map(|v| self.b.func.ty(*v).clone())
            .collect();
        let refs: Vec<&Type> = tys.iter().collect();
        let shape = infer_shape(kind, &a, &refs)
            .map_err(|m| anyhow::anyhow!("{}: {m}", kind.name()))?
            .context("op needs an explicit type")?;
        let e = self.act_elem();
        let op = self
            .b
            .op_typed(kind, operands, a, &[Type::tensor(shape, e)]);
        Ok(self.b.func.op(op).results[0])
    }

    /// Like [`Gen::op`], with a `loc` name.
    fn named(
        &mut self,
        name: String,
        kind: OpKind,
        operands: &[ValueId],
        a: Attrs,
    ) -> Result<ValueId> {
        let v = self.op(kind, operands, a)?;
        if let Some(op) = self.b.func.def_op(v) {
            self.b.func.op_mut(op).name = Some(name);
        }
        Ok(v)
    }

    /// A data-movement op (keeps the element type).
    fn mv(&mut self, kind: OpKind, operands: &[ValueId], a: Attrs) -> Result<ValueId> {
        Ok(self.b.op(kind, operands, a)?)
    }

    fn reshape(&mut self, x: ValueId, shape: &[usize]) -> Result<ValueId> {
        Ok(self.b.reshape(x, shape)?)
    }

    fn rms_norm(&mut self, name: String, x: ValueId, w: ValueId) -> Result<ValueId> {
        self.named(
            name,
            OpKind::RmsNorm,
            &[x, w],
            attrs([("epsilon", Attr::Float(1e-6))]),
        )
    }

    /// A quantized splat constant of shape `[1]`.
    fn constant(&mut self, v: f64) -> ValueId {
        let e = self.act_elem();
        self.b.constant(vec![v], Type::tensor(vec![1], e))
    }

    /// `x * cos + rotate_half(x) * sin` spelled out with slices (the SHA form).
    fn rope_decomposed(&mut self, x: ValueId, cos: ValueId, sin: ValueId) -> Result<ValueId> {
        let shape = self.b.func.ty(x).shape().to_vec();
        let r = shape.len();
        let d = shape[r - 1];
        let mut starts = vec![0i64; r];
        let ends: Vec<i64> = shape.iter().map(|v| *v as i64).collect();
        let mut mid = ends.clone();
        mid[r - 1] = (d / 2) as i64;
        let lo = self.mv(
            OpKind::Slice,
            &[x],
            attrs([
                ("starts", Attr::Ints(starts.clone())),
                ("ends", Attr::Ints(mid)),
            ]),
        )?;
        starts[r - 1] = (d / 2) as i64;
        let hi = self.mv(
            OpKind::Slice,
            &[x],
            attrs([("starts", Attr::Ints(starts)), ("ends", Attr::Ints(ends))]),
        )?;
        let neg = self.op(OpKind::Neg, &[hi], Attrs::new())?;
        let rot = self.op(OpKind::Concat, &[neg, lo], attrs([("axis", Attr::Int(-1))]))?;
        let a = self.op(OpKind::Mul, &[x, cos], Attrs::new())?;
        let b = self.op(OpKind::Mul, &[rot, sin], Attrs::new())?;
        self.op(OpKind::Add, &[a, b], Attrs::new())
    }
}

/// Model dimensions checked for consistency.
fn check_args(a: &BenchIrArgs) -> Result<()> {
    ensure!(
        a.layers > 0 && a.heads > 0 && a.kv_heads > 0,
        "layers and heads must be positive"
    );
    ensure!(
        a.heads.is_multiple_of(a.kv_heads),
        "heads ({}) must be a multiple of kv-heads ({})",
        a.heads,
        a.kv_heads
    );
    ensure!(a.head_dim.is_multiple_of(2), "head-dim must be even (RoPE)");
    ensure!(a.context >= 2, "context must be at least 2");
    ensure!(
        a.hidden > 0 && a.intermediate > 0 && a.vocab > 0,
        "sizes must be positive"
    );
    ensure!(a.repeat > 0, "repeat must be positive");
    Ok(())
}

/// Builds the synthetic decode module for `variant` (`Mha` or `Sha`).
pub fn build_module(args: &BenchIrArgs, variant: Variant) -> Result<Module> {
    check_args(args)?;
    if variant == Variant::Both {
        bail!("build_module builds one variant at a time");
    }
    let (h, kv, d, hid, c) = (
        args.heads,
        args.kv_heads,
        args.head_dim,
        args.hidden,
        args.context,
    );
    let mut f = Function::new(match variant {
        Variant::Mha => "qwen3_decode_mha",
        _ => "qwen3_decode_sha",
    });
    let mut rng = Rng(0x5eed);
    let act = |rng: &mut Rng| per_tensor(Storage::U16, 1e-4 * (1.0 + 9.0 * rng.unit()), -32768);
    let ids = f.add_arg(Type::tensor(vec![1, 1], ElemType::I32), Some("input_ids"));
    let sha = variant == Variant::Sha;
    // RoPE tables and the attention mask for this position.
    let rope_shape = if sha { vec![1, 1, d] } else { vec![1, 1, 1, d] };
    let cos = f.add_arg(Type::tensor(rope_shape.clone(), act(&mut rng)), Some("cos"));
    let sin = f.add_arg(Type::tensor(rope_shape, act(&mut rng)), Some("sin"));
    let mask_shape = if sha { vec![1, 1, c] } else { vec![1, 1, 1, c] };
    let mask = f.add_arg(
        Type::tensor(mask_shape, act(&mut rng)),
        Some("attention_mask"),
    );
    // Past KV caches: per layer (and per KV head for SHA).
    let mut past = Vec::new();
    for l in 0..args.layers {
        if sha {
            for j in 0..kv {
                let k = f.add_arg(
                    Type::tensor(vec![1, c, d], act(&mut rng)),
                    Some(&format!("past.{l}.key.{j}")),
                );
                let v = f.add_arg(
                    Type::tensor(vec![1, c, d], act(&mut rng)),
                    Some(&format!("past.{l}.value.{j}")),
                );
                past.push((k, v));
            }
        } else {
            let k = f.add_arg(
                Type::tensor(vec![1, kv, c - 1, d], act(&mut rng)),
                Some(&format!("past.{l}.key")),
            );
            let v = f.add_arg(
                Type::tensor(vec![1, kv, c - 1, d], act(&mut rng)),
                Some(&format!("past.{l}.value")),
            );
            past.push((k, v));
        }
    }
    let mut results: Vec<(ValueId, String)> = Vec::new();
    {
        let b = f.builder();
        let mut g = Gen { b, rng, args };
        let table = g.small_weight("model.embed_tokens.weight", &[args.vocab, hid]);
        let mut x = g.mv(OpKind::Embedding, &[ids, table], Attrs::new())?;
        let scale = 1.0 / (d as f64).sqrt();
        for l in 0..args.layers {
            let p = format!("model.layers.{l}");
            let w_in = g.small_weight(&format!("{p}.input_layernorm.weight"), &[hid]);
            let xn = g.rms_norm(format!("{p}.input_layernorm"), x, w_in)?;
            let qn_w = g.small_weight(&format!("{p}.self_attn.q_norm.weight"), &[d]);
            let kn_w = g.small_weight(&format!("{p}.self_attn.k_norm.weight"), &[d]);
            let attn = if sha {
                sha_attention(
                    &mut g,
                    l,
                    xn,
                    cos,
                    sin,
                    mask,
                    &past[l * kv..(l + 1) * kv],
                    qn_w,
                    kn_w,
                    scale,
                    &mut results,
                )?
            } else {
                mha_attention(
                    &mut g,
                    l,
                    xn,
                    cos,
                    sin,
                    mask,
                    past[l],
                    qn_w,
                    kn_w,
                    scale,
                    &mut results,
                )?
            };
            let wo = g.weight(
                &format!("{p}.self_attn.o_proj.weight"),
                &[hid, h * d],
                0,
                Some(l),
            );
            let o = g.named(
                format!("{p}.self_attn.o_proj"),
                OpKind::Linear,
                &[attn, wo],
                Attrs::new(),
            )?;
            x = g.op(OpKind::Add, &[x, o], Attrs::new())?;
            let w_post = g.small_weight(&format!("{p}.post_attention_layernorm.weight"), &[hid]);
            let xn = g.rms_norm(format!("{p}.post_attention_layernorm"), x, w_post)?;
            let m = mlp(&mut g, l, xn, sha)?;
            x = g.op(OpKind::Add, &[x, m], Attrs::new())?;
        }
        let w_norm = g.small_weight("model.norm.weight", &[hid]);
        let xn = g.rms_norm("model.norm".into(), x, w_norm)?;
        let w_head = g.weight("lm_head.weight", &[args.vocab, hid], 0, None);
        let logits = g.named(
            "lm_head".into(),
            OpKind::Linear,
            &[xn, w_head],
            Attrs::new(),
        )?;
        results.insert(0, (logits, "logits".into()));
        let vals: Vec<ValueId> = results.iter().map(|r| r.0).collect();
        g.b.ret(&vals);
    }
    f.result_names = results.into_iter().map(|r| Some(r.1)).collect();
    let mut m = Module::new();
    m.name = Some("qwen3_1_7b".into());
    m.attrs
        .insert("weights".into(), Attr::Str("model.safetensors".into()));
    m.functions.push(f);
    Ok(m)
}

/// MHA attention block: `[1,1,hidden]` -> `[1,1,heads*head_dim]`.
#[allow(clippy::too_many_arguments)]
fn mha_attention(
    g: &mut Gen<'_>,
    l: usize,
    xn: ValueId,
    cos: ValueId,
    sin: ValueId,
    mask: ValueId,
    (past_k, past_v): (ValueId, ValueId),
    qn_w: ValueId,
    kn_w: ValueId,
    scale: f64,
    results: &mut Vec<(ValueId, String)>,
) -> Result<ValueId> {
    let a = g.args;
    let (h, kv, d, hid) = (a.heads, a.kv_heads, a.head_dim, a.hidden);
    let p = format!("model.layers.{l}.self_attn");
    let wq = g.weight(&format!("{p}.q_proj.weight"), &[h * d, hid], 0, Some(l));
    let wk = g.weight(&format!("{p}.k_proj.weight"), &[kv * d, hid], 0, Some(l));
    let wv = g.weight(&format!("{p}.v_proj.weight"), &[kv * d, hid], 0, Some(l));
    let q = g.named(
        format!("{p}.q_proj"),
        OpKind::Linear,
        &[xn, wq],
        Attrs::new(),
    )?;
    let k = g.named(
        format!("{p}.k_proj"),
        OpKind::Linear,
        &[xn, wk],
        Attrs::new(),
    )?;
    let v = g.named(
        format!("{p}.v_proj"),
        OpKind::Linear,
        &[xn, wv],
        Attrs::new(),
    )?;
    let q = g.reshape(q, &[1, 1, h, d])?;
    let k = g.reshape(k, &[1, 1, kv, d])?;
    let v = g.reshape(v, &[1, 1, kv, d])?;
    let q = g.rms_norm(format!("{p}.q_norm"), q, qn_w)?;
    let k = g.rms_norm(format!("{p}.k_norm"), k, kn_w)?;
    let perm = || attrs([("perm", Attr::Ints(vec![0, 2, 1, 3]))]);
    let q = g.mv(OpKind::Transpose, &[q], perm())?;
    let k = g.mv(OpKind::Transpose, &[k], perm())?;
    let v = g.mv(OpKind::Transpose, &[v], perm())?;
    let q = g.op(OpKind::Rope, &[q, cos, sin], Attrs::new())?;
    let k = g.op(OpKind::Rope, &[k, cos, sin], Attrs::new())?;
    results.push((k, format!("present.{l}.key")));
    results.push((v, format!("present.{l}.value")));
    let axis2 = || attrs([("axis", Attr::Int(2))]);
    let k_all = g.op(OpKind::Concat, &[past_k, k], axis2())?;
    let v_all = g.op(OpKind::Concat, &[past_v, v], axis2())?;
    let rep = || {
        attrs([
            ("axis", Attr::Int(1)),
            ("times", Attr::Int((h / kv) as i64)),
        ])
    };
    let k_all = g.mv(OpKind::Repeat, &[k_all], rep())?;
    let v_all = g.mv(OpKind::Repeat, &[v_all], rep())?;
    let s = g.op(
        OpKind::MatMul,
        &[q, k_all],
        attrs([("transpose_b", Attr::Bool(true))]),
    )?;
    let sc = g.constant(scale);
    let s = g.op(OpKind::Mul, &[s, sc], Attrs::new())?;
    let s = g.op(OpKind::Add, &[s, mask], Attrs::new())?;
    let pr = g.op(OpKind::Softmax, &[s], Attrs::new())?;
    let o = g.op(OpKind::MatMul, &[pr, v_all], Attrs::new())?;
    let o = g.mv(OpKind::Transpose, &[o], perm())?;
    g.reshape(o, &[1, 1, h * d])
}

/// SHA attention block: per-head 1x1 convs, norms, RoPE, sliding-window
/// cache update and attention; heads concatenated back to `[1,1,heads*head_dim]`.
#[allow(clippy::too_many_arguments)]
fn sha_attention(
    g: &mut Gen<'_>,
    l: usize,
    xn: ValueId,
    cos: ValueId,
    sin: ValueId,
    mask: ValueId,
    past: &[(ValueId, ValueId)],
    qn_w: ValueId,
    kn_w: ValueId,
    scale: f64,
    results: &mut Vec<(ValueId, String)>,
) -> Result<ValueId> {
    let a = g.args;
    let (h, kv, d, hid, c) = (a.heads, a.kv_heads, a.head_dim, a.hidden, a.context);
    let p = format!("model.layers.{l}.self_attn");
    let x4 = g.reshape(xn, &[1, 1, 1, hid])?;
    let window = |g: &mut Gen<'_>, cache: ValueId, new: ValueId| -> Result<ValueId> {
        let kept = g.mv(
            OpKind::Slice,
            &[cache],
            attrs([
                ("starts", Attr::Ints(vec![0, 1, 0])),
                ("ends", Attr::Ints(vec![1, c as i64, d as i64])),
            ]),
        )?;
        g.op(
            OpKind::Concat,
            &[kept, new],
            attrs([("axis", Attr::Int(1))]),
        )
    };
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for (j, (pk, pv)) in past.iter().enumerate() {
        let wk = g.weight(
            &format!("{p}.k_proj.{j}.weight"),
            &[1, 1, hid, d],
            3,
            Some(l),
        );
        let wv = g.weight(
            &format!("{p}.v_proj.{j}.weight"),
            &[1, 1, hid, d],
            3,
            Some(l),
        );
        let k = g.named(
            format!("{p}.k_proj.{j}"),
            OpKind::Conv2d,
            &[x4, wk],
            Attrs::new(),
        )?;
        let v = g.named(
            format!("{p}.v_proj.{j}"),
            OpKind::Conv2d,
            &[x4, wv],
            Attrs::new(),
        )?;
        let k = g.reshape(k, &[1, 1, d])?;
        let v = g.reshape(v, &[1, 1, d])?;
        let k = g.rms_norm(format!("{p}.k_norm.{j}"), k, kn_w)?;
        let k = g.op(OpKind::Rope, &[k, cos, sin], Attrs::new())?;
        results.push((k, format!("present.{l}.key.{j}")));
        results.push((v, format!("present.{l}.value.{j}")));
        keys.push(window(g, *pk, k)?);
        values.push(window(g, *pv, v)?);
    }
    let mut heads = Vec::new();
    for i in 0..h {
        let j = i / (h / kv);
        let wq = g.weight(
            &format!("{p}.q_proj.{i}.weight"),
            &[1, 1, hid, d],
            3,
            Some(l),
        );
        let q = g.named(
            format!("{p}.q_proj.{i}"),
            OpKind::Conv2d,
            &[x4, wq],
            Attrs::new(),
        )?;
        let q = g.reshape(q, &[1, 1, d])?;
        let q = g.rms_norm(format!("{p}.q_norm.{i}"), q, qn_w)?;
        let q = g.rope_decomposed(q, cos, sin)?;
        let s = g.op(
            OpKind::MatMul,
            &[q, keys[j]],
            attrs([("transpose_b", Attr::Bool(true))]),
        )?;
        // A per-head copy of the scale, as a naive head split leaves it (cse merges).
        let sc = g.b.constant(
            vec![scale],
            Type::tensor(vec![1], per_tensor(Storage::U16, 1e-4, 0)),
        );
        let s = g.op(OpKind::Mul, &[s, sc], Attrs::new())?;
        let s = g.op(OpKind::Add, &[s, mask], Attrs::new())?;
        let pr = g.op(OpKind::Softmax, &[s], Attrs::new())?;
        heads.push(g.op(OpKind::MatMul, &[pr, values[j]], Attrs::new())?);
    }
    g.op(OpKind::Concat, &heads, attrs([("axis", Attr::Int(-1))]))
}

/// The gated MLP: linear in MHA, 1x1 convs in SHA.
fn mlp(g: &mut Gen<'_>, l: usize, xn: ValueId, sha: bool) -> Result<ValueId> {
    let a = g.args;
    let (hid, inter) = (a.hidden, a.intermediate);
    let p = format!("model.layers.{l}.mlp");
    if sha {
        let x4 = g.reshape(xn, &[1, 1, 1, hid])?;
        let wg = g.weight(
            &format!("{p}.gate_proj.weight"),
            &[1, 1, hid, inter],
            3,
            Some(l),
        );
        let wu = g.weight(
            &format!("{p}.up_proj.weight"),
            &[1, 1, hid, inter],
            3,
            Some(l),
        );
        let wd = g.weight(
            &format!("{p}.down_proj.weight"),
            &[1, 1, inter, hid],
            3,
            Some(l),
        );
        let gt = g.named(
            format!("{p}.gate_proj"),
            OpKind::Conv2d,
            &[x4, wg],
            Attrs::new(),
        )?;
        let up = g.named(
            format!("{p}.up_proj"),
            OpKind::Conv2d,
            &[x4, wu],
            Attrs::new(),
        )?;
        let s = g.op(OpKind::Silu, &[gt], Attrs::new())?;
        let m = g.op(OpKind::Mul, &[s, up], Attrs::new())?;
        let dn = g.named(
            format!("{p}.down_proj"),
            OpKind::Conv2d,
            &[m, wd],
            Attrs::new(),
        )?;
        g.reshape(dn, &[1, 1, hid])
    } else {
        let wg = g.weight(&format!("{p}.gate_proj.weight"), &[inter, hid], 0, Some(l));
        let wu = g.weight(&format!("{p}.up_proj.weight"), &[inter, hid], 0, Some(l));
        let wd = g.weight(&format!("{p}.down_proj.weight"), &[hid, inter], 0, Some(l));
        let gt = g.named(
            format!("{p}.gate_proj"),
            OpKind::Linear,
            &[xn, wg],
            Attrs::new(),
        )?;
        let up = g.named(
            format!("{p}.up_proj"),
            OpKind::Linear,
            &[xn, wu],
            Attrs::new(),
        )?;
        let s = g.op(OpKind::Silu, &[gt], Attrs::new())?;
        let m = g.op(OpKind::Mul, &[s, up], Attrs::new())?;
        g.named(
            format!("{p}.down_proj"),
            OpKind::Linear,
            &[m, wd],
            Attrs::new(),
        )
    }
}

/// Peak resident set size of this process in bytes (`VmHWM`), if available.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak RSS counter (Linux `clear_refs` 5); returns whether it worked.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `f` `n` times; returns the last result and the best time.
fn best_of<T>(n: usize, mut f: impl FnMut() -> Result<T>) -> Result<(T, Duration)> {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed());
        out = Some(r);
    }
    Ok((out.context("no repetition ran")?, best))
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Measurements of one variant.
#[derive(Debug, Clone)]
pub struct IrFigures {
    /// Ops in the built module.
    pub ops: usize,
    /// Ops after `cse,dce`.
    pub ops_after: usize,
    /// Bytes of printed text.
    pub text_bytes: usize,
    /// Build time.
    pub build: Duration,
    /// Print time.
    pub print: Duration,
    /// Parse time.
    pub parse: Duration,
    /// Verify time.
    pub verify: Duration,
    /// `cse,dce` time.
    pub passes: Duration,
    /// Peak RSS after the variant, bytes.
    pub peak_rss: Option<u64>,
}

/// Measures one variant.
pub fn measure(args: &BenchIrArgs, variant: Variant) -> Result<IrFigures> {
    let reps = args.repeat.max(1);
    let (m, build) = best_of(reps, || build_module(args, variant))?;
    let ops = m.num_ops();
    verify_module(&m).context("the generated module does not verify")?;
    let (text, print) = best_of(reps, || Ok(print_module(&m)))?;
    let (parsed, parse) = best_of(reps, || Ok(parse_module(&text, "bench.mlir")?))?;
    module_eq(&m, &parsed)
        .map_err(|e| anyhow::anyhow!("print/parse round trip changed the module: {e}"))?;
    let ((), verify) = best_of(reps, || Ok(verify_module(&parsed)?))?;
    let registry = Registry::with_all();
    // Each run works on a fresh copy; only the pass manager run is timed.
    let mut passes = Duration::MAX;
    let mut ops_after = 0;
    for _ in 0..reps {
        let mut m = parsed.clone();
        let mut pm = PassManager::parse("builtin.module(func.func(cse,dce))", &registry)?;
        let t = Instant::now();
        pm.run(&mut m, &mut [])?;
        passes = passes.min(t.elapsed());
        ops_after = m.num_ops();
    }
    if let Some(dir) = &args.emit {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = if variant == Variant::Mha {
            "mha.mlir"
        } else {
            "sha.mlir"
        };
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(IrFigures {
        ops,
        ops_after,
        text_bytes: text.len(),
        build,
        print,
        parse,
        verify,
        passes,
        peak_rss: peak_rss_bytes(),
    })
}

/// `mllm bench ir`.
pub fn run(args: BenchIrArgs) -> Result<()> {
    check_args(&args)?;
    let variants: &[Variant] = match args.variant {
        Variant::Both => &[Variant::Mha, Variant::Sha],
        Variant::Mha => &[Variant::Mha],
        Variant::Sha => &[Variant::Sha],
    };
    println!(
        "synthetic Qwen3 decode graph: {} layers, {} heads ({} kv), head dim {}, hidden {}, intermediate {}, context {}, LPBQ in {} layers (block {}); best of {}",
        args.layers,
        args.heads,
        args.kv_heads,
        args.head_dim,
        args.hidden,
        args.intermediate,
        args.context,
        args.lpbq_layers.min(args.layers),
        args.lpbq_block,
        args.repeat
    );
    for v in variants {
        let reset = reset_peak_rss();
        let r = measure(&args, *v)?;
        let name = if *v == Variant::Mha { "mha" } else { "sha" };
        println!("{name}: {} ops, {:.2} MB of text", r.ops, mb(r.text_bytes));
        println!("  build             {:8.4} s", secs(r.build));
        println!(
            "  print             {:8.4} s  {:7.1} MB/s",
            secs(r.print),
            mb(r.text_bytes) / secs(r.print)
        );
        println!(
            "  parse             {:8.4} s  {:7.1} MB/s",
            secs(r.parse),
            mb(r.text_bytes) / secs(r.parse)
        );
        println!(
            "  print+parse       {:8.4} s  {:7.1} MB/s",
            secs(r.print + r.parse),
            mb(r.text_bytes) / secs(r.print + r.parse)
        );
        println!("  verify            {:8.4} s", secs(r.verify));
        println!(
            "  cse,dce           {:8.4} s  ({} -> {} ops)",
            secs(r.passes),
            r.ops,
            r.ops_after
        );
        match r.peak_rss {
            Some(b) => println!(
                "  peak RSS          {:8.1} MB{}",
                b as f64 / 1e6,
                if reset {
                    ""
                } else {
                    " (process peak; could not reset between variants)"
                }
            ),
            None => println!("  peak RSS          unavailable"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> BenchIrArgs {
        BenchIrArgs {
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 8,
            hidden: 32,
            intermediate: 64,
            vocab: 50,
            context: 6,
            lpbq_layers: 1,
            lpbq_block: 8,
            repeat: 1,
            ..Default::default()
        }
    }

    #[test]
    fn both_variants_verify_and_round_trip() {
        for v in [Variant::Mha, Variant::Sha] {
            let m = build_module(&small(), v).expect("builds");
            verify_module(&m).expect("verifies");
            let text = print_module(&m);
            assert!(
                text.contains("!quant.lpbq<i4:f32"),
                "LPBQ weights in layer 0"
            );
            assert!(
                text.contains("!quant.uniform<i8:f32"),
                "i8 weights in layer 1"
            );
            let back = parse_module(&text, "t").expect("parses");
            module_eq(&m, &back).expect("round trip");
        }
    }

    #[test]
    fn sha_has_per_head_ops_and_cse_merges_the_scale_copies() {
        let a = small();
        let mha = build_module(&a, Variant::Mha).expect("builds");
        let sha = build_module(&a, Variant::Sha).expect("builds");
        assert!(
            sha.num_ops() > 2 * mha.num_ops(),
            "{} vs {}",
            sha.num_ops(),
            mha.num_ops()
        );
        let r = measure(&a, Variant::Sha).expect("measures");
        // One scale constant per head and layer; cse keeps one per function.
        assert_eq!(r.ops - r.ops_after, a.layers * a.heads - 1);
        let r = measure(&a, Variant::Mha).expect("measures");
        assert_eq!(r.ops, r.ops_after, "nothing to merge in MHA");
    }

    #[test]
    fn op_count_of_the_default_sha_graph_is_about_10k() {
        // Counted without building the 28-layer module: per-layer ops scale linearly.
        let a = BenchIrArgs {
            layers: 2,
            context: 8,
            lpbq_layers: 0,
            vocab: 16,
            ..Default::default()
        };
        let two = build_module(&a, Variant::Sha).expect("builds").num_ops();
        let one = build_module(
            &BenchIrArgs {
                layers: 1,
                ..a.clone()
            },
            Variant::Sha,
        )
        .expect("builds")
        .num_ops();
        let per_layer = two - one;
        let total = one - per_layer + 28 * per_layer;
        assert!(
            (8_000..=13_000).contains(&total),
            "{total} ops ({per_layer} per layer)"
        );
    }

    #[test]
    fn bad_dimensions_are_errors() {
        let a = BenchIrArgs {
            kv_heads: 3,
            ..small()
        };
        assert!(build_module(&a, Variant::Mha).is_err());
        assert!(build_module(&small(), Variant::Both).is_err());
    }
}
