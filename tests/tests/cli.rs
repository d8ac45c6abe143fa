//! Smoke tests of the real `mllm-opt` binary (package `mllm-tools`): input from a
//! file and from stdin, atomic `-o`, exit codes and the first diagnostic line,
//! pipeline errors, `--list-passes`, `--help`, `--timing`, `--split-input-file`,
//! `--emit=dot`, `--verify-each=false`.
//!
//! The binary belongs to another package, so `CARGO_BIN_EXE_*` is not available: it
//! is looked up next to this test's own executable (`target/<profile>/mllm-opt`) and
//! built with `cargo build -p mllm-tools --bin mllm-opt` first. If it cannot be built
//! (e.g. another crate of the workspace is broken), every test prints a note and
//! passes without checking anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use mllm_ir::parse::parse_verified;

fn profile_dir() -> Option<PathBuf> {
    // target/<profile>/deps/cli-<hash> -> target/<profile>
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// Path of a fresh `mllm-opt`, or `None` (with a note) if it cannot be built.
fn binary() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = profile_dir()?;
        let bin = dir.join(format!("mllm-opt{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "mllm-tools", "--bin", "mllm-opt"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let built = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !built && bin.exists() {
            eprintln!(
                "note: `cargo build -p mllm-tools --bin mllm-opt` failed; testing the existing {}",
                bin.display()
            );
        }
        if bin.exists() {
            Some(bin)
        } else {
            eprintln!("note: mllm-opt could not be built; skipping the CLI smoke tests");
            None
        }
    })
    .as_deref()
}

