//! QNN commands: `mllm-translate --to-qnn` (textual IR -> QNN context binary plus its
//! manifest) and `mllm inspect` (describe a context binary).
//!
//! `--to-qnn model.mlir`: parses and verifies the IR, re-attaches the weights from the
//! checkpoint named by the module attribute `weights` (relative paths are resolved
//! against the `.mlir` file's directory, see [`mllm_frontends::qwen3::load_weights`]),
//! lowers every function to a graph of one QNN context, finalizes, and writes
//! `model.bin` and `model.bin.json` atomically. The IR must already be in NPU form:
//! LPBQ linears as 1x1 convolutions (`linear-to-conv2d`), no `nn.rope` / quantized
//! `nn.silu` (`decompose`).
//!
//! Target: `--soc` (a name such as `SM8650` or a numeric SoC model) overrides the AOT
//! config (`target_machine.htp_chipset`, `htp_arch`, `htp_vtcm_capability_in_mb` of
//! mllm's `qnn_aot_cfg_*.json`). Weight sharing is on by default (device builds: the
//! graphs of a context store their weights once); pass `--no-weight-sharing` for
//! binaries that must run in the x86 emulator, which refuses weight-shared binaries
//! (QNN error 1000, "Shared weights buffer isn't supported on this platform").

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use mllm_backend_qnn::manifest::{manifest_path, Manifest};
use mllm_backend_qnn::{compile_module, verify_manifest, write_model, CompileOptions};
use mllm_ir::attr::AttrsExt;
use mllm_qnn_sys::{DeviceTarget, QnnLibrary, Quant, SystemContext, TensorInfo};

/// Arguments of `mllm-translate --to-qnn`.
#[derive(Debug, Clone, Args)]
pub struct ToQnnArgs {
    /// Textual IR to compile (NPU form: after linear-to-conv2d / decompose).
    #[arg(long = "to-qnn", value_name = "MODEL.mlir")]
    pub input: PathBuf,
    /// mllm AOT config (qnn_aot_cfg_*.json): target_machine.htp_chipset / htp_arch /
    /// htp_vtcm_capability_in_mb.
    #[arg(
        long = "aot_config",
        visible_alias = "aot-config",
        value_name = "CFG.json"
    )]
    pub aot_config: Option<PathBuf>,
    /// Directory holding libQnnHtp.so / libQnnSystem.so (or a QNN SDK root).
    #[arg(
        long = "qnn_env_path",
        visible_alias = "qnn-lib-dir",
        value_name = "DIR"
    )]
    pub qnn_env_path: Option<PathBuf>,
    /// Target SoC: SM8550, SM8650, SM8750, SM8850, SA8295, or a numeric SoC model
    /// [default: from --aot_config, else the library default SM8350/v68].
    #[arg(long, value_name = "SOC")]
    pub soc: Option<String>,
    /// VTCM size in MB [default: from --aot_config].
    #[arg(long, value_name = "MB")]
    pub vtcm_mb: Option<u32>,
    /// Share weights between the graphs (the default; kept for compatibility).
    #[arg(long, conflicts_with = "no_weight_sharing")]
    pub weight_sharing: bool,
    /// Do not share weights between graphs: needed for binaries that run in the x86
    /// emulator, which refuses weight-shared binaries.
    #[arg(long)]
    pub no_weight_sharing: bool,
    /// HTP finalize optimization level (0..=3).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub optimization_level: u32,
    /// Compile only these functions (repeatable) [default: all].
    #[arg(long = "graph", value_name = "NAME")]
    pub graphs: Vec<String>,
    /// Output context binary; the manifest goes to <FILE>.json.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// SoC names of mllm's AOT configs with their `Qnn_SocModel_t`.
pub const AOT_CHIPSETS: [(&str, u32); 5] = [
    ("SM8550", 43),
    ("SM8650", 57),
    ("SM8750", 69),
    ("SM8850", 87),
    ("SA8295", 39),
];

