//! `lpbq-fold`: weight dequantization chains feeding a matmul or convolution become one
//! blockwise-encoded (LPBQ) weight, on the e-graph driver with the `lpbq` rule set
//! (`egraph/rules/lpbq.rs` has the rule table and the exact recognised forms).
//!
//! Recognised, at operand 1 of `nn.linear` (`[N, K]`), `nn.conv2d` (HWIO) or a rank-2
//! `nn.matmul`: an f32 tree of `nn.mul` / `tensor.reshape` / `tensor.transpose` /
//! `tensor.slice` over one code leaf (`quant.dequantize` of a weight typed
//! `<i4|i8:f32, scale = 1.0, offset = 0>`, or `nn.cast` of a plain `i8` weight) and scale
//! leaves (f32 constants or weights, `nn.cast` of u8/u16/f16/bf16/... weights), whose
//! scales are constant on blocks of B >= 2 consecutive elements of an output channel
//! (B smaller than the channel). For example, with `int4 [N, K]` codes:
//!
//! ```text
//! mul(mul(reshape(dequantize(codes), [N, K/B, B]), reshape(cast(scale1 u8 [N*K/B]), [N, K/B, 1])),
//!     reshape(scale2 f32 [N], [N, 1, 1]))  -> reshape [N, K] -> nn.linear
//! ```
//!
//! (int weight x u8 block scale x f32 channel scale), or `codes x f32 per-block scale`, in
//! the `[N, K]` layout or pymllm's HWIO `[1, 1, In, Out]` layout (feeding a conv, or a
//! linear through a transpose).
//!
//! Result: the chain's value becomes `quant.dequantize(builtin.weight : !quant.lpbq<..>)`
//! (the consumer keeps its float operand: the verifier does not let a float matmul read
//! a quantized weight directly; in a quantized graph no float chain can feed a matmul).
//!
//! Contract:
//! - **exact** when the chain's per-block scales split into u8 block scales x f32 channel
//!   scales such that the reference LPBQ dequantization `(code * q) * s_c` equals the
//!   chain's f32 value for every code of the storage range: then the new weight reuses the
//!   codes' payload under its own name (typed in the codes' layout, followed by the codes'
//!   own reshapes/transposes), nothing is read or copied (scales given as constants need
//!   no weight store at all), and outputs are bit-identical in float and fixed-point
//!   mode;
//! - otherwise, with `requantize=true` (the default), the float block scales are
//!   requantized into the two-level form (`quant::lpbq` math, the closer of keeping the
//!   codes and requantizing the values, per channel) into a new payload `<codes>.lpbq`
//!   added to the weight store (the codes must be in the store); values move by the
//!   requantization error. With `requantize=false` such chains are left alone;
//! - a weight already in LPBQ form (a blockwise-typed weight, with or without a
//!   dequantize) is not a chain and is left alone: running the pass twice is running it
//!   once;
//! - a chain not feeding a matmul/conv weight, scales that vary inside a block or do not
//!   form blocks, a second code leaf, codes that are sliced or broadcast, or a payload
//!   missing from the store: left alone (counted per reason in `--timing`).
//!
//! When no rule fired the function is returned untouched (no cse/dce rebuild). Fold results
//! are shared by the functions of a module (prefill and decode read the same chains).
//!
//! Use: run it before `sha-split` (a chain sliced per head has sliced codes and is left
//! alone; sha-split slices an LPBQ weight with its scales). Scale leaves that are weights
//! need their payloads: `mllm-opt` loads no weight store, so there only chains with
//! constant scales fold (the lit tests); in-process pipelines on a `Module` with its
//! weights fold every chain (see `mllm_frontends::pymllm::emit_lpbq_chains`, which turns a
//! pymllm export into such chains, and the `lpbq_fold_pymllm` test).

use mllm_ir::Function;

use crate::egraph::convert::{from_egraph, to_egraph};
use crate::egraph::cost::CostModel;
use crate::egraph::rules::lpbq::{FoldCache, LpbqFold};
use crate::egraph::{run, Limits, Rule, LIMIT_OPTIONS};
use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{OptKind, OptSpec, Options, PassInfo};

