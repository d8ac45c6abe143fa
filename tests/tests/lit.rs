//! The file-driven tests: every `tests/lit/<pass>/*.mlir` runs through the
//! `mllm-opt` driver; its output is compared with an insta snapshot
//! (`tests/lit/<pass>/snapshots/`), and every input is round-tripped and verified.

use std::path::{Path, PathBuf};

fn lit_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lit");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "snapshots") {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "mlir") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn lit() {
    let files = lit_files();
    assert!(
        files.len() >= 25,
        "expected at least 25 lit files, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("lit file is readable");
        let snap = match mllm_tests::run_lit_file(&text, &rel) {
            Ok(s) => s,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let dir = path
            .parent()
            .expect("lit file has a parent")
            .join("snapshots");
        let name = path
            .file_stem()
            .expect("lit file has a name")
            .to_string_lossy()
            .to_string();
        let r = std::panic::catch_unwind(|| {
            insta::with_settings!({
                snapshot_path => dir.clone(),
                prepend_module_to_snapshot => false,
                input_file => path.clone(),
                omit_expression => true,
            }, {
                insta::assert_snapshot!(name.clone(), snap.clone());
            });
        });
        if r.is_err() {
            failures.push(format!(
                "{rel}: snapshot mismatch (run `cargo insta review`)"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} lit failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
