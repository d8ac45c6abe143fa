//! The QNN executor against the real library, on a small binary that follows the I/O
//! contract with trivial compute ([`write_contract_binary`]: `present_*` are the first cache
//! column of `past_*`, logits the causal mask tiled to the vocabulary), so no model has to
//! be compiled: graph discovery by name, the scheduler's full loop until the cache is full,
//! exact buffer sizes, zero allocations per execute, and every load-time refusal (truncated
//! binary, flipped byte, missing manifest, manifest of another binary, QNN version, SoC).
//!
//! Skips with a note when the QNN libraries are not installed (`scripts/setup-qnn.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mllm_qnn_sys::manifest::{manifest_path, Manifest};
use mllm_runtime::qnn::{write_contract_binary, QnnLoadError};
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::{
    DType, Executor, GraphBindings, ModelDims, QnnExecutor, QnnOptions, Quant, Sampler,
    SamplerConfig, Scheduler, SchedulerConfig, StopReason,
};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// addition is a thread-local counter that does not allocate (const-initialised `Cell<u64>`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as `GlobalAlloc::alloc`, upheld by our caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

const DIMS: ModelDims = ModelDims {
    layers: 2,
    kv_heads: 2,
    head_dim: 4,
    context: 16,
    vocab: 40,
};

/// The binary, built once per test process; `None` without the libraries.
fn binary() -> Option<&'static PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Err(e) = mllm_qnn_sys::QnnLibrary::load(None) {
            println!("QNN libraries not available ({e}); run scripts/setup-qnn.sh (test skipped)");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("qnn_exec_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("model.bin");
        write_contract_binary(&bin, &DIMS, None, 57).unwrap();
        Some(bin)
    })
    .as_ref()
}

fn copy_to(bin: &Path, name: &str) -> PathBuf {
    let dir = bin.parent().unwrap().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("model.bin");
    std::fs::copy(bin, &out).unwrap();
    std::fs::copy(manifest_path(bin), manifest_path(&out)).unwrap();
    out
}

fn open_err(bin: &Path, opts: &QnnOptions) -> QnnLoadError {
    match QnnExecutor::open(bin, opts) {
        Ok(_) => panic!("{} loaded", bin.display()),
        Err(e) => e,
    }
}

#[test]
fn graphs_and_io_come_from_the_binary_by_name() {
    let Some(bin) = binary() else { return };
    let exec = QnnExecutor::open(bin, &QnnOptions::default()).unwrap();
    let g = &exec.graphs()[0];
    assert_eq!(exec.graphs().len(), 1);
    assert_eq!((g.name.as_str(), g.ar_len), ("model.0.s1", 1));
    assert_eq!(g.inputs.len(), 3 + 2 * DIMS.layers);
    assert_eq!(g.outputs.len(), 1 + 2 * DIMS.layers);
    let t = &g.inputs[g.input_index("past_value_1").unwrap()];
    assert_eq!(t.dtype, DType::U8);
    assert_eq!(t.shape, vec![1, 2, 15, 4]);
    // write_contract_binary: value encodings are 0.01 + (100 + l) * 1e-4, offset -128.
    assert_eq!(
        t.quant,
        Quant::PerTensor {
            scale: 0.01 + 101.0 * 1e-4,
            offset: -128
        }
    );
    let lg = &g.outputs[g.output_index("logits").unwrap()];
    assert_eq!((lg.dtype, lg.shape.clone()), (DType::U16, vec![1, 1, 40]));
    let b = GraphBindings::resolve(exec.graphs(), 0, &DIMS).unwrap();
    assert_eq!(b.layers, 0..2);
    assert_eq!(ModelDims::infer(g).unwrap(), DIMS);
    let m = &exec.manifests()[0];
    assert_eq!(m.target.soc_model, Some(57));
    let r = exec.load_report();
    assert_eq!(r.binaries, vec![bin.clone()]);
    assert_eq!(r.bytes, m.binary_size);
    println!("load: {r}");
}

#[test]
fn scheduler_runs_until_the_cache_is_full() {
    let Some(bin) = binary() else { return };
    let exec = QnnExecutor::open(bin, &QnnOptions::default()).unwrap();
    let cfg = SchedulerConfig {
        max_new_tokens: 100,
        eos_ids: vec![],
        prefill: GraphSelect::Disabled,
        ..Default::default()
    };
    let mut s = Scheduler::new(exec, cfg).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::greedy(), DIMS.vocab).unwrap();
    let prompt = [5u32, 6, 7];
    let stats = s.generate(&prompt, &mut sampler, |_| true).unwrap();
    assert_eq!(stats.stop, Some(StopReason::CacheFull));
    // Every cache slot is used: C tokens processed, the last sampled one never fed back.
    assert_eq!(prompt.len() + stats.generated.len(), DIMS.context + 1);
    // The logits are the mask row tiled to the vocabulary: after the first token the
    // row attends to cache column 0, so greedy picks id 0 (first maximum) every time.
    assert!(
        stats.generated.iter().all(|&t| t == 0),
        "{:?}",
        stats.generated
    );
    let o = s.executor().overhead();
    assert_eq!(o.calls as usize, prompt.len() + stats.generated.len() - 1);
    assert!(o.library_time <= o.execute_time);
    println!(
        "{} steps, executor overhead {:?}/call outside graphExecute",
        o.calls,
        o.per_call()
    );
    // A prompt longer than the context is refused before anything runs.
    s.reset();
    let long: Vec<u32> = (0..DIMS.context as u32 + 1).collect();
    let e = s.generate(&long, &mut sampler, |_| true).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    assert_eq!(s.executor().overhead().calls, o.calls);
}

