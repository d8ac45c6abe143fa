//! Quantization recipes: mllm's AOT config (`qnn_aot_cfg_*.json`), parsed strictly
//! (unknown fields are errors), and the per-op scheme choice it implies.
//!
//! `quant_recipe.builtin_llm_pass.{linear, lm_head}` map regexes over op names (or
//! `fallback`) to `{method, sym, precision, block_size}`; `kv_cache.{key, value}` give
//! the KV scheme. `target_machine` names the SoC. Every accepted field is honoured.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

/// Errors reading a recipe.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// Not valid JSON or not the expected shape.
    #[error("{file}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// serde's message (names the unknown or missing field and its line).
        message: String,
    },
    /// A field has a value we do not support.
    #[error("{file}: {message}")]
    Value {
        /// File name.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole AOT config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AotConfig {
    /// Target device.
    pub target_machine: TargetMachine,
    /// Graphs that run on QNN (mllm: `["model"]`).
    #[serde(default)]
    pub graph_on_qnn: Vec<String>,
    /// Ops that run on QNN outside those graphs (mllm: `["lm_head"]`).
    #[serde(default)]
    pub op_on_qnn: Vec<String>,
    /// Number of contexts (shards) the layers are split over.
    #[serde(default = "one")]
    pub split_graph: usize,
    /// The quantization recipe.
    pub quant_recipe: QuantRecipe,
}

fn one() -> usize {
    1
}

/// `target_machine`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetMachine {
    /// `V73`, `V75`, `V79`, `V81`.
    pub htp_arch: String,
    /// `SM8650` etc.
    pub htp_chipset: String,
    /// `HtpBurst`, `HtpHighPerformance`, ... (recorded in the binary's manifest; the
    /// runtime applies it as its power profile).
    #[serde(default)]
    pub htp_try_best_performance: Option<String>,
    /// `HtpSignedPd` or `HtpUnsignedPd`.
    #[serde(default)]
    pub htp_security_pd_session: Option<String>,
    /// VTCM in MB.
    #[serde(default)]
    pub htp_vtcm_capability_in_mb: Option<u32>,
}

/// `quant_recipe`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantRecipe {
    /// mllm's switch for the built-in LLM recipe (must be true: it is the only one).
    #[serde(default)]
    pub llm_recipe: bool,
    /// Number of decoder layers the recipe was written for (checked against the model).
    #[serde(default)]
    pub layers: Option<usize>,
    /// The LLM pass settings.
    pub builtin_llm_pass: LlmPass,
}

/// `builtin_llm_pass`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmPass {
    /// Model family (`qwen3`).
    pub model: String,
    /// Scheme of `lm_head` (regex keys or `fallback`).
    #[serde(default)]
    pub lm_head: BTreeMap<String, Scheme>,
    /// Scheme of every other linear (regex keys or `fallback`).
    #[serde(default)]
    pub linear: BTreeMap<String, Scheme>,
    /// KV cache schemes.
    #[serde(default)]
    pub kv_cache: Option<KvCache>,
}

/// `kv_cache`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvCache {
    /// Keys.
    pub key: Scheme,
    /// Values.
    pub value: Scheme,
}

/// One scheme.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// `LPBQ`, `per-channel`, `per-tensor`.
    pub method: String,
    /// Symmetric.
    #[serde(default = "yes")]
    pub sym: bool,
    /// `w4a16`, `w8a16`, `w8a8`.
    pub precision: String,
    /// LPBQ block size.
    #[serde(default)]
    pub block_size: Option<usize>,
}

fn yes() -> bool {
    true
}

/// The weight scheme chosen for one linear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightScheme {
    /// LPBQ int4 with this block size.
    Lpbq {
        /// Block size.
        block: usize,
    },
    /// Per-channel symmetric int8.
    PerChannelInt8,
}

/// A compiled recipe: regexes in order, then the fallback.
#[derive(Debug, Clone)]
pub struct Recipe {
    linear: Vec<(Regex, WeightScheme)>,
    linear_fallback: WeightScheme,
    lm_head: Vec<(Regex, WeightScheme)>,
    lm_head_fallback: WeightScheme,
    /// SoC id from `htp_chipset` (None without a config).
    pub soc: Option<u32>,
    /// The config, when read from a file.
    pub config: Option<AotConfig>,
}

impl Recipe {
    /// The default: LPBQ with `block` for every linear and lm_head.
    pub fn default_lpbq(block: usize) -> Recipe {
        Recipe {
            linear: Vec::new(),
            linear_fallback: WeightScheme::Lpbq { block },
            lm_head: Vec::new(),
            lm_head_fallback: WeightScheme::Lpbq { block },
            soc: None,
            config: None,
        }
    }