/// Parses a SoC name (see [`AOT_CHIPSETS`] and `mllm_qnn_sys::KNOWN_SOCS`) or number.
pub fn parse_soc(text: &str) -> anyhow::Result<u32> {
    if let Some((_, id)) = AOT_CHIPSETS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text.trim()))
    {
        return Ok(*id);
    }
    let t = DeviceTarget::parse_soc(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    t.soc_model
        .with_context(|| format!("SoC {text:?} has no model number"))
}

/// Target settings read from an mllm AOT config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AotTarget {
    /// SoC model from `htp_chipset`.
    pub soc: Option<u32>,
    /// Hexagon arch from `htp_arch` (`"V75"` -> 75).
    pub arch: Option<u32>,
    /// `htp_vtcm_capability_in_mb`.
    pub vtcm_mb: Option<u32>,
}

/// Top-level fields of an mllm AOT config.
const AOT_KEYS: &[&str] = &[
    "target_machine",
    "graph_on_qnn",
    "op_on_qnn",
    "split_graph",
    "ar_len",
    "quant_recipe",
];
/// Fields of an AOT config's `target_machine`.
const TARGET_KEYS: &[&str] = &[
    "htp_arch",
    "htp_chipset",
    "htp_try_best_performance",
    "htp_security_pd_session",
    "htp_vtcm_capability_in_mb",
];

/// Fails on a field of the object `v` that is not in `known`.
fn check_keys(
    path: &Path,
    prefix: &str,
    v: &serde_json::Value,
    known: &[&str],
) -> anyhow::Result<()> {
    let Some(obj) = v.as_object() else {
        bail!("{}: `{prefix}` must be a JSON object", path.display());
    };
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        bail!(
            "{}: unknown field `{prefix}{k}` (known: {})",
            path.display(),
            known.join(", ")
        );
    }
    Ok(())
}

/// Reads `target_machine` of an mllm AOT config.
pub fn read_aot_config(path: &Path) -> anyhow::Result<AotTarget> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    // An unknown (e.g. misspelt) field is an error, not a silently ignored setting; the
    // quantization recipe itself is checked by `mllm quantize` when it is used.
    check_keys(path, "", &v, AOT_KEYS)?;
    let Some(tm) = v.get("target_machine") else {
        bail!("{}: no `target_machine` object", path.display());
    };
    check_keys(path, "target_machine.", tm, TARGET_KEYS)?;
    let mut out = AotTarget::default();
    if let Some(c) = tm.get("htp_chipset") {
        let s = c
            .as_str()
            .with_context(|| format!("{}: htp_chipset must be a string", path.display()))?;
        out.soc = Some(parse_soc(s).with_context(|| format!("{}: htp_chipset", path.display()))?);
    }
    if let Some(a) = tm.get("htp_arch") {
        let s = a
            .as_str()
            .with_context(|| format!("{}: htp_arch must be a string", path.display()))?;
        let n = s.trim().trim_start_matches(['V', 'v']);
        out.arch =
            Some(n.parse().with_context(|| {
                format!("{}: htp_arch {s:?} is not like \"V75\"", path.display())
            })?);
    }
    if let Some(m) = tm.get("htp_vtcm_capability_in_mb") {
        let n = m.as_u64().with_context(|| {
            format!(
                "{}: htp_vtcm_capability_in_mb must be a non-negative integer",
                path.display()
            )
        })?;
        out.vtcm_mb = Some(u32::try_from(n).context("htp_vtcm_capability_in_mb too large")?);
    }
    Ok(out)
}

