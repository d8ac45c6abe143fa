//! Token sampling: greedy, temperature, top-k, top-p, repetition penalty; seeded (ChaCha20).
//!
//! The sampler reads one row of a graph's `logits` output straight from its byte buffer, in the
//! dtype and quantization of the logits [`TensorDesc`]. Pure greedy decoding of an integer
//! (quantized) row takes the argmax of the raw codes — with a positive scale the dequantization
//! `(q + offset) * scale` is monotonic, so no float conversion is needed. Every other mode
//! dequantizes into preallocated scratch; no call allocates.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::error::{Result, RuntimeError};
use crate::executor::{DType, Quant, TensorDesc};

/// Sampling parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` means greedy (argmax).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; `>= 1`
    /// disables.
    pub top_p: f32,
    /// Repetition penalty (CTRL / HF convention: a positive logit of a token already in the
    /// context is divided by it, a negative one multiplied); 1 disables.
    pub repetition_penalty: f32,
    /// RNG seed.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig::greedy()
    }
}

impl SamplerConfig {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }

    /// True when this configuration is plain argmax over the raw logits.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 && self.repetition_penalty == 1.0
    }
}

/// A seeded sampler with scratch space for a vocabulary of fixed size.
pub struct Sampler {
    cfg: SamplerConfig,
    vocab: usize,
    rng: ChaCha20Rng,
    vals: Vec<f32>,
    idx: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("cfg", &self.cfg)
            .field("vocab", &self.vocab)
            .finish()
    }
}

/// The greedy token of a logits row read as it is stored, without dequantizing: the first
/// maximum of f32 logits, or of the raw codes of u16 / u8 logits with a positive scale.
/// `None` for any other dtype or encoding (the sampler then dequantizes first). This is what
/// [`Sampler::sample`] returns for a greedy configuration whenever it is `Some`.
pub fn greedy_token(row: &[u8], desc: &TensorDesc) -> Option<u32> {
    if !greedy_readable(desc) {
        return None;
    }
    let i = match desc.dtype {
        DType::U16 => argmax_u16(row),
        DType::U8 => argmax_u8(row),
        _ => argmax_f32(bytemuck::try_cast_slice::<u8, f32>(row).ok()?),
    };
    Some(i as u32)
}

/// Whether [`greedy_token`] reads rows of `desc` (u16 / u8 codes with a positive scale or no
/// quantization, unquantized little-endian f32).
fn greedy_readable(desc: &TensorDesc) -> bool {
    match (desc.dtype, desc.quant) {
        (DType::U16 | DType::U8, Quant::PerTensor { scale, .. }) => scale > 0.0,
        (DType::U16 | DType::U8, Quant::None) => true,
        (DType::F32, Quant::None) => cfg!(target_endian = "little"),
        _ => false,
    }
}

/// [`argmax_f32`] over a row seen in consecutive chunks (e.g. each right after it is written):
/// the same index as over the whole row.
#[derive(Clone, Copy, Debug)]
pub struct ArgmaxF32 {
    best: f32,
    index: usize,
    seen: usize,
}

impl Default for ArgmaxF32 {
    fn default() -> Self {
        ArgmaxF32 {
            best: f32::NEG_INFINITY,
            index: 0,
            seen: 0,
        }
    }
}

impl ArgmaxF32 {
    /// Takes the next chunk of the row.
    pub fn push(&mut self, chunk: &[f32]) {
        let first = pulp::Arch::new().dispatch(|| first_max(chunk, f32::NEG_INFINITY));
        // Strictly greater: an equal maximum in a later chunk is not the first one.
        if let Some(i) = first.filter(|&i| chunk[i] > self.best) {
            self.best = chunk[i];
            self.index = self.seen + i;
        }
        self.seen += chunk.len();
    }

    /// Index of the first maximum of everything pushed (0 if no value beats -inf).
    pub fn index(&self) -> usize {
        self.index
    }
}

