//! Build script: only does work with the `bindgen` feature, where it
//! generates bindings from `$QNN_SDK_ROOT/include/QNN` into `OUT_DIR` for the
//! layout cross-check test. The default build needs no QNN headers.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "bindgen")]
    generate();
}

#[cfg(feature = "bindgen")]
fn generate() {
    use std::path::PathBuf;

    println!("cargo:rerun-if-env-changed=QNN_SDK_ROOT");
    let Some(root) = std::env::var_os("QNN_SDK_ROOT") else {
        panic!(
            "the `bindgen` feature needs QNN_SDK_ROOT pointing at a QNN SDK \
             (headers in $QNN_SDK_ROOT/include/QNN)"
        );
    };
    let include = PathBuf::from(root).join("include").join("QNN");
    if !include.join("QnnInterface.h").is_file() {
        panic!("{} does not contain QnnInterface.h", include.display());
    }
    // Our own tiny header: pulls in the headers we mirror and names the
    // version-dependent function-table types.
    let wrapper = "\
#include <stdbool.h>
#include \"QnnInterface.h\"
#include \"HTP/QnnHtpDevice.h\"
#include \"HTP/QnnHtpContext.h\"
#include \"HTP/QnnHtpGraph.h\"
#include \"System/QnnSystemInterface.h\"
#include \"System/QnnSystemContext.h\"
typedef QNN_INTERFACE_VER_TYPE mllm_core_table_t;
typedef QNN_SYSTEM_INTERFACE_VER_TYPE mllm_system_table_t;
";
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let bindings = bindgen::Builder::default()
        .header_contents("mllm_qnn_wrapper.h", wrapper)
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_type("Qnn.*|mllm_.*")
        .layout_tests(false)
        .derive_debug(false)
        .generate()
        .expect("bindgen failed on the QNN headers");
    bindings
        .write_to_file(out.join("qnn_bindings.rs"))
        .expect("writing OUT_DIR/qnn_bindings.rs");
}