#[test]
fn execute_checks_sizes_and_does_not_allocate() {
    let Some(bin) = binary() else { return };
    let mut exec = QnnExecutor::open(bin, &QnnOptions::default()).unwrap();
    let g = exec.graphs()[0].clone();
    let ins: Vec<Vec<u8>> = g.inputs.iter().map(|t| vec![0u8; t.byte_size()]).collect();
    let mut outs: Vec<Vec<u8>> = g.outputs.iter().map(|t| vec![0u8; t.byte_size()]).collect();
    let i: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
    // Mask: attend column 3 only; logits must be that row tiled (65535 at 3, 19, 35).
    let mut ins2 = ins.clone();
    let mi = g.input_index("causal_mask").unwrap();
    ins2[mi][6..8].copy_from_slice(&u16::MAX.to_le_bytes());
    let i2: Vec<&[u8]> = ins2.iter().map(|v| v.as_slice()).collect();
    {
        let mut o: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
        exec.execute(0, &i2, &mut o).unwrap(); // warm-up
        let before = allocs();
        for _ in 0..50 {
            exec.execute(0, &i2, &mut o).unwrap();
        }
        let n = allocs() - before;
        println!("allocations over 50 execute calls: {n}");
        assert_eq!(n, 0);
    }
    let li = g.output_index("logits").unwrap();
    let hot: Vec<usize> = outs[li]
        .chunks_exact(2)
        .enumerate()
        .filter(|(_, c)| u16::from_le_bytes([c[0], c[1]]) == u16::MAX)
        .map(|(j, _)| j)
        .collect();
    assert_eq!(hot, vec![3, 19, 35]);
    // One byte short: refused before the library sees it (it would overrun).
    let last = outs.len() - 1;
    outs[last].pop();
    let mut o: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
    let e = exec.execute(0, &i, &mut o).unwrap_err().to_string();
    assert!(e.contains(&g.outputs[last].name), "{e}");
    let e = exec.execute(7, &i, &mut o).unwrap_err().to_string();
    assert!(e.contains("no such graph"), "{e}");
}

#[test]
fn load_refusals_name_the_problem() {
    let Some(bin) = binary() else { return };
    let opts = QnnOptions::default();

    let b = copy_to(bin, "truncated");
    let bytes = std::fs::read(&b).unwrap();
    std::fs::write(&b, &bytes[..bytes.len() - 100]).unwrap();
    let msg = open_err(&b, &opts).to_string();
    assert!(
        msg.contains("truncated") && msg.contains("model.bin"),
        "{msg}"
    );

    let b = copy_to(bin, "flipped");
    let mut bytes = std::fs::read(&b).unwrap();
    let k = bytes.len() / 3;
    bytes[k] ^= 1;
    std::fs::write(&b, &bytes).unwrap();
    let msg = open_err(&b, &opts).to_string();
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");

    let b = copy_to(bin, "no-manifest");
    std::fs::remove_file(manifest_path(&b)).unwrap();
    assert!(matches!(
        open_err(&b, &opts),
        QnnLoadError::MissingManifest { .. }
    ));

    // Manifest edits (the binary itself untouched, so its SHA-256 still matches).
    let edit = |name: &str, f: &dyn Fn(&mut Manifest)| {
        let b = copy_to(bin, name);
        let mut m = Manifest::read(&manifest_path(&b)).unwrap();
        f(&mut m);
        std::fs::write(manifest_path(&b), m.to_json()).unwrap();
        open_err(&b, &opts)
    };
    let e = edit("renamed", &|m| {
        m.graphs[0].outputs[0].name = "scores".into()
    });
    assert!(matches!(e, QnnLoadError::Mismatch { .. }), "{e}");
    let e = edit("version", &|m| m.qnn.backend_api[1] += 1).to_string();
    assert!(e.contains("disagree") && e.contains("backend"), "{e}");
    let e = edit("shard", &|m| {
        m.shards.push(mllm_qnn_sys::manifest::ManifestShard {
            binary: "model.1.bin".into(),
            binary_size: 1,
            sha256: "00".into(),
        })
    })
    .to_string();
    assert!(e.contains("model.1.bin"), "{e}");
    if cfg!(target_arch = "x86_64") {
        // The emulator crashes on weight-shared binaries: refused before QNN sees them.
        let e = edit("shared", &|m| m.weight_sharing = true);
        assert!(
            matches!(e, QnnLoadError::WeightSharedOnEmulator { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("--no-weight-sharing"), "{e}");
    }

    let e = open_err(
        bin,
        &QnnOptions {
            device_soc: Some(43),
            ..Default::default()
        },
    );
    assert!(matches!(e, QnnLoadError::Soc { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("SM8650") && msg.contains("SM8550"), "{msg}");
}
