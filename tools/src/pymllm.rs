//! pymllm export glue: writing our quantized module as a pymllm-named `model.safetensors`
//! (so mllm's own compiler could consume it) and importing a pymllm export into the same
//! quantized IR our quantizer produces.
//!
//! The format, its names and how they were verified are documented in
//! [`mllm_frontends::pymllm`]. Importing: the export is read and checked
//! ([`read_pymllm`]), the Qwen3 module is built from the config over zero placeholders,
//! decomposed exactly as `mllm quantize` does, and quantized by [`quantize_module`] with a
//! [`Calibration`] that carries only the export's exact encodings and pre-quantized weights.
//! Anything the quantizer would have had to invent from calibration ranges is an error, so an
//! import never silently falls back to placeholder data.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context};
use mllm_frontends::pymllm::{read_pymllm, PymllmImport};
use mllm_frontends::qwen3::{build_qwen3, BuildOptions};
use mllm_frontends::Qwen3Config;
use mllm_ir::{AttrsExt, Module, OpKind};
use mllm_passes::quant::apply::{quantize_module, Calibration};
use mllm_passes::quant::recipe::Recipe;

pub use mllm_frontends::pymllm::{export_pymllm, is_pymllm_export, ExportSummary};

/// Imports the pymllm export `export` for the model `cfg` into a quantized module (prefill
/// and decode graphs per `opts`), identical to what `mllm quantize` gives for the same
/// weights and encodings.
pub fn import_pymllm(
    export: &Path,
    cfg: &Qwen3Config,
    opts: BuildOptions,
) -> anyhow::Result<Module> {
    if opts.num_shards != 1 {
        // A later shard's `hidden_states` input would need an encoding the export has
        // (the previous layer's residual) but our quantizer takes from `arg:` entries; not
        // wired yet.
        bail!(
            "importing a pymllm export supports one shard only (got {})",
            opts.num_shards
        );
    }
    let PymllmImport {
        store,
        weights,
        encodings,
        block_size,
    } = read_pymllm(export, cfg, opts.context_len)?;
    let payloads: HashSet<String> = weights.values().map(|(n, _)| n.clone()).collect();
    let mut m = build_qwen3(cfg, store, opts)
        .with_context(|| format!("{}: building the Qwen3 module", export.display()))?;
    for f in m.functions.iter_mut() {
        mllm_passes::transforms::decompose::decompose(f)?;
    }
    let calib = Calibration {
        ranges: Default::default(),
        encodings,
        weights,
    };
    let recipe = Recipe::default_lpbq(block_size.max(1));
    quantize_module(&mut m, &calib, &recipe).with_context(|| {
        format!(
            "{}: quantizing with the export's encodings",
            export.display()
        )
    })?;
    // Every weight the graphs read must be one of the export's payloads.
    for f in &m.functions {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind == OpKind::Weight {
                let n = o.attrs.str("name").unwrap_or_default();
                if !payloads.contains(n) {
                    bail!(
                        "{}: the module reads weight {n}, which the export does not provide",
                        export.display()
                    );
                }
            }
        }
    }
    // Drop the float placeholders: only the quantized payloads carry data.
    let unused: Vec<String> = m
        .weights
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !payloads.contains(n))
        .collect();
    for n in unused {
        m.weights.remove(&n);
    }
    mllm_ir::verify::verify_module(&m).context("imported module does not verify")?;
    Ok(m)
}

/// Writes `module` (quantized) as `dir/model.safetensors` in pymllm naming; used by
/// `mllm quantize`. Refuses to overwrite the checkpoint `source` it was quantized from (an
/// output directory equal to the input directory).
pub fn write_export(module: &Module, dir: &Path, source: &Path) -> anyhow::Result<ExportSummary> {
    let path = dir.join("model.safetensors");
    let src = if source.is_dir() {
        source.join("model.safetensors")
    } else {
        source.to_path_buf()
    };
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(&path), std::fs::canonicalize(&src)) {
        if a == b {
            bail!(
                "{}: the pymllm export would overwrite the input checkpoint; choose another output directory",
                path.display()
            );
        }
    }
    export_pymllm(module, &path)
        .with_context(|| format!("{}: writing the pymllm export", path.display()))
}

/// `mllm-translate --from-safetensors` on a pymllm export (detected by its `*.scale1` /
/// `*_qdq.fake_quant.scale` tensors): imports it into the quantized module, writes the
/// weights in our layout to a `.mllm` file next to the IR (`<output>` with extension
/// `mllm`, recorded in the module's `weights` attribute, as `mllm quantize` does) and the IR.
pub fn translate_export(
    args: &crate::translate::TranslateArgs,
    export: &Path,
    cfg: &Qwen3Config,
    cfg_path: &Path,
) -> anyhow::Result<crate::translate::TranslateSummary> {
    use mllm_ir::Attr;
    if args.output.as_os_str() == "-" {
        bail!("a pymllm export translates to IR plus a .mllm weights file: give -o FILE, not '-'");
    }
    let opts = BuildOptions {
        ar_len: args.ar_len,
        context_len: args.context_len,
        num_shards: args.shards,
    };
    let mut m = import_pymllm(export, cfg, opts)?;
    let weights_path = args.output.with_extension("mllm");
    crate::quantize::write_weights(&m, &weights_path)?;
    let file_name = weights_path
        .file_name()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: not a valid file name", weights_path.display()))?;
    m.attrs
        .insert("weights".into(), Attr::Str(file_name.to_string()));
    if let Some(c) = std::fs::canonicalize(cfg_path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
    {
        m.attrs.insert("config".into(), Attr::Str(c));
    }
    let text = mllm_ir::print::print_module(&m);
    crate::translate::write_output(&args.output, text.as_bytes())?;
    Ok(crate::translate::TranslateSummary {
        functions: m.functions.iter().map(|f| f.name.clone()).collect(),
        ops: m.num_ops(),
        weights: m.weights.len(),
        weight_bytes: m.weights.iter().map(|(_, w)| w.bytes().len() as u64).sum(),
        text_bytes: text.len(),
        weights_path: std::fs::canonicalize(&weights_path).unwrap_or(weights_path),
    })
}