/// Compile options for `args` (AOT config, then command-line overrides).
pub fn compile_options(args: &ToQnnArgs) -> anyhow::Result<CompileOptions> {
    let aot = match &args.aot_config {
        Some(p) => read_aot_config(p)?,
        None => AotTarget::default(),
    };
    let soc = match &args.soc {
        Some(s) => Some(parse_soc(s)?),
        None => aot.soc,
    };
    Ok(CompileOptions {
        lib_dir: args.qnn_env_path.clone(),
        soc,
        arch: if soc.is_some() { None } else { aot.arch },
        vtcm_mb: args.vtcm_mb.or(aot.vtcm_mb),
        weight_sharing: !args.no_weight_sharing,
        fp16_precision: true,
        optimization_level: Some(args.optimization_level),
        functions: if args.graphs.is_empty() {
            None
        } else {
            Some(args.graphs.clone())
        },
    })
}

/// Parses `path` and re-attaches its weights (module attribute `weights`).
pub fn load_module(path: &Path) -> anyhow::Result<mllm_ir::Module> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut module = mllm_ir::parse::parse_verified(&text, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let uses_weights = module.functions.iter().any(|f| {
        f.op_ids()
            .iter()
            .any(|op| f.op(*op).kind == mllm_ir::OpKind::Weight)
    });
    if uses_weights && module.weights.is_empty() {
        if module.attrs.str("weights").is_none() {
            bail!(
                "{}: the module uses builtin.weight but has no `weights` attribute naming its checkpoint",
                path.display()
            );
        }
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        mllm_frontends::qwen3::load_weights(&mut module, base)
            .with_context(|| format!("{}: loading weights", path.display()))?;
    }
    Ok(module)
}

/// `mllm-translate --to-qnn`: compiles the IR into a context binary and its manifest.
pub fn translate_to_qnn(args: &ToQnnArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let opts = compile_options(args)?;
    let module = load_module(&args.input)?;
    let load_secs = start.elapsed().as_secs_f64();
    let compiled = compile_module(&module, &opts)?;
    let manifest = write_model(&args.output, &compiled)?;
    if !args.quiet {
        for s in &compiled.stats {
            eprintln!(
                "  {}: {} QNN nodes, {} static tensors ({:.1} MiB), lower {:.2} s, finalize {:.2} s",
                s.name,
                s.nodes,
                s.static_tensors,
                s.static_bytes as f64 / (1024.0 * 1024.0),
                s.lower_secs,
                s.finalize_secs
            );
        }
        eprintln!(
            "wrote {} ({:.1} MiB, sha256 {}) and {} for {} ({} graphs) in {:.2} s (IR + weights {:.2} s)",
            args.output.display(),
            manifest.binary_size as f64 / (1024.0 * 1024.0),
            &manifest.sha256[..16],
            manifest_path(&args.output).display(),
            manifest.target.soc_name.clone().unwrap_or_else(|| {
                manifest
                    .target
                    .soc_model
                    .map(|s| format!("SoC {s}"))
                    .unwrap_or_else(|| "the default target".into())
            }),
            manifest.graphs.len(),
            start.elapsed().as_secs_f64(),
            load_secs
        );
    }
    Ok(())
}

/// Arguments of `mllm inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// QNN context binary.
    #[arg(value_name = "MODEL.bin")]
    pub binary: PathBuf,
    /// Directory holding libQnnHtp.so / libQnnSystem.so.
    #[arg(
        long = "qnn_env_path",
        visible_alias = "qnn-lib-dir",
        value_name = "DIR"
    )]
    pub qnn_env_path: Option<PathBuf>,
}

fn quant_text(q: &Quant) -> String {
    match q {
        Quant::None => String::new(),
        Quant::ScaleOffset { scale, offset } => format!(" scale={scale:e} offset={offset}"),
        Quant::AxisScaleOffset { axis, scales, .. } => {
            format!(" per-axis(axis={axis}, {} scales)", scales.len())
        }
        Quant::BlockwiseExpansion {
            axis,
            num_blocks_per_axis,
            block_scale_bitwidth,
            channel_scales,
            ..
        } => format!(
            " lpbq(axis={axis}, {} channels x {num_blocks_per_axis} blocks, {block_scale_bitwidth}-bit block scales)",
            channel_scales.len()
        ),
        Quant::Other { encoding } => format!(" encoding#{encoding}"),
    }
}

