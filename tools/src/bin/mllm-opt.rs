//! `mllm-opt`: run pass pipelines on textual IR.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, ValueEnum};
use mllm_passes::driver::{run_opt, Emit, OptConfig};
use mllm_passes::{PassFilter, Registry};

#[derive(Clone, Copy, ValueEnum)]
enum EmitArg {
    /// Textual IR.
    Mlir,
    /// Graphviz dot of the functions (or of --func).
    Dot,
}

/// Runs an MLIR-style pass pipeline on a module in the textual IR form.
///
/// Diagnostics go to stderr as `file:line:col: error: ...`; the exit code is 1 on any
/// error. IR dumps (`--print-ir-*`) and `--timing` also go to stderr.
#[derive(Parser)]
#[command(name = "mllm-opt", version)]
struct Args {
    /// Input file (`-` or nothing for stdin).
    input: Option<PathBuf>,
    /// Pass pipeline, e.g. `builtin.module(func.func(canonicalize,cse,dce))`.
    #[arg(long = "pass-pipeline", value_name = "PIPELINE")]
    pass_pipeline: Option<String>,
    /// Output file (default stdout). Written atomically.
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the IR before the named passes (comma-separated).
    #[arg(long = "print-ir-before", value_delimiter = ',', value_name = "PASS")]
    print_ir_before: Vec<String>,
    /// Print the IR after the named passes (comma-separated).
    #[arg(long = "print-ir-after", value_delimiter = ',', value_name = "PASS")]
    print_ir_after: Vec<String>,
    /// Print the IR before every pass.
    #[arg(long = "print-ir-before-all")]
    print_ir_before_all: bool,
    /// Print the IR after every pass.
    #[arg(long = "print-ir-after-all")]
    print_ir_after_all: bool,
    /// Only print "after" dumps when the pass changed the IR (implies after-all when no other after filter is given).
    #[arg(long = "print-ir-after-change")]
    print_ir_after_change: bool,
    /// Print the IR after a pass fails.
    #[arg(long = "print-ir-after-failure")]
    print_ir_after_failure: bool,
    /// Verify the IR after every pass that changed it.
    #[arg(long = "verify-each", default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    verify_each: bool,
    /// Split the input at `// -----` lines and process each chunk separately.
    #[arg(long = "split-input-file")]
    split_input_file: bool,
    /// Print per-pass wall time and pass statistics to stderr.
    #[arg(long)]
    timing: bool,
    /// List the registered passes and pipelines, with their options, and exit.
    #[arg(long = "list-passes")]
    list_passes: bool,
    /// What to emit.
    #[arg(long, value_enum, default_value = "mlir")]
    emit: EmitArg,
    /// With --emit=dot: the function to draw (default: all).
    #[arg(long = "func", value_name = "NAME")]
    func: Option<String>,
}

fn filter(all: bool, names: &[String]) -> PassFilter {
    if all {
        PassFilter::All
    } else if names.is_empty() {
        PassFilter::None
    } else {
        PassFilter::Named(names.to_vec())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let registry = Registry::with_all();
    if args.list_passes {
        print!("{}", registry.describe());
        return ExitCode::SUCCESS;
    }
    let (text, file) = match &args.input {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (Ok(t), p.display().to_string()),
            Err(e) => (Err(e), p.display().to_string()),
        },
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: error: cannot read input: {e}");
            return ExitCode::from(1);
        }
    };
    let cfg = OptConfig {
        pipeline: args.pass_pipeline.clone(),
        print_before: filter(args.print_ir_before_all, &args.print_ir_before),
        print_after: filter(args.print_ir_after_all, &args.print_ir_after),
        after_change: args.print_ir_after_change,
        after_failure: args.print_ir_after_failure,
        verify_each: args.verify_each,
        split_input_file: args.split_input_file,
        timing: args.timing,
        emit: match args.emit {
            EmitArg::Mlir => Emit::Mlir,
            EmitArg::Dot => Emit::Dot,
        },
        dot_function: args.func.clone(),
    };
    let out = run_opt(&text, &file, &cfg, &registry);
    // Diagnostics first, so the first line of stderr is the first error.
    eprint!("{}", out.stderr);
    let written = match &args.output {
        Some(path) if out.ok || cfg.split_input_file => {
            mllm_tools::translate::write_output(path, out.stdout.as_bytes())
        }
        Some(_) => Ok(()),
        None => std::io::stdout()
            .write_all(out.stdout.as_bytes())
            .map_err(anyhow::Error::from),
    };
    if let Err(e) = written {
        eprintln!("error: cannot write output: {e:#}");
        return ExitCode::from(1);
    }
    if out.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn read_stdin() -> (std::io::Result<String>, String) {
    let mut s = String::new();
    let r = std::io::stdin().read_to_string(&mut s).map(|_| s);
    (r, "<stdin>".into())
}
