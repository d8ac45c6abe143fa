//! Tests against the real QNN library (HTP backend; on x86 it executes in
//! Qualcomm's emulator). They print a note and return when the library is not
//! installed (`scripts/setup-qnn.sh`).
//!
//! Expected outputs are computed here from the quantization formulas
//! (real = (q + offset) * scale), never from the code under test.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mllm_qnn_sys::*;

/// The live tests share one process-wide library; run them one at a time to
/// keep the 2-core machine responsive and the library's global state simple.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn library() -> Option<Arc<QnnLibrary>> {
    match QnnLibrary::load(None) {
        Ok(lib) => Some(lib),
        Err(QnnError::LibraryNotFound { .. }) => {
            println!("QNN library not found; run scripts/setup-qnn.sh");
            None
        }
        Err(e) => panic!("QNN library present but failed to load: {e}"),
    }
}

const SOC_SM8650: u32 = 57;

fn u16_bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn bytes_u16(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}
fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

/// Quantizes `real` to u16 with `real = (q + offset) * scale`.
fn quant_u16(real: f64, scale: f32, offset: i32) -> u16 {
    let q = (real / scale as f64).round() - offset as f64;
    q.clamp(0.0, 65535.0) as u16
}
fn dequant(q: f64, scale: f32, offset: i32) -> f64 {
    (q + offset as f64) * scale as f64
}

fn max_lsb_diff(a: &[u16], b: &[u16]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as i32 - y as i32).abs())
        .max()
        .unwrap_or(0)
}

struct AddCase {
    a: Vec<u16>,
    b: Vec<u16>,
    expected: Vec<u16>,
}

const A_Q: (f32, i32) = (2.0 / 65535.0, -32768); // [-1, 1]
const B_Q: (f32, i32) = (4.0 / 65535.0, -16384); // [-1, 3]
const Y_Q: (f32, i32) = (6.0 / 65535.0, -21845); // [-2, 4]

fn add_case() -> AddCase {
    let a = vec![0u16, 16384, 32768, 65535];
    let b = vec![65535u16, 1000, 16384, 30000];
    let expected = a
        .iter()
        .zip(&b)
        .map(|(&qa, &qb)| {
            let real = dequant(qa as f64, A_Q.0, A_Q.1) + dequant(qb as f64, B_Q.0, B_Q.1);
            quant_u16(real, Y_Q.0, Y_Q.1)
        })
        .collect();
    AddCase { a, b, expected }
}

fn build_add(ctx: &Context) -> Result<Graph> {
    let mut g = GraphBuilder::create(ctx, "add", GraphOptions::default())?;
    let q = |(scale, offset): (f32, i32)| Quant::ScaleOffset { scale, offset };
    let a = g.add_tensor(TensorSpec::new(
        "a",
        TensorKind::AppWrite,
        DataType::UFixed16,
        &[1, 4],
        q(A_Q),
    ))?;
    let b = g.add_tensor(TensorSpec::new(
        "b",
        TensorKind::AppWrite,
        DataType::UFixed16,
        &[1, 4],
        q(B_Q),
    ))?;
    let y = g.add_tensor(TensorSpec::new(
        "y",
        TensorKind::AppRead,
        DataType::UFixed16,
        &[1, 4],
        q(Y_Q),
    ))?;
    g.add_node(
        OpSpec::new("add0", "ElementWiseAdd")
            .inputs(&[a, b])
            .outputs(&[y]),
    )?;
    g.finalize()
}

/// FullyConnected [1,K] x W[N,K]^T with int8 per-output-channel weights.
struct FcCase {
    k: usize,
    n: usize,
    x: Vec<u16>,
    x_q: (f32, i32),
    w: Vec<i8>,
    w_scales: Vec<f32>,
    y_q: (f32, i32),
    expected: Vec<u16>,
}

