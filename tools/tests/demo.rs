//! `mllm demo`, the README's first quick-start command, run as a user runs it: the whole flow
//! (synthesize, quantize, NPU passes, compile, generate) must succeed and print its stats.
//!
//! With the QNN libraries installed (`scripts/setup-qnn.sh`, as CI does) the demo compiles a
//! context binary and generates through the QNN executor in the HTP emulator; without them it
//! generates on the CPU reference, and the test checks that path instead. Besides the default
//! (ar_len 32), ar_len 16 runs too: there the HTP cannot execute a select with a constant mask
//! fill, so `mask-fill-const` must leave those selects alone (it failed at graphExecute when
//! it did not).

use std::path::Path;
use std::process::Command;

fn run_demo(dir: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mllm"))
        .arg("demo")
        .arg("-o")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run mllm demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "mllm demo {extra:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn demo_runs_end_to_end_and_prints_stats() {
    let qnn = mllm_qnn_sys::QnnLibrary::load(None).is_ok();
    let base = std::env::temp_dir().join(format!("mllm-demo-test-{}", std::process::id()));
    for (name, extra) in [("default", &[][..]), ("s16", &["--ar_len", "16"][..])] {
        let dir = base.join(name);
        let (stdout, stderr) = run_demo(&dir, extra);
        let all = format!("{stdout}{stderr}");
        println!("== mllm demo {extra:?}\n{all}");
        assert!(
            all.contains("prefill") && all.contains("tok/s") && all.contains("time to first token"),
            "no stats printed:\n{all}"
        );
        assert!(
            all.contains("16 generated"),
            "16 new tokens expected:\n{all}"
        );
        if qnn {
            assert!(
                dir.join("model.bin").is_file() && dir.join("model.bin.json").is_file(),
                "no context binary in {}",
                dir.display()
            );
            assert!(
                all.contains("through the QNN executor"),
                "the binary did not run on QNN:\n{all}"
            );
        } else {
            println!("QNN libraries not installed: the CPU reference path was checked");
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
