//! Prints timings of the QNN wrapper on a tiny graph (emulator timings on x86
//! say nothing about phone speed):
//!
//! `cargo run -p mllm-qnn-sys --release --example qnn_timings [-- <qnn-lib-dir>]`

use std::path::PathBuf;
use std::time::Instant;

use mllm_qnn_sys::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let dir = std::env::args().nth(1).map(PathBuf::from);
    let t = Instant::now();
    let lib = QnnLibrary::load(dir.as_deref())?;
    println!(
        "load libraries: {:?} ({} core {:?} backend {:?} build {})",
        t.elapsed(),
        lib.lib_dir().dir.display(),
        lib.core_api_version(),
        lib.backend_api_version(),
        lib.build_id()
    );
    let t = Instant::now();
    let backend = Backend::new(&lib)?;
    println!("backend create: {:?}", t.elapsed());
    let t = Instant::now();
    let device = Device::new(&backend, DeviceTarget::soc(57))?;
    let ctx = Context::new(&backend, &device, ContextOptions::default())?;
    println!("device (SM8650) + context create: {:?}", t.elapsed());

    let q = Quant::ScaleOffset {
        scale: 1.0 / 32768.0,
        offset: -32768,
    };
    let spec =
        |name: &str, kind| TensorSpec::new(name, kind, DataType::UFixed16, &[1, 4], q.clone());
    let t = Instant::now();
    let mut g = GraphBuilder::create(&ctx, "add", GraphOptions::default())?;
    let a = g.add_tensor(spec("a", TensorKind::AppWrite))?;
    let b = g.add_tensor(spec("b", TensorKind::AppWrite))?;
    let y = g.add_tensor(spec("y", TensorKind::AppRead))?;
    g.add_node(
        OpSpec::new("add0", "ElementWiseAdd")
            .inputs(&[a, b])
            .outputs(&[y]),
    )?;
    println!("build graph (3 tensors, 1 node): {:?}", t.elapsed());
    let t = Instant::now();
    let mut graph = g.finalize()?;
    println!("finalize: {:?}", t.elapsed());

    let input = vec![0u8; 8];
    let mut out = vec![0u8; 8];
    let t = Instant::now();
    graph.execute_ordered(&[&input, &input], &mut [&mut out])?;
    println!("first execute: {:?}", t.elapsed());
    let reps = 100;
    let t = Instant::now();
    for _ in 0..reps {
        graph.execute_ordered(&[&input, &input], &mut [&mut out])?;
    }
    println!("execute (mean of {reps}): {:?}", t.elapsed() / reps);

    let t = Instant::now();
    let binary = ctx.binary()?;
    println!("context binary ({} bytes): {:?}", binary.len(), t.elapsed());
    let t = Instant::now();
    let info = SystemContext::new(&lib)?.binary_info(&binary)?;
    println!(
        "system binary info ({} graphs): {:?}",
        info.graphs.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let ctx2 = Context::from_binary(&backend, &device, &binary)?;
    let mut g2 = ctx2.retrieve_graph("add")?;
    println!("load binary + retrieve: {:?}", t.elapsed());
    let t = Instant::now();
    g2.execute_ordered(&[&input, &input], &mut [&mut out])?;
    println!("execute reloaded: {:?}", t.elapsed());
    Ok(())
}
