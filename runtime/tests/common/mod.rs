//! Test double: a "model" whose next token is a hash of every token it can see through the mask
//! and the KV cache, so any off-by-one in mask, cache or chunking changes its output.
#![allow(dead_code)]

use std::ops::Range;

use mllm_runtime::bench::contract_graph;
use mllm_runtime::{
    DType, Executor, GraphDesc, ModelDims, Quant, Result, RuntimeError, TensorDesc,
};

/// Element type configuration of the fake model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// u8 KV, u16 mask, u16 logits (quantized model).
    Quantized,
    /// f32 KV, mask and logits (float model).
    Float,
}

pub const LOGITS_Q: Quant = Quant::PerTensor {
    scale: 0.01,
    offset: -1000,
};
pub const KV_Q: Quant = Quant::PerTensor {
    scale: 0.5,
    offset: -128,
};
/// Logit code of the predicted token; others get 1000 + (i * 7) % 100.
pub const HOT_CODE: u16 = 60000;

pub fn dims(context: usize) -> ModelDims {
    ModelDims {
        layers: 2,
        kv_heads: 2,
        head_dim: 4,
        context,
        vocab: 97,
    }
}

/// The token the fake model predicts after `tokens` (FNV-1a), never `vocab - 1` (reserved for
/// "the model saw inconsistent state").
pub fn next_token(tokens: &[u32], vocab: usize) -> u32 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &t in tokens {
        for b in t.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    // splitmix64 finalizer: FNV's low bits are too regular for a small modulus.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^= h >> 31;
    (h % (vocab as u64 - 1)) as u32
}

/// Stored K (`is_v == false`) or V element for (layer, head, d) of the entry (token, pos).
pub fn kv_value(is_v: bool, l: usize, h: usize, d: usize, tok: u32, pos: usize) -> u8 {
    match d {
        0 => tok as u8,
        1 => pos as u8,
        _ => {
            let x =
                (l * 31 + h * 17 + d * 7 + tok as usize * 3 + pos * 5 + is_v as usize * 101) % 251;
            x as u8
        }
    }
}

pub struct HashModel {
    pub dims: ModelDims,
    pub flavor: Flavor,
    graphs: Vec<GraphDesc>,
    /// Layer range of each graph.
    layers: Vec<Range<usize>>,
    /// Number of `execute` calls.
    pub calls: usize,
    /// Largest number of positions any row attended to.
    pub max_visible: usize,
    /// Rows whose visible state was inconsistent.
    pub corrupt_rows: usize,
    scratch: Vec<(usize, u32)>,
}

/// Width of the fake hidden state: (token, position, consistent-so-far flag).
const HIDDEN: usize = 3;

impl HashModel {
    /// Graphs `model.0.s{S}` for every S in `ar_lens`.
    pub fn new(dims: ModelDims, flavor: Flavor, ar_lens: &[usize]) -> HashModel {
        let all = 0..dims.layers;
        Self::sharded(dims, flavor, ar_lens, std::slice::from_ref(&all))
    }

    /// Graphs `model.{i}.s{S}` for every S in `ar_lens` and every shard i holding the layers
    /// `shards[i]`; shards pass `hidden_states` (f32 `[1, S, 3]`).
    pub fn sharded(
        dims: ModelDims,
        flavor: Flavor,
        ar_lens: &[usize],
        shards: &[Range<usize>],
    ) -> HashModel {
        assert!(dims.context <= 256, "positions are stored in one byte");
        let mut graphs = Vec::new();
        let mut layers = Vec::new();
        for &s in ar_lens {
            for (i, r) in shards.iter().enumerate() {
                let name = format!("model.{i}.s{s}");
                let mut g = match flavor {
                    Flavor::Quantized => contract_graph(
                        &name,
                        s,
                        &dims,
                        DType::U8,
                        KV_Q,
                        DType::U16,
                        DType::U16,
                        LOGITS_Q,
                    ),
                    Flavor::Float => contract_graph(
                        &name,
                        s,
                        &dims,
                        DType::F32,
                        Quant::None,
                        DType::F32,
                        DType::F32,
                        Quant::None,
                    ),
                };
                let keep = |n: &str| {
                    let l = ["past_key_", "past_value_", "present_key_", "present_value_"]
                        .iter()
                        .find_map(|p| n.strip_prefix(p).and_then(|x| x.parse::<usize>().ok()));
                    match l {
                        Some(l) => r.contains(&l),
                        None => true,
                    }
                };
                g.inputs.retain(|t| keep(&t.name));
                g.outputs.retain(|t| keep(&t.name));
                let hidden = TensorDesc::new("hidden_states", DType::F32, vec![1, s, HIDDEN]);
                if i > 0 {
                    g.inputs[0] = hidden.clone();
                }
                if i + 1 < shards.len() {
                    g.outputs[0] = hidden;
                }
                graphs.push(g);
                layers.push(r.clone());
            }
        }
        HashModel {
            dims,
            flavor,
            graphs,
            layers,
            calls: 0,
            max_visible: 0,
            corrupt_rows: 0,
            scratch: Vec::with_capacity(dims.context),
        }
    }

