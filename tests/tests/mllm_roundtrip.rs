//! safetensors -> .mllm -> IR equals safetensors -> IR, with the same weights bit for
//! bit, for `.mllm` files laid out both ways mllm's writer lays them out (static:
//! data right after N descriptors; streaming: room for 1024 descriptors reserved).

use std::sync::Arc;

use mllm_frontends::mllm_file::write_checkpoint;
use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{Checkpoint, DType, MllmLayout, Qwen3Config};
use mllm_ir::equiv::module_eq;

#[test]
fn mllm_files_of_both_layouts_import_to_the_same_ir_and_weights() {
    let dir = std::env::temp_dir().join(format!("mllm-rt-{}", std::process::id()));
    synth::generate(Preset::Tiny, 5, DType::BF16, &dir, &mut |_| {}).expect("synth");
    let cfg = Qwen3Config::from_file(dir.join("config.json")).expect("config");
    let opts = BuildOptions {
        ar_len: 4,
        context_len: 16,
        num_shards: 1,
    };
    let st = Arc::new(Checkpoint::open(&dir).expect("safetensors"));
    let reference = qwen3::build_qwen3(
        &cfg,
        qwen3::import_weights(&cfg, &st).expect("weights"),
        opts,
    )
    .expect("build");
    for layout in [MllmLayout::Static, MllmLayout::Streaming] {
        let path = dir.join(format!("model-{layout:?}.mllm"));
        write_checkpoint(&st, &path, "tiny", layout, &mut |_| {}).expect("write .mllm");
        let ck = Arc::new(Checkpoint::open(&path).expect("open .mllm"));
        let m = qwen3::build_qwen3(
            &cfg,
            qwen3::import_weights(&cfg, &ck).expect("weights"),
            opts,
        )
        .expect("build");
        module_eq(&reference, &m).unwrap_or_else(|e| panic!("{layout:?}: {e}"));
        assert_eq!(reference.weights.len(), m.weights.len());
        for (name, w) in reference.weights.iter() {
            let other = m
                .weights
                .get(name)
                .unwrap_or_else(|| panic!("{layout:?}: weight {name} missing"));
            assert_eq!(w.dtype, other.dtype, "{layout:?}: {name}");
            assert_eq!(w.shape, other.shape, "{layout:?}: {name}");
            assert!(
                w.bytes() == other.bytes(),
                "{layout:?}: weight {name} differs"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