/// Index of the first maximum of raw little-endian u16 values (`bytes.len() / 2` values).
pub fn argmax_u16(bytes: &[u8]) -> usize {
    if cfg!(target_endian = "little") {
        if let Ok(v) = bytemuck::try_cast_slice::<u8, u16>(bytes) {
            return pulp::Arch::new()
                .dispatch(|| first_max(v, 0u16))
                .unwrap_or(0);
        }
    }
    let mut best = 0;
    let mut bv = 0u16;
    for (i, c) in bytes.chunks_exact(2).enumerate() {
        let x = u16::from_le_bytes([c[0], c[1]]);
        if x > bv || i == 0 {
            bv = x;
            best = i;
        }
    }
    best
}

/// Index of the first maximum of raw u8 values.
pub fn argmax_u8(bytes: &[u8]) -> usize {
    pulp::Arch::new()
        .dispatch(|| first_max(bytes, 0u8))
        .unwrap_or(0)
}

/// Index of the first maximum of f32 values; NaN never wins (0 if no value beats -inf).
pub fn argmax_f32(v: &[f32]) -> usize {
    pulp::Arch::new()
        .dispatch(|| first_max(v, f32::NEG_INFINITY))
        .unwrap_or(0)
}

/// Index of the first element equal to the maximum of `v`, where only values above `floor`
/// count (`None` when none is above it, or `v` is empty; NaN never compares above).
///
/// Two passes written to auto-vectorize under the dispatched instruction set: lane-wise
/// maxima over chunks of `W` (several vector registers, so the compares do not wait on each
/// other), then the first chunk that holds the maximum.
#[inline(always)]
fn first_max<T: Copy + PartialOrd>(v: &[T], floor: T) -> Option<usize> {
    const W: usize = 64;
    let mut lanes = [floor; W];
    let chunks = v.chunks_exact(W);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x > *m { x } else { *m };
        }
    }
    let mut m = floor;
    for &x in lanes.iter().chain(tail) {
        if x > m {
            m = x;
        }
    }
    if m == floor {
        // `m` only rises above the floor: no value did (for integers all equal it: index 0).
        return None;
    }
    for (bi, block) in v.chunks(W).enumerate() {
        if block.iter().fold(false, |a, &x| a | (x == m)) {
            return block.iter().position(|&x| x == m).map(|i| bi * W + i);
        }
    }
    None
}

