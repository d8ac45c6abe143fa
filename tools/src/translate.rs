//! `mllm-translate`: import a checkpoint into the textual IR.
//!
//! Reads a Hugging Face Qwen3 checkpoint (safetensors: one file, a sharded index, or a directory
//! holding either) or a `.mllm` v2 file plus its `config.json`, builds the prefill and decode
//! graphs ([`mllm_frontends::qwen3::build_qwen3`]) and writes the module's textual form.
//!
//! No weight file is written: the module attribute `weights` records the absolute path of the
//! checkpoint the weights come from (its `builtin.weight` ops name tensors of that file),
//! `config` the absolute path of the config.json used, and `rope_theta` lets
//! [`mllm_frontends::qwen3::load_weights`] recompute the RoPE tables, so the `.mlir` file plus
//! the untouched checkpoint are the whole model. The output is written
//! atomically (temporary file in the same directory, then rename); `-` writes to stdout, and
//! special files such as `/dev/null` are written in place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::{Checkpoint, Qwen3Config};
use mllm_ir::Attr;

/// Arguments of `mllm-translate`.
#[derive(Debug, Clone, Args)]
pub struct TranslateArgs {
    /// Hugging Face safetensors checkpoint: a model directory, a .safetensors file, or a
    /// model.safetensors.index.json (sharded). A pymllm export (quantized; has `*.scale1` /
    /// `*_qdq.fake_quant.scale` tensors) is imported into the quantized IR instead, with its
    /// weights written next to the output as `<output>.mllm`.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "from_mllm",
        required_unless_present = "from_mllm"
    )]
    pub from_safetensors: Option<PathBuf>,
    /// .mllm v2 parameter file (needs the model's config.json, see --config).
    #[arg(long, value_name = "FILE")]
    pub from_mllm: Option<PathBuf>,
    /// Model config.json [default: config.json next to the checkpoint].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Tokens per prefill step: the prefill graph is model.0.s{N}; 1 builds the decode graph only.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub ar_len: usize,
    /// Context length C (KV cache plus current chunk); must exceed --ar-len.
    #[arg(long, value_name = "C", default_value_t = 1024)]
    pub context_len: usize,
    /// Split the layers evenly into this many graph pairs model.{i}.s{N}.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub shards: usize,
    /// Output file for the textual IR ('-' for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Compile textual IR to a QNN context binary instead: `mllm-translate --to-qnn
    /// MODEL.mlir -o model.bin` (options: `mllm-translate --to-qnn --help`).
    #[arg(long)]
    pub to_qnn: bool,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What a translation produced.
#[derive(Debug, Clone)]
pub struct TranslateSummary {
    /// Functions (graphs) built.
    pub functions: Vec<String>,
    /// Ops in all functions.
    pub ops: usize,
    /// Weights in the store (checkpoint tensors plus RoPE tables).
    pub weights: usize,
    /// Checkpoint bytes the weights refer to (mapped, not read).
    pub weight_bytes: u64,
    /// Bytes of IR text written.
    pub text_bytes: usize,
    /// Absolute path recorded in the `weights` module attribute.
    pub weights_path: PathBuf,
}

