//! `lpbq-fold` on random chains: random sizes, block sizes, layouts (`[N, K]` linear, HWIO
//! conv2d, HWIO codes read by a linear through a transpose, `[K, N]` matmul), random u8
//! block scales (1..=16) and random f32 channel scales, as weights with payloads. Every
//! chain must fold exactly (no new payload) and the CPU reference must give bit-identical
//! outputs before and after, in float and fixed-point mode.

use mllm_ir::parse::parse_module;
use mllm_ir::{Module, OpKind, WDType, Weight};
use mllm_passes::{PassManager, Registry};
use mllm_runtime::cpu::{CpuExecutor, NumericMode, TensorRef};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Linear,
    HwioConv,
    HwioLinear,
    Matmul,
}

/// IR text of one chain case: codes `w.q`, block scales `w.s1` (u8, out-channel-major
/// `[N * K/B]`), channel scales `w.s2` (f32 `[N]`).
fn case_text(layout: Layout, n: usize, k: usize, b: usize, m: usize) -> String {
    let nb = k / b;
    let c4 = "!quant.uniform<i4:f32, scale = 1.0, offset = 0>";
    let scales = format!(
        "  %s1 = builtin.weight {{name = \"w.s1\"}} : tensor<{}xu8>\n  %s1f = nn.cast %s1 : tensor<{}xf32>\n  %s2 = builtin.weight {{name = \"w.s2\"}} : tensor<{n}xf32>\n",
        n * nb,
        n * nb
    );
    // `[N, nb, B]` codes, `[N, nb, 1]` block scales, `[N, 1, 1]` channel scales.
    let nk_chain = |codes: &str| {
        format!(
            "  %q3 = tensor.reshape {codes} {{shape = [{n}, {nb}, {b}]}} : tensor<{n}x{nb}x{b}xf32>\n  %s1r = tensor.reshape %s1f {{shape = [{n}, {nb}, 1]}} : tensor<{n}x{nb}x1xf32>\n  %m1 = nn.mul %q3, %s1r : tensor<{n}x{nb}x{b}xf32>\n  %s2r = tensor.reshape %s2 {{shape = [{n}, 1, 1]}} : tensor<{n}x1x1xf32>\n  %m2 = nn.mul %m1, %s2r : tensor<{n}x{nb}x{b}xf32>\n  %w = tensor.reshape %m2 {{shape = [{n}, {k}]}} : tensor<{n}x{k}xf32>\n"
        )
    };
    match layout {
        Layout::Linear => format!(
            "func.func @f(%x: tensor<{m}x{k}xf32>) -> (tensor<{m}x{n}xf32>) {{\n  %q = builtin.weight {{name = \"w.q\"}} : tensor<{n}x{k}x{c4}>\n  %qf = quant.dequantize %q : tensor<{n}x{k}xf32>\n{scales}{}  %y = nn.linear %x, %w : tensor<{m}x{n}xf32>\n  func.return %y\n}}\n",
            nk_chain("%qf")
        ),
        Layout::HwioLinear => format!(
            "func.func @f(%x: tensor<{m}x{k}xf32>) -> (tensor<{m}x{n}xf32>) {{\n  %q = builtin.weight {{name = \"w.q\"}} : tensor<1x1x{k}x{n}x{c4}>\n  %qf = quant.dequantize %q : tensor<1x1x{k}x{n}xf32>\n  %q2 = tensor.reshape %qf {{shape = [{k}, {n}]}} : tensor<{k}x{n}xf32>\n  %qt = tensor.transpose %q2 {{perm = [1, 0]}} : tensor<{n}x{k}xf32>\n{scales}{}  %y = nn.linear %x, %w : tensor<{m}x{n}xf32>\n  func.return %y\n}}\n",
            nk_chain("%qt")
        ),
        Layout::HwioConv => format!(
            "func.func @f(%x: tensor<1x1x{m}x{k}xf32>) -> (tensor<1x1x{m}x{n}xf32>) {{\n  %q = builtin.weight {{name = \"w.q\"}} : tensor<1x1x{k}x{n}x{c4}>\n  %qf = quant.dequantize %q : tensor<1x1x{k}x{n}xf32>\n  %q5 = tensor.reshape %qf {{shape = [1, 1, {nb}, {b}, {n}]}} : tensor<1x1x{nb}x{b}x{n}xf32>\n{scales}  %s1a = tensor.reshape %s1f {{shape = [{n}, {nb}]}} : tensor<{n}x{nb}xf32>\n  %s1t = tensor.transpose %s1a {{perm = [1, 0]}} : tensor<{nb}x{n}xf32>\n  %s1r = tensor.reshape %s1t {{shape = [1, 1, {nb}, 1, {n}]}} : tensor<1x1x{nb}x1x{n}xf32>\n  %m1 = nn.mul %q5, %s1r : tensor<1x1x{nb}x{b}x{n}xf32>\n  %m2 = nn.mul %m1, %s2 : tensor<1x1x{nb}x{b}x{n}xf32>\n  %w = tensor.reshape %m2 {{shape = [1, 1, {k}, {n}]}} : tensor<1x1x{k}x{n}xf32>\n  %y = nn.conv2d %x, %w : tensor<1x1x{m}x{n}xf32>\n  func.return %y\n}}\n"
        ),
        Layout::Matmul => format!(
            "func.func @f(%x: tensor<{m}x{k}xf32>) -> (tensor<{m}x{n}xf32>) {{\n  %q = builtin.weight {{name = \"w.q\"}} : tensor<{k}x{n}x{c4}>\n  %qf = quant.dequantize %q : tensor<{k}x{n}xf32>\n  %q3 = tensor.reshape %qf {{shape = [{nb}, {b}, {n}]}} : tensor<{nb}x{b}x{n}xf32>\n{scales}  %s1a = tensor.reshape %s1f {{shape = [{n}, {nb}]}} : tensor<{n}x{nb}xf32>\n  %s1t = tensor.transpose %s1a {{perm = [1, 0]}} : tensor<{nb}x{n}xf32>\n  %s1r = tensor.reshape %s1t {{shape = [{nb}, 1, {n}]}} : tensor<{nb}x1x{n}xf32>\n  %m1 = nn.mul %q3, %s1r : tensor<{nb}x{b}x{n}xf32>\n  %m2 = nn.mul %m1, %s2 : tensor<{nb}x{b}x{n}xf32>\n  %w = tensor.reshape %m2 {{shape = [{k}, {n}]}} : tensor<{k}x{n}xf32>\n  %y = nn.matmul %x, %w : tensor<{m}x{n}xf32>\n  func.return %y\n}}\n"
        ),
    }
}