impl Sampler {
    /// A sampler for rows of `vocab` logits.
    pub fn new(cfg: SamplerConfig, vocab: usize) -> Result<Sampler> {
        if vocab == 0 || vocab > u32::MAX as usize {
            return Err(RuntimeError::Config(format!(
                "sampler: bad vocabulary size {vocab}"
            )));
        }
        if cfg.temperature.is_nan()
            || cfg.top_p.is_nan()
            || cfg.top_p <= 0.0
            || cfg.repetition_penalty.is_nan()
            || cfg.repetition_penalty <= 0.0
        {
            return Err(RuntimeError::Config(format!(
                "sampler: temperature must be a number, top_p and repetition_penalty > 0 \
                 (got {cfg:?})"
            )));
        }
        Ok(Sampler {
            rng: ChaCha20Rng::seed_from_u64(cfg.seed),
            cfg,
            vocab,
            vals: vec![0.0; vocab],
            idx: vec![0; vocab],
            stamp: vec![0; vocab],
            generation: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// True when [`Sampler::sample`] returns [`greedy_token`] for rows of `desc` (a greedy
    /// configuration and logits it can read as stored), so that a token computed that way
    /// elsewhere (e.g. by an executor, [`crate::StepExtras::argmax`]) is the sampled one.
    pub fn takes_greedy_token(&self, desc: &TensorDesc) -> bool {
        self.cfg.is_greedy() && greedy_readable(desc)
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Restarts the random stream from the configured seed.
    pub fn reseed(&mut self) {
        self.rng = ChaCha20Rng::seed_from_u64(self.cfg.seed);
    }

    /// Samples a token from one logits row. `row` holds `vocab` elements in `desc.dtype`
    /// (little-endian) with `desc.quant`; `history` is the context so far (for the repetition
    /// penalty).
    pub fn sample(&mut self, row: &[u8], desc: &TensorDesc, history: &[u32]) -> Result<u32> {
        let v = self.vocab;
        let e = desc.dtype.size();
        if row.len() != v * e {
            return Err(RuntimeError::BufferSize {
                what: format!("logits row of `{}`", desc.name),
                expected: v * e,
                got: row.len(),
            });
        }
        if self.cfg.is_greedy() {
            if let Some(t) = greedy_token(row, desc) {
                return Ok(t);
            }
        }
        // Dequantize into scratch; NaN becomes -inf.
        for (i, x) in self.vals.iter_mut().enumerate() {
            let r = desc.read_real(row, i).unwrap_or(f32::NEG_INFINITY);
            *x = if r.is_nan() { f32::NEG_INFINITY } else { r };
        }
        if self.cfg.repetition_penalty != 1.0 {
            self.generation = self.generation.wrapping_add(1);
            if self.generation == 0 {
                self.stamp.fill(0);
                self.generation = 1;
            }
            let p = self.cfg.repetition_penalty;
            for &t in history {
                let t = t as usize;
                if t < v && self.stamp[t] != self.generation {
                    self.stamp[t] = self.generation;
                    let x = &mut self.vals[t];
                    *x = if *x > 0.0 { *x / p } else { *x * p };
                }
            }
        }
        if self.cfg.temperature <= 0.0 {
            return Ok(argmax_f32(&self.vals) as u32);
        }
        let inv_t = 1.0 / self.cfg.temperature;
        for x in &mut self.vals {
            *x *= inv_t;
        }
        for (i, x) in self.idx.iter_mut().enumerate() {
            *x = i as u32;
        }
        let vals = &self.vals;
        // Total order: larger logit first, then smaller index.
        let cmp = |a: &u32, b: &u32| {
            vals[*b as usize]
                .total_cmp(&vals[*a as usize])
                .then(a.cmp(b))
        };
        let mut n = v;
        if self.cfg.top_k > 0 && self.cfg.top_k < v {
            self.idx.select_nth_unstable_by(self.cfg.top_k - 1, cmp);
            n = self.cfg.top_k;
        }
        let cand = &mut self.idx[..n];
        let top_p = self.cfg.top_p;
        let max = cand
            .iter()
            .map(|&i| vals[i as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            return Ok(argmax_f32(vals) as u32);
        }
        let mut total = 0.0f64;
        for &i in cand.iter() {
            total += ((vals[i as usize] - max) as f64).exp();
        }
        if top_p < 1.0 {
            // Sorting a whole vocabulary per token is slow: when the HEAD most likely
            // candidates already reach top_p, only they are sorted (same order, same result).
            const HEAD: usize = 256;
            let mut sorted = cand.len();
            if cand.len() > HEAD {
                cand.select_nth_unstable_by(HEAD - 1, cmp);
                let head: f64 = cand[..HEAD]
                    .iter()
                    .map(|&i| ((vals[i as usize] - max) as f64).exp())
                    .sum();
                if head >= top_p as f64 * total {
                    sorted = HEAD;
                }
            }
            cand[..sorted].sort_unstable_by(cmp);
        }
        let mut keep = cand.len();
        let mut mass = total;
        if top_p < 1.0 {
            let mut acc = 0.0f64;
            for (k, &i) in cand.iter().enumerate() {
                acc += ((vals[i as usize] - max) as f64).exp();
                if acc >= top_p as f64 * total {
                    keep = k + 1;
                    mass = acc;
                    break;
                }
            }
        }
        let r = self.rng.gen::<f64>() * mass;
        let mut acc = 0.0f64;
        for &i in &cand[..keep] {
            acc += ((vals[i as usize] - max) as f64).exp();
            if acc > r {
                return Ok(i);
            }
        }
        Ok(cand[keep - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_desc(v: usize) -> TensorDesc {
        TensorDesc::new("logits", DType::F32, vec![1, 1, v])
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn greedy_u16_argmax_matches_dequantized() {
        let q = Quant::PerTensor {
            scale: 0.01,
            offset: -30000,
        };
        let desc = TensorDesc::new("logits", DType::U16, vec![1, 1, 6]).with_quant(q);
        let codes: [u16; 6] = [10, 40000, 39999, 40000, 0, 65535 - 30000];
        let row: Vec<u8> = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut s = Sampler::new(SamplerConfig::greedy(), 6).unwrap();
        let got = s.sample(&row, &desc, &[]).unwrap();
        // Independent check: dequantize and take the first maximum by hand.
        let reals: Vec<f32> = codes.iter().map(|&c| q.dequantize(c as f32)).collect();
        let mut best = 0;
        for i in 1..6 {
            if reals[i] > reals[best] {
                best = i;
            }
        }
        assert_eq!(got as usize, best);
        assert_eq!(got, 1);
        // Unaligned row goes through the fallback path and agrees.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&row);
        assert_eq!(argmax_u16(&shifted[1..]), 1);
    }

    #[test]
    fn greedy_f32_and_penalty() {
        let mut s = Sampler::new(SamplerConfig::greedy(), 3).unwrap();
        let row = f32_bytes(&[5.0, 4.0, f32::NAN]);
        assert_eq!(s.sample(&row, &f32_desc(3), &[0]).unwrap(), 0);
        let cfg = SamplerConfig {
            repetition_penalty: 2.0,
            ..SamplerConfig::greedy()
        };
        let mut s = Sampler::new(cfg, 3).unwrap();
        // 5.0 / 2 = 2.5 < 4.0; a token repeated in history is penalised once.
        assert_eq!(s.sample(&row, &f32_desc(3), &[0, 0, 0]).unwrap(), 1);
        let row = f32_bytes(&[-1.0, -1.5, -9.0]);
        // -1.0 * 2 = -2.0 < -1.5.
        assert_eq!(s.sample(&row, &f32_desc(3), &[0]).unwrap(), 1);
    }

    #[test]
    fn seeded_determinism_and_distribution() {
        let cfg = SamplerConfig {
            temperature: 1.0,
            seed: 42,
            ..SamplerConfig::greedy()
        };
        let row = f32_bytes(&[0.0, 3f32.ln(), f32::NEG_INFINITY]);
        let draw = |cfg: &SamplerConfig| {
            let mut s = Sampler::new(cfg.clone(), 3).unwrap();
            (0..4000)
                .map(|_| s.sample(&row, &f32_desc(3), &[]).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draw(&cfg);
        assert_eq!(a, draw(&cfg));
        let other = draw(&SamplerConfig { seed: 7, ..cfg });
        assert_ne!(a, other);
        assert!(!a.contains(&2));
        let ones = a.iter().filter(|&&t| t == 1).count() as f64 / a.len() as f64;
        assert!((ones - 0.75).abs() < 0.03, "p(1) = {ones}");
    }

    #[test]
    fn top_k_and_top_p_restrict() {
        let row = f32_bytes(&[1.0, 3.0, 2.9, 0.5, 2.95]);
        for cfg in [
            SamplerConfig {
                temperature: 5.0,
                top_k: 1,
                seed: 3,
                ..SamplerConfig::greedy()
            },
            SamplerConfig {
                temperature: 5.0,
                top_p: 1e-6,
                seed: 3,
                ..SamplerConfig::greedy()
            },
        ] {
            let mut s = Sampler::new(cfg, 5).unwrap();
            for _ in 0..200 {
                assert_eq!(s.sample(&row, &f32_desc(5), &[]).unwrap(), 1);
            }
        }
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_k: 3,
            seed: 9,
            ..SamplerConfig::greedy()
        };
        let mut s = Sampler::new(cfg, 5).unwrap();
        let mut seen = [0usize; 5];
        for _ in 0..3000 {
            seen[s.sample(&row, &f32_desc(5), &[]).unwrap() as usize] += 1;
        }
        assert_eq!(seen[0] + seen[3], 0);
        assert!(seen[1] > 0 && seen[2] > 0 && seen[4] > 0);
    }

    #[test]
    fn top_p_head_shortcut_keeps_the_nucleus() {
        // A peaked distribution over a large vocabulary (nucleus inside the first 256) and a
        // flat one (nucleus larger than 256): sampled ids always lie in the true nucleus.
        let v = 5000;
        for peaked in [true, false] {
            let logits: Vec<f32> = (0..v)
                .map(|i| {
                    let x = ((i * 7919) % v) as f32 / v as f32;
                    if peaked {
                        20.0 * x
                    } else {
                        0.01 * x
                    }
                })
                .collect();
            let row = f32_bytes(&logits);
            let top_p = 0.5;
            // Reference nucleus by full sort.
            let mut order: Vec<usize> = (0..v).collect();
            order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
            let m = logits[order[0]];
            let total: f64 = logits.iter().map(|&x| ((x - m) as f64).exp()).sum();
            let mut acc = 0.0;
            let mut nucleus = std::collections::HashSet::new();
            for &i in &order {
                acc += ((logits[i] - m) as f64).exp();
                nucleus.insert(i as u32);
                if acc >= top_p * total {
                    break;
                }
            }
            assert_eq!(nucleus.len() > 256, !peaked);
            let cfg = SamplerConfig {
                temperature: 1.0,
                top_p: top_p as f32,
                seed: 11,
                ..SamplerConfig::greedy()
            };
            let mut s = Sampler::new(cfg, v).unwrap();
            for _ in 0..300 {
                let t = s.sample(&row, &f32_desc(v), &[]).unwrap();
                assert!(
                    nucleus.contains(&t),
                    "peaked {peaked}: {t} outside the nucleus"
                );
            }
        }
    }

    #[test]
    fn argmax_f32_first_maximum() {
        // Against a plain scan, over lengths around the lane width and tricky values.
        let mut x = 12345u64;
        for len in [1usize, 2, 15, 16, 17, 33, 100, 1000] {
            for trial in 0..20 {
                let v: Vec<f32> = (0..len)
                    .map(|i| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        match (x >> 60, trial % 3) {
                            (0, 0) => f32::NAN,
                            (1, _) => -0.0,
                            _ => ((x >> 40) % 7) as f32 - (i % 3) as f32,
                        }
                    })
                    .collect();
                let mut best = 0;
                let mut bv = f32::NEG_INFINITY;
                for (i, &y) in v.iter().enumerate() {
                    if y > bv {
                        bv = y;
                        best = i;
                    }
                }
                assert_eq!(argmax_f32(&v), best, "{v:?}");
            }
        }
        assert_eq!(argmax_f32(&[f32::NAN, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax_f32(&[]), 0);
    }

    #[test]
    fn chunked_argmax_f32_matches_whole_row() {
        // Rows with NaN, -inf, signed zeros and many ties, cut at random places (empty
        // chunks included): the same index as argmax_f32 over the whole row.
        let mut x = 987654321u64;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for len in [0usize, 1, 5, 64, 65, 300, 4099] {
            for _ in 0..30 {
                let v: Vec<f32> = (0..len)
                    .map(|_| match next(9) {
                        0 => f32::NAN,
                        1 => f32::NEG_INFINITY,
                        2 => -0.0,
                        3 => 0.0,
                        _ => next(5) as f32 - 2.0,
                    })
                    .collect();
                let mut am = ArgmaxF32::default();
                let mut at = 0;
                while at < len {
                    let n = (next(200) as usize).min(len - at);
                    am.push(&v[at..at + n]);
                    at += n;
                }
                am.push(&[]);
                assert_eq!(am.index(), argmax_f32(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(Sampler::new(SamplerConfig::greedy(), 0).is_err());
        let bad = SamplerConfig {
            top_p: 0.0,
            ..SamplerConfig::greedy()
        };
        assert!(Sampler::new(bad, 4).is_err());
        let mut s = Sampler::new(SamplerConfig::greedy(), 4).unwrap();
        assert!(s.sample(&[0u8; 7], &f32_desc(4), &[]).is_err());
    }
}
