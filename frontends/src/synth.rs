//! Deterministic synthetic Qwen3 checkpoints, for tests and benchmarks.
//!
//! [`generate`] writes `config.json` (Hugging Face style plus mllm's extras) and
//! `model.safetensors` into a directory. Weights are drawn from a seeded ChaCha8 stream with a
//! realistic distribution: linear and embedding weights `N(0, 0.02²)`, norm weights
//! `1 + N(0, 0.05²)`, sampled with a ziggurat. Every tensor has its own stream (keyed by its
//! name), and every block of 65536 elements its own window of that stream, so the values depend
//! only on (seed, tensor name, element index): not on the thread count, the batch size, or which
//! other tensors exist.
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

/// Elements per parallel task. Each task draws from its own window of the tensor's stream, so
/// the values depend on this constant but not on thread count or batch size (batches are whole
/// multiples of it).
const TASK: usize = 1 << 16;

/// Stream words reserved per task (a task uses about one word per element; the ziggurat's rare
/// rejections add a few more).
const TASK_WORDS: u128 = 1 << 32;

/// Fills `out` (little-endian `dtype` values) with elements `first..first + n` of the tensor's
/// stream; `first` must be a multiple of [`TASK`].
fn fill(out: &mut [u8], dtype: DType, init: Init, seed: u64, stream: u64, first: usize) {
    debug_assert_eq!(first % TASK, 0);
    let elem = dtype.elem_size().unwrap_or(4);
    let Init::Normal { mean, std } = init;
    let zig = ziggurat();
    out.par_chunks_mut(TASK * elem)
        .enumerate()
        .for_each(|(task, chunk)| {
            let index = (first / TASK + task) as u128;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            rng.set_word_pos(index * TASK_WORDS);
            macro_rules! emit {
                ($n:expr, $conv:expr) => {
                    for b in chunk.chunks_exact_mut($n) {
                        let v = mean + std * zig.sample(&mut rng);
                        b.copy_from_slice(&$conv(v));
                    }
                };
            }
            match dtype {
                DType::BF16 => emit!(2, |v| bf16::from_f32(v).to_le_bytes()),
                DType::F16 => emit!(2, |v| f16::from_f32(v).to_le_bytes()),
                _ => emit!(4, |v: f32| v.to_le_bytes()),
            }
        });
}

/// Tables of Marsaglia & Tsang's ziggurat for the standard normal (128 layers).
struct Ziggurat {
    k: [u32; 128],
    w: [f32; 128],
    f: [f32; 128],
}

/// Right edge of the base layer.
const ZIG_R: f64 = 3.442_619_855_899;

fn ziggurat() -> &'static Ziggurat {
    static TABLES: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let m1 = 2_147_483_648.0f64;
        let v = 9.912_563_035_262_17e-3f64;
        let mut dn = ZIG_R;
        let mut tn = dn;
        let q = v / (-0.5 * dn * dn).exp();
        let mut z = Ziggurat {
            k: [0; 128],
            w: [0.0; 128],
            f: [0.0; 128],
        };
        z.k[0] = (dn / q * m1) as u32;
        z.k[1] = 0;
        z.w[0] = (q / m1) as f32;
        z.w[127] = (dn / m1) as f32;
        z.f[0] = 1.0;
        z.f[127] = (-0.5 * dn * dn).exp() as f32;
        for i in (1..=126).rev() {
            dn = (-2.0 * (v / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            z.k[i + 1] = (dn / tn * m1) as u32;
            tn = dn;
            z.f[i] = (-0.5 * dn * dn).exp() as f32;
            z.w[i] = (dn / m1) as f32;
        }
        z
    })
}

impl Ziggurat {
    /// One standard normal sample.
    #[inline]
    fn sample(&self, rng: &mut ChaCha8Rng) -> f32 {
        let mut hz = rng.next_u32() as i32;
        let mut iz = (hz & 127) as usize;
        if hz.unsigned_abs() < self.k[iz] {
            return hz as f32 * self.w[iz];
        }
        loop {
            let x = hz as f32 * self.w[iz];
            if iz == 0 {
                // Tail beyond ZIG_R.
                let r = ZIG_R as f32;
                loop {
                    let x = -uniform(rng).ln() / r;
                    let y = -uniform(rng).ln();
                    if y + y >= x * x {
                        return if hz > 0 { r + x } else { -r - x };
                    }
                }
            }
            if self.f[iz] + uniform(rng) * (self.f[iz - 1] - self.f[iz]) < (-0.5 * x * x).exp() {
                return x;
            }
            hz = rng.next_u32() as i32;
            iz = (hz & 127) as usize;
            if hz.unsigned_abs() < self.k[iz] {
                return hz as f32 * self.w[iz];
            }
        }
    }
}

/// Uniform in (0, 1].
#[inline]
fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    ((rng.next_u32() >> 8) as f32 + 1.0) * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_do_not_depend_on_batching() {
        let init = Init::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let mut whole = vec![0u8; 3 * TASK * 4 + 40];
        fill(&mut whole, DType::F32, init, 7, 3, 0);
        // The same elements generated from a later batch start.
        let mut part = vec![0u8; 2 * TASK * 4 + 40];
        fill(&mut part, DType::F32, init, 7, 3, TASK);
        assert_eq!(&whole[TASK * 4..], &part[..]);
        // Another stream differs.
        let mut other = vec![0u8; 40];
        fill(&mut other, DType::F32, init, 7, 4, 0);
        assert_ne!(&whole[..40], &other[..]);
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
        // About 4.55% of a normal lies beyond 2 sigma, 0.27% beyond 3, 0.0063% beyond 4.
        let beyond =
            |k: f32| v.iter().filter(|&&x| (x - 1.0).abs() > k * 0.05).count() as f64 / n as f64;
        assert!(
            (beyond(2.0) - 0.0455).abs() < 0.003,
            "2 sigma {}",
            beyond(2.0)
        );
        assert!(
            (beyond(3.0) - 0.0027).abs() < 0.0006,
            "3 sigma {}",
            beyond(3.0)
        );
        assert!(beyond(4.0) < 0.0002, "4 sigma {}", beyond(4.0));
        // Symmetric.
        let above = v.iter().filter(|&&x| x > 1.0).count() as f64 / n as f64;
        assert!((above - 0.5).abs() < 0.005, "above mean {above}");
    }

    #[test]
    fn presets_parse() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        assert!("qwen3-9b".parse::<Preset>().is_err());
    }
}
