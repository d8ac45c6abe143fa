//! Hugging Face Qwen3 `config.json` parsing, and the check that a checkpoint matches a config.
//!
//! Accepted variants (all seen in published configs):
//! - `rope_theta` at top level, or inside `rope_parameters` / `rope_scaling` (either may be `null`;
//!   only the `default` rope type is supported);
//! - `head_dim` present, or derived as `hidden_size / num_attention_heads`;
//! - `torch_dtype` or `dtype`; `eos_token_id` as an integer or a list;
//! - `model_type` absent (mllm's own configs) when `architectures` is absent or names a Qwen3 model;
//! - mllm's extras `max_cache_length`, `linear_block_size`, `linear_impl_type`.
//!
//! Unknown keys are ignored, as Hugging Face does. Defaults for absent optional keys follow
//! `transformers`' `Qwen3Config`.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Name of the embedding tensor.
pub const EMBED_TOKENS: &str = "model.embed_tokens.weight";
/// Name of the final norm tensor.
pub const FINAL_NORM: &str = "model.norm.weight";
/// Name of the output projection tensor.
pub const LM_HEAD: &str = "lm_head.weight";

/// Everything the Qwen3 model builder needs from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen3Config {
    /// `architectures` (informational).
    pub architectures: Vec<String>,
    /// Vocabulary size (rows of the embedding and of `lm_head`).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Width of one attention head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// Longest position the model was trained for.
    pub max_position_embeddings: usize,
    /// Whether `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence tokens (one or more).
    pub eos_token_ids: Vec<u32>,
    /// Padding token.
    pub pad_token_id: Option<u32>,
    /// Storage dtype (`torch_dtype` or `dtype`).
    pub dtype: Option<DType>,
    /// mllm: KV cache length the AOT graphs are built for.
    pub max_cache_length: Option<usize>,
    /// mllm: LPBQ block size of the linear layers.
    pub linear_block_size: Option<usize>,
    /// mllm: linear implementation tag, e.g. `QNN_LPBQ_w4a16o16_G16`.
    pub linear_impl_type: Option<String>,
}

/// Where the output projection comes from, decided by [`Qwen3Config::check_checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmHead {
    /// The checkpoint has its own `lm_head.weight`.
    Separate,
    /// No `lm_head.weight` and the config ties embeddings: use `model.embed_tokens.weight`.
    TiedToEmbedding,
}

impl LmHead {
    /// Name of the tensor holding the output projection.
    pub fn tensor_name(self) -> &'static str {
        match self {
            LmHead::Separate => LM_HEAD,
            LmHead::TiedToEmbedding => EMBED_TOKENS,
        }
    }
}

struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, msg: String) -> Error {
        Error::Config {
            path: self.path.to_path_buf(),
            msg,
        }
    }

    fn present(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a non-negative integer, got {v}"))),
        }
    }

    fn positive(&self, key: &str) -> Result<usize> {
        match self.opt_usize(key)? {
            None => Err(self.err(format!("missing required key {key}"))),
            Some(0) => Err(self.err(format!("{key} must be positive"))),
            Some(n) => Ok(n),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a number, got {v}"))),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a boolean, got {v}"))),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a string, got {v}"))),
        }
    }

    fn token(&self, key: &str, v: &Value) -> Result<u32> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.err(format!("{key} must hold token ids, got {v}")))
    }
}

impl Qwen3Config {
    /// Reads `path`, or `path/config.json` when `path` is a directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file: PathBuf = if path.is_dir() {
            path.join("config.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        Self::from_json_str(&text, &file)
    }

