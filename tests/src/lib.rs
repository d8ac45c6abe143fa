//! Test support for the file-driven (lit) tests: header parsing and running one
//! `.mlir` file through the `mllm-opt` driver in-process.

use mllm_ir::equiv::module_eq;
use mllm_ir::parse::{parse_module, parse_module_at};
use mllm_ir::print::print_module;
use mllm_ir::verify::verify_module;
use mllm_passes::driver::{run_opt, split_input, Emit, OptConfig};
use mllm_passes::{PassFilter, Registry};

/// What a lit file asks for, from its `// pipeline:`, `// tool:` and `// expect:` lines.
#[derive(Debug, Clone)]
pub struct LitHeader {
    /// Driver configuration.
    pub config: OptConfig,
    /// `// expect: error`.
    pub expect_error: bool,
}

/// Parses the header comments of a lit file.
pub fn parse_header(text: &str) -> Result<LitHeader, String> {
    let mut cfg = OptConfig {
        split_input_file: true,
        ..Default::default()
    };
    let mut expect_error = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("//") else {
            break;
        };
        let rest = rest.trim();
        if let Some(p) = rest.strip_prefix("pipeline:") {
            cfg.pipeline = Some(p.trim().to_owned());
        } else if let Some(t) = rest.strip_prefix("tool:") {
            let mut words = t.split_whitespace();
            if words.next() != Some("mllm-opt") {
                return Err(format!("unsupported tool line: {t}"));
            }
            for w in words {
                apply_flag(&mut cfg, w)?;
            }
        } else if let Some(e) = rest.strip_prefix("expect:") {
            match e.trim() {
                "error" => expect_error = true,
                other => return Err(format!("unknown expectation '{other}'")),
            }
        }
    }
    Ok(LitHeader {
        config: cfg,
        expect_error,
    })
}

fn names(v: &str) -> PassFilter {
    PassFilter::Named(v.split(',').map(str::to_owned).collect())
}

fn apply_flag(cfg: &mut OptConfig, w: &str) -> Result<(), String> {
    let (k, v) = w.split_once('=').unwrap_or((w, ""));
    match k {
        "--pass-pipeline" => cfg.pipeline = Some(v.trim_matches('\'').trim_matches('"').to_owned()),
        "--print-ir-before" => cfg.print_before = names(v),
        "--print-ir-after" => cfg.print_after = names(v),
        "--print-ir-before-all" => cfg.print_before = PassFilter::All,
        "--print-ir-after-all" => cfg.print_after = PassFilter::All,
        "--print-ir-after-change" => cfg.after_change = true,
        "--print-ir-after-failure" => cfg.after_failure = true,
        "--verify-each" => cfg.verify_each = v != "false",
        "--emit" => {
            cfg.emit = match v {
                "dot" => Emit::Dot,
                "mlir" => Emit::Mlir,
                _ => return Err(format!("bad --emit value {v}")),
            }
        }
        "--func" => cfg.dot_function = Some(v.to_owned()),
        "--no-split-input-file" => cfg.split_input_file = false,
        _ => return Err(format!("unsupported mllm-opt flag in lit file: {w}")),
    }
    Ok(())
}

/// Checks print/parse round trips and the verifier on every chunk that parses and
/// verifies; returns the first problem.
pub fn check_round_trip(text: &str, file: &str) -> Result<(), String> {
    for (chunk, off) in split_input(text) {
        let Ok(m) = parse_module_at(&chunk, file, off) else {
            continue;
        };
        if verify_module(&m).is_err() {
            continue;
        }
        let printed = print_module(&m);
        let m2 = parse_module(&printed, "<printed>").map_err(|e| {
            format!(
                "{file}:{}: printed form does not parse: {e}\n{printed}",
                off + 1
            )
        })?;
        verify_module(&m2)
            .map_err(|e| format!("{file}:{}: printed form does not verify: {e}", off + 1))?;
        module_eq(&m, &m2)
            .map_err(|e| format!("{file}:{}: round trip changed the module: {e}", off + 1))?;
        let again = print_module(&m2);
        if again != printed {
            return Err(format!("{file}:{}: printing is not stable", off + 1));
        }
    }
    Ok(())
}

/// Runs one lit file; returns the text to snapshot, or an error if an expectation failed.
pub fn run_lit_file(text: &str, file: &str) -> Result<String, String> {
    let h = parse_header(text)?;
    check_round_trip(text, file)?;
    let out = run_opt(text, file, &h.config, &Registry::with_all());
    if out.ok == h.expect_error {
        return Err(format!(
            "{file}: expected {}, got {}\nstdout:\n{}\nstderr:\n{}",
            if h.expect_error {
                "an error"
            } else {
                "success"
            },
            if out.ok { "success" } else { "an error" },
            out.stdout,
            out.stderr
        ));
    }
    let mut snap = out.stdout;
    if !out.stderr.is_empty() {
        snap.push_str("// ----- stderr -----\n");
        snap.push_str(&out.stderr);
    }
    Ok(snap)
}