/// The config file to use: explicit, or `config.json` next to the checkpoint.
fn config_path(explicit: Option<&Path>, ckpt_path: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let dir = if ckpt_path.is_dir() {
        ckpt_path.to_path_buf()
    } else {
        ckpt_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let p = dir.join("config.json");
    if !p.is_file() {
        bail!(
            "no config given and {} does not exist: pass -c/--config <config.json>",
            p.display()
        );
    }
    Ok(p)
}

/// Translates according to `args`, writing the IR to `args.output`.
pub fn run(args: &TranslateArgs) -> anyhow::Result<TranslateSummary> {
    if args.to_qnn {
        bail!(
            "--to-qnn takes a textual IR file: `mllm-translate --to-qnn MODEL.mlir -o model.bin` \
             (translate the checkpoint to IR first, or use `mllm compile` for the whole pipeline)"
        );
    }
    let (src, is_mllm) = match (&args.from_safetensors, &args.from_mllm) {
        (Some(p), None) => (p.clone(), false),
        (None, Some(p)) => (p.clone(), true),
        _ => bail!("give exactly one of --from-safetensors or --from-mllm"),
    };
    let ckpt = Checkpoint::open(&src)?;
    let cfg_path = config_path(args.config.as_deref(), &src)?;
    let cfg = Qwen3Config::from_file(&cfg_path)?;
    let is_mllm_file = ckpt.format() == mllm_frontends::CheckpointFormat::Mllm;
    if is_mllm != is_mllm_file {
        bail!(
            "{} is {}, but --{} was given",
            src.display(),
            if is_mllm_file {
                "a .mllm file"
            } else {
                "a safetensors checkpoint"
            },
            if is_mllm {
                "from-mllm"
            } else {
                "from-safetensors"
            }
        );
    }
    // A pymllm export (quantized, pymllm names) is imported instead (see crate::pymllm).
    if !is_mllm
        && ckpt
            .names()
            .any(|n| n.ends_with(".scale1") || n.ends_with("_qdq.fake_quant.scale"))
    {
        return crate::pymllm::translate_export(args, ckpt.path(), &cfg, &cfg_path);
    }
    let weights_path = std::fs::canonicalize(ckpt.path())
        .with_context(|| format!("{}: cannot resolve the path", ckpt.path().display()))?;
    let ckpt = Arc::new(ckpt);
    let store = qwen3::import_weights(&cfg, &ckpt)?;
    let weight_bytes = store
        .iter()
        .filter_map(|(n, _)| ckpt.info(n).map(|i| i.len))
        .sum();
    let opts = BuildOptions {
        ar_len: args.ar_len,
        context_len: args.context_len,
        num_shards: args.shards,
    };
    let mut module = qwen3::build_qwen3(&cfg, store, opts)?;
    let recorded = weights_path.to_str().with_context(|| {
        format!(
            "{}: the checkpoint path is not valid UTF-8",
            weights_path.display()
        )
    })?;
    module
        .attrs
        .insert(qwen3::ATTR_WEIGHTS.into(), Attr::Str(recorded.to_string()));
    // The config too (tokens, EOS ids, ... for the runner), when its path is printable.
    if let Some(c) = std::fs::canonicalize(&cfg_path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
    {
        module.attrs.insert("config".into(), Attr::Str(c));
    }
    let text = mllm_ir::print::print_module(&module);
    write_output(&args.output, text.as_bytes())?;
    Ok(TranslateSummary {
        functions: module.functions.iter().map(|f| f.name.clone()).collect(),
        ops: module.num_ops(),
        weights: module.weights.len(),
        weight_bytes,
        text_bytes: text.len(),
        weights_path,
    })
}

/// Writes `bytes` to `out`: `-` is stdout; a path that exists and is not a regular file (e.g.
/// `/dev/null`) is written in place; anything else atomically (temporary file in the same
/// directory, then rename), so a failed run never leaves a partial file.
pub fn write_output(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if out.as_os_str() == "-" {
        let mut so = std::io::stdout().lock();
        so.write_all(bytes)
            .and_then(|()| so.flush())
            .context("writing to stdout")?;
        return Ok(());
    }
    if let Ok(meta) = std::fs::metadata(out) {
        if !meta.is_file() {
            if meta.is_dir() {
                bail!("{}: is a directory", out.display());
            }
            std::fs::write(out, bytes)
                .with_context(|| format!("{}: cannot write", out.display()))?;
            return Ok(());
        }
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .with_context(|| format!("{}: not a file name", out.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", out.display()));
    }
    Ok(())
}

/// One-line human summary of a translation.
pub fn describe(s: &TranslateSummary, out: &Path, secs: f64) -> String {
    format!(
        "wrote {} ({} bytes): {} ({} ops, {} weights, {:.1} MiB of checkpoint data referenced from {}) in {:.2} s",
        out.display(),
        s.text_bytes,
        s.functions.join(", "),
        s.ops,
        s.weights,
        s.weight_bytes as f64 / (1024.0 * 1024.0),
        s.weights_path.display(),
        secs
    )
}

/// Runs the tool and prints the summary to stderr unless `quiet`.
pub fn main_with(args: &TranslateArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let s = run(args)?;
    if !args.quiet {
        eprintln!(
            "{}",
            describe(&s, &args.output, start.elapsed().as_secs_f64())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mllm_frontends::synth::{self, Preset};
    use mllm_frontends::DType;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("mllm-translate-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn small_checkpoint(dir: &Path) {
        let mut cfg = Preset::Tiny.config();
        cfg.vocab_size = 64;
        cfg.num_hidden_layers = 2;
        synth::generate_from_config(&cfg, 3, DType::BF16, dir, &mut |_| {}).unwrap();
    }

    fn args(out: &Path) -> TranslateArgs {
        TranslateArgs {
            from_safetensors: None,
            from_mllm: None,
            config: None,
            ar_len: 8,
            context_len: 32,
            shards: 1,
            output: out.to_path_buf(),
            to_qnn: false,
            quiet: true,
        }
    }

    #[test]
    fn translates_safetensors_and_mllm_to_the_same_graphs() {
        let s = Scratch::new("ok");
        small_checkpoint(&s.0);
        let out = s.0.join("model.mlir");
        let a = TranslateArgs {
            from_safetensors: Some(s.0.clone()),
            ..args(&out)
        };
        let summary = run(&a).unwrap();
        assert_eq!(summary.functions, ["model.0.s8", "model.0.s1"]);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.len(), summary.text_bytes);
        let mut m = mllm_ir::parse::parse_verified(&text, "model.mlir").unwrap();
        let want = std::fs::canonicalize(s.0.join("model.safetensors")).unwrap();
        assert_eq!(summary.weights_path, want);
        use mllm_ir::attr::AttrsExt;
        assert_eq!(m.attrs.str("weights"), want.to_str());
        let cfg_abs = std::fs::canonicalize(s.0.join("config.json")).unwrap();
        assert_eq!(m.attrs.str("config"), cfg_abs.to_str());
        qwen3::load_weights(&mut m, None).unwrap();
        assert_eq!(m.weights.len(), summary.weights);

        // The same model from .mllm v2 (config given explicitly).
        let ckpt = Checkpoint::open(&s.0).unwrap();
        let mllm = s.0.join("sub").join("model.mllm");
        std::fs::create_dir_all(mllm.parent().unwrap()).unwrap();
        mllm_frontends::mllm_file::write_checkpoint(
            &ckpt,
            &mllm,
            "tiny",
            Default::default(),
            &mut |_| {},
        )
        .unwrap();
        let out2 = s.0.join("model2.mlir");
        let b = TranslateArgs {
            from_mllm: Some(mllm.clone()),
            config: Some(s.0.join("config.json")),
            ..args(&out2)
        };
        run(&b).unwrap();
        let mut m2 =
            mllm_ir::parse::parse_verified(&std::fs::read_to_string(&out2).unwrap(), "m2").unwrap();
        assert_eq!(
            m2.attrs.str("weights"),
            std::fs::canonicalize(&mllm).unwrap().to_str()
        );
        m2.attrs
            .insert("weights".into(), m.attrs["weights"].clone());
        mllm_ir::equiv::module_eq(&m, &m2).unwrap();

        // Without -c, the .mllm file's directory has no config.json.
        let c = TranslateArgs {
            from_mllm: Some(mllm),
            ..args(&out2)
        };
        let err = format!("{:#}", run(&c).unwrap_err());
        assert!(
            err.contains("-c/--config") && err.contains("config.json"),
            "{err}"
        );
    }

    #[test]
    fn failures_are_clear_and_leave_no_output() {
        let s = Scratch::new("err");
        small_checkpoint(&s.0);
        let out = s.0.join("never.mlir");
        let a = TranslateArgs {
            from_safetensors: Some(s.0.clone()),
            to_qnn: true,
            ..args(&out)
        };
        let err = format!("{:#}", run(&a).unwrap_err());
        assert!(err.contains("--to-qnn takes a textual IR file"), "{err}");

        let a = TranslateArgs {
            from_safetensors: Some(s.0.clone()),
            context_len: 8,
            ..args(&out)
        };
        let err = format!("{:#}", run(&a).unwrap_err());
        assert!(
            err.contains("context_len (8) must be larger than ar_len (8)"),
            "{err}"
        );

        let a = TranslateArgs {
            from_mllm: Some(s.0.clone()),
            ..args(&out)
        };
        let err = format!("{:#}", run(&a).unwrap_err());
        assert!(
            err.contains("safetensors checkpoint") && err.contains("--from-mllm"),
            "{err}"
        );

        // A config that does not match the checkpoint names the tensor.
        let mut cfg = Qwen3Config::from_file(s.0.join("config.json")).unwrap();
        cfg.intermediate_size += 1;
        let bad = s.0.join("bad.json");
        std::fs::write(&bad, cfg.to_json().to_string()).unwrap();
        let a = TranslateArgs {
            from_safetensors: Some(s.0.clone()),
            config: Some(bad),
            ..args(&out)
        };
        let err = format!("{:#}", run(&a).unwrap_err());
        assert!(err.contains("model.layers.0.mlp.gate_proj.weight"), "{err}");
        assert!(!out.exists());
        let leftovers: Vec<_> = std::fs::read_dir(&s.0)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn output_replaces_files_atomically_and_writes_special_files_in_place() {
        let s = Scratch::new("out");
        let p = s.0.join("x.mlir");
        std::fs::write(&p, "old").unwrap();
        write_output(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        write_output(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(Path::new("/dev/null").exists());
        let err = format!("{:#}", write_output(&s.0, b"x").unwrap_err());
        assert!(err.contains("is a directory"), "{err}");
        let err = format!(
            "{:#}",
            write_output(&s.0.join("no/such/dir/x"), b"x").unwrap_err()
        );
        assert!(err.contains("cannot write"), "{err}");
    }
}

#[cfg(test)]
mod cpu_tests {
    //! The translated graphs on the runtime's CPU executor: prefill of n tokens then one
    //! decode step against the cache must give the logits of a prefill of n + 1 tokens.

    use super::*;
    use mllm_runtime::cpu::{CpuExecutor, NumericMode, TensorRef};

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs graph `g` with `n` real tokens at positions `n_past..`, padded to S, against caches
    /// of `n_past` entries; returns (logits [S, V], present keys, present values).
    #[allow(clippy::too_many_arguments)]
    fn step(
        ex: &mut CpuExecutor,
        g: &str,
        s: usize,
        c: usize,
        tokens: &[i32],
        n_past: usize,
        kcache: &[Vec<f32>],
        vcache: &[Vec<f32>],
        dims: (usize, usize, usize),
    ) -> Vec<Vec<f32>> {
        let (layers, hkv, d) = dims;
        let gi = ex.graph_index(g).unwrap();
        let cs = c - s;
        let mut seq = vec![0i32; s];
        seq[..tokens.len()].copy_from_slice(tokens);
        let pos: Vec<i32> = (0..s).map(|i| (n_past + i) as i32).collect();
        let mut mask = vec![0.0f32; s * c];
        for i in 0..s {
            for j in 0..n_past {
                mask[i * c + j] = 1.0;
            }
            for j in 0..=i {
                mask[i * c + cs + j] = 1.0;
            }
        }
        // Re-stride the caches ([Hkv, C-1, D] on the host side) to this graph's [Hkv, C-S, D].
        let restride = |cache: &[f32]| {
            let mut x = vec![0.0f32; hkv * cs * d];
            for h in 0..hkv {
                x[h * cs * d..h * cs * d + n_past * d]
                    .copy_from_slice(&cache[h * (c - 1) * d..h * (c - 1) * d + n_past * d]);
            }
            x
        };
        let ks: Vec<Vec<f32>> = kcache[..layers].iter().map(|k| restride(k)).collect();
        let vs: Vec<Vec<f32>> = vcache[..layers].iter().map(|v| restride(v)).collect();
        let mut inputs = vec![
            TensorRef::I32(&seq),
            TensorRef::I32(&pos),
            TensorRef::F32(&mask),
        ];
        inputs.extend(ks.iter().map(|k| TensorRef::F32(k)));
        inputs.extend(vs.iter().map(|v| TensorRef::F32(v)));
        ex.run_f32(gi, &inputs).unwrap()
    }

    #[test]
    fn prefill_then_decode_equals_a_longer_prefill() {
        let dir = std::env::temp_dir().join(format!("mllm-translate-cpu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let scratch = Scratch(dir.clone());
        let mut cfg = mllm_frontends::synth::Preset::Tiny.config();
        cfg.vocab_size = 96;
        mllm_frontends::synth::generate_from_config(
            &cfg,
            11,
            mllm_frontends::DType::BF16,
            &dir,
            &mut |_| {},
        )
        .unwrap();
        let out = dir.join("m.mlir");
        let (s, c) = (8usize, 24usize);
        let a = TranslateArgs {
            from_safetensors: Some(dir.clone()),
            from_mllm: None,
            config: None,
            ar_len: s,
            context_len: c,
            shards: 1,
            output: out.clone(),
            to_qnn: false,
            quiet: true,
        };
        run(&a).unwrap();
        let mut m =
            mllm_ir::parse::parse_verified(&std::fs::read_to_string(&out).unwrap(), "m.mlir")
                .unwrap();
        qwen3::load_weights(&mut m, None).unwrap();
        let mut ex = CpuExecutor::new(&m, NumericMode::Float).unwrap();
        let (layers, hkv, d, v) = (
            cfg.num_hidden_layers,
            cfg.num_key_value_heads,
            cfg.head_dim,
            cfg.vocab_size,
        );
        let dims = (layers, hkv, d);
        let empty = vec![vec![0.0f32; hkv * d * (c - 1)]; layers];
        let tokens: Vec<i32> = (0..7).map(|i| (i * 37 + 5) % v as i32).collect();
        let n = 6;

        // Prefill n tokens; copy their K/V into host caches of row length C-1.
        let out_n = step(
            &mut ex,
            &format!("model.0.s{s}"),
            s,
            c,
            &tokens[..n],
            0,
            &empty,
            &empty,
            dims,
        );
        let mut kc = empty.clone();
        let mut vc = empty.clone();
        for l in 0..layers {
            let (pk, pv) = (&out_n[1 + l], &out_n[1 + layers + l]);
            for h in 0..hkv {
                kc[l][h * (c - 1) * d..h * (c - 1) * d + n * d]
                    .copy_from_slice(&pk[h * s * d..h * s * d + n * d]);
                vc[l][h * (c - 1) * d..h * (c - 1) * d + n * d]
                    .copy_from_slice(&pv[h * s * d..h * s * d + n * d]);
            }
        }
        // Decode token n.
        let dec = step(
            &mut ex,
            "model.0.s1",
            1,
            c,
            &tokens[n..n + 1],
            n,
            &kc,
            &vc,
            dims,
        );
        // Prefill n + 1 tokens at once.
        let out_n1 = step(
            &mut ex,
            &format!("model.0.s{s}"),
            s,
            c,
            &tokens[..n + 1],
            0,
            &empty,
            &empty,
            dims,
        );

        let diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let scale = out_n1[0][n * v..(n + 1) * v]
            .iter()
            .map(|x| x.abs())
            .fold(0.0f32, f32::max);
        assert!(scale > 0.0);
        let dd = diff(&dec[0], &out_n1[0][n * v..(n + 1) * v]);
        assert!(
            dd <= 1e-4 * scale.max(1.0),
            "decode vs prefill: {dd} (logit scale {scale})"
        );
        // Earlier rows do not see later tokens (causality, padding).
        let dp = diff(&out_n[0][..n * v], &out_n1[0][..n * v]);
        assert!(
            dp <= 1e-4 * scale.max(1.0),
            "prefill rows changed by a later token: {dp}"
        );
        // The new K of the decode step equals row n of the longer prefill's.
        for l in 0..layers {
            let (pk1, dk) = (&out_n1[1 + l], &dec[1 + l]);
            for h in 0..hkv {
                for j in 0..d {
                    assert!(
                        (pk1[(h * s + n) * d + j] - dk[h * d + j]).abs() <= 1e-4,
                        "present_key_{l} head {h} component {j}"
                    );
                }
            }
        }
        drop(scratch);
    }
}