fn tensor_line(t: &TensorInfo) -> String {
    let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
    format!(
        "{} [{}] {}{}",
        t.name,
        dims.join("x"),
        mllm_backend_qnn::manifest::dtype_name(t.dtype),
        quant_text(&t.quant)
    )
}

/// The report `mllm inspect` prints: contexts, graphs and their I/O tensors, SoC and
/// QNN versions (from the binary via libQnnSystem), plus the manifest when present
/// (an integrity mismatch is an error).
pub fn inspect_report(args: &InspectArgs) -> anyhow::Result<String> {
    use std::fmt::Write;
    let bytes = std::fs::read(&args.binary)
        .with_context(|| format!("{}: cannot read", args.binary.display()))?;
    let lib = QnnLibrary::load(args.qnn_env_path.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sys = SystemContext::new(&lib).map_err(|e| anyhow::anyhow!("{e}"))?;
    let info = sys.binary_info(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a valid QNN context binary: {e}",
            args.binary.display()
        )
    })?;
    let mut s = String::new();
    let v3 = |v: (u32, u32, u32)| format!("{}.{}.{}", v.0, v.1, v.2);
    let _ = writeln!(
        s,
        "{}: {} bytes, 1 context",
        args.binary.display(),
        bytes.len()
    );
    let _ = writeln!(
        s,
        "  QNN: backend {} build {:?}, core API {}, backend API {}, context blob {}",
        info.backend_id,
        info.build_id,
        v3(info.core_api_version),
        v3(info.backend_api_version),
        v3(info.context_blob_version)
    );
    let soc_name = info
        .soc_model
        .and_then(mllm_backend_qnn::binary::soc_info)
        .map(|(n, a)| format!(" ({n}, v{a})"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "  SoC: model {}{soc_name}, version {:?}",
        info.soc_model
            .map(|m| m.to_string())
            .unwrap_or_else(|| "unknown".into()),
        info.soc_version
    );
    let _ = writeln!(s, "  graphs: {}", info.graphs.len());
    for g in &info.graphs {
        let _ = writeln!(s, "  graph {}:", g.name);
        for t in &g.inputs {
            let _ = writeln!(s, "    in  {}", tensor_line(t));
        }
        for t in &g.outputs {
            let _ = writeln!(s, "    out {}", tensor_line(t));
        }
    }
    let mpath = manifest_path(&args.binary);
    if mpath.exists() {
        let m: Manifest = verify_manifest(&args.binary).map_err(|e| anyhow::anyhow!("{e}"))?;
        let _ = writeln!(
            s,
            "  manifest {}: OK (sha256 {}, weight sharing {}, generator {})",
            mpath.display(),
            m.sha256,
            m.weight_sharing,
            m.generator
        );
        for g in &m.graphs {
            let _ = writeln!(
                s,
                "    {}: ar_len {}, {} inputs, {} outputs",
                g.name,
                g.ar_len
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into()),
                g.inputs.len(),
                g.outputs.len()
            );
            if !info.graphs.iter().any(|b| b.name == g.name) {
                bail!("manifest graph '{}' is not in the binary", g.name);
            }
        }
    } else {
        let _ = writeln!(s, "  manifest: none ({} not found)", mpath.display());
    }
    Ok(s)
}

