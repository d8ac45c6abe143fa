//! The `mllm-opt` driver as a library: split input, parse, verify, run a pipeline
//! with instrumentation, print the result. The binary and the lit harness share it.

use mllm_ir::parse::parse_module_at;
use mllm_ir::print::print_module;
use mllm_ir::verify::verify_module;
use mllm_ir::IrError;

use crate::dot::module_to_dot;
use crate::manager::{Instrumentation, IrPrinter, PassFilter, PassManager, Timing};
use crate::pass::PassError;
use crate::registry::Registry;

/// What to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emit {
    /// The textual IR.
    #[default]
    Mlir,
    /// A Graphviz view.
    Dot,
}

/// Options of one `mllm-opt` run.
#[derive(Debug, Clone)]
pub struct OptConfig {
    /// `--pass-pipeline`.
    pub pipeline: Option<String>,
    /// `--print-ir-before=` / `--print-ir-before-all`.
    pub print_before: PassFilter,
    /// `--print-ir-after=` / `--print-ir-after-all`.
    pub print_after: PassFilter,
    /// `--print-ir-after-change`.
    pub after_change: bool,
    /// `--print-ir-after-failure`.
    pub after_failure: bool,
    /// `--verify-each`.
    pub verify_each: bool,
    /// `--split-input-file`.
    pub split_input_file: bool,
    /// `--timing`.
    pub timing: bool,
    /// `--emit`.
    pub emit: Emit,
    /// `--func` (with `--emit=dot`).
    pub dot_function: Option<String>,
}

impl Default for OptConfig {
    fn default() -> Self {
        OptConfig {
            pipeline: None,
            print_before: PassFilter::None,
            print_after: PassFilter::None,
            after_change: false,
            after_failure: false,
            verify_each: true,
            split_input_file: false,
            timing: false,
            emit: Emit::Mlir,
            dot_function: None,
        }
    }
}

/// Result of a run.
#[derive(Debug, Default)]
pub struct OptOutput {
    /// What goes to standard output.
    pub stdout: String,
    /// What goes to standard error (diagnostics, IR dumps, timing).
    pub stderr: String,
    /// Whether every chunk succeeded.
    pub ok: bool,
}

/// Splits at lines that are exactly `// -----`; returns (chunk, line offset).
pub fn split_input(text: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0u32;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "// -----" {
            out.push((std::mem::take(&mut cur), start));
            start = i as u32 + 1;
        } else {
            cur.push_str(line);
        }
    }
    out.push((cur, start));
    out
}

/// Formats a pipeline error with its column as `<pass-pipeline>:1:COL: error: ...`.
pub fn format_pipeline_error(e: &PassError) -> String {
    if let PassError::Pipeline(m) = e {
        if let Some(rest) = m.strip_prefix("col ") {
            if let Some((col, msg)) = rest.split_once(": ") {
                return format!("<pass-pipeline>:1:{col}: error: {msg}");
            }
        }
        return format!("<pass-pipeline>: error: {m}");
    }
    format!("error: {e}")
}

fn format_error(file: &str, e: &PassError) -> String {
    match e {
        PassError::Pipeline(_) => format_pipeline_error(e),
        PassError::Ir(ir) | PassError::Verify { source: ir, .. } => {
            let pass = match e {
                PassError::Verify { pass, .. } => format!(" (after pass '{pass}')"),
                _ => String::new(),
            };
            match ir.diagnostic() {
                Some(d) => match &d.loc {
                    Some(l) => format!("{l}: error: {}{pass}", d.message),
                    None => format!("{file}: error: {}{pass}", d.message),
                },
                None => format!("{file}: {ir}{pass}"),
            }
        }
        PassError::Failed { .. } => format!("{file}: error: {e}"),
    }
}

fn format_ir_error(file: &str, e: &IrError) -> String {
    match e.diagnostic() {
        Some(d) => match &d.loc {
            Some(l) => format!("{l}: error: {}", d.message),
            None => format!("{file}: error: {}", d.message),
        },
        None => format!("{file}: {e}"),
    }
}

/// Runs `mllm-opt` on `text` (named `file` in diagnostics).
pub fn run_opt(text: &str, file: &str, cfg: &OptConfig, registry: &Registry) -> OptOutput {
    let mut out = OptOutput {
        ok: true,
        ..Default::default()
    };
    // Build the pipeline once up front so pipeline errors come first.
    if let Some(p) = &cfg.pipeline {
        if let Err(e) = PassManager::parse(p, registry) {
            out.stderr.push_str(&format_pipeline_error(&e));
            out.stderr.push('\n');
            out.ok = false;
            return out;
        }
    }
    let chunks = if cfg.split_input_file {
        split_input(text)
    } else {
        vec![(text.to_owned(), 0)]
    };
    let mut timing = Timing::default();
    for (i, (chunk, offset)) in chunks.iter().enumerate() {
        if i > 0 && cfg.emit == Emit::Mlir {
            out.stdout.push_str("// -----\n");
        }
        match run_chunk(
            chunk,
            *offset,
            file,
            cfg,
            registry,
            &mut timing,
            &mut out.stderr,
        ) {
            Ok(s) => out.stdout.push_str(&s),
            Err(msg) => {
                out.stderr.push_str(&msg);
                out.stderr.push('\n');
                out.ok = false;
            }
        }
    }
    if cfg.timing {
        out.stderr.push_str(&timing.report());
    }
    out
}

fn run_chunk(
    text: &str,
    offset: u32,
    file: &str,
    cfg: &OptConfig,
    registry: &Registry,
    timing: &mut Timing,
    stderr: &mut String,
) -> Result<String, String> {
    let mut m = parse_module_at(text, file, offset).map_err(|e| format_ir_error(file, &e))?;
    verify_module(&m).map_err(|e| format_ir_error(file, &e))?;
    if let Some(p) = &cfg.pipeline {
        let mut pm = PassManager::parse(p, registry).map_err(|e| format_pipeline_error(&e))?;
        pm.set_verify_each(cfg.verify_each);
        let after = match (&cfg.print_after, cfg.after_change) {
            (PassFilter::None, true) => PassFilter::All,
            (f, _) => f.clone(),
        };
        let mut printer = IrPrinter {
            before: cfg.print_before.clone(),
            after,
            only_on_change: cfg.after_change,
            after_failure: cfg.after_failure,
            out: Vec::<u8>::new(),
        };
        let r = {
            let mut instr: Vec<&mut dyn Instrumentation> = vec![&mut printer];
            if cfg.timing {
                instr.push(timing);
            }
            pm.run(&mut m, &mut instr)
        };
        stderr.push_str(&String::from_utf8_lossy(&printer.out));
        r.map_err(|e| format_error(file, &e))?;
        if !cfg.verify_each {
            verify_module(&m).map_err(|e| format_ir_error(file, &e))?;
        }
    }
    match cfg.emit {
        Emit::Mlir => Ok(print_module(&m)),
        Emit::Dot => module_to_dot(&m, cfg.dot_function.as_deref())
            .map_err(|e| format!("{file}: error: {e}")),
    }
}