/// The pass.
pub struct LpbqFoldPass {
    limits: Limits,
    requantize: bool,
    /// Fold results shared by the functions of a module (keyed by payload identity).
    cache: FoldCache,
}

static OPTIONS: [OptSpec; 4] = [
    OptSpec {
        name: "requantize",
        kind: OptKind::Bool,
        default: "true",
        help: "requantize chains whose float block scales are not exactly two-level (values change); false leaves them alone",
    },
    LIMIT_OPTIONS[0],
    LIMIT_OPTIONS[1],
    LIMIT_OPTIONS[2],
];

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "lpbq-fold",
    summary: "Fold weight dequantization chains (int codes x block scales x channel scales) feeding matmul/conv into one LPBQ weight (e-graph rules `lpbq`)",
    anchor: Anchor::Function,
    options: &OPTIONS,
    create: |o: &Options| {
        Ok(Box::new(LpbqFoldPass {
            limits: Limits::from_options(o),
            requantize: o.bool("requantize"),
            cache: FoldCache::default(),
        }))
    },
};

impl Pass for LpbqFoldPass {
    fn name(&self) -> &'static str {
        "lpbq-fold"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        ctx: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        let mut conv = to_egraph(f);
        let fold = LpbqFold::new(ctx.weights, self.requantize).with_cache(&self.cache);
        let bound = fold.rules();
        let set: Vec<&dyn Rule> = bound.iter().map(|r| r as &dyn Rule).collect();
        let rs = run(&mut conv.egraph, &set, self.limits).map_err(|message| PassError::Failed {
            pass: "lpbq-fold".into(),
            message: format!("@{}: {message}", f.name),
        })?;
        rs.record(ctx.stats);
        drop(set);
        drop(bound);
        let state = fold.into_state();
        ctx.stats.record("chains folded exactly", state.exact);
        ctx.stats.record("chains requantized", state.requantized);
        for (why, n) in &state.skipped {
            ctx.stats.record(why.label(), n);
        }
        if rs.applied == 0 {
            return Ok(PassResult::Unchanged);
        }
        let before = f.clone();
        from_egraph(f, &conv, CostModel::default());
        crate::transforms::cse::cse(f);
        crate::transforms::dce::dce(f);
        *f = f.compact();
        // New payloads the rebuilt function reads.
        let used: std::collections::HashSet<String> = f
            .op_ids()
            .into_iter()
            .filter(|o| f.op(*o).kind == mllm_ir::OpKind::Weight)
            .filter_map(|o| mllm_ir::AttrsExt::str(&f.op(o).attrs, "name").map(str::to_owned))
            .collect();
        for (name, w) in state.payloads {
            if used.contains(&name) && !ctx.weights.contains(&name) {
                ctx.weights.insert(name, w);
            }
        }
        Ok(PassResult::from_changed(
            mllm_ir::equiv::function_eq(&before.compact(), f).is_err(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PassStats;
    use mllm_ir::parse::parse_module;
    use mllm_ir::types::{ElemType, Encoding, Storage};
    use mllm_ir::{AttrsExt, Module, OpKind, WDType, Weight, WeightStore};

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn run_pass(m: &mut Module, requantize: bool) -> (PassResult, PassStats) {
        let mut p = LpbqFoldPass {
            limits: Limits::default(),
            requantize,
            cache: FoldCache::default(),
        };
        let mut stats = PassStats::default();
        let mut f = m.functions[0].clone();
        let r = {
            let mut ctx = FuncContext {
                weights: &mut m.weights,
                stats: &mut stats,
            };
            p.run_on_function(&mut f, &mut ctx).expect("pass runs")
        };
        mllm_ir::verify::verify_function(&f).expect("result verifies");
        m.functions[0] = f;
        (r, stats)
    }

    /// The weight operand of the function's only linear after the pass: (store name,
    /// type), through the dequantize the fold leaves.
    fn folded_weight(m: &Module) -> Option<(String, mllm_ir::Type)> {
        let f = &m.functions[0];
        let lin = f
            .op_ids()
            .into_iter()
            .find(|o| f.op(*o).kind == OpKind::Linear)?;
        let mut v = f.op(lin).operands[1];
        loop {
            let d = f.def_op(v)?;
            match f.op(d).kind {
                OpKind::Weight => {
                    return Some((f.op(d).attrs.str("name")?.to_owned(), f.ty(v).clone()))
                }
                OpKind::Dequantize | OpKind::Reshape => v = f.op(d).operands[0],
                _ => return None,
            }
        }
    }

    /// Reference LPBQ dequantization, in the CPU reference's order `(q * b) * s_c`.
    fn dequant(store: &WeightStore, name: &str, ty: &mllm_ir::Type) -> Vec<f32> {
        let w = store.get(name).expect("payload");
        let q = ty.quant().expect("quantized");
        let Encoding::Blockwise {
            axis,
            block_size,
            block_scales,
            channel_scales,
            ..
        } = &q.encoding
        else {
            panic!("not blockwise: {ty}")
        };
        assert_eq!(*axis, 0);
        let (n, k) = (ty.shape()[0], ty.shape()[1]);
        let nb = k / *block_size as usize;
        let codes = w.to_f32();
        (0..n * k)
            .map(|i| {
                let (c, j) = (i / k, i % k);
                let b = block_scales[c * nb + j / *block_size as usize] as f32;
                (codes[i] * b) * channel_scales[c]
            })
            .collect()
    }

    const CHAIN: &str = r#"
func.func @f(%x: tensor<3x32xf32>) -> (tensor<3x4xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<4x32x!quant.uniform<i4:f32, scale = 1.0, offset = 0>>
  %qf = quant.dequantize %q : tensor<4x32xf32>
  %q3 = tensor.reshape %qf {shape = [4, 4, 8]} : tensor<4x4x8xf32>
  %s1 = builtin.weight {name = "w.scale1"} : tensor<16xu8>
  %s1f = nn.cast %s1 : tensor<16xf32>
  %s1r = tensor.reshape %s1f {shape = [4, 4, 1]} : tensor<4x4x1xf32>
  %m1 = nn.mul %q3, %s1r : tensor<4x4x8xf32>
  %s2 = builtin.weight {name = "w.scale2"} : tensor<4xf32>
  %s2r = tensor.reshape %s2 {shape = [4, 1, 1]} : tensor<4x1x1xf32>
  %m2 = nn.mul %m1, %s2r : tensor<4x4x8xf32>
  %w = tensor.reshape %m2 {shape = [4, 32]} : tensor<4x32xf32>
  %y = nn.linear %x, %w : tensor<3x4xf32> loc("proj")
  func.return %y
}"#;

    /// `codes [4, 32]` (int4 -8..7), u8 block scales (blocks of 8), f32 channel scales.
    fn chain_module(block_scales: &[u8], channel_scales: &[f32], seed: u64) -> (Module, Vec<f32>) {
        let mut m = parse_module(CHAIN, "t").expect("parses");
        let mut r = Lcg(seed);
        let codes: Vec<i8> = (0..128).map(|_| (r.next() % 16) as i8 - 8).collect();
        let ws = &mut m.weights;
        ws.insert(
            "w.q",
            Weight::owned(
                WDType::I8,
                vec![4, 32],
                codes.iter().map(|c| *c as u8).collect(),
            )
            .unwrap(),
        );
        ws.insert(
            "w.scale1",
            Weight::owned(WDType::U8, vec![16], block_scales.to_vec()).unwrap(),
        );
        ws.insert(
            "w.scale2",
            Weight::owned(
                WDType::F32,
                vec![4],
                channel_scales
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect(),
            )
            .unwrap(),
        );
        // The chain's values, computed as the chain says: (q * s1) * s2 in f32.
        let want = (0..128)
            .map(|i| {
                let (c, j) = (i / 32, i % 32);
                (codes[i] as f32 * block_scales[c * 4 + j / 8] as f32) * channel_scales[c]
            })
            .collect();
        (m, want)
    }

    #[test]
    fn exact_fold_reuses_the_codes_and_dequantizes_to_the_chain_bit_for_bit() {
        let bs: Vec<u8> = (0..16).map(|i| 1 + (i * 7 % 15) as u8).collect();
        let cs = [0.013f32, 0.0007, 1.5e-3, 0.21];
        let (mut m, want) = chain_module(&bs, &cs, 1);
        let before = m.weights.len();
        let (r, stats) = run_pass(&mut m, true);
        assert_eq!(r, PassResult::Changed);
        assert_eq!(m.weights.len(), before, "an exact fold adds no payload");
        let (name, ty) = folded_weight(&m).expect("linear reads a folded weight");
        assert_eq!(name, "w.q");
        let q = ty.quant().expect("blockwise");
        assert_eq!(q.storage, Storage::I4);
        match &q.encoding {
            Encoding::Blockwise {
                block_size,
                block_scale_bits,
                ..
            } => assert_eq!((*block_size, *block_scale_bits), (8, 4)),
            e => panic!("{e:?}"),
        }
        let got = dequant(&m.weights, &name, &ty);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "element {i}: {a} vs {b}");
        }
        assert!(stats
            .entries
            .iter()
            .any(|(k, v)| k == "chains folded exactly" && v == "1"));
        // Running again changes nothing.
        let (r2, _) = run_pass(&mut m, true);
        assert_eq!(r2, PassResult::Unchanged);
    }

    #[test]
    fn block_scale_16_needs_five_bits() {
        let mut bs: Vec<u8> = (0..16).map(|i| 1 + (i % 15) as u8).collect();
        bs[3] = 16;
        let cs = [0.01f32, 0.02, 0.03, 0.04];
        let (mut m, want) = chain_module(&bs, &cs, 2);
        run_pass(&mut m, true);
        let (name, ty) = folded_weight(&m).expect("folded");
        match &ty.quant().expect("q").encoding {
            Encoding::Blockwise {
                block_scale_bits, ..
            } => assert_eq!(*block_scale_bits, 5),
            e => panic!("{e:?}"),
        }
        assert_eq!(dequant(&m.weights, &name, &ty), want);
    }

    const FLOAT_BLOCKS: &str = r#"
func.func @f(%x: tensor<3x32xf32>) -> (tensor<3x4xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<4x32xi8>
  %qf = nn.cast %q : tensor<4x32xf32>
  %q3 = tensor.reshape %qf {shape = [4, 4, 8]} : tensor<4x4x8xf32>
  %s = builtin.weight {name = "w.block_scales"} : tensor<4x4xf32>
  %sr = tensor.reshape %s {shape = [4, 4, 1]} : tensor<4x4x1xf32>
  %m = nn.mul %q3, %sr : tensor<4x4x8xf32>
  %w = tensor.reshape %m {shape = [4, 32]} : tensor<4x32xf32>
  %y = nn.linear %x, %w : tensor<3x4xf32> loc("proj")
  func.return %y
}"#;

    fn float_module(scales: &[f32], seed: u64) -> (Module, Vec<f32>) {
        let mut m = parse_module(FLOAT_BLOCKS, "t").expect("parses");
        let mut r = Lcg(seed);
        let codes: Vec<i8> = (0..128).map(|_| (r.next() % 16) as i8 - 8).collect();
        m.weights.insert(
            "w.q",
            Weight::owned(
                WDType::I8,
                vec![4, 32],
                codes.iter().map(|c| *c as u8).collect(),
            )
            .unwrap(),
        );
        m.weights.insert(
            "w.block_scales",
            Weight::owned(
                WDType::F32,
                vec![4, 4],
                scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
            )
            .unwrap(),
        );
        let want = (0..128)
            .map(|i| codes[i] as f32 * scales[(i / 32) * 4 + (i % 32) / 8])
            .collect();
        (m, want)
    }

    #[test]
    fn representable_float_block_scales_fold_exactly() {
        // s[c,b] = q[c,b] * s_c with an exact product (s_c has a short mantissa).
        let sc = [0.375f32 / 1024.0, 0.625 / 256.0, 0.75 / 4096.0, 0.5 / 64.0];
        let q = [3u8, 15, 7, 1, 2, 4, 8, 15, 11, 13, 9, 1, 15, 15, 15, 15];
        let scales: Vec<f32> = (0..16).map(|i| q[i] as f32 * sc[i / 4]).collect();
        let (mut m, want) = float_module(&scales, 3);
        let before = m.weights.len();
        let (r, _) = run_pass(&mut m, false);
        assert_eq!(r, PassResult::Changed);
        assert_eq!(m.weights.len(), before);
        let (name, ty) = folded_weight(&m).expect("folded");
        assert_eq!(
            ty.quant().expect("q").storage,
            Storage::I8,
            "plain i8 codes"
        );
        let got = dequant(&m.weights, &name, &ty);
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn other_float_block_scales_are_requantized_or_left_alone() {
        let mut r = Lcg(9);
        let scales: Vec<f32> = (0..16)
            .map(|_| 0.001 + (r.next() % 10_000) as f32 * 1.7e-7)
            .collect();
        // requantize=false: left alone.
        let (mut m, want) = float_module(&scales, 4);
        let (r0, stats) = run_pass(&mut m, false);
        assert_eq!(r0, PassResult::Unchanged);
        assert!(stats
            .entries
            .iter()
            .any(|(k, _)| k.contains("requantize=false")));
        // requantize=true: a new 4-bit payload close to the chain's values.
        let before = m.weights.len();
        let (r1, _) = run_pass(&mut m, true);
        assert_eq!(r1, PassResult::Changed);
        assert_eq!(m.weights.len(), before + 1);
        let (name, ty) = folded_weight(&m).expect("folded");
        assert_eq!(name, "w.q.lpbq");
        let q = ty.quant().expect("q");
        assert_eq!(q.storage, Storage::I4);
        let got = dequant(&m.weights, &name, &ty);
        assert!(m
            .weights
            .get(&name)
            .unwrap()
            .to_f32()
            .iter()
            .all(|c| (-8.0..=7.0).contains(c)));
        // Bound: keeping the codes and rounding each block scale to a multiple of
        // s_c = max/15 moves a scale by at most s_c/2 <= max/30, i.e. a relative error of
        // at most (max/30)/min per value; the scales here span [0.001, 0.0027], so
        // |err| <= |q| * 0.0027/30 and SQNR >= 20 log10(0.001 * 30 / 0.0027) ~ 20.9 dB
        // in the worst case. Require 20 dB.
        let sq = crate::quant::lpbq::sqnr_db(&want, &got);
        assert!(sq > 20.0, "requantized SQNR {sq} dB");
        // Idempotent.
        let (r2, _) = run_pass(&mut m, true);
        assert_eq!(r2, PassResult::Unchanged);
    }

    #[test]
    fn codes_reordered_inside_a_channel_are_copied_exactly() {
        // Codes [N=2, 2, 4] transposed to [2, 4, 2]: the reduction elements change order,
        // so no blockwise type on the codes' own layout can follow; the fold copies the
        // codes into the consumer's layout (exact: the block scales are integers).
        let src = r#"
func.func @f(%x: tensor<3x8xf32>) -> (tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x2x4x!quant.uniform<i4:f32, scale = 1.0, offset = 0>>
  %qf = quant.dequantize %q : tensor<2x2x4xf32>
  %qt = tensor.transpose %qf {perm = [0, 2, 1]} : tensor<2x4x2xf32>
  %s = builtin.constant {value = [3.0, 3.0, 15.0, 15.0, 15.0, 15.0, 1.0, 1.0]} : tensor<2x4x1xf32>
  %m = nn.mul %qt, %s : tensor<2x4x2xf32>
  %c = builtin.constant {value = [0.02, 0.0625]} : tensor<2x1x1xf32>
  %m2 = nn.mul %m, %c : tensor<2x4x2xf32>
  %w = tensor.reshape %m2 {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.linear %x, %w : tensor<3x2xf32>
  func.return %y
}"#;
        let mut m = parse_module(src, "t").expect("parses");
        mllm_ir::verify::verify_module(&m).expect("valid input");
        let codes: Vec<i8> = (0..16).map(|i| (i * 5 % 16) as i8 - 8).collect();
        m.weights.insert(
            "w.q",
            Weight::owned(
                WDType::I8,
                vec![2, 2, 4],
                codes.iter().map(|c| *c as u8).collect(),
            )
            .unwrap(),
        );
        // Chain value of linear-weight element (n, j), j = 2*a + b over [4, 2] = [a, b]:
        // codes[n, b, a] * s[n, a, 0] * c[n].
        let s = [3.0f32, 3.0, 15.0, 15.0, 15.0, 15.0, 1.0, 1.0];
        let c = [0.02f32, 0.0625];
        let want: Vec<f32> = (0..16)
            .map(|i| {
                let (n, j) = (i / 8, i % 8);
                let (a, b) = (j / 2, j % 2);
                (codes[n * 8 + b * 4 + a] as f32 * s[n * 4 + a]) * c[n]
            })
            .collect();
        let (r, stats) = run_pass(&mut m, false);
        assert_eq!(r, PassResult::Changed);
        let (name, ty) = folded_weight(&m).expect("folded");
        assert_eq!(name, "w.q.lpbq");
        assert_eq!(ty.shape(), &[2, 8]);
        let got = dequant(&m.weights, &name, &ty);
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert!(stats
            .entries
            .iter()
            .any(|(k, v)| k == "chains folded exactly" && v == "1"));
    }

    #[test]
    fn quantized_u8_block_scales_are_a_scale_leaf() {
        // Block scales as a per-tensor quantized u8 weight (scale 0.5, offset -2):
        // s1 = (q - 2) * 0.5 with q in 4..=32 gives 1..=15.
        let src = CHAIN.replace(
            "%s1 = builtin.weight {name = \"w.scale1\"} : tensor<16xu8>\n  %s1f = nn.cast %s1 : tensor<16xf32>",
            "%s1 = builtin.weight {name = \"w.scale1\"} : tensor<16x!quant.uniform<u8:f32, scale = 0.5, offset = -2>>\n  %s1f = quant.dequantize %s1 : tensor<16xf32>",
        );
        assert_ne!(src, CHAIN);
        let bs: Vec<u8> = (0..16).map(|i| 1 + (i * 4 % 15) as u8).collect();
        let cs = [0.5f32, 0.03, 0.011, 0.25];
        let (m0, want) = chain_module(&bs, &cs, 7);
        let mut m = parse_module(&src, "t").expect("parses");
        mllm_ir::verify::verify_module(&m).expect("valid");
        m.weights = m0.weights;
        let stored: Vec<u8> = bs.iter().map(|b| b * 2 + 2).collect();
        m.weights.insert(
            "w.scale1",
            Weight::owned(WDType::U8, vec![16], stored).unwrap(),
        );
        let (r, _) = run_pass(&mut m, false);
        assert_eq!(r, PassResult::Changed);
        let (name, ty) = folded_weight(&m).expect("folded");
        let got = dequant(&m.weights, &name, &ty);
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn missing_payloads_leave_the_chain_alone() {
        let mut m = parse_module(CHAIN, "t").expect("parses");
        let (r, stats) = run_pass(&mut m, true);
        assert_eq!(r, PassResult::Unchanged);
        assert!(stats
            .entries
            .iter()
            .any(|(k, v)| k.contains("payload not in the weight store") && v == "1"));
        assert!(folded_weight(&m).is_none());
    }

    #[test]
    fn zero_block_scale_is_not_exact() {
        let mut bs: Vec<u8> = vec![3; 16];
        bs[5] = 0;
        let (mut m, _) = chain_module(&bs, &[0.1, 0.2, 0.3, 0.4], 5);
        let (r, _) = run_pass(&mut m, false);
        assert_eq!(r, PassResult::Unchanged);
        let (r, _) = run_pass(&mut m, true);
        assert_eq!(r, PassResult::Changed);
        let (name, ty) = folded_weight(&m).expect("requantized");
        assert!(matches!(ty.elem(), ElemType::Quant(_)));
        // The zero block dequantizes to zeros.
        let got = dequant(&m.weights, &name, &ty);
        assert!(got[32 + 8..32 + 16].iter().all(|v| *v == 0.0));
    }
}