fn fc_case() -> FcCase {
    let (k, n) = (16usize, 8usize);
    let x_q = (2.0f32 / 65535.0, -32768);
    let x: Vec<u16> = (0..k).map(|i| ((i * 7919 + 1234) % 65536) as u16).collect();
    let w: Vec<i8> = (0..n * k)
        .map(|i| (((i * 37 + 11) % 255) as i32 - 127) as i8)
        .collect();
    let w_scales: Vec<f32> = (0..n).map(|c| 0.002 + 0.001 * c as f32).collect();
    let reals: Vec<f64> = (0..n)
        .map(|c| {
            (0..k)
                .map(|i| {
                    dequant(x[i] as f64, x_q.0, x_q.1) * w[c * k + i] as f64 * w_scales[c] as f64
                })
                .sum()
        })
        .collect();
    let lo = reals.iter().cloned().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = reals
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(0.0);
    let scale = ((hi - lo) / 65535.0) as f32;
    let offset = (lo / scale as f64).round() as i32;
    let y_q = (scale, offset);
    let expected = reals.iter().map(|&r| quant_u16(r, scale, offset)).collect();
    FcCase {
        k,
        n,
        x,
        x_q,
        w,
        w_scales,
        y_q,
        expected,
    }
}

/// Takes the weights by value and drops them right after creating the static
/// tensor: QNN copies static data, so weights can be streamed.
fn build_fc(ctx: &Context, c: &FcCase, w_bytes: Vec<u8>) -> Result<Graph> {
    let mut g = GraphBuilder::create(ctx, "fc", GraphOptions::default())?;
    let x = g.add_tensor(TensorSpec::new(
        "x",
        TensorKind::AppWrite,
        DataType::UFixed16,
        &[1, c.k as u32],
        Quant::ScaleOffset {
            scale: c.x_q.0,
            offset: c.x_q.1,
        },
    ))?;
    let w = g.add_tensor(TensorSpec::constant(
        "w",
        DataType::SFixed8,
        &[c.n as u32, c.k as u32],
        Quant::AxisScaleOffset {
            axis: 0,
            scales: c.w_scales.clone(),
            offsets: vec![0; c.n],
        },
        &w_bytes,
    ))?;
    drop(w_bytes);
    let y = g.add_tensor(TensorSpec::new(
        "fc_out",
        TensorKind::AppRead,
        DataType::UFixed16,
        &[1, c.n as u32],
        Quant::ScaleOffset {
            scale: c.y_q.0,
            offset: c.y_q.1,
        },
    ))?;
    let op = OpSpec::new("fc0", "FullyConnected")
        .inputs(&[x, w])
        .outputs(&[y]);
    g.validate_op(&op)?;
    g.add_node(op)?;
    g.finalize()
}

/// LPBQ Conv2d 1x1: input [1,1,M,K] NHWC, weight HWIO [1,1,K,N] with int4
/// values stored as int8, blockwise expansion on axis 3.
struct ConvCase {
    m: usize,
    k: usize,
    n: usize,
    block: usize,
    x: Vec<u16>,
    x_q: (f32, i32),
    w_hwio: Vec<i8>,
    channel_scales: Vec<f32>,
    block_scales: Vec<u8>,
    y_q: (f32, i32),
    expected: Vec<u16>,
}

/// Small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

fn conv_case() -> ConvCase {
    conv_case_sized(1, 32, 8, 16, 7)
}

fn conv_case_sized(m: usize, k: usize, n: usize, block: usize, seed: u64) -> ConvCase {
    assert_eq!(k % block, 0);
    let blocks = k / block;
    let mut rng = Lcg(seed);
    let x_q = (2.0f32 / 65535.0, -32768);
    let x: Vec<u16> = (0..m * k).map(|_| rng.next() as u16).collect();
    // w[kk][c] in HWIO order (K rows, N columns), values in -8..=7.
    let w_hwio: Vec<i8> = (0..k * n).map(|_| (rng.next() % 16) as i8 - 8).collect();
    let channel_scales: Vec<f32> = (0..n)
        .map(|_| 0.001 + (rng.next() % 1000) as f32 * 1e-5)
        .collect();
    let block_scales: Vec<u8> = (0..n * blocks)
        .map(|_| (rng.next() % 15 + 1) as u8)
        .collect();
    let mut reals = Vec::with_capacity(m * n);
    for row in 0..m {
        for c in 0..n {
            let r: f64 = (0..k)
                .map(|kk| {
                    let w = w_hwio[kk * n + c] as f64
                        * channel_scales[c] as f64
                        * block_scales[c * blocks + kk / block] as f64;
                    dequant(x[row * k + kk] as f64, x_q.0, x_q.1) * w
                })
                .sum();
            reals.push(r);
        }
    }
    let lo = reals.iter().cloned().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = reals
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(0.0);
    let scale = ((hi - lo) / 65535.0) as f32;
    let offset = (lo / scale as f64).round() as i32;
    let expected = reals.iter().map(|&r| quant_u16(r, scale, offset)).collect();
    ConvCase {
        m,
        k,
        n,
        block,
        x,
        x_q,
        w_hwio,
        channel_scales,
        block_scales,
        y_q: (scale, offset),
        expected,
    }
}