fn run(m: &Module, mode: NumericMode, x: &[f32]) -> Vec<Vec<f32>> {
    let mut ex = CpuExecutor::new(m, mode).expect("executor");
    ex.run_f32(0, &[TensorRef::F32(x)]).expect("runs")
}

#[test]
fn random_chains_fold_exactly_with_identical_outputs() {
    let registry = Registry::with_all();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let layouts = [
        Layout::Linear,
        Layout::HwioConv,
        Layout::HwioLinear,
        Layout::Matmul,
    ];
    for case in 0..24 {
        let layout = layouts[case % 4];
        let b = [2usize, 4, 8, 16, 32][rng.below(5) as usize];
        let nb = 2 + rng.below(4) as usize;
        let k = b * nb;
        let n = 1 + rng.below(24) as usize;
        let m = 1 + rng.below(5) as usize;
        let text = case_text(layout, n, k, b, m);
        let mut before = parse_module(&text, "case").expect("parses");
        mllm_ir::verify::verify_module(&before).expect("verifies");
        let codes: Vec<u8> = (0..n * k)
            .map(|_| (rng.below(16) as i8 - 8) as u8)
            .collect();
        let shape = match layout {
            Layout::Linear => vec![n, k],
            Layout::Matmul => vec![k, n],
            _ => vec![1, 1, k, n],
        };
        before
            .weights
            .insert("w.q", Weight::owned(WDType::I8, shape, codes).unwrap());
        let s1: Vec<u8> = (0..n * nb).map(|_| 1 + rng.below(16) as u8).collect();
        before
            .weights
            .insert("w.s1", Weight::owned(WDType::U8, vec![n * nb], s1).unwrap());
        let s2: Vec<u8> = (0..n)
            .flat_map(|_| (1e-4 + rng.unit() * 0.05).to_le_bytes())
            .collect();
        before
            .weights
            .insert("w.s2", Weight::owned(WDType::F32, vec![n], s2).unwrap());
        let mut after = before.clone();
        let mut pm = PassManager::parse(
            "builtin.module(func.func(lpbq-fold{requantize=false}))",
            &registry,
        )
        .expect("pipeline");
        pm.run(&mut after, &mut []).expect("pass runs");
        let label = format!("case {case}: {layout:?} N={n} K={k} B={b}");
        assert_eq!(
            after.weights.len(),
            before.weights.len(),
            "{label}: new payload"
        );
        let f = &after.functions[0];
        let folded = f.op_ids().into_iter().any(|o| {
            f.op(o).kind == OpKind::Weight
                && matches!(
                    f.ty(f.op(o).results[0]).quant().map(|q| &q.encoding),
                    Some(mllm_ir::types::Encoding::Blockwise { .. })
                )
        });
        assert!(
            folded,
            "{label}: not folded\n{}",
            mllm_ir::print::print_module(&after)
        );
        assert!(
            !f.op_ids().iter().any(|o| f.op(*o).kind == OpKind::Mul),
            "{label}: a mul is left"
        );
        let x: Vec<f32> = (0..m * k).map(|_| rng.unit() * 2.0 - 1.0).collect();
        for mode in [NumericMode::Float, NumericMode::Fixed(Default::default())] {
            let (a, z) = (run(&before, mode, &x), run(&after, mode, &x));
            for (p, q) in a.iter().zip(&z) {
                assert!(
                    p.iter().zip(q).all(|(u, v)| u.to_bits() == v.to_bits()),
                    "{label} ({mode:?}): outputs differ"
                );
            }
        }
    }
}
