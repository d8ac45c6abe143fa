//! Round-trip and verifier tests of the textual form on modules built in code.

use mllm_ir::equiv::module_eq;
use mllm_ir::parse::{parse_module, parse_verified};
use mllm_ir::print::print_module;
use mllm_ir::types::{per_tensor, ElemType, Encoding, Expressed, QuantType, Storage, Type};
use mllm_ir::verify::verify_module;
use mllm_ir::{attrs, Attr, Function, Module, OpKind};

fn sample_module() -> Module {
    let a16 = per_tensor(Storage::U16, 3.0517578e-5, -32768);
    let mut f = Function::new("model.0.s1");
    let x = f.add_arg(Type::tensor(vec![1, 1, 4], ElemType::F32), Some("hidden"));
    let ids = f.add_arg(Type::tensor(vec![1, 2], ElemType::I32), None);
    let lpbq = ElemType::Quant(QuantType {
        storage: Storage::I4,
        expressed: Expressed::F32,
        encoding: Encoding::Blockwise {
            axis: 0,
            block_size: 2,
            block_scale_bits: 4,
            block_scales: vec![1u8, 15, 3, 4, 5, 6].into(),
            channel_scales: vec![0.5f32, 0.25, 0.125].into(),
        },
    });
    let mut b = f.builder();
    let w = b.weight("w", Type::tensor(vec![3, 4], ElemType::F32));
    let wq = b.weight("wq", Type::tensor(vec![3, 4], lpbq));
    let y = b
        .named("proj", OpKind::Linear, &[x, w], Default::default())
        .unwrap();
    let n = b.scalar(1e-6, ElemType::F32);
    let z = b.binary(OpKind::Add, y, n).unwrap();
    let t = b.transpose(z, &[2, 0, 1]).unwrap();
    let r = b.reshape(t, &[3]).unwrap();
    let q = b.convert(OpKind::Quantize, r, Type::tensor(vec![3], a16.clone()));
    let q2 = b
        .op(
            OpKind::Reshape,
            &[q],
            attrs([("shape", Attr::Ints(vec![1, 3]))]),
        )
        .unwrap();
    b.ret(&[q2, ids, wq]);
    f.result_names = vec![Some("logits".into()), None, Some("w".into())];
    let mut m = Module::new();
    m.attrs
        .insert("weights".into(), Attr::Str("model.safetensors".into()));
    m.functions.push(f);
    m
}

#[test]
fn print_parse_round_trip_is_identity() {
    let m = sample_module();
    verify_module(&m).unwrap();
    let text = print_module(&m);
    let m2 = parse_verified(&text, "t.mlir").unwrap();
    module_eq(&m, &m2).unwrap();
    assert_eq!(print_module(&m2), text);
    // the repeated quantized type got an alias
    assert!(text.starts_with("!q0 = !quant.uniform<u16:f32"), "{text}");
}

#[test]
fn errors_carry_line_and_column() {
    let text = "func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {\n  %0 = nn.ad %a, %a : tensor<2xf32>\n  func.return %0\n}\n";
    let e = parse_module(text, "x.mlir").unwrap_err().to_string();
    assert!(
        e.starts_with("x.mlir:2:8: error: unknown op 'nn.ad' (did you mean 'nn.add'?)"),
        "{e}"
    );
    let text = "func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {\n  %0 = nn.add %a, %a : tensor<3xf32>\n  func.return %0\n}\n";
    let m = parse_module(text, "x.mlir").unwrap_err().to_string();
    assert!(
        m.contains("x.mlir:3:3"),
        "return type mismatch is reported at the return: {m}"
    );
}
