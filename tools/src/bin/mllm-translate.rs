//! `mllm-translate`: import a Qwen3 checkpoint (safetensors or .mllm v2) into the textual IR.

use std::process::ExitCode;

use clap::Parser;
use mllm_tools::translate::{main_with, TranslateArgs};

/// Import a Qwen3 checkpoint into the compiler's textual IR.
///
/// Builds two graphs sharing one set of weights: prefill model.0.s{N} (N = --ar-len) and decode
/// model.0.s1, with the hybrid-mode I/O contract (sequence, position_ids, causal_mask,
/// past_key_*/past_value_* -> logits, present_key_*/present_value_*). No weights are copied: the
/// module attribute `weights` records the absolute path of the checkpoint, whose tensors the
/// `builtin.weight` ops name.
///
/// Examples:
///   mllm-translate --from-safetensors Qwen3-1.7B/ -o model.mlir
///   mllm-translate --from-mllm qwen3.mllm -c config.json --ar-len 128 --context-len 2048 -o model.mlir
#[derive(Debug, Parser)]
#[command(name = "mllm-translate", version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    args: TranslateArgs,
}

/// `mllm-translate --to-qnn model.mlir -o model.bin`: textual IR -> QNN context binary.
#[derive(Debug, Parser)]
#[command(name = "mllm-translate --to-qnn", version)]
struct QnnCli {
    #[command(flatten)]
    args: mllm_tools::qnn::ToQnnArgs,
}

fn main() -> ExitCode {
    if std::env::args_os()
        .skip(1)
        .any(|a| a == "--to-qnn" || a.to_string_lossy().starts_with("--to-qnn="))
    {
        return report(QnnCli::try_parse().map(|c| mllm_tools::qnn::translate_to_qnn(&c.args)));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help / --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, like every other failure.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see --help)");
            return ExitCode::from(1);
        }
    };
    match main_with(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// Exit status and one-line error output of a parsed-and-run command.
fn report(r: Result<anyhow::Result<()>, clap::Error>) -> ExitCode {
    match r {
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see --to-qnn --help)");
            ExitCode::from(1)
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, skipping causes a message already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if msg.contains(&c) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&c);
    }
    msg.replace('\n', " ")
}