    /// Parses an AOT config; `block` is the default LPBQ block when a scheme omits it.
    pub fn from_aot_json(text: &str, file: &str, block: usize) -> Result<Recipe, RecipeError> {
        let cfg: AotConfig = serde_json::from_str(text).map_err(|e| RecipeError::Parse {
            file: file.into(),
            message: e.to_string(),
        })?;
        let bad = |m: String| RecipeError::Value {
            file: file.into(),
            message: m,
        };
        if !cfg.quant_recipe.llm_recipe {
            return Err(bad(
                "quant_recipe.llm_recipe must be true (the built-in LLM recipe is the only one)"
                    .into(),
            ));
        }
        if cfg.quant_recipe.builtin_llm_pass.model != "qwen3" {
            return Err(bad(format!(
                "quant_recipe.builtin_llm_pass.model '{}' is not supported (supported: qwen3)",
                cfg.quant_recipe.builtin_llm_pass.model
            )));
        }
        let soc = soc_id(&cfg.target_machine.htp_chipset).ok_or_else(|| {
            bad(format!(
                "target_machine.htp_chipset '{}' is unknown (known: SM8550, SM8650, SM8750, SM8850, SA8295)",
                cfg.target_machine.htp_chipset
            ))
        })?;
        let table = |m: &BTreeMap<String, Scheme>,
                     what: &str|
         -> Result<(Vec<(Regex, WeightScheme)>, WeightScheme), RecipeError> {
            let mut rules = Vec::new();
            let mut fallback = WeightScheme::Lpbq { block };
            for (k, s) in m {
                let ws = weight_scheme(s, block).map_err(|e| bad(format!("{what}.{k}: {e}")))?;
                if k == "fallback" {
                    fallback = ws;
                } else {
                    let re =
                        Regex::new(k).map_err(|e| bad(format!("{what}: bad regex '{k}': {e}")))?;
                    rules.push((re, ws));
                }
            }
            Ok((rules, fallback))
        };
        let (linear, linear_fallback) = table(&cfg.quant_recipe.builtin_llm_pass.linear, "linear")?;
        let (lm_head, lm_head_fallback) =
            table(&cfg.quant_recipe.builtin_llm_pass.lm_head, "lm_head")?;
        if let Some(kv) = &cfg.quant_recipe.builtin_llm_pass.kv_cache {
            for (n, s) in [("key", &kv.key), ("value", &kv.value)] {
                if s.method != "per-tensor" || s.precision != "w8a8" || !s.sym {
                    return Err(bad(format!(
                        "kv_cache.{n}: only symmetric per-tensor w8a8 (u8, zero point 128) is supported, got {} {} sym={}",
                        s.method, s.precision, s.sym
                    )));
                }
            }
        }
        Ok(Recipe {
            linear,
            linear_fallback,
            lm_head,
            lm_head_fallback,
            soc: Some(soc),
            config: Some(cfg),
        })
    }

    /// The scheme of the linear named `op_name` (`lm_head` is looked up in its own table).
    pub fn scheme_for(&self, op_name: &str) -> WeightScheme {
        let (rules, fallback) = if op_name == "lm_head" || op_name.ends_with(".lm_head") {
            (&self.lm_head, self.lm_head_fallback)
        } else {
            (&self.linear, self.linear_fallback)
        };
        rules
            .iter()
            .find(|(re, _)| re.is_match(op_name))
            .map(|(_, s)| *s)
            .unwrap_or(fallback)
    }
}

fn weight_scheme(s: &Scheme, block: usize) -> Result<WeightScheme, String> {
    if !s.sym {
        return Err("asymmetric weights are not supported".into());
    }
    match (s.method.as_str(), s.precision.as_str()) {
        ("LPBQ", "w4a16") => Ok(WeightScheme::Lpbq {
            block: s.block_size.unwrap_or(block),
        }),
        ("per-channel", "w8a16") => Ok(WeightScheme::PerChannelInt8),
        (m, p) => Err(format!(
            "unsupported method/precision {m}/{p} (supported: LPBQ/w4a16, per-channel/w8a16)"
        )),
    }
}

/// QNN SoC id of a chipset name.
pub fn soc_id(chipset: &str) -> Option<u32> {
    Some(match chipset.to_ascii_uppercase().as_str() {
        "SM8550" => 43,
        "SM8650" => 57,
        "SM8750" => 69,
        "SM8850" => 87,
        "SA8295" => 39,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(name: &str) -> Option<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/compat/mllm")
            .join(name);
        std::fs::read_to_string(p).ok()
    }

    #[test]
    fn real_configs_parse_and_choose_schemes() {
        let Some(t) = shared("qnn_aot_cfg_1.7B.json") else {
            eprintln!("../shared absent; skipping");
            return;
        };
        let r = Recipe::from_aot_json(&t, "1.7B", 32).unwrap();
        assert_eq!(r.soc, Some(57));
        assert_eq!(
            r.scheme_for("model.layers.0.self_attn.q_proj"),
            WeightScheme::Lpbq { block: 16 }
        );
        assert_eq!(r.scheme_for("lm_head"), WeightScheme::Lpbq { block: 16 });
        let t4 = shared("qnn_aot_cfg_4B.json").unwrap();
        let r4 = Recipe::from_aot_json(&t4, "4B", 32).unwrap();
        assert_eq!(r4.soc, Some(69));
        assert_eq!(r4.scheme_for("lm_head"), WeightScheme::PerChannelInt8);
        assert_eq!(
            r4.scheme_for("model.layers.3.mlp.down_proj"),
            WeightScheme::Lpbq { block: 32 }
        );
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        let Some(t) = shared("qnn_aot_cfg_1.7B.json") else {
            return;
        };
        let bad = t.replace("\"split_graph\"", "\"split_graphs\"");
        let e = Recipe::from_aot_json(&bad, "x.json", 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `split_graphs`"), "{e}");
        let bad = t.replace("SM8650", "SM0000");
        assert!(Recipe::from_aot_json(&bad, "x.json", 16)
            .unwrap_err()
            .to_string()
            .contains("htp_chipset"));
        let regex = t.replace("\"linear\": {", "\"linear\": {\"down_proj\": {\"method\": \"per-channel\", \"sym\": true, \"precision\": \"w8a16\"},");
        let r = Recipe::from_aot_json(&regex, "x.json", 16).unwrap();
        assert_eq!(
            r.scheme_for("model.layers.1.mlp.down_proj"),
            WeightScheme::PerChannelInt8
        );
        assert_eq!(
            r.scheme_for("model.layers.1.mlp.up_proj"),
            WeightScheme::Lpbq { block: 16 }
        );
    }
}
