//! The execute path against the real library: buffers are bound by pointer on every call
//! (results follow the caller's current buffers, not stale ones), sizes are checked exactly,
//! and a steady-state `execute_ordered` / named `execute` performs no heap allocation
//! (counted with a wrapping global allocator). Skips with a note when the library is not
//! installed (`scripts/setup-qnn.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use mllm_qnn_sys::*;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const Q: (f32, i32) = (1.0 / 1024.0, -32768);

/// Expected u16 code of `a + b` with every tensor quantized with `Q`:
/// (qa + off) s + (qb + off) s = (qy + off) s  =>  qy = qa + qb + off.
fn add_codes(a: u16, b: u16) -> u16 {
    (a as i64 + b as i64 + Q.1 as i64).clamp(0, 65535) as u16
}

fn codes(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn execute_binds_current_buffers_and_does_not_allocate() {
    let lib = match QnnLibrary::load(None) {
        Ok(l) => l,
        Err(QnnError::LibraryNotFound { .. }) => {
            println!("QNN library not found; run scripts/setup-qnn.sh (test skipped)");
            return;
        }
        Err(e) => panic!("QNN library present but failed to load: {e}"),
    };
    let backend = Backend::new(&lib).unwrap();
    let device = Device::new(&backend, DeviceTarget::soc(57)).unwrap();
    let ctx = Context::new(&backend, &device, ContextOptions::default()).unwrap();
    let q = Quant::ScaleOffset {
        scale: Q.0,
        offset: Q.1,
    };
    let mut g = GraphBuilder::create(&ctx, "add", GraphOptions::default()).unwrap();
    let spec = |n: &str, k| TensorSpec::new(n, k, DataType::UFixed16, &[1, 8], q.clone());
    let a = g.add_tensor(spec("a", TensorKind::AppWrite)).unwrap();
    let b = g.add_tensor(spec("b", TensorKind::AppWrite)).unwrap();
    let y = g.add_tensor(spec("y", TensorKind::AppRead)).unwrap();
    g.add_node(
        OpSpec::new("add0", "ElementWiseAdd")
            .inputs(&[a, b])
            .outputs(&[y]),
    )
    .unwrap();
    let mut graph = g.finalize().unwrap();

    // Two sets of buffers, alternated: each call must read and write the ones it is given.
    let a1: Vec<u16> = (0..8).map(|i| 32768 + 100 * i).collect();
    let b1: Vec<u16> = (0..8).map(|i| 32768 + 7 * i).collect();
    let a2: Vec<u16> = (0..8).map(|i| 32768 - 50 * i).collect();
    let b2: Vec<u16> = (0..8).map(|i| 33000 + i).collect();
    let (ba1, bb1, ba2, bb2) = (bytes(&a1), bytes(&b1), bytes(&a2), bytes(&b2));
    let mut y1 = vec![0u8; 16];
    let mut y2 = vec![0u8; 16];
    let want1: Vec<u16> = a1.iter().zip(&b1).map(|(x, y)| add_codes(*x, *y)).collect();
    let want2: Vec<u16> = a2.iter().zip(&b2).map(|(x, y)| add_codes(*x, *y)).collect();
    let close = |got: &[u16], want: &[u16]| {
        got.iter()
            .zip(want)
            .all(|(g, w)| (*g as i32 - *w as i32).abs() <= 1)
    };

    // Warm-up call (the library may set up lazily on the first execution).
    graph
        .execute_ordered(&[&ba1, &bb1], &mut [&mut y1])
        .unwrap();
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..20 {
        graph
            .execute_ordered(&[&ba1, &bb1], &mut [&mut y1])
            .unwrap();
        graph
            .execute_ordered(&[&ba2, &bb2], &mut [&mut y2])
            .unwrap();
    }
    let ordered_allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert!(close(&codes(&y1), &want1), "{:?} vs {want1:?}", codes(&y1));
    assert!(close(&codes(&y2), &want2), "{:?} vs {want2:?}", codes(&y2));

    // Named binding, in another order than the graph's.
    y1.fill(0);
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..20 {
        graph
            .execute(
                &[
                    Input {
                        name: "b",
                        data: &bb1,
                    },
                    Input {
                        name: "a",
                        data: &ba1,
                    },
                ],
                &mut [Output {
                    name: "y",
                    data: &mut y1,
                }],
            )
            .unwrap();
    }
    let named_allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert!(close(&codes(&y1), &want1));
    println!(
        "allocations over 40 execute_ordered calls: {ordered_allocs}; over 20 named execute calls: {named_allocs}"
    );
    assert_eq!(ordered_allocs, 0, "execute_ordered allocated");
    assert_eq!(named_allocs, 0, "execute allocated");
    let (calls, t) = graph.execute_stats();
    assert_eq!(calls, 61);
    assert!(t.as_nanos() > 0);

    // Exact sizes: one byte short or long is refused before the library sees it.
    let mut short = vec![0u8; 15];
    let e = graph
        .execute_ordered(&[&ba1, &bb1], &mut [&mut short])
        .unwrap_err();
    assert!(
        matches!(
            e,
            QnnError::BufferSize {
                expected: 16,
                actual: 15,
                ..
            }
        ),
        "{e}"
    );
    let long = vec![0u8; 17];
    assert!(graph
        .execute_ordered(&[&ba1, &long], &mut [&mut y1])
        .is_err());
    assert!(graph
        .execute(
            &[Input {
                name: "a",
                data: &ba1
            }],
            &mut [Output {
                name: "y",
                data: &mut y1
            }]
        )
        .unwrap_err()
        .to_string()
        .contains("'b' not bound"));
    assert_eq!(
        graph.execute_stats().0,
        61,
        "refused calls reach the library"
    );
}