    fn read_kv(&self, buf: &[u8], i: usize) -> u8 {
        match self.flavor {
            Flavor::Quantized => buf[i],
            Flavor::Float => f32_at(buf, i) as u8,
        }
    }

    fn write_kv(&self, buf: &mut [u8], i: usize, v: u8) {
        match self.flavor {
            Flavor::Quantized => buf[i] = v,
            Flavor::Float => buf[i * 4..i * 4 + 4].copy_from_slice(&(v as f32).to_le_bytes()),
        }
    }
}

fn i32_at(b: &[u8], i: usize) -> i32 {
    i32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

impl Executor for HashModel {
    fn name(&self) -> &str {
        "hash-model"
    }

    fn graphs(&self) -> &[GraphDesc] {
        &self.graphs
    }

    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        let g = self
            .graphs
            .get(graph)
            .ok_or_else(|| RuntimeError::Execute {
                executor: "hash-model".into(),
                graph: graph.to_string(),
                msg: "no such graph".into(),
            })?;
        g.check_buffers(inputs, outputs)?;
        self.calls += 1;
        let ModelDims {
            kv_heads: nh,
            head_dim: nd,
            context: c,
            vocab: v,
            ..
        } = self.dims;
        let layers = self.layers[graph].clone();
        let s = g.ar_len;
        let w = c - s;
        // Look tensors up by name, like the runtime does.
        let input = |n: &str| g.input_index(n).map(|i| inputs[i]);
        let out_idx = |n: &str| g.output_index(n);
        let seq = input("sequence");
        let hid = input("hidden_states");
        let pos = input("position_ids").unwrap_or(&[]);
        let mask = input("causal_mask").unwrap_or(&[]);
        let keys: Vec<&[u8]> = layers
            .clone()
            .map(|l| input(&format!("past_key_{l}")).unwrap_or(&[]))
            .collect();
        let values: Vec<&[u8]> = layers
            .clone()
            .map(|l| input(&format!("past_value_{l}")).unwrap_or(&[]))
            .collect();
        let attends = |i: usize, j: usize| -> bool {
            match self.flavor {
                Flavor::Quantized => {
                    let k = 2 * (i * c + j);
                    u16::from_le_bytes([mask[k], mask[k + 1]]) == 65535
                }
                Flavor::Float => f32_at(mask, i * c + j) == 1.0,
            }
        };
        // Chunk row i: (token, position, consistent so far).
        let row_in = |i: usize| -> (u32, usize, bool) {
            let p = i32_at(pos, i) as usize;
            match (seq, hid) {
                (Some(sq), _) => (i32_at(sq, i) as u32, p, true),
                (None, Some(h)) => {
                    let t = f32_at(h, i * HIDDEN) as u32;
                    let hp = f32_at(h, i * HIDDEN + 1) as usize;
                    let ok = f32_at(h, i * HIDDEN + 2) == 1.0;
                    (t, p, ok && hp == p)
                }
                _ => (0, p, false),
            }
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut new_rows = Vec::with_capacity(s);
        for i in 0..s {
            scratch.clear();
            let (tok_i, p_i, ok_in) = row_in(i);
            let mut corrupt = !ok_in;
            for j in 0..c {
                if !attends(i, j) {
                    continue;
                }
                if j < w {
                    let k0 = keys[0];
                    let tok = self.read_kv(k0, j * nd) as u32; // (h 0, row j, d 0)
                    let p = self.read_kv(k0, j * nd + 1) as usize; // (h 0, row j, d 1)
                                                                   // Every layer, head and component of K and V must match this entry.
                    for (li, l) in layers.clone().enumerate() {
                        for h in 0..nh {
                            for d in 0..nd {
                                let kx = self.read_kv(keys[li], (h * w + j) * nd + d);
                                let vx = self.read_kv(values[li], (h * w + j) * nd + d);
                                if kx != kv_value(false, l, h, d, tok, p)
                                    || vx != kv_value(true, l, h, d, tok, p)
                                {
                                    corrupt = true;
                                }
                            }
                        }
                    }
                    scratch.push((p, tok));
                } else {
                    let (t, p, _) = row_in(j - w);
                    scratch.push((p, t));
                }
            }
            // Visible positions must be exactly 0..=p_i, in order.
            if scratch.len() != p_i + 1 || scratch.iter().enumerate().any(|(k, e)| e.0 != k) {
                corrupt = true;
            }
            self.max_visible = self.max_visible.max(scratch.len());
            let toks: Vec<u32> = scratch.iter().map(|e| e.1).collect();
            new_rows.push((tok_i, p_i, corrupt, toks));
        }
        self.scratch = scratch;
        for (i, (tok_i, p_i, corrupt, toks)) in new_rows.into_iter().enumerate() {
            if let Some(o) = out_idx("logits") {
                let next = if corrupt {
                    self.corrupt_rows += 1;
                    (v - 1) as u32
                } else {
                    next_token(&toks, v)
                };
                let row = &mut *outputs[o];
                for t in 0..v {
                    let code = if t as u32 == next {
                        HOT_CODE
                    } else {
                        1000 + ((t * 7) % 100) as u16
                    };
                    match self.flavor {
                        Flavor::Quantized => {
                            let k = 2 * (i * v + t);
                            row[k..k + 2].copy_from_slice(&code.to_le_bytes());
                        }
                        Flavor::Float => {
                            let k = 4 * (i * v + t);
                            let real = LOGITS_Q.dequantize(code as f32);
                            row[k..k + 4].copy_from_slice(&real.to_le_bytes());
                        }
                    }
                }
            }
            if let Some(o) = out_idx("hidden_states") {
                let h = &mut *outputs[o];
                let vals = [tok_i as f32, p_i as f32, if corrupt { 0.0 } else { 1.0 }];
                for (k, x) in vals.iter().enumerate() {
                    let at = 4 * (i * HIDDEN + k);
                    h[at..at + 4].copy_from_slice(&x.to_le_bytes());
                }
            }
            // New K/V of row i.
            for l in layers.clone() {
                let ko = out_idx(&format!("present_key_{l}")).unwrap_or(0);
                let vo = out_idx(&format!("present_value_{l}")).unwrap_or(0);
                for h in 0..nh {
                    for d in 0..nd {
                        let kx = kv_value(false, l, h, d, tok_i, p_i);
                        let vx = kv_value(true, l, h, d, tok_i, p_i);
                        self.write_kv(&mut *outputs[ko], (h * s + i) * nd + d, kx);
                        self.write_kv(&mut *outputs[vo], (h * s + i) * nd + d, vx);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Deterministic pseudo-random prompt of `n` tokens in 1..vocab-1.
pub fn prompt(n: usize, seed: u64, vocab: usize) -> Vec<u32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1 + ((x >> 33) % (vocab as u64 - 2)) as u32
        })
        .collect()
}

/// Reference continuation computed without any runtime code: greedy over `next_token`, stopping
/// after `max_new` tokens, at an id in `eos`, or once `capacity` tokens have been processed (the
/// last sampled token is never processed).
pub fn reference(
    prompt: &[u32],
    max_new: usize,
    eos: &[u32],
    capacity: usize,
    vocab: usize,
) -> Vec<u32> {
    let mut seq = prompt.to_vec();
    let mut out = Vec::new();
    loop {
        let t = next_token(&seq, vocab);
        out.push(t);
        if eos.contains(&t) || out.len() >= max_new || seq.len() >= capacity {
            return out;
        }
        seq.push(t);
    }
}
