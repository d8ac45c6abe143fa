//! Arbitrary UTF-8 into the textual-IR parser. Whatever parses and verifies must
//! print, re-parse to an equal module, verify again and print identically; nothing
//! may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mllm_ir::equiv::module_eq;
use mllm_ir::parse::parse_module;
use mllm_ir::print::print_module;
use mllm_ir::verify::verify_module;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = parse_module(text, "fuzz.mlir") else {
        return;
    };
    if verify_module(&m).is_err() {
        return;
    }
    let printed = print_module(&m);
    let m2 = match parse_module(&printed, "printed.mlir") {
        Ok(m2) => m2,
        Err(e) => panic!("printed form does not parse: {e}\n{printed}"),
    };
    if let Err(e) = verify_module(&m2) {
        panic!("printed form does not verify: {e}\n{printed}");
    }
    if let Err(e) = module_eq(&m, &m2) {
        panic!("round trip changed the module: {e}\n{printed}");
    }
    assert_eq!(print_module(&m2), printed, "printing is not stable");
});