    /// Parses config JSON text; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            msg: format!("not valid JSON: {e}"),
        })?;
        Self::from_value(&value, path)
    }

    /// Parses an already decoded config; `path` is only used in error messages.
    pub fn from_value(value: &Value, path: &Path) -> Result<Self> {
        let Some(map) = value.as_object() else {
            return Err(Error::Config {
                path: path.to_path_buf(),
                msg: "top level is not a JSON object".into(),
            });
        };
        let f = Fields { map, path };

        let architectures: Vec<String> = match f.present("architectures") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| f.err(format!("architectures entry {v} is not a string")))
                })
                .collect::<Result<_>>()?,
            Some(v) => return Err(f.err(format!("architectures must be a list, got {v}"))),
        };
        match f.opt_str("model_type")? {
            Some("qwen3") => {}
            Some(other) => {
                return Err(Error::UnsupportedModel {
                    path: path.to_path_buf(),
                    model_type: other.to_string(),
                })
            }
            None => {
                if !architectures.is_empty()
                    && !architectures.iter().any(|a| a.starts_with("Qwen3"))
                {
                    return Err(Error::UnsupportedModel {
                        path: path.to_path_buf(),
                        model_type: architectures.join(", "),
                    });
                }
            }
        }

        let vocab_size = f.positive("vocab_size")?;
        let hidden_size = f.positive("hidden_size")?;
        let intermediate_size = f.positive("intermediate_size")?;
        let num_hidden_layers = f.positive("num_hidden_layers")?;
        let num_attention_heads = f.positive("num_attention_heads")?;
        let num_key_value_heads = match f.opt_usize("num_key_value_heads")? {
            None => num_attention_heads,
            Some(0) => return Err(f.err("num_key_value_heads must be positive".into())),
            Some(n) => n,
        };
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(f.err(format!(
                "num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {num_key_value_heads}"
            )));
        }
        let head_dim = match f.opt_usize("head_dim")? {
            Some(0) => return Err(f.err("head_dim must be positive".into())),
            Some(d) => d,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    return Err(f.err(format!(
                        "no head_dim, and hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
                    )));
                }
                hidden_size / num_attention_heads
            }
        };
        if head_dim % 2 != 0 {
            return Err(f.err(format!("head_dim {head_dim} must be even for RoPE")));
        }

        let rms_norm_eps = f.opt_f64("rms_norm_eps")?.unwrap_or(1e-6);
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(f.err(format!("rms_norm_eps {rms_norm_eps} must be positive")));
        }

        let mut rope_theta = f.opt_f64("rope_theta")?;
        for key in ["rope_parameters", "rope_scaling"] {
            match f.present(key) {
                None => {}
                Some(Value::Object(m)) => {
                    let inner = Fields { map: m, path };
                    let kind = match inner.opt_str("rope_type")? {
                        Some(k) => Some(k),
                        None => inner.opt_str("type")?,
                    };
                    if let Some(kind) = kind {
                        if kind != "default" {
                            return Err(f.err(format!(
                                "{key}: rope_type {kind:?} is not supported (only \"default\")"
                            )));
                        }
                    }
                    if rope_theta.is_none() {
                        rope_theta = inner.opt_f64("rope_theta")?;
                    }
                }
                Some(v) => return Err(f.err(format!("{key} must be an object or null, got {v}"))),
            }
        }
        let rope_theta = rope_theta.unwrap_or(10_000.0);
        if !(rope_theta.is_finite() && rope_theta > 0.0) {
            return Err(f.err(format!("rope_theta {rope_theta} must be positive")));
        }

        if let Some(act) = f.opt_str("hidden_act")? {
            if act != "silu" {
                return Err(f.err(format!(
                    "hidden_act {act:?} is not supported (Qwen3 uses \"silu\")"
                )));
            }
        }
        if f.opt_bool("attention_bias")? == Some(true) {
            return Err(f.err("attention_bias = true is not supported".into()));
        }
        if f.opt_bool("use_sliding_window")? == Some(true) {
            return Err(f.err("use_sliding_window = true is not supported".into()));
        }

        let dtype = match f.opt_str("torch_dtype")? {
            Some(s) => Some(s),
            None => f.opt_str("dtype")?,
        }
        .map(|s| {
            s.parse::<DType>()
                .ok()
                .filter(|d| d.is_float())
                .ok_or_else(|| f.err(format!("unsupported dtype {s:?}")))
        })
        .transpose()?;

        let eos_token_ids = match f.present("eos_token_id") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| f.token("eos_token_id", v))
                .collect::<Result<_>>()?,
            Some(v) => vec![f.token("eos_token_id", v)?],
        };
        let bos_token_id = f
            .present("bos_token_id")
            .map(|v| f.token("bos_token_id", v))
            .transpose()?;
        let pad_token_id = f
            .present("pad_token_id")
            .map(|v| f.token("pad_token_id", v))
            .transpose()?;

        let linear_block_size = f.opt_usize("linear_block_size")?;
        if linear_block_size == Some(0) {
            return Err(f.err("linear_block_size must be positive".into()));
        }

        Ok(Qwen3Config {
            architectures,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps,
            rope_theta,
            max_position_embeddings: f.opt_usize("max_position_embeddings")?.unwrap_or(32_768),
            tie_word_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            bos_token_id,
            eos_token_ids,
            pad_token_id,
            dtype,
            max_cache_length: f.opt_usize("max_cache_length")?,
            linear_block_size,
            linear_impl_type: f.opt_str("linear_impl_type")?.map(str::to_string),
        })
    }

    /// The config as Hugging Face-style JSON (plus mllm's extras when set), as written next to
    /// synthetic checkpoints.
    pub fn to_json(&self) -> Value {
        let eos = match self.eos_token_ids.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let mut v = json!({
            "architectures": if self.architectures.is_empty() {
                vec!["Qwen3ForCausalLM".to_string()]
            } else {
                self.architectures.clone()
            },
            "model_type": "qwen3",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": null,
            "rope_theta": self.rope_theta,
            "sliding_window": null,
            "tie_word_embeddings": self.tie_word_embeddings,
            "use_cache": true,
            "use_sliding_window": false,
            "vocab_size": self.vocab_size,
        });
        let Value::Object(m) = &mut v else {
            return v;
        };
        if let Some(d) = self.dtype {
            let name = match d {
                DType::BF16 => "bfloat16",
                DType::F16 => "float16",
                _ => "float32",
            };
            m.insert("torch_dtype".into(), json!(name));
        }
        if let Some(p) = self.pad_token_id {
            m.insert("pad_token_id".into(), json!(p));
        }
        if let Some(n) = self.max_cache_length {
            m.insert("max_cache_length".into(), json!(n));
        }
        if let Some(n) = self.linear_block_size {
            m.insert("linear_block_size".into(), json!(n));
        }
        if let Some(s) = &self.linear_impl_type {
            m.insert("linear_impl_type".into(), json!(s));
        }
        v
    }

    /// Width of all query heads together (`num_attention_heads * head_dim`).
    pub fn q_size(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// Width of all key (or value) heads together (`num_key_value_heads * head_dim`).
    pub fn kv_size(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// Query heads per key/value head.
    pub fn num_kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// Prefix of the tensors of decoder layer `i` (`model.layers.{i}`).
    pub fn layer_prefix(i: usize) -> String {
        format!("model.layers.{i}")
    }

    /// Every tensor the model needs except `lm_head.weight`, with its shape (`[out, in]` for
    /// linear weights), in Hugging Face order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (h, i, q, kv, d) = (
            self.hidden_size,
            self.intermediate_size,
            self.q_size(),
            self.kv_size(),
            self.head_dim,
        );
        let mut out = vec![(EMBED_TOKENS.to_string(), vec![self.vocab_size, h])];
        for l in 0..self.num_hidden_layers {
            let p = Self::layer_prefix(l);
            out.extend([
                (format!("{p}.input_layernorm.weight"), vec![h]),
                (format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
                (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
                (format!("{p}.self_attn.q_norm.weight"), vec![d]),
                (format!("{p}.self_attn.k_norm.weight"), vec![d]),
                (format!("{p}.post_attention_layernorm.weight"), vec![h]),
                (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
                (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
                (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            ]);
        }
        out.push((FINAL_NORM.to_string(), vec![h]));
        out
    }

    /// Shape of `lm_head.weight`.
    pub fn lm_head_shape(&self) -> Vec<usize> {
        vec![self.vocab_size, self.hidden_size]
    }

    /// Number of parameters (counting a tied `lm_head` once).
    pub fn num_params(&self) -> u64 {
        let mut n: u64 = self
            .expected_tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum();
        if !self.tie_word_embeddings {
            n += (self.vocab_size * self.hidden_size) as u64;
        }
        n
    }

    /// Checks that `ckpt` has every tensor this config needs with the right shape, and decides
    /// where `lm_head` comes from: present → [`LmHead::Separate`]; missing and tied →
    /// [`LmHead::TiedToEmbedding`]; missing and untied → [`Error::MissingTensor`].
    pub fn check_checkpoint(&self, ckpt: &Checkpoint) -> Result<LmHead> {
        let check = |name: &str, want: &[usize]| -> Result<()> {
            match ckpt.info(name) {
                None => Err(Error::MissingTensor {
                    name: name.to_string(),
                }),
                Some(t) if t.shape != want => Err(Error::ShapeMismatch {
                    name: name.to_string(),
                    got: t.shape.clone(),
                    want: want.to_vec(),
                }),
                Some(_) => Ok(()),
            }
        };
        for (name, shape) in self.expected_tensors() {
            check(&name, &shape)?;
        }
        if ckpt.contains(LM_HEAD) {
            check(LM_HEAD, &self.lm_head_shape())?;
            Ok(LmHead::Separate)
        } else if self.tie_word_embeddings {
            Ok(LmHead::TiedToEmbedding)
        } else {
            Err(Error::MissingTensor {
                name: LM_HEAD.to_string(),
            })
        }
    }
}
