//! Proves that a decode step performs no heap allocation, with a counting global allocator
//! (per-thread counter, so parallel tests do not interfere).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mllm_runtime::bench::{bench_decode_overhead, NoopExecutor, BENCH_DIMS};
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::{ModelDims, Sampler, SamplerConfig, Scheduler, SchedulerConfig};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

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
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`, upheld by our caller.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System` (all our allocations forward to it).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` was returned by `System`; contract of `GlobalAlloc::realloc` upheld by
        // our caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// Allocation counts between consecutive streamed tokens (i.e. per decode step).
fn per_step_allocs(ar_lens: &[usize], sampler: SamplerConfig, max_new: usize) -> Vec<u64> {
    let dims = ModelDims {
        layers: 4,
        kv_heads: 2,
        head_dim: 16,
        context: 128,
        vocab: 1000,
    };
    let exec = NoopExecutor::quantized(&dims, ar_lens);
    let cfg = SchedulerConfig {
        max_new_tokens: max_new,
        eos_ids: vec![],
        prefill: if ar_lens.iter().any(|&s| s > 1) {
            GraphSelect::Auto
        } else {
            GraphSelect::Disabled
        },
        decode: if ar_lens.contains(&1) {
            GraphSelect::Auto
        } else {
            GraphSelect::Disabled
        },
        ..Default::default()
    };
    let mut s = Scheduler::new(exec, cfg).unwrap();
    let mut sampler = Sampler::new(sampler, dims.vocab).unwrap();
    let prompt: Vec<u32> = (1..20).collect();
    let mut counts = Vec::with_capacity(max_new + 1);
    let mut last = None;
    let stats = s
        .generate(&prompt, &mut sampler, |_| {
            let now = allocs();
            if let Some(prev) = last {
                counts.push(now - prev);
            }
            last = Some(allocs());
            true
        })
        .unwrap();
    assert_eq!(stats.generated.len(), max_new);
    counts
}

#[test]
fn decode_steps_do_not_allocate() {
    let greedy = SamplerConfig::greedy();
    let sampling = SamplerConfig {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.9,
        repetition_penalty: 1.1,
        seed: 1,
    };
    for (ar_lens, cfg) in [
        (&[32usize, 1][..], &greedy),
        (&[1][..], &greedy),
        (&[32, 1][..], &sampling),
        (&[8][..], &sampling),
    ] {
        let counts = per_step_allocs(ar_lens, cfg.clone(), 50);
        assert_eq!(counts.len(), 49);
        assert!(
            counts.iter().all(|&c| c == 0),
            "{ar_lens:?} {cfg:?}: allocations per step {counts:?}"
        );
    }
}

#[test]
fn counter_sees_allocations() {
    // The counter itself works (so a zero above means something).
    let before = allocs();
    let v: Vec<u8> = Vec::with_capacity(10);
    std::hint::black_box(&v);
    assert!(allocs() > before);
}

#[test]
fn bench_layout_28_layers_reports_zero_allocations() {
    let r = bench_decode_overhead(BENCH_DIMS, 200, Some(&allocs)).unwrap();
    println!("{r}");
    assert_eq!(r.steps, 200);
    assert_eq!(r.allocs_per_step, Some(0.0));
}
