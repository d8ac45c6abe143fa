//! A decode step of the CPU executor through the scheduler, with the step extras on (new K/V
//! entries written into the cache inside `execute`, greedy token taken there), allocates
//! nothing: a counting global allocator (every thread, rayon workers included) between the
//! first and the last streamed token of a generation on the tiny synthetic Qwen3.
//! (The only allocations allowed are rayon's injector blocks, one per 63 jobs handed to the
//! pool from outside it; see [`budget`].)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mllm_frontends::qwen3::BuildOptions;
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::DType;
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::{Sampler, SamplerConfig, Scheduler, SchedulerConfig};

static COUNT: AtomicU64 = AtomicU64::new(0);
static ON: AtomicBool = AtomicBool::new(false);

struct Counting;

fn bump() {
    if ON.load(Ordering::Relaxed) {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// only addition is an atomic counter, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as `GlobalAlloc::alloc`, upheld by our caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`, upheld by our caller.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System` (all our allocations forward to it).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` was returned by `System`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Rayon's global injector allocates one block per 63 jobs; each `execute` hands it one.
fn budget(steps: usize) -> u64 {
    (steps / 63 + 1) as u64
}

#[test]
fn decode_steps_with_extras_allocate_nothing() {
    let dir = std::env::temp_dir().join(format!("mllm-extras-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    synth::generate(Preset::Tiny, 3, DType::F32, &dir, &mut |_| {}).unwrap();
    let opts = BuildOptions {
        ar_len: 8,
        context_len: 96,
        num_shards: 1,
    };
    let (_, m) = mllm_tools::quantize::load_module(&dir, None, opts).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let exec = CpuExecutor::new(&m, NumericMode::Float).unwrap();
    let new_tokens = 70;
    let cfg = SchedulerConfig {
        max_new_tokens: new_tokens,
        eos_ids: vec![],
        ..Default::default()
    };
    let mut s = Scheduler::new(exec, cfg).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::greedy(), s.dims().vocab).unwrap();
    let prompt: Vec<u32> = (0..20).map(|i| 1000 + 37 * i).collect();
    let mut seen = 0;
    let st = s
        .generate(&prompt, &mut sampler, |_| {
            seen += 1;
            // From the first token on, every step is a decode step.
            if seen == 1 {
                COUNT.store(0, Ordering::SeqCst);
                ON.store(true, Ordering::SeqCst);
            }
            if seen == new_tokens {
                ON.store(false, Ordering::SeqCst);
            }
            true
        })
        .unwrap();
    assert_eq!(st.generated.len(), new_tokens);
    // The extras were used: the last step's entries are already in the cache.
    assert_eq!(s.kv().n_past(), s.history().len());
    let steps = new_tokens - 1;
    let n = COUNT.load(Ordering::SeqCst);
    println!("{n} allocations over {steps} decode steps");
    assert!(
        n <= budget(steps),
        "{n} allocations over {steps} decode steps"
    );
}
