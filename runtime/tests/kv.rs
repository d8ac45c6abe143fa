//! KV cache manager against a naive reference: a map position -> entry, from which the
//! expected cache buffers and mask are rebuilt from scratch at every step.

use mllm_runtime::{DType, KvCache, ModelDims};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const L: usize = 2;
const H: usize = 3;
const D: usize = 5;

/// Bytes of the element (layer, head, d) of the K (`v == false`) or V entry at position `pos`.
fn elem(v: bool, l: usize, h: usize, d: usize, pos: usize, e: usize) -> Vec<u8> {
    let x = (pos * 131 + l * 29 + h * 7 + d * 3 + v as usize * 61) as u32;
    if e == 4 {
        (x as f32).to_le_bytes().to_vec()
    } else {
        vec![(x % 251) as u8]
    }
}

/// Present K and V `[1, H, s, D]` of layer `l` for positions `start..start+s`
/// (all S rows filled, the pad rows too).
fn present(l: usize, start: usize, s: usize, e: usize) -> (Vec<u8>, Vec<u8>) {
    let mut k = vec![0u8; H * D * s * e];
    let mut v = vec![0u8; H * D * s * e];
    for h in 0..H {
        for d in 0..D {
            for i in 0..s {
                let at = ((h * s + i) * D + d) * e;
                k[at..at + e].copy_from_slice(&elem(false, l, h, d, start + i, e));
                v[at..at + e].copy_from_slice(&elem(true, l, h, d, start + i, e));
            }
        }
    }
    (k, v)
}

/// Compares the cache with what a naive implementation holds after `n_past` positions.
fn check(kv: &KvCache, c: usize, e: usize, ctx: &str) {
    let s = kv.ar_len();
    let w = c - s;
    let np = kv.n_past();
    assert_eq!(kv.stride(), w, "{ctx}");
    for l in 0..L {
        let kb = kv.key(l);
        let vb = kv.value(l);
        assert_eq!(kb.len(), H * D * w * e, "{ctx}");
        assert_eq!(vb.len(), H * D * w * e, "{ctx}");
        for h in 0..H {
            for d in 0..D {
                for j in 0..np {
                    let at = ((h * w + j) * D + d) * e;
                    assert_eq!(
                        &kb[at..at + e],
                        &elem(false, l, h, d, j, e)[..],
                        "{ctx} K l{l} h{h} d{d} j{j}"
                    );
                    assert_eq!(
                        &vb[at..at + e],
                        &elem(true, l, h, d, j, e)[..],
                        "{ctx} V l{l} h{h} d{d} j{j}"
                    );
                }
            }
        }
    }
    for i in 0..s {
        for j in 0..c {
            let expect = j < np || (j >= w && j - w <= i);
            assert_eq!(kv.mask_attends(i, j), expect, "{ctx} mask row {i} col {j}");
        }
    }
}

fn dims(c: usize) -> ModelDims {
    ModelDims {
        layers: L,
        kv_heads: H,
        head_dim: D,
        context: c,
        vocab: 1,
    }
}

/// Runs a step with ar_len `s` producing `n` real entries, then commits them into the layout of
/// the graph that runs next (ar_len `next`), as the scheduler does.
fn step(kv: &mut KvCache, s: usize, n: usize, e: usize, next: usize) {
    kv.set_layout(s).unwrap();
    let np = kv.n_past();
    let bufs: Vec<(Vec<u8>, Vec<u8>)> = (0..L).map(|l| present(l, np, s, e)).collect();
    kv.set_layout(next).unwrap();
    kv.commit(s, n, |l| (&bufs[l].0[..], &bufs[l].1[..]))
        .unwrap();
}

#[test]
fn prefill_chunks_then_decode_to_the_last_slot() {
    for (e, mask) in [(1usize, DType::U16), (4, DType::F32)] {
        for c in [64usize, 50] {
            for s in [1usize, 4, 32] {
                let mut kv = KvCache::new(&dims(c), e, mask, &[s, 1]).unwrap();
                check(&kv, c, e, "empty");
                // Prefill 37 tokens in chunks of s (last chunk partial), while they fit.
                let mut done = 0;
                while done < 37 && kv.n_past() + s <= c {
                    let n = s.min(37 - done);
                    // Next graph: another chunk if one fits after this commit, else decode.
                    let next = if done + n < 37 && done + n + s <= c {
                        s
                    } else {
                        1
                    };
                    step(&mut kv, s, n, e, next);
                    done += n;
                    check(
                        &kv,
                        c,
                        e,
                        &format!("e{e} C{c} S{s} after prefill chunk, n_past {done}"),
                    );
                }
                // Decode to the end: the decode layout holds C-1 positions.
                while kv.n_past() < c - 1 {
                    step(&mut kv, 1, 1, e, 1);
                    check(
                        &kv,
                        c,
                        e,
                        &format!("e{e} C{c} S{s} decode n_past {}", kv.n_past()),
                    );
                }
                assert_eq!(kv.n_past(), c - 1);
                assert!(!kv.has_room(1));
                let bufs: Vec<(Vec<u8>, Vec<u8>)> =
                    (0..L).map(|l| present(l, c - 1, 1, e)).collect();
                let err = kv.commit(1, 1, |l| (&bufs[l].0[..], &bufs[l].1[..]));
                assert!(err.unwrap_err().to_string().contains("cache full"));
                if s > 1 {
                    assert!(
                        kv.set_layout(s).is_err(),
                        "shrinking below n_past must fail"
                    );
                }
                check(&kv, c, e, "after refused commit");
            }
        }
    }
}

