// pipeline: builtin.module(func.func(decompose,sha-split,linear-to-conv2d,canonicalize,cse,dce))
// The tiny synthetic Qwen3 (2 layers, GQA 4/2, head_dim 16; prefill s4 and decode s1,
// context 16) through the NPU layout passes: single-head attention everywhere and every
// linear a 1x1 conv2d with an HWIO weight. Greedy generation before and after is
// identical (tests/e2e_cpu.rs); values are checked by tests/numeric.rs.
module {
  func.func @model.0.s4(%sequence: tensor<1x4xi32>, %position_ids: tensor<4xi32>, %causal_mask: tensor<1x1x4x16xf32>, %past_key_0: tensor<1x2x16x12xf32>, %past_key_1: tensor<1x2x16x12xf32>, %past_value_0: tensor<1x2x12x16xf32>, %past_value_1: tensor<1x2x12x16xf32>) -> (tensor<1x4x151936xf32> {name = "logits"}, tensor<1x2x16x4xf32> {name = "present_key_0"}, tensor<1x2x16x4xf32> {name = "present_key_1"}, tensor<1x2x4x16xf32> {name = "present_value_0"}, tensor<1x2x4x16xf32> {name = "present_value_1"}) attributes {ar_len = 4, context_len = 16, layers = [0, 2], shard = 0} {
    %0 = builtin.weight {name = "model.embed_tokens.weight"} : tensor<151936x64xf32>
    %1 = nn.embedding %sequence, %0 : tensor<1x4x64xf32> loc("model.embed_tokens")
    %2 = builtin.weight {name = "model.rope.cos"} : tensor<16x16xf32>
    %3 = builtin.weight {name = "model.rope.sin"} : tensor<16x16xf32>
    %4 = tensor.gather %2, %position_ids {axis = 0} : tensor<4x16xf32> loc("model.rope.gather_cos")
    %5 = tensor.gather %3, %position_ids {axis = 0} : tensor<4x16xf32> loc("model.rope.gather_sin")
    %6 = builtin.constant {value = [1.0]} : tensor<1xf32>
    %7 = nn.equal %causal_mask, %6 : tensor<1x1x4x16xi1> loc("model.mask_equal")
    %8 = builtin.weight {name = "model.layers.0.input_layernorm.weight"} : tensor<64xf32>
    %9 = nn.rms_norm %1, %8 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.0.input_layernorm")
    %10 = builtin.weight {name = "model.layers.0.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %11 = nn.linear %9, %10 : tensor<1x4x64xf32> loc("model.layers.0.self_attn.q_proj")
    %12 = tensor.reshape %11 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.q_reshape")
    %13 = tensor.transpose %12 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.q_transpose")
    %14 = builtin.weight {name = "model.layers.0.self_attn.q_norm.weight"} : tensor<16xf32>
    %15 = nn.rms_norm %13, %14 {epsilon = 1e-6} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.q_norm")
    %16 = nn.rope %15, %4, %5 : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.rope_q")
    %17 = builtin.weight {name = "model.layers.0.self_attn.k_proj.weight"} : tensor<32x64xf32>
    %18 = nn.linear %9, %17 : tensor<1x4x32xf32> loc("model.layers.0.self_attn.k_proj")
    %19 = tensor.reshape %18 {shape = [1, 4, 2, 16]} : tensor<1x4x2x16xf32> loc("model.layers.0.self_attn.k_reshape")
    %20 = tensor.transpose %19 {perm = [0, 2, 1, 3]} : tensor<1x2x4x16xf32> loc("model.layers.0.self_attn.k_transpose")
    %21 = builtin.weight {name = "model.layers.0.self_attn.k_norm.weight"} : tensor<16xf32>
    %22 = nn.rms_norm %20, %21 {epsilon = 1e-6} : tensor<1x2x4x16xf32> loc("model.layers.0.self_attn.k_norm")
    %23 = nn.rope %22, %4, %5 : tensor<1x2x4x16xf32> loc("model.layers.0.self_attn.rope_k")
    %24 = builtin.weight {name = "model.layers.0.self_attn.v_proj.weight"} : tensor<32x64xf32>
    %25 = nn.linear %9, %24 : tensor<1x4x32xf32> loc("model.layers.0.self_attn.v_proj")
    %26 = tensor.reshape %25 {shape = [1, 4, 2, 16]} : tensor<1x4x2x16xf32> loc("model.layers.0.self_attn.v_reshape")
    %27 = tensor.transpose %26 {perm = [0, 2, 1, 3]} : tensor<1x2x4x16xf32> loc("model.layers.0.self_attn.v_transpose")
    %28 = tensor.transpose %23 {perm = [0, 1, 3, 2]} : tensor<1x2x16x4xf32> loc("model.layers.0.self_attn.k_cache_transpose")
    %29 = tensor.concat %past_key_0, %28 {axis = 3} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.k_concat")
    %30 = tensor.concat %past_value_0, %27 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.v_concat")
    %31 = tensor.reshape %16 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.q_group_reshape")
    %32 = nn.matmul %31, %29 : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.qk_matmul")
    %33 = tensor.reshape %32 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.qk_reshape")
    %34 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %35 = nn.mul %33, %34 : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.qk_scale")
    %36 = nn.reduce_min %35 {axes = [-1], keepdims = true} : tensor<1x4x4x1xf32> loc("model.layers.0.self_attn.reduce_min")
    %37 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %38 = nn.add %36, %37 : tensor<1x4x4x1xf32> loc("model.layers.0.self_attn.mask_fill")
    %39 = nn.where %7, %35, %38 : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.mask_where")
    %40 = nn.softmax %39 {axis = -1} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.softmax")
    %41 = tensor.reshape %40 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.probs_group_reshape")
    %42 = nn.matmul %41, %30 : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.pv_matmul")
    %43 = tensor.reshape %42 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.pv_reshape")
    %44 = tensor.transpose %43 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.o_transpose")
    %45 = tensor.reshape %44 {shape = [1, 4, 64]} : tensor<1x4x64xf32> loc("model.layers.0.self_attn.o_reshape")
    %46 = builtin.weight {name = "model.layers.0.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %47 = nn.linear %45, %46 : tensor<1x4x64xf32> loc("model.layers.0.self_attn.o_proj")
    %48 = nn.add %1, %47 : tensor<1x4x64xf32> loc("model.layers.0.attn_residual")
    %49 = builtin.weight {name = "model.layers.0.post_attention_layernorm.weight"} : tensor<64xf32>
    %50 = nn.rms_norm %48, %49 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.0.post_attention_layernorm")
    %51 = builtin.weight {name = "model.layers.0.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %52 = nn.linear %50, %51 : tensor<1x4x128xf32> loc("model.layers.0.mlp.gate_proj")
    %53 = nn.silu %52 : tensor<1x4x128xf32> loc("model.layers.0.mlp.act")
    %54 = builtin.weight {name = "model.layers.0.mlp.up_proj.weight"} : tensor<128x64xf32>
    %55 = nn.linear %50, %54 : tensor<1x4x128xf32> loc("model.layers.0.mlp.up_proj")
    %56 = nn.mul %53, %55 : tensor<1x4x128xf32> loc("model.layers.0.mlp.mul")
    %57 = builtin.weight {name = "model.layers.0.mlp.down_proj.weight"} : tensor<64x128xf32>
    %58 = nn.linear %56, %57 : tensor<1x4x64xf32> loc("model.layers.0.mlp.down_proj")
    %59 = nn.add %48, %58 : tensor<1x4x64xf32> loc("model.layers.0.mlp_residual")
    %60 = builtin.weight {name = "model.layers.1.input_layernorm.weight"} : tensor<64xf32>
    %61 = nn.rms_norm %59, %60 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.1.input_layernorm")
    %62 = builtin.weight {name = "model.layers.1.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %63 = nn.linear %61, %62 : tensor<1x4x64xf32> loc("model.layers.1.self_attn.q_proj")
    %64 = tensor.reshape %63 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.q_reshape")
    %65 = tensor.transpose %64 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.q_transpose")
    %66 = builtin.weight {name = "model.layers.1.self_attn.q_norm.weight"} : tensor<16xf32>
    %67 = nn.rms_norm %65, %66 {epsilon = 1e-6} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.q_norm")
    %68 = nn.rope %67, %4, %5 : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.rope_q")
    %69 = builtin.weight {name = "model.layers.1.self_attn.k_proj.weight"} : tensor<32x64xf32>
    %70 = nn.linear %61, %69 : tensor<1x4x32xf32> loc("model.layers.1.self_attn.k_proj")
    %71 = tensor.reshape %70 {shape = [1, 4, 2, 16]} : tensor<1x4x2x16xf32> loc("model.layers.1.self_attn.k_reshape")
    %72 = tensor.transpose %71 {perm = [0, 2, 1, 3]} : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.k_transpose")
    %73 = builtin.weight {name = "model.layers.1.self_attn.k_norm.weight"} : tensor<16xf32>
    %74 = nn.rms_norm %72, %73 {epsilon = 1e-6} : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.k_norm")
    %75 = nn.rope %74, %4, %5 : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.rope_k")
    %76 = builtin.weight {name = "model.layers.1.self_attn.v_proj.weight"} : tensor<32x64xf32>
    %77 = nn.linear %61, %76 : tensor<1x4x32xf32> loc("model.layers.1.self_attn.v_proj")
    %78 = tensor.reshape %77 {shape = [1, 4, 2, 16]} : tensor<1x4x2x16xf32> loc("model.layers.1.self_attn.v_reshape")
    %79 = tensor.transpose %78 {perm = [0, 2, 1, 3]} : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.v_transpose")
    %80 = tensor.transpose %75 {perm = [0, 1, 3, 2]} : tensor<1x2x16x4xf32> loc("model.layers.1.self_attn.k_cache_transpose")
    %81 = tensor.concat %past_key_1, %80 {axis = 3} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.k_concat")
    %82 = tensor.concat %past_value_1, %79 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.v_concat")
    %83 = tensor.reshape %68 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.q_group_reshape")
    %84 = nn.matmul %83, %81 : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.qk_matmul")
    %85 = tensor.reshape %84 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.qk_reshape")
    %86 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %87 = nn.mul %85, %86 : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.qk_scale")
    %88 = nn.reduce_min %87 {axes = [-1], keepdims = true} : tensor<1x4x4x1xf32> loc("model.layers.1.self_attn.reduce_min")
    %89 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %90 = nn.add %88, %89 : tensor<1x4x4x1xf32> loc("model.layers.1.self_attn.mask_fill")
    %91 = nn.where %7, %87, %90 : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.mask_where")
    %92 = nn.softmax %91 {axis = -1} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.softmax")
    %93 = tensor.reshape %92 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.probs_group_reshape")
    %94 = nn.matmul %93, %82 : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.pv_matmul")
    %95 = tensor.reshape %94 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.pv_reshape")
    %96 = tensor.transpose %95 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.o_transpose")
    %97 = tensor.reshape %96 {shape = [1, 4, 64]} : tensor<1x4x64xf32> loc("model.layers.1.self_attn.o_reshape")
    %98 = builtin.weight {name = "model.layers.1.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %99 = nn.linear %97, %98 : tensor<1x4x64xf32> loc("model.layers.1.self_attn.o_proj")
    %100 = nn.add %59, %99 : tensor<1x4x64xf32> loc("model.layers.1.attn_residual")
    %101 = builtin.weight {name = "model.layers.1.post_attention_layernorm.weight"} : tensor<64xf32>
    %102 = nn.rms_norm %100, %101 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.1.post_attention_layernorm")
    %103 = builtin.weight {name = "model.layers.1.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %104 = nn.linear %102, %103 : tensor<1x4x128xf32> loc("model.layers.1.mlp.gate_proj")
    %105 = nn.silu %104 : tensor<1x4x128xf32> loc("model.layers.1.mlp.act")
    %106 = builtin.weight {name = "model.layers.1.mlp.up_proj.weight"} : tensor<128x64xf32>
    %107 = nn.linear %102, %106 : tensor<1x4x128xf32> loc("model.layers.1.mlp.up_proj")
    %108 = nn.mul %105, %107 : tensor<1x4x128xf32> loc("model.layers.1.mlp.mul")
    %109 = builtin.weight {name = "model.layers.1.mlp.down_proj.weight"} : tensor<64x128xf32>
    %110 = nn.linear %108, %109 : tensor<1x4x64xf32> loc("model.layers.1.mlp.down_proj")
    %111 = nn.add %100, %110 : tensor<1x4x64xf32> loc("model.layers.1.mlp_residual")
    %112 = builtin.weight {name = "model.norm.weight"} : tensor<64xf32>
    %113 = nn.rms_norm %111, %112 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.norm")
    %114 = nn.linear %113, %0 : tensor<1x4x151936xf32> loc("lm_head")
    func.return %114, %28, %80, %27, %79
  }
  func.func @model.0.s1(%sequence: tensor<1x1xi32>, %position_ids: tensor<1xi32>, %causal_mask: tensor<1x1x1x16xf32>, %past_key_0: tensor<1x2x16x15xf32>, %past_key_1: tensor<1x2x16x15xf32>, %past_value_0: tensor<1x2x15x16xf32>, %past_value_1: tensor<1x2x15x16xf32>) -> (tensor<1x1x151936xf32> {name = "logits"}, tensor<1x2x16x1xf32> {name = "present_key_0"}, tensor<1x2x16x1xf32> {name = "present_key_1"}, tensor<1x2x1x16xf32> {name = "present_value_0"}, tensor<1x2x1x16xf32> {name = "present_value_1"}) attributes {ar_len = 1, context_len = 16, layers = [0, 2], shard = 0} {
    %0 = builtin.weight {name = "model.embed_tokens.weight"} : tensor<151936x64xf32>
    %1 = nn.embedding %sequence, %0 : tensor<1x1x64xf32> loc("model.embed_tokens")
    %2 = builtin.weight {name = "model.rope.cos"} : tensor<16x16xf32>
    %3 = builtin.weight {name = "model.rope.sin"} : tensor<16x16xf32>
    %4 = tensor.gather %2, %position_ids {axis = 0} : tensor<1x16xf32> loc("model.rope.gather_cos")
    %5 = tensor.gather %3, %position_ids {axis = 0} : tensor<1x16xf32> loc("model.rope.gather_sin")
    %6 = builtin.constant {value = [1.0]} : tensor<1xf32>
    %7 = nn.equal %causal_mask, %6 : tensor<1x1x1x16xi1> loc("model.mask_equal")
    %8 = builtin.weight {name = "model.layers.0.input_layernorm.weight"} : tensor<64xf32>
    %9 = nn.rms_norm %1, %8 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.0.input_layernorm")
    %10 = builtin.weight {name = "model.layers.0.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %11 = nn.linear %9, %10 : tensor<1x1x64xf32> loc("model.layers.0.self_attn.q_proj")
    %12 = tensor.reshape %11 {shape = [1, 1, 4, 16]} : tensor<1x1x4x16xf32> loc("model.layers.0.self_attn.q_reshape")
    %13 = tensor.transpose %12 {perm = [0, 2, 1, 3]} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.q_transpose")
    %14 = builtin.weight {name = "model.layers.0.self_attn.q_norm.weight"} : tensor<16xf32>
    %15 = nn.rms_norm %13, %14 {epsilon = 1e-6} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.q_norm")
    %16 = nn.rope %15, %4, %5 : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.rope_q")
    %17 = builtin.weight {name = "model.layers.0.self_attn.k_proj.weight"} : tensor<32x64xf32>
    %18 = nn.linear %9, %17 : tensor<1x1x32xf32> loc("model.layers.0.self_attn.k_proj")
    %19 = tensor.reshape %18 {shape = [1, 1, 2, 16]} : tensor<1x1x2x16xf32> loc("model.layers.0.self_attn.k_reshape")
    %20 = tensor.transpose %19 {perm = [0, 2, 1, 3]} : tensor<1x2x1x16xf32> loc("model.layers.0.self_attn.k_transpose")
    %21 = builtin.weight {name = "model.layers.0.self_attn.k_norm.weight"} : tensor<16xf32>
    %22 = nn.rms_norm %20, %21 {epsilon = 1e-6} : tensor<1x2x1x16xf32> loc("model.layers.0.self_attn.k_norm")
    %23 = nn.rope %22, %4, %5 : tensor<1x2x1x16xf32> loc("model.layers.0.self_attn.rope_k")
    %24 = builtin.weight {name = "model.layers.0.self_attn.v_proj.weight"} : tensor<32x64xf32>
    %25 = nn.linear %9, %24 : tensor<1x1x32xf32> loc("model.layers.0.self_attn.v_proj")
    %26 = tensor.reshape %25 {shape = [1, 1, 2, 16]} : tensor<1x1x2x16xf32> loc("model.layers.0.self_attn.v_reshape")
    %27 = tensor.transpose %26 {perm = [0, 2, 1, 3]} : tensor<1x2x1x16xf32> loc("model.layers.0.self_attn.v_transpose")
    %28 = tensor.transpose %23 {perm = [0, 1, 3, 2]} : tensor<1x2x16x1xf32> loc("model.layers.0.self_attn.k_cache_transpose")
    %29 = tensor.concat %past_key_0, %28 {axis = 3} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.k_concat")
    %30 = tensor.concat %past_value_0, %27 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.v_concat")
    %31 = tensor.reshape %16 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.q_group_reshape")
    %32 = nn.matmul %31, %29 : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.qk_matmul")
    %33 = tensor.reshape %32 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.qk_reshape")
    %34 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %35 = nn.mul %33, %34 : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.qk_scale")
    %36 = nn.reduce_min %35 {axes = [-1], keepdims = true} : tensor<1x4x1x1xf32> loc("model.layers.0.self_attn.reduce_min")
    %37 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %38 = nn.add %36, %37 : tensor<1x4x1x1xf32> loc("model.layers.0.self_attn.mask_fill")
    %39 = nn.where %7, %35, %38 : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.mask_where")
    %40 = nn.softmax %39 {axis = -1} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.softmax")
    %41 = tensor.reshape %40 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.probs_group_reshape")
    %42 = nn.matmul %41, %30 : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.pv_matmul")
    %43 = tensor.reshape %42 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.pv_reshape")
    %44 = tensor.transpose %43 {perm = [0, 2, 1, 3]} : tensor<1x1x4x16xf32> loc("model.layers.0.self_attn.o_transpose")
    %45 = tensor.reshape %44 {shape = [1, 1, 64]} : tensor<1x1x64xf32> loc("model.layers.0.self_attn.o_reshape")
    %46 = builtin.weight {name = "model.layers.0.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %47 = nn.linear %45, %46 : tensor<1x1x64xf32> loc("model.layers.0.self_attn.o_proj")
    %48 = nn.add %1, %47 : tensor<1x1x64xf32> loc("model.layers.0.attn_residual")
    %49 = builtin.weight {name = "model.layers.0.post_attention_layernorm.weight"} : tensor<64xf32>
    %50 = nn.rms_norm %48, %49 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.0.post_attention_layernorm")
    %51 = builtin.weight {name = "model.layers.0.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %52 = nn.linear %50, %51 : tensor<1x1x128xf32> loc("model.layers.0.mlp.gate_proj")
    %53 = nn.silu %52 : tensor<1x1x128xf32> loc("model.layers.0.mlp.act")
    %54 = builtin.weight {name = "model.layers.0.mlp.up_proj.weight"} : tensor<128x64xf32>
    %55 = nn.linear %50, %54 : tensor<1x1x128xf32> loc("model.layers.0.mlp.up_proj")
    %56 = nn.mul %53, %55 : tensor<1x1x128xf32> loc("model.layers.0.mlp.mul")
    %57 = builtin.weight {name = "model.layers.0.mlp.down_proj.weight"} : tensor<64x128xf32>
    %58 = nn.linear %56, %57 : tensor<1x1x64xf32> loc("model.layers.0.mlp.down_proj")
    %59 = nn.add %48, %58 : tensor<1x1x64xf32> loc("model.layers.0.mlp_residual")
    %60 = builtin.weight {name = "model.layers.1.input_layernorm.weight"} : tensor<64xf32>
    %61 = nn.rms_norm %59, %60 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.1.input_layernorm")
    %62 = builtin.weight {name = "model.layers.1.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %63 = nn.linear %61, %62 : tensor<1x1x64xf32> loc("model.layers.1.self_attn.q_proj")
    %64 = tensor.reshape %63 {shape = [1, 1, 4, 16]} : tensor<1x1x4x16xf32> loc("model.layers.1.self_attn.q_reshape")
    %65 = tensor.transpose %64 {perm = [0, 2, 1, 3]} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.q_transpose")
    %66 = builtin.weight {name = "model.layers.1.self_attn.q_norm.weight"} : tensor<16xf32>
    %67 = nn.rms_norm %65, %66 {epsilon = 1e-6} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.q_norm")
    %68 = nn.rope %67, %4, %5 : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.rope_q")
    %69 = builtin.weight {name = "model.layers.1.self_attn.k_proj.weight"} : tensor<32x64xf32>
    %70 = nn.linear %61, %69 : tensor<1x1x32xf32> loc("model.layers.1.self_attn.k_proj")
    %71 = tensor.reshape %70 {shape = [1, 1, 2, 16]} : tensor<1x1x2x16xf32> loc("model.layers.1.self_attn.k_reshape")
    %72 = tensor.transpose %71 {perm = [0, 2, 1, 3]} : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.k_transpose")
    %73 = builtin.weight {name = "model.layers.1.self_attn.k_norm.weight"} : tensor<16xf32>
    %74 = nn.rms_norm %72, %73 {epsilon = 1e-6} : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.k_norm")
    %75 = nn.rope %74, %4, %5 : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.rope_k")
    %76 = builtin.weight {name = "model.layers.1.self_attn.v_proj.weight"} : tensor<32x64xf32>
    %77 = nn.linear %61, %76 : tensor<1x1x32xf32> loc("model.layers.1.self_attn.v_proj")
    %78 = tensor.reshape %77 {shape = [1, 1, 2, 16]} : tensor<1x1x2x16xf32> loc("model.layers.1.self_attn.v_reshape")
    %79 = tensor.transpose %78 {perm = [0, 2, 1, 3]} : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.v_transpose")
    %80 = tensor.transpose %75 {perm = [0, 1, 3, 2]} : tensor<1x2x16x1xf32> loc("model.layers.1.self_attn.k_cache_transpose")
    %81 = tensor.concat %past_key_1, %80 {axis = 3} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.k_concat")
    %82 = tensor.concat %past_value_1, %79 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.v_concat")
    %83 = tensor.reshape %68 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.q_group_reshape")
    %84 = nn.matmul %83, %81 : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.qk_matmul")
    %85 = tensor.reshape %84 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.qk_reshape")
    %86 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %87 = nn.mul %85, %86 : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.qk_scale")
    %88 = nn.reduce_min %87 {axes = [-1], keepdims = true} : tensor<1x4x1x1xf32> loc("model.layers.1.self_attn.reduce_min")
    %89 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %90 = nn.add %88, %89 : tensor<1x4x1x1xf32> loc("model.layers.1.self_attn.mask_fill")
    %91 = nn.where %7, %87, %90 : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.mask_where")
    %92 = nn.softmax %91 {axis = -1} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.softmax")
    %93 = tensor.reshape %92 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.probs_group_reshape")
    %94 = nn.matmul %93, %82 : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.pv_matmul")
    %95 = tensor.reshape %94 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.pv_reshape")
    %96 = tensor.transpose %95 {perm = [0, 2, 1, 3]} : tensor<1x1x4x16xf32> loc("model.layers.1.self_attn.o_transpose")
    %97 = tensor.reshape %96 {shape = [1, 1, 64]} : tensor<1x1x64xf32> loc("model.layers.1.self_attn.o_reshape")
    %98 = builtin.weight {name = "model.layers.1.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %99 = nn.linear %97, %98 : tensor<1x1x64xf32> loc("model.layers.1.self_attn.o_proj")
    %100 = nn.add %59, %99 : tensor<1x1x64xf32> loc("model.layers.1.attn_residual")
    %101 = builtin.weight {name = "model.layers.1.post_attention_layernorm.weight"} : tensor<64xf32>
    %102 = nn.rms_norm %100, %101 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.1.post_attention_layernorm")
    %103 = builtin.weight {name = "model.layers.1.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %104 = nn.linear %102, %103 : tensor<1x1x128xf32> loc("model.layers.1.mlp.gate_proj")
    %105 = nn.silu %104 : tensor<1x1x128xf32> loc("model.layers.1.mlp.act")
    %106 = builtin.weight {name = "model.layers.1.mlp.up_proj.weight"} : tensor<128x64xf32>
    %107 = nn.linear %102, %106 : tensor<1x1x128xf32> loc("model.layers.1.mlp.up_proj")
    %108 = nn.mul %105, %107 : tensor<1x1x128xf32> loc("model.layers.1.mlp.mul")
    %109 = builtin.weight {name = "model.layers.1.mlp.down_proj.weight"} : tensor<64x128xf32>
    %110 = nn.linear %108, %109 : tensor<1x1x64xf32> loc("model.layers.1.mlp.down_proj")
    %111 = nn.add %100, %110 : tensor<1x1x64xf32> loc("model.layers.1.mlp_residual")
    %112 = builtin.weight {name = "model.norm.weight"} : tensor<64xf32>
    %113 = nn.rms_norm %111, %112 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.norm")
    %114 = nn.linear %113, %0 : tensor<1x1x151936xf32> loc("lm_head")
    func.return %114, %28, %80, %27, %79
  }
}