fn build_conv(ctx: &Context, c: &ConvCase, w_bytes: &[u8]) -> Result<Graph> {
    build_conv_named(ctx, "conv", c, w_bytes)
}

fn build_conv_named(ctx: &Context, name: &str, c: &ConvCase, w_bytes: &[u8]) -> Result<Graph> {
    let u32_bytes = |v: &[u32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let stride = u32_bytes(&[1, 1]);
    let pad = u32_bytes(&[0, 0, 0, 0]);
    let dilation = u32_bytes(&[1, 1]);
    let mut g = GraphBuilder::create(ctx, name, GraphOptions::default())?;
    let x = g.add_tensor(TensorSpec::new(
        "cx",
        TensorKind::AppWrite,
        DataType::UFixed16,
        &[1, 1, c.m as u32, c.k as u32],
        Quant::ScaleOffset {
            scale: c.x_q.0,
            offset: c.x_q.1,
        },
    ))?;
    let w = g.add_tensor(TensorSpec::constant(
        "cw",
        DataType::SFixed8,
        &[1, 1, c.k as u32, c.n as u32],
        Quant::BlockwiseExpansion {
            axis: 3,
            channel_scales: c.channel_scales.clone(),
            num_blocks_per_axis: (c.k / c.block) as u32,
            block_scale_bitwidth: 4,
            block_scales_u8: c.block_scales.clone(),
        },
        w_bytes,
    ))?;
    let y = g.add_tensor(TensorSpec::new(
        "conv_out",
        TensorKind::AppRead,
        DataType::UFixed16,
        &[1, 1, c.m as u32, c.n as u32],
        Quant::ScaleOffset {
            scale: c.y_q.0,
            offset: c.y_q.1,
        },
    ))?;
    let op = OpSpec::new("conv0", "Conv2d")
        .inputs(&[x, w])
        .outputs(&[y])
        .tensor_param(
            "stride",
            TensorSpec::constant("", DataType::UInt32, &[2], Quant::None, &stride),
        )
        .tensor_param(
            "pad_amount",
            TensorSpec::constant("", DataType::UInt32, &[2, 2], Quant::None, &pad),
        )
        .tensor_param(
            "dilation",
            TensorSpec::constant("", DataType::UInt32, &[2], Quant::None, &dilation),
        )
        .scalar("group", ScalarValue::U32(1));
    g.add_node(op)?;
    g.finalize()
}

fn run_all(
    graphs: &mut [&mut Graph],
    add: &AddCase,
    fc: &FcCase,
    conv: &ConvCase,
) -> Result<Vec<Vec<u16>>> {
    let mut outs = Vec::new();
    for g in graphs.iter_mut() {
        let out = match g.name() {
            "add" => {
                let (a, b) = (u16_bytes(&add.a), u16_bytes(&add.b));
                let mut y = vec![0u8; 8];
                g.execute(
                    &[
                        Input {
                            name: "a",
                            data: &a,
                        },
                        Input {
                            name: "b",
                            data: &b,
                        },
                    ],
                    &mut [Output {
                        name: "y",
                        data: &mut y,
                    }],
                )?;
                y
            }
            "fc" => {
                let x = u16_bytes(&fc.x);
                let mut y = vec![0u8; fc.n * 2];
                g.execute_ordered(&[&x], &mut [&mut y])?;
                y
            }
            "conv" => {
                let x = u16_bytes(&conv.x);
                let mut y = vec![0u8; conv.m * conv.n * 2];
                g.execute_ordered(&[&x], &mut [&mut y])?;
                y
            }
            other => panic!("unexpected graph {other}"),
        };
        outs.push(bytes_u16(&out));
    }
    Ok(outs)
}

#[test]
fn build_save_reload_execute() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    println!(
        "QNN: provider '{}' core {:?} backend {:?} system {:?} build '{}' from {}",
        lib.provider_name(),
        lib.core_api_version(),
        lib.backend_api_version(),
        lib.system_api_version(),
        lib.build_id(),
        lib.lib_dir().dir.display()
    );
    assert_eq!(lib.core_api_version().0, 2);
    assert!(lib.core_api_version().1 >= REQUIRED_CORE_MINOR);

    let t = Instant::now();
    let backend = Backend::new(&lib).expect("backend");
    let t_backend = t.elapsed();
    let device = Device::new(&backend, DeviceTarget::soc(SOC_SM8650)).expect("device SOC 57");
    let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");

    let add = add_case();
    let fc = fc_case();
    let conv = conv_case();
    let fc_w = i8_bytes(&fc.w);
    let conv_w = i8_bytes(&conv.w_hwio);

    let t = Instant::now();
    let mut g_add = build_add(&ctx).expect("add graph");
    let t_add_finalize = t.elapsed();
    let t = Instant::now();
    let mut g_fc = build_fc(&ctx, &fc, fc_w).expect("fc graph");
    let t_fc_finalize = t.elapsed();
    let mut g_conv = build_conv(&ctx, &conv, &conv_w).expect("conv graph");
    drop(conv_w);

    let t = Instant::now();
    let first = run_all(&mut [&mut g_add], &add, &fc, &conv).expect("execute add");
    let t_exec = t.elapsed();
    let first_rest = run_all(&mut [&mut g_fc, &mut g_conv], &add, &fc, &conv).expect("execute");
    println!("add: got {:?} expected {:?}", first[0], add.expected);
    println!("fc: got {:?} expected {:?}", first_rest[0], fc.expected);
    println!("conv: got {:?} expected {:?}", first_rest[1], conv.expected);
    assert!(max_lsb_diff(&first[0], &add.expected) <= 2, "add mismatch");
    assert!(
        max_lsb_diff(&first_rest[0], &fc.expected) <= 4,
        "fc mismatch"
    );
    assert!(
        max_lsb_diff(&first_rest[1], &conv.expected) <= 4,
        "conv mismatch"
    );

    let t = Instant::now();
    let binary = ctx.binary().expect("context binary");
    let t_binary = t.elapsed();
    assert!(binary.len() > 1000);
    drop((g_add, g_fc, g_conv));
    drop(ctx);

    // Write atomically, then reload in a fresh context from the file.
    let dir = std::env::temp_dir().join(format!("mllm-qnn-sys-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.bin");
    let tmp = dir.join("tiny.bin.tmp");
    std::fs::write(&tmp, &binary).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();

    // Metadata via libQnnSystem.
    let sys_ctx = SystemContext::new(&lib).expect("system context");
    let info = sys_ctx.binary_info(&bytes).expect("binary info");
    println!(
        "binary: {} bytes, info v{}, soc model {:?}, build '{}', graphs {:?}",
        bytes.len(),
        info.info_version,
        info.soc_model,
        info.build_id,
        info.graphs.iter().map(|g| &g.name).collect::<Vec<_>>()
    );
    let mut names: Vec<&str> = info.graphs.iter().map(|g| g.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["add", "conv", "fc"]);
    let add_info = info.graphs.iter().find(|g| g.name == "add").unwrap();
    let in_names: Vec<&str> = add_info.inputs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(in_names, ["a", "b"]);
    assert_eq!(add_info.outputs.len(), 1);
    assert_eq!(add_info.outputs[0].name, "y");
    assert_eq!(add_info.outputs[0].dims, vec![1, 4]);
    assert_eq!(add_info.outputs[0].dtype, DataType::UFixed16);
    assert_eq!(
        add_info.inputs[0].quant,
        Quant::ScaleOffset {
            scale: A_Q.0,
            offset: A_Q.1
        }
    );
    let conv_info = info.graphs.iter().find(|g| g.name == "conv").unwrap();
    assert_eq!(conv_info.inputs[0].dims, vec![1, 1, 1, conv.k as u32]);
    if let Some(soc) = info.soc_model {
        assert_eq!(soc, SOC_SM8650);
    }

    let t = Instant::now();
    let ctx2 = Context::from_binary(&backend, &device, &bytes).expect("from_binary");
    let t_load = t.elapsed();
    // The binary buffer is not needed after loading.
    bytes.iter_mut().for_each(|b| *b = 0);
    drop(bytes);
    let mut r_add = ctx2.retrieve_graph("add").expect("retrieve add");
    let mut r_fc = ctx2.retrieve_graph("fc").expect("retrieve fc");
    let mut r_conv = ctx2.retrieve_graph("conv").expect("retrieve conv");
    let t = Instant::now();
    let again = run_all(&mut [&mut r_add], &add, &fc, &conv).expect("execute reloaded add");
    let t_exec2 = t.elapsed();
    let again_rest =
        run_all(&mut [&mut r_fc, &mut r_conv], &add, &fc, &conv).expect("execute reloaded");
    assert_eq!(again[0], first[0], "reloaded add differs");
    assert_eq!(again_rest, first_rest, "reloaded fc/conv differ");

    // Wrong buffer size: rejected before calling the library.
    let a = u16_bytes(&add.a);
    let b = u16_bytes(&add.b);
    let mut short = vec![0u8; 6];
    let err = r_add
        .execute(
            &[
                Input {
                    name: "a",
                    data: &a,
                },
                Input {
                    name: "b",
                    data: &b,
                },
            ],
            &mut [Output {
                name: "y",
                data: &mut short,
            }],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            QnnError::BufferSize {
                expected: 8,
                actual: 6,
                ..
            }
        ),
        "{err}"
    );
    let err = r_add
        .execute(
            &[Input {
                name: "a",
                data: &a,
            }],
            &mut [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("'b' not bound"), "{err}");
    assert!(ctx2.retrieve_graph("nope").is_err());

    println!(
        "timings: backend create {:?}, finalize add {:?}, finalize fc {:?}, execute add {:?}, \
         context binary {:?}, load binary {:?}, execute reloaded add {:?}",
        t_backend, t_add_finalize, t_fc_finalize, t_exec, t_binary, t_load, t_exec2
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_and_garbage_binaries_are_errors() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    let backend = Backend::new(&lib).expect("backend");
    let device = Device::new(&backend, DeviceTarget::default()).expect("device");
    let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
    build_add(&ctx).expect("add graph");
    let binary = ctx.binary().expect("binary");

    let sys_ctx = SystemContext::new(&lib).expect("system context");
    for cut in [binary.len() / 2, 64, 1] {
        let truncated = &binary[..cut];
        let err = sys_ctx.binary_info(truncated).unwrap_err();
        println!("truncated to {cut}: {err}");
        assert!(err.code().is_some(), "{err}");
        assert!(err.to_string().contains("malformed"), "{err}");
        let err = Context::from_binary(&backend, &device, truncated).unwrap_err();
        assert!(err.code().is_some(), "{err}");
    }
    let garbage = vec![0xA5u8; 4096];
    assert!(Context::from_binary(&backend, &device, &garbage).is_err());
    assert!(Context::from_binary(&backend, &device, &[]).is_err());
}

#[test]
fn bad_graph_inputs_are_rejected_before_the_library() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    let backend = Backend::new(&lib).expect("backend");
    let device = Device::new(&backend, DeviceTarget::default()).expect("device");
    let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
    let mut g = GraphBuilder::create(&ctx, "bad", GraphOptions::default()).expect("graph");
    let q = Quant::ScaleOffset {
        scale: 0.1,
        offset: 0,
    };
    let a = g
        .add_tensor(TensorSpec::new(
            "a",
            TensorKind::AppWrite,
            DataType::UFixed8,
            &[4],
            q.clone(),
        ))
        .unwrap();
    // Duplicate name.
    let err = g
        .add_tensor(TensorSpec::new(
            "a",
            TensorKind::AppRead,
            DataType::UFixed8,
            &[4],
            q.clone(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");
    // Static tensor with wrong data size.
    let data = [0u8; 3];
    let err = g
        .add_tensor(TensorSpec::constant(
            "w",
            DataType::UFixed8,
            &[4],
            q.clone(),
            &data,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("expected exactly 4"), "{err}");
    // Tensor id from another graph.
    let mut other = GraphBuilder::create(&ctx, "other", GraphOptions::default()).expect("graph");
    let foreign = other
        .add_tensor(TensorSpec::new(
            "z",
            TensorKind::AppRead,
            DataType::UFixed8,
            &[4],
            q.clone(),
        ))
        .unwrap();
    let err = g
        .add_node(OpSpec::new("relu", "Relu").inputs(&[a]).outputs(&[foreign]))
        .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    // Writing into an input tensor.
    let err = g
        .add_node(OpSpec::new("relu", "Relu").inputs(&[a]).outputs(&[a]))
        .unwrap_err();
    assert!(
        err.to_string().contains("must be Native or AppRead"),
        "{err}"
    );
    // An unknown op type is a library error with code and message, not a crash.
    let y = g
        .add_tensor(TensorSpec::new(
            "y",
            TensorKind::AppRead,
            DataType::UFixed8,
            &[4],
            q,
        ))
        .unwrap();
    let err = g
        .validate_op(&OpSpec::new("x", "NoSuchOp").inputs(&[a]).outputs(&[y]))
        .unwrap_err();
    println!("unknown op: {err}");
    assert!(err.code().is_some(), "{err}");
    assert!(err.to_string().contains("backendValidateOpConfig"), "{err}");
}

#[test]
fn missing_library_dir_mentions_setup_script() {
    let err = QnnLibrary::load(Some(std::path::Path::new("/nonexistent/qnn-libs"))).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("scripts/setup-qnn.sh"), "{msg}");
    assert!(msg.contains("/nonexistent/qnn-libs"), "{msg}");
}

#[test]
fn soc_targets_are_recorded_in_the_binary() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    let backend = Backend::new(&lib).expect("backend");
    for soc in [43u32, 69, 87] {
        let device = Device::new(&backend, DeviceTarget::soc(soc)).expect("device");
        let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
        let mut g = build_add(&ctx).expect("add graph");
        let add = add_case();
        let out = run_all(&mut [&mut g], &add, &fc_case(), &conv_case()).expect("execute");
        assert!(
            max_lsb_diff(&out[0], &add.expected) <= 2,
            "soc {soc}: {:?}",
            out[0]
        );
        let info = SystemContext::new(&lib)
            .unwrap()
            .binary_info(&ctx.binary().expect("binary"))
            .expect("info");
        println!(
            "soc {soc}: info soc_model {:?} soc_version '{}'",
            info.soc_model, info.soc_version
        );
        if let Some(model) = info.soc_model {
            assert_eq!(model, soc);
        }
    }
    // An arch-only target: the 2.51 library picks that arch's default SoC
    // (v79 -> SM8750 = 69), which shows the ARCH config was read (a
    // misplaced config would leave the default SM8350 = 30).
    let device = Device::new(
        &backend,
        DeviceTarget {
            arch: Some(79),
            ..Default::default()
        },
    )
    .expect("device arch 79");
    let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
    build_add(&ctx).expect("add graph for v79");
    let info = SystemContext::new(&lib)
        .unwrap()
        .binary_info(&ctx.binary().expect("binary"))
        .expect("info");
    println!("arch 79 only: soc model {:?}", info.soc_model);
    if let Some(model) = info.soc_model {
        assert_eq!(model, 69);
    }
    // Unknown arch values are rejected before the library sees them.
    let err = Device::new(
        &backend,
        DeviceTarget {
            arch: Some(42),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown HTP arch 42"), "{err}");
}

#[test]
fn weight_shared_binaries_load_or_fail_cleanly() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    let backend = Backend::new(&lib).expect("backend");
    let device = Device::new(&backend, DeviceTarget::soc(SOC_SM8650)).expect("device");
    let ctx = Context::new(
        &backend,
        &device,
        ContextOptions {
            weight_sharing: true,
        },
    )
    .expect("weight-sharing context");
    let fc = fc_case();
    let conv = conv_case();
    build_fc(&ctx, &fc, i8_bytes(&fc.w)).expect("fc graph");
    build_conv(&ctx, &conv, &i8_bytes(&conv.w_hwio)).expect("conv graph");
    let binary = ctx.binary().expect("binary");
    let info = SystemContext::new(&lib)
        .unwrap()
        .binary_info(&binary)
        .expect("info");
    assert_eq!(info.graphs.len(), 2);
    println!("weight-shared binary: {} bytes", binary.len());
    // Loading, retrieving and executing must each either work (and then
    // compute the right values) or return an error with a QNN code.
    let result = Context::from_binary(&backend, &device, &binary).and_then(|ctx2| {
        let mut g_fc = ctx2.retrieve_graph("fc")?;
        let mut g_conv = ctx2.retrieve_graph("conv")?;
        run_all(&mut [&mut g_fc, &mut g_conv], &add_case(), &fc, &conv)
    });
    match result {
        Ok(outs) => {
            println!("weight-shared binary runs here: {outs:?}");
            assert!(max_lsb_diff(&outs[0], &fc.expected) <= 4);
            assert!(max_lsb_diff(&outs[1], &conv.expected) <= 4);
        }
        Err(e) => {
            println!("weight-shared binary refused: {e}");
            assert!(e.code().is_some(), "{e}");
            if cfg!(target_arch = "x86_64") {
                // The x86 emulator: "Shared weights buffer isn't supported".
                assert_eq!(e.code(), Some(1000), "{e}");
            }
        }
    }
}

#[test]
fn lpbq_conv_at_a_realistic_shape() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    let backend = Backend::new(&lib).expect("backend");
    let device = Device::new(&backend, DeviceTarget::soc(SOC_SM8650)).expect("device");
    let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
    // K=1024 -> N=512, M=4 rows, block 32 (32 blocks per output channel).
    let c = conv_case_sized(4, 1024, 512, 32, 42);
    let t = Instant::now();
    let mut g = build_conv_named(&ctx, "conv", &c, &i8_bytes(&c.w_hwio)).expect("conv graph");
    let t_finalize = t.elapsed();
    let x = u16_bytes(&c.x);
    let mut y = vec![0u8; c.m * c.n * 2];
    let t = Instant::now();
    g.execute_ordered(&[&x], &mut [&mut y]).expect("execute");
    let t_exec = t.elapsed();
    let got = bytes_u16(&y);
    let diffs: Vec<f64> = got
        .iter()
        .zip(&c.expected)
        .map(|(&a, &b)| a as f64 - b as f64)
        .collect();
    let rms = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let max = max_lsb_diff(&got, &c.expected);
    println!(
        "LPBQ conv M={} K={} N={} block {}: max diff {max} LSB, rms {rms:.3} LSB; \
         finalize {t_finalize:?}, execute {t_exec:?}",
        c.m, c.k, c.n, c.block
    );
    assert!(max <= 2, "max diff {max} LSB");
    assert!(rms <= 0.75, "rms {rms} LSB");
}

#[test]
fn graph_options_are_accepted() {
    let _serial = serial();
    let Some(lib) = library() else { return };
    let backend = Backend::new(&lib).expect("backend");
    let device = Device::new(&backend, DeviceTarget::soc(SOC_SM8650)).expect("device");
    let q = Quant::ScaleOffset {
        scale: 1.0 / 256.0,
        offset: -32768,
    };
    let relu_graph = |ctx: &Context, options: GraphOptions| -> Result<Vec<u16>> {
        let mut g = GraphBuilder::create(ctx, "relu", options)?;
        let spec = |n: &str, kind| TensorSpec::new(n, kind, DataType::UFixed16, &[1, 4], q.clone());
        let x = g.add_tensor(spec("x", TensorKind::AppWrite))?;
        let y = g.add_tensor(spec("y", TensorKind::AppRead))?;
        g.add_node(OpSpec::new("relu0", "Relu").inputs(&[x]).outputs(&[y]))?;
        let mut graph = g.finalize()?;
        let mut out = vec![0u8; 8];
        graph.execute_ordered(&[&u16_bytes(&[30000, 40000, 1, 65535])], &mut [&mut out])?;
        Ok(bytes_u16(&out))
    };
    // relu((q - 32768) / 256): negatives clamp to zero = q 32768.
    let expected = [32768u16, 40000, 32768, 65535];
    for options in [
        GraphOptions::default(),
        GraphOptions {
            precision_fp16: true,
            ..Default::default()
        },
        GraphOptions {
            optimization_level: Some(3),
            vtcm_mb: Some(4),
            ..Default::default()
        },
    ] {
        let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
        let out = relu_graph(&ctx, options).unwrap_or_else(|e| panic!("{options:?}: {e}"));
        assert_eq!(out, expected, "{options:?}");
    }
    let ctx = Context::new(&backend, &device, ContextOptions::default()).expect("context");
    for bad in [
        GraphOptions {
            optimization_level: Some(9),
            ..Default::default()
        },
        GraphOptions {
            vtcm_mb: Some(0),
            ..Default::default()
        },
        GraphOptions {
            vtcm_mb: Some(1000),
            ..Default::default()
        },
    ] {
        let err = GraphBuilder::create(&ctx, "bad", bad).unwrap_err();
        assert!(
            matches!(err, QnnError::InvalidArgument { .. }),
            "{bad:?}: {err}"
        );
    }
}