#[test]
fn random_walk_with_restrides_both_ways_and_truncation() {
    let c = 64;
    for (e, mask) in [
        (1usize, DType::U16),
        (4, DType::F32),
        (1, DType::U8),
        (4, DType::F16),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(e as u64 * 7 + mask.size() as u64);
        let lens = [1usize, 4, 32];
        let mut kv = KvCache::new(&dims(c), e, mask, &lens).unwrap();
        for it in 0..400 {
            let choice = rng.gen_range(0..10);
            if choice == 0 {
                let to = rng.gen_range(0..=kv.n_past());
                kv.truncate(to).unwrap();
            } else if choice == 1 && kv.n_past() > 48 {
                kv.reset();
            } else {
                let fitting: Vec<usize> = lens
                    .iter()
                    .copied()
                    .filter(|&s| kv.n_past() + s <= c)
                    .collect();
                if fitting.is_empty() {
                    kv.reset();
                    continue;
                }
                let s = fitting[rng.gen_range(0..fitting.len())];
                let n = rng.gen_range(1..=s);
                // Commit into the layout of a graph that can still run afterwards.
                let next: Vec<usize> = lens
                    .iter()
                    .copied()
                    .filter(|&t| kv.n_past() + n + t <= c)
                    .collect();
                if next.is_empty() {
                    continue;
                }
                let t = next[rng.gen_range(0..next.len())];
                step(&mut kv, s, n, e, t);
            }
            check(&kv, c, e, &format!("e{e} {mask} iteration {it}"));
        }
    }
}

#[test]
fn layout_errors() {
    assert!(KvCache::new(&dims(8), 1, DType::U16, &[]).is_err());
    assert!(KvCache::new(&dims(8), 1, DType::U16, &[9]).is_err());
    let mut kv = KvCache::new(&dims(8), 1, DType::U16, &[4, 1]).unwrap();
    assert!(
        kv.set_layout(2).is_ok(),
        "an ar_len between the allocated ones fits"
    );
    assert!(
        kv.set_layout(5).is_err(),
        "larger than any allocated ar_len"
    );
    assert!(kv.truncate(1).is_err());
    let bad = vec![0u8; 3];
    assert!(kv.commit_layer(0, &bad, &bad, 2, 1).is_err());
    assert!(kv.commit_layer(9, &[0; 30], &[0; 30], 2, 1).is_err());
}

#[test]
fn empty_commits_and_a_full_width_chunk() {
    // ar_len == C: the layout holds no cached rows (stride 0); a commit of 0 entries is a
    // no-op, a commit of 1 is refused, neither panics.
    let c = 8;
    let mut kv = KvCache::new(&dims(c), 1, DType::U16, &[c, 1]).unwrap();
    assert_eq!(kv.stride(), 0);
    let (k, v) = present(0, 0, c, 1);
    kv.commit(c, 0, |_| (&k[..], &v[..])).unwrap();
    assert_eq!(kv.n_past(), 0);
    assert!(kv.commit(c, 1, |_| (&k[..], &v[..])).is_err());
    // After switching to decode, the chunk's first 3 entries land in rows 0..3 of each head.
    kv.set_layout(1).unwrap();
    let bufs: Vec<(Vec<u8>, Vec<u8>)> = (0..L).map(|l| present(l, 0, c, 1)).collect();
    kv.commit(c, 3, |l| (&bufs[l].0[..], &bufs[l].1[..]))
        .unwrap();
    check(&kv, c, 1, "after a full-width chunk");
    kv.commit(c, 0, |l| (&bufs[l].0[..], &bufs[l].1[..]))
        .unwrap();
    assert_eq!(kv.n_past(), 3);
}