/// Runs `mllm-opt` with `args` and optional stdin.
fn run(args: &[&str], stdin: Option<&str>) -> Option<Output> {
    let bin = binary()?;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mllm-opt starts");
    {
        let mut si = child.stdin.take().expect("stdin is piped");
        if let Some(s) = stdin {
            // The tool may exit before reading its input (e.g. on a bad flag).
            let _ = si.write_all(s.as_bytes());
        }
    }
    Some(child.wait_with_output().expect("mllm-opt runs"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mllm-opt-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// Checks `line` is `<file>:<line>:<col>: error: ...` and returns (line, col).
fn diag_position(line: &str, file: &str) -> (u32, u32) {
    let rest = line
        .strip_prefix(file)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or_else(|| panic!("diagnostic does not start with '{file}:': {line}"));
    let mut parts = rest.splitn(3, ':');
    let l = parts.next().and_then(|s| s.parse().ok());
    let c = parts.next().and_then(|s| s.parse().ok());
    let tail = parts.next().unwrap_or("");
    match (l, c) {
        (Some(l), Some(c)) if tail.starts_with(" error: ") => (l, c),
        _ => panic!("not '{file}:LINE:COL: error: ...': {line}"),
    }
}

const DUP: &str = "func.func @f(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = nn.neg %x : tensor<2x3xf32>
  %1 = nn.neg %x : tensor<2x3xf32>
  %2 = nn.add %0, %1 : tensor<2x3xf32>
  func.return %2
}
";

const CSE: &str = "--pass-pipeline=builtin.module(func.func(cse))";

#[test]
fn file_and_stdin_give_the_same_result() {
    let d = scratch("file-stdin");
    let input = d.join("in.mlir");
    std::fs::write(&input, DUP).expect("write input");
    let Some(from_file) = run(&[input.to_str().expect("utf-8 path"), CSE], None) else {
        return;
    };
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    let text = stdout(&from_file);
    let m = parse_verified(&text, "<stdout>").expect("output is valid IR");
    assert_eq!(m.num_ops(), 3, "cse merges the two negs:\n{text}");
    assert_eq!(text.matches("nn.neg").count(), 1, "{text}");
    for args in [vec![CSE], vec!["-", CSE]] {
        let o = run(&args, Some(DUP)).expect("binary exists");
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), text, "stdin ({args:?}) and file input differ");
    }
    // Without a pipeline the module is printed unchanged (canonical form).
    let o = run(&[], Some(DUP)).expect("binary exists");
    assert!(o.status.success());
    assert_eq!(stdout(&o).matches("nn.neg").count(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn output_file_is_written_atomically() {
    let d = scratch("output");
    let input = d.join("in.mlir");
    std::fs::write(&input, DUP).expect("write input");
    let out = d.join("out.mlir");
    let inp = input.to_str().expect("utf-8 path");
    let Some(o) = run(&[inp, CSE, "-o", out.to_str().expect("utf-8 path")], None) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "with -o nothing goes to stdout");
    let written = std::fs::read_to_string(&out).expect("output written");
    let reference = run(&[inp, CSE], None).expect("binary exists");
    assert_eq!(
        written,
        stdout(&reference),
        "-o must write what stdout would show"
    );
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .expect("list scratch dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["in.mlir", "out.mlir"],
        "a temporary file was left behind"
    );
    // Overwriting an existing output replaces it completely.
    std::fs::write(&out, "x".repeat(100_000)).expect("prefill");
    let o = run(&[inp, CSE, "-o", out.to_str().expect("utf-8 path")], None).expect("binary exists");
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&out).expect("output"), written);
    // On an error the output file is not touched.
    let bad = d.join("bad.mlir");
    std::fs::write(&bad, "func.func @f(").expect("write bad input");
    let o = run(
        &[
            bad.to_str().expect("utf-8 path"),
            "-o",
            out.to_str().expect("utf-8 path"),
        ],
        None,
    )
    .expect("binary exists");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).expect("output"), written);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn parse_and_verify_errors_exit_1_with_a_located_first_line() {
    let d = scratch("errors");
    // Parse error on line 3 (unknown op), col 8.
    let parse = d.join("parse.mlir");
    std::fs::write(
        &parse,
        "func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n  // comment\n  %0 = nn.nope %x : tensor<2xf32>\n  func.return %0\n}\n",
    )
    .expect("write");
    // Verify error on line 2: wrong result shape.
    let verify = d.join("verify.mlir");
    std::fs::write(
        &verify,
        "func.func @f(%x: tensor<2xf32>) -> (tensor<3xf32>) {\n  %0 = nn.neg %x : tensor<3xf32>\n  func.return %0\n}\n",
    )
    .expect("write");
    for (path, line, col) in [(&parse, 3, 8), (&verify, 2, 3)] {
        let p = path.to_str().expect("utf-8 path");
        let Some(o) = run(&[p], None) else { return };
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(o.stdout.is_empty(), "no module on error: {}", stdout(&o));
        let err = stderr(&o);
        let first = err.lines().next().expect("a diagnostic");
        assert_eq!(diag_position(first, p), (line, col), "{first}");
    }
    // From stdin the file is called <stdin>.
    let o = run(
        &[],
        Some("func.func @f(%x: tensor<2xf33>) {\n  func.return\n}\n"),
    )
    .expect("binary exists");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        diag_position(err.lines().next().expect("a diagnostic"), "<stdin>"),
        (1, 27)
    );
    // A missing input file is an error naming the file.
    let missing = d.join("missing.mlir");
    let o = run(&[missing.to_str().expect("utf-8 path")], None).expect("binary exists");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(missing.to_str().expect("utf-8 path")),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn pipeline_errors_point_into_the_pipeline() {
    let cases = [
        // (pipeline, expected column, expected text)
        (
            "builtin.module(func.func(cse,dcee))",
            30,
            "unknown pass 'dcee'",
        ),
        (
            "builtin.module(cse)",
            16,
            "did you mean to nest under func.func?",
        ),
        ("builtin.module(func.func(cse)", 1, "unbalanced parentheses"),
        ("cse", 1, "expected '(' after 'cse'"),
        (
            "builtin.module(func.func(canonicalize{max-iterations=x}))",
            26,
            "expects an unsigned integer",
        ),
    ];
    for (p, col, text) in cases {
        let arg = format!("--pass-pipeline={p}");
        let Some(o) = run(&[&arg], Some(DUP)) else {
            return;
        };
        assert_eq!(o.status.code(), Some(1), "{p}");
        let err = stderr(&o);
        let first = err.lines().next().expect("a diagnostic");
        assert_eq!(
            diag_position(first, "<pass-pipeline>"),
            (1, col),
            "{p}: {first}"
        );
        assert!(first.contains(text), "{p}: {first}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn list_passes_and_help() {
    let Some(o) = run(&["--list-passes"], None) else {
        return;
    };
    assert!(o.status.success());
    let s = stdout(&o);
    for name in ["cse", "dce", "canonicalize", "cleanup", "max-iterations"] {
        assert!(s.contains(name), "--list-passes lacks {name}:\n{s}");
    }
    let o = run(&["--help"], None).expect("binary exists");
    assert!(o.status.success());
    let s = stdout(&o);
    for flag in [
        "--pass-pipeline",
        "--print-ir-after-all",
        "--print-ir-after-change",
        "--print-ir-after-failure",
        "--verify-each",
        "--split-input-file",
        "--timing",
        "--list-passes",
        "--emit",
        "-o",
    ] {
        assert!(s.contains(flag), "--help lacks {flag}:\n{s}");
    }
    let o = run(&["--no-such-flag"], None).expect("binary exists");
    assert!(!o.status.success(), "unknown flags are rejected");
}

#[test]
fn timing_reports_every_pass() {
    let Some(o) = run(
        &[
            "--timing",
            "--pass-pipeline=builtin.module(func.func(canonicalize,cse,dce))",
        ],
        Some(DUP),
    ) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Pass execution timing report"), "{err}");
    for pass in ["canonicalize", "cse", "dce", "Total"] {
        assert!(
            err.lines().any(|l| l.trim_end().ends_with(pass)),
            "no timing row for {pass}:\n{err}"
        );
    }
    // The IR still goes to stdout.
    parse_verified(&stdout(&o), "<stdout>").expect("output is valid IR");
}

#[test]
fn split_input_file_separates_chunks() {
    let input = format!("{DUP}// -----\n{DUP}// -----\n{DUP}");
    let Some(o) = run(&["--split-input-file", CSE], Some(&input)) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    let chunks: Vec<&str> = s.split("// -----\n").collect();
    assert_eq!(chunks.len(), 3, "{s}");
    for c in chunks {
        let m = parse_verified(c, "<chunk>").expect("every chunk is a module");
        assert_eq!(m.num_ops(), 3, "{c}");
    }
    // An error in the second chunk is reported at its line in the whole file, and the
    // other chunks are still processed.
    let bad =
        "func.func @g(%x: tensor<2xf32>) {\n  %0 = nn.bogus %x : tensor<2xf32>\n  func.return\n}\n";
    let input = format!("{DUP}// -----\n{bad}// -----\n{DUP}");
    let o = run(&["--split-input-file", CSE], Some(&input)).expect("binary exists");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let first = err.lines().next().expect("a diagnostic");
    let dup_lines = DUP.lines().count() as u32;
    assert_eq!(
        diag_position(first, "<stdin>"),
        (dup_lines + 3, 8),
        "{first}"
    );
    assert_eq!(
        stdout(&o).matches("func.func @f").count(),
        2,
        "{}",
        stdout(&o)
    );
}

#[test]
fn emit_dot_and_verify_each_false() {
    let Some(o) = run(&["--emit=dot"], Some(DUP)) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.starts_with("digraph \"f\" {"), "{s}");
    assert!(s.trim_end().ends_with('}'), "{s}");
    assert_eq!(s.matches("[label=\"nn.neg\"]").count(), 2, "{s}");
    assert_eq!(
        s.matches(" -> ").count(),
        5,
        "one edge per use (2 negs, 2 add operands, 1 return):\n{s}"
    );
    let o = run(&["--emit=dot", "--func=nope"], Some(DUP)).expect("binary exists");
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["--verify-each=false", CSE], Some(DUP)).expect("binary exists");
    assert!(o.status.success(), "{}", stderr(&o));
    let with = run(&[CSE], Some(DUP)).expect("binary exists");
    assert_eq!(stdout(&o), stdout(&with));
    let o = run(&["--verify-each=maybe", CSE], Some(DUP)).expect("binary exists");
    assert!(!o.status.success(), "a non-bool --verify-each is rejected");
}

#[test]
fn ir_dumps_go_to_stderr() {
    let Some(o) = run(
        &[
            "--print-ir-after-all",
            "--print-ir-before=dce",
            "--pass-pipeline=builtin.module(func.func(cse,dce))",
        ],
        Some(DUP),
    ) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("// -----// IR Dump After cse (func.func @f) //----- //"),
        "{err}"
    );
    assert!(
        err.contains("// -----// IR Dump Before dce (func.func @f) //----- //"),
        "{err}"
    );
    assert!(
        err.contains("// -----// IR Dump After dce (func.func @f) //----- //"),
        "{err}"
    );
    assert!(!err.contains("IR Dump Before cse"), "{err}");
    assert!(!stdout(&o).contains("IR Dump"));
}
