//! Deterministic synthetic Qwen3 checkpoints, for tests and benchmarks.
//!
//! [`generate`] writes `config.json` (Hugging Face style plus mllm's extras) and
//! `model.safetensors` into a directory. Weights are drawn from a seeded ChaCha8 stream with a
//! realistic distribution: linear and embedding weights `N(0, 0.02²)`, norm weights
//! `1 + N(0, 0.05²)`. Every tensor has its own stream (keyed by its name) and every element its own
//! position in that stream, so the values depend only on (seed, tensor name, element index): not
//! on the chunking, the thread count, or which other tensors exist.
//!
//! Generation streams: memory use is a few fixed-size buffers whatever the model size, and
//! filling the next buffer (on all cores) overlaps writing the previous one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use half::{bf16, f16};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::checkpoint::Progress;
use crate::config::Qwen3Config;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::payload;
use crate::safetensors::{SafetensorsWriter, TensorSpec};

/// A model shape to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Tiny model for unit tests: the real Qwen3 vocabulary (151936, so the real tokenizer works),
    /// hidden 64, 2 layers, 4 heads, 2 KV heads, head_dim 16, intermediate 128, tied embeddings.
    Tiny,
    /// Qwen3-0.6B shapes: hidden 1024, intermediate 3072, 28 layers, 16 heads, 8 KV heads,
    /// head_dim 128, tied.
    Qwen3_0_6B,
    /// Qwen3-1.7B shapes: hidden 2048, intermediate 6144, 28 layers, 16/8 heads, head_dim 128, tied.
    Qwen3_1_7B,
    /// Qwen3-4B shapes: hidden 2560, intermediate 9728, 36 layers, 32/8 heads, head_dim 128, tied.
    Qwen3_4B,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 4] = [
        Preset::Tiny,
        Preset::Qwen3_0_6B,
        Preset::Qwen3_1_7B,
        Preset::Qwen3_4B,
    ];

    /// The preset's command-line name (`tiny`, `qwen3-0.6b`, `qwen3-1.7b`, `qwen3-4b`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Qwen3_0_6B => "qwen3-0.6b",
            Preset::Qwen3_1_7B => "qwen3-1.7b",
            Preset::Qwen3_4B => "qwen3-4b",
        }
    }

    /// The preset's config (storage dtype unset; [`generate`] fills it in).
    pub fn config(self) -> Qwen3Config {
        // (hidden, intermediate, layers, heads, kv heads, head_dim, max_pos, theta, block)
        let (h, i, l, nh, nkv, d, max_pos, theta, block) = match self {
            Preset::Tiny => (64, 128, 2, 4, 2, 16, 40_960, 1_000_000.0, 16),
            Preset::Qwen3_0_6B => (1024, 3072, 28, 16, 8, 128, 40_960, 1_000_000.0, 16),
            Preset::Qwen3_1_7B => (2048, 6144, 28, 16, 8, 128, 40_960, 1_000_000.0, 16),
            Preset::Qwen3_4B => (2560, 9728, 36, 32, 8, 128, 262_144, 5_000_000.0, 32),
        };
        Qwen3Config {
            architectures: vec!["Qwen3ForCausalLM".into()],
            vocab_size: 151_936,
            hidden_size: h,
            intermediate_size: i,
            num_hidden_layers: l,
            num_attention_heads: nh,
            num_key_value_heads: nkv,
            head_dim: d,
            rms_norm_eps: 1e-6,
            rope_theta: theta,
            max_position_embeddings: max_pos,
            tie_word_embeddings: true,
            bos_token_id: Some(151_643),
            eos_token_ids: vec![151_645],
            pad_token_id: None,
            dtype: None,
            max_cache_length: Some(2048),
            linear_block_size: Some(block),
            linear_impl_type: Some(format!("QNN_LPBQ_w4a16o16_G{block}")),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`Preset::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset {0:?} (expected tiny, qwen3-0.6b, qwen3-1.7b or qwen3-4b)")]
pub struct ParsePresetError(pub String);

impl FromStr for Preset {
    type Err = ParsePresetError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == lower || p.name().replace('-', "_") == lower)
            .ok_or_else(|| ParsePresetError(s.to_string()))
    }
}

/// How a tensor's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// `mean + std * N(0, 1)`.
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
}

/// Standard deviation of linear and embedding weights.
pub const WEIGHT_STD: f32 = 0.02;
/// Standard deviation of norm weights around 1.
pub const NORM_STD: f32 = 0.05;

/// The tensors [`generate`] writes for `config`, in file order, with their initialisers.
/// `lm_head.weight` is included only when embeddings are not tied.
pub fn tensor_plan(config: &Qwen3Config, dtype: DType) -> Vec<(TensorSpec, Init)> {
    let mut names = config.expected_tensors();
    if !config.tie_word_embeddings {
        names.push((crate::config::LM_HEAD.to_string(), config.lm_head_shape()));
    }
    names
        .into_iter()
        .map(|(name, shape)| {
            let init = if shape.len() == 1 {
                Init::Normal {
                    mean: 1.0,
                    std: NORM_STD,
                }
            } else {
                Init::Normal {
                    mean: 0.0,
                    std: WEIGHT_STD,
                }
            };
            (TensorSpec::new(name, dtype, shape), init)
        })
        .collect()
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// The config written (with `dtype` set).
    pub config: Qwen3Config,
    /// Path of `config.json`.
    pub config_path: PathBuf,
    /// Path of `model.safetensors`.
    pub safetensors_path: PathBuf,
    /// Number of tensors.
    pub tensors: usize,
    /// Number of parameters.
    pub params: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// Generates a preset into `out_dir` (created if needed): `config.json` and `model.safetensors`.
/// `dtype` must be `f32`, `f16` or `bf16`. `progress` is called after each tensor.
pub fn generate(
    preset: Preset,
    seed: u64,
    dtype: DType,
    out_dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SynthSummary> {
    generate_from_config(&preset.config(), seed, dtype, out_dir, progress)
}

/// Like [`generate`], for any Qwen3 config.
pub fn generate_from_config(
    config: &Qwen3Config,
    seed: u64,
    dtype: DType,
    out_dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SynthSummary> {
    if !dtype.is_float() {
        return Err(Error::Write {
            path: out_dir.to_path_buf(),
            msg: format!("synthetic weights must be f32, f16 or bf16, not {dtype}"),
        });
    }
    let mut config = config.clone();
    config.dtype = Some(dtype);
    payload::create_dir_all(out_dir)?;
    let config_path = out_dir.join("config.json");
    let safetensors_path = out_dir.join("model.safetensors");

    let plan = tensor_plan(&config, dtype);
    let specs: Vec<TensorSpec> = plan.iter().map(|(s, _)| s.clone()).collect();
    let metadata = [("format".to_string(), "pt".to_string())].into();
    let mut writer = SafetensorsWriter::create(&safetensors_path, &specs, &metadata)?;

    let elem = dtype.elem_size().unwrap_or(4);
    let total_bytes: u64 = specs.iter().filter_map(TensorSpec::byte_len).sum();
    let params: u64 = specs.iter().filter_map(TensorSpec::numel).sum();

    // Jobs: (tensor index, first element, element count), at most BATCH elements each.
    const BATCH: usize = 8 << 20;
    let mut jobs = Vec::new();
    for (t, s) in specs.iter().enumerate() {
        let n = s.numel().unwrap_or(0) as usize;
        let mut start = 0;
        while start < n {
            let len = BATCH.min(n - start);
            jobs.push((t, start, len));
            start += len;
        }
    }

    let mut bytes_done = 0u64;
    let mut pending: Option<(Vec<u8>, usize, bool)> = None; // (bytes, tensor, ends the tensor)
    let mut spare: Vec<u8> = Vec::new();
    let mut report = |t: usize, bytes_done: u64| {
        progress(Progress {
            tensor: &specs[t].name,
            tensors_done: t + 1,
            tensors_total: specs.len(),
            bytes_done,
            bytes_total: total_bytes,
        })
    };
    let mut next_job = 0;
    while next_job < jobs.len() || pending.is_some() {
        let mut buf = std::mem::take(&mut spare);
        let job = jobs.get(next_job).copied();
        next_job += 1;
        let fill_job = |buf: &mut Vec<u8>| {
            if let Some((t, start, len)) = job {
                buf.clear();
                buf.resize(len * elem, 0);
                let name_key = stream_key(&specs[t].name);
                fill(buf, dtype, plan[t].1, seed, name_key, start);
            }
        };
        match pending.take() {
            Some((prev, t, ends)) => {
                let (res, ()) = rayon::join(|| writer.write(&prev), || fill_job(&mut buf));
                res?;
                bytes_done += prev.len() as u64;
                if ends {
                    report(t, bytes_done);
                }
                spare = prev;
            }
            None => fill_job(&mut buf),
        }
        if let Some((t, start, len)) = job {
            let ends = start + len == specs[t].numel().unwrap_or(0) as usize;
            pending = Some((buf, t, ends));
        }
    }
    // Zero-element tensors never get a job; the writer skips them.
    writer.finish()?;

    let text = serde_json::to_string_pretty(&config.to_json()).map_err(|e| Error::Write {
        path: config_path.clone(),
        msg: e.to_string(),
    })?;
    payload::write_atomic(&config_path, format!("{text}\n").as_bytes())?;

    Ok(SynthSummary {
        config,
        config_path,
        safetensors_path,
        tensors: specs.len(),
        params,
        bytes: total_bytes,
    })
}

/// FNV-1a hash of a tensor name: its ChaCha stream id.
fn stream_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Elements per parallel task (even, so Box–Muller pairs never straddle tasks).
const TASK: usize = 1 << 16;

/// Fills `out` (little-endian `dtype` values) with elements `first..first + n` of the tensor's
/// stream.
fn fill(out: &mut [u8], dtype: DType, init: Init, seed: u64, stream: u64, first: usize) {
    let elem = dtype.elem_size().unwrap_or(4);
    let Init::Normal { mean, std } = init;
    out.par_chunks_mut(TASK * elem)
        .enumerate()
        .for_each(|(task, chunk)| {
            let start = first + task * TASK;
            // Each element uses one 32-bit word; pairs start at even element indices.
            let aligned = start & !1;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            rng.set_word_pos(aligned as u128);
            let n = chunk.len() / elem;
            let skip = start - aligned;
            let mut idx = 0usize;
            let mut put = |v: f32, idx: usize| {
                let b = &mut chunk[idx * elem..(idx + 1) * elem];
                match dtype {
                    DType::BF16 => b.copy_from_slice(&bf16::from_f32(v).to_le_bytes()),
                    DType::F16 => b.copy_from_slice(&f16::from_f32(v).to_le_bytes()),
                    _ => b.copy_from_slice(&v.to_le_bytes()),
                }
            };
            let mut pair_pos = 0usize;
            while idx < n {
                let (z0, z1) = box_muller(rng.next_u32(), rng.next_u32());
                for (k, z) in [z0, z1].into_iter().enumerate() {
                    if pair_pos * 2 + k >= skip && idx < n {
                        put(mean + std * z, idx);
                        idx += 1;
                    }
                }
                pair_pos += 1;
            }
        });
}

/// Two independent standard normal samples from two uniform 32-bit words.
#[inline]
fn box_muller(a: u32, b: u32) -> (f32, f32) {
    const SCALE: f32 = 1.0 / 16_777_216.0;
    let u1 = ((a >> 8) as f32 + 1.0) * SCALE; // (0, 1]
    let u2 = (b >> 8) as f32 * SCALE; // [0, 1)
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_do_not_depend_on_the_starting_offset() {
        let mut whole = vec![0u8; 1000 * 4];
        fill(
            &mut whole,
            DType::F32,
            Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
            7,
            3,
            0,
        );
        // Start at an odd element: must equal the tail of the whole run.
        let mut part = vec![0u8; 501 * 4];
        fill(
            &mut part,
            DType::F32,
            Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
            7,
            3,
            499,
        );
        assert_eq!(&whole[499 * 4..], &part[..]);
    }

    #[test]
    fn distribution_is_roughly_normal() {
        let n = 200_000;
        let mut buf = vec![0u8; n * 4];
        fill(
            &mut buf,
            DType::F32,
            Init::Normal {
                mean: 1.0,
                std: 0.05,
            },
            1,
            2,
            0,
        );
        let v: Vec<f32> = buf
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.001, "mean {mean}");
        assert!((var.sqrt() - 0.05).abs() < 0.001, "std {}", var.sqrt());
        // About 4.6% of a normal lies beyond 2 sigma.
        let tail = v.iter().filter(|&&x| (x - 1.0).abs() > 0.1).count() as f64 / n as f64;
        assert!((tail - 0.0455).abs() < 0.005, "tail {tail}");
    }

    #[test]
    fn presets_parse() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        assert!("qwen3-9b".parse::<Preset>().is_err());
    }
}