/// `mllm inspect`: prints [`inspect_report`].
pub fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    print!("{}", inspect_report(args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aot_config_target_and_overrides() {
        let dir = tempdir().join("aot");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cfg.json");
        std::fs::write(
            &p,
            r#"{"target_machine": {"htp_arch": "V75", "htp_chipset": "SM8650", "htp_vtcm_capability_in_mb": 8}}"#,
        )
        .unwrap();
        let t = read_aot_config(&p).unwrap();
        assert_eq!(
            t,
            AotTarget {
                soc: Some(57),
                arch: Some(75),
                vtcm_mb: Some(8)
            }
        );
        assert_eq!(parse_soc("SA8295").unwrap(), 39);
        assert_eq!(parse_soc("sm8750").unwrap(), 69);
        assert_eq!(parse_soc("87").unwrap(), 87);
        assert!(parse_soc("SM0000").is_err());
        // Misspelt fields are refused, naming the file and the field.
        let typo = dir.join("typo.json");
        std::fs::write(
            &typo,
            r#"{"target_machine": {"htp_chipset_typo": "SM8650"}}"#,
        )
        .unwrap();
        let err = read_aot_config(&typo).unwrap_err().to_string();
        assert!(
            err.contains("typo.json") && err.contains("target_machine.htp_chipset_typo"),
            "{err}"
        );
        std::fs::write(&typo, r#"{"target_machine": {}, "splitgraph": 2}"#).unwrap();
        let err = read_aot_config(&typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `splitgraph`"), "{err}");
        for f in ["qnn_aot_cfg_1.7B.json", "qnn_aot_cfg_4B.json"] {
            let real = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/compat/mllm")
                .join(f);
            if real.is_file() {
                read_aot_config(&real).unwrap();
            }
        }
        let args = ToQnnArgs {
            input: "m.mlir".into(),
            aot_config: Some(p.clone()),
            qnn_env_path: None,
            soc: Some("SM8750".into()),
            vtcm_mb: None,
            weight_sharing: false,
            no_weight_sharing: false,
            optimization_level: 3,
            graphs: vec![],
            output: "m.bin".into(),
            quiet: true,
        };
        let o = compile_options(&args).unwrap();
        assert_eq!(
            (o.soc, o.arch, o.vtcm_mb, o.weight_sharing),
            (Some(69), None, Some(8), true),
            "weight sharing is on by default"
        );
        let o = compile_options(&ToQnnArgs {
            no_weight_sharing: true,
            ..args.clone()
        })
        .unwrap();
        assert!(!o.weight_sharing);
        std::fs::write(&p, r#"{"target_machine": {"htp_chipset": 5}}"#).unwrap();
        assert!(read_aot_config(&p).is_err());
        std::fs::write(&p, r#"{"other": 1}"#).unwrap();
        assert!(read_aot_config(&p)
            .unwrap_err()
            .to_string()
            .contains("target_machine"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A minimal safetensors file with one I8 tensor `w` of `shape`.
    fn write_safetensors(path: &Path, shape: [usize; 2], data: &[u8]) {
        let header = format!(
            r#"{{"w":{{"dtype":"I8","shape":[{},{}],"data_offsets":[0,{}]}}}}"#,
            shape[0],
            shape[1],
            data.len()
        );
        let mut h = header.into_bytes();
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        std::fs::write(path, out).unwrap();
    }

    /// IR text of a 1x1 LPBQ conv layer `model.0.s{m}` over weight `w` [n, k].
    fn layer_module(k: usize, n: usize) -> String {
        use mllm_ir::types::per_tensor;
        use mllm_ir::{
            Attr, ElemType, Encoding, Expressed, Function, Module, OpKind, QuantType, Storage, Type,
        };
        let lpbq = ElemType::Quant(QuantType {
            storage: Storage::I4,
            expressed: Expressed::F32,
            encoding: Encoding::Blockwise {
                axis: 0,
                block_size: 16,
                block_scale_bits: 4,
                block_scales: (0..n * k / 16)
                    .map(|i| (i % 15 + 1) as u8)
                    .collect::<Vec<u8>>()
                    .into(),
                channel_scales: (0..n)
                    .map(|i| 0.01 + i as f32 * 1e-4)
                    .collect::<Vec<f32>>()
                    .into(),
            },
        });
        let mut m = Module::new();
        m.attrs
            .insert("weights".into(), Attr::Str("ckpt.safetensors".into()));
        for s in [4usize, 1] {
            let mut f = Function::new(format!("model.0.s{s}"));
            let x = f.add_arg(
                Type::tensor(
                    vec![1, 1, s, k],
                    per_tensor(Storage::U16, 4.0 / 65535.0, -32768),
                ),
                Some("x"),
            );
            let w = f
                .builder()
                .weight("w", Type::tensor(vec![n, k], lpbq.clone()));
            let wt = f.builder().transpose(w, &[1, 0]).unwrap();
            let hwio = f.builder().reshape(wt, &[1, 1, k, n]).unwrap();
            let mut b = f.builder();
            let out = Type::tensor(
                vec![1, 1, s, n],
                per_tensor(Storage::U16, 32.0 / 65535.0, -32768),
            );
            let id = b.op_typed(OpKind::Conv2d, &[x, hwio], Default::default(), &[out]);
            let y = b.func.op(id).results[0];
            b.ret(&[y]);
            f.result_names = vec![Some("y".into())];
            m.functions.push(f);
        }
        mllm_ir::print::print_module(&m)
    }

    #[test]
    fn to_qnn_then_inspect() {
        let lib_present = QnnLibrary::load(None).is_ok();
        if !lib_present {
            println!("QNN library not found; run scripts/setup-qnn.sh (test skipped)");
            return;
        }
        let dir = tempdir().join("e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let (k, n) = (64, 32);
        let data: Vec<u8> = (0..n * k)
            .map(|i| ((i * 7) % 16) as i8 as u8)
            .map(|v| (v as i8 - 8) as u8)
            .collect();
        write_safetensors(&dir.join("ckpt.safetensors"), [n, k], &data);
        let ir = dir.join("model.mlir");
        std::fs::write(&ir, layer_module(k, n)).unwrap();
        let cfg = dir.join("cfg.json");
        std::fs::write(&cfg, r#"{"target_machine": {"htp_arch": "V75", "htp_chipset": "SM8650", "htp_vtcm_capability_in_mb": 8}}"#).unwrap();
        let out = dir.join("model.bin");
        let args = ToQnnArgs {
            input: ir.clone(),
            aot_config: Some(cfg),
            qnn_env_path: None,
            soc: None,
            vtcm_mb: None,
            weight_sharing: false,
            no_weight_sharing: false,
            optimization_level: 3,
            graphs: vec![],
            output: out.clone(),
            quiet: true,
        };
        translate_to_qnn(&args).unwrap();
        let m = verify_manifest(&out).unwrap();
        assert_eq!(m.target.soc_model, Some(57));
        assert_eq!(m.graphs.len(), 2);
        let report = inspect_report(&InspectArgs {
            binary: out.clone(),
            qnn_env_path: None,
        })
        .unwrap();
        println!("{report}");
        for needle in [
            "graph model.0.s4:",
            "graph model.0.s1:",
            "in  x [1x1x4x64] ufixed16",
            "out y [1x1x1x32] ufixed16",
            "SM8650",
            "manifest",
            ": OK",
        ] {
            assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
        }
        // A flipped byte is caught by the manifest.
        let mut b = std::fs::read(&out).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(&out, &b).unwrap();
        let e = inspect_report(&InspectArgs {
            binary: out.clone(),
            qnn_env_path: None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
        // A truncated binary (manifest removed) is rejected by QNN with the file name.
        std::fs::remove_file(manifest_path(&out)).unwrap();
        std::fs::write(&out, &b[..mid]).unwrap();
        let e = inspect_report(&InspectArgs {
            binary: out.clone(),
            qnn_env_path: None,
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("not a valid QNN context binary"),
            "{e}"
        );
        // A missing weights checkpoint is an error naming the IR file.
        std::fs::remove_file(dir.join("ckpt.safetensors")).unwrap();
        let e = translate_to_qnn(&args).unwrap_err();
        assert!(format!("{e:#}").contains("model.mlir"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("mllm-qnn-tools-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
