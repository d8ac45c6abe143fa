// pipeline: builtin.module(func.func(decompose,sha-split,linear-to-conv2d,canonicalize,cse,dce))
// The tiny synthetic Qwen3 (2 layers, GQA 4/2, head_dim 16; prefill s4 and decode s1,
// context 16) through the NPU layout passes: single-head attention everywhere and every
// linear a 1x1 conv2d with an HWIO weight. Greedy generation before and after is
// identical (tests/e2e_cpu.rs); values are checked by tests/numeric.rs.
module {
  func.func @model.0.s4(%sequence: tensor<1x4xi32>, %position_ids: tensor<4xi32>, %causal_mask: tensor<1x1x4x16xf32>, %past_key_0: tensor<1x2x12x16xf32>, %past_key_1: tensor<1x2x12x16xf32>, %past_value_0: tensor<1x2x12x16xf32>, %past_value_1: tensor<1x2x12x16xf32>) -> (tensor<1x4x151936xf32> {name = "logits"}, tensor<1x2x4x16xf32> {name = "present_key_0"}, tensor<1x2x4x16xf32> {name = "present_key_1"}, tensor<1x2x4x16xf32> {name = "present_value_0"}, tensor<1x2x4x16xf32> {name = "present_value_1"}) attributes {ar_len = 4, context_len = 16, layers = [0, 2], shard = 0} {
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
    %28 = tensor.concat %past_key_0, %23 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.k_concat")
    %29 = tensor.concat %past_value_0, %27 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.v_concat")
    %30 = tensor.reshape %16 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.q_group_reshape")
    %31 = nn.matmul %30, %28 {transpose_b = true} : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.qk_matmul")
    %32 = tensor.reshape %31 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.qk_reshape")
    %33 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %34 = nn.mul %32, %33 : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.qk_scale")
    %35 = nn.reduce_min %34 {axes = [-1], keepdims = true} : tensor<1x4x4x1xf32> loc("model.layers.0.self_attn.reduce_min")
    %36 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %37 = nn.add %35, %36 : tensor<1x4x4x1xf32> loc("model.layers.0.self_attn.mask_fill")
    %38 = nn.where %7, %34, %37 : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.mask_where")
    %39 = nn.softmax %38 {axis = -1} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.softmax")
    %40 = tensor.reshape %39 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.probs_group_reshape")
    %41 = nn.matmul %40, %29 : tensor<1x2x8x16xf32> loc("model.layers.0.self_attn.pv_matmul")
    %42 = tensor.reshape %41 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.pv_reshape")
    %43 = tensor.transpose %42 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.0.self_attn.o_transpose")
    %44 = tensor.reshape %43 {shape = [1, 4, 64]} : tensor<1x4x64xf32> loc("model.layers.0.self_attn.o_reshape")
    %45 = builtin.weight {name = "model.layers.0.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %46 = nn.linear %44, %45 : tensor<1x4x64xf32> loc("model.layers.0.self_attn.o_proj")
    %47 = nn.add %1, %46 : tensor<1x4x64xf32> loc("model.layers.0.attn_residual")
    %48 = builtin.weight {name = "model.layers.0.post_attention_layernorm.weight"} : tensor<64xf32>
    %49 = nn.rms_norm %47, %48 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.0.post_attention_layernorm")
    %50 = builtin.weight {name = "model.layers.0.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %51 = nn.linear %49, %50 : tensor<1x4x128xf32> loc("model.layers.0.mlp.gate_proj")
    %52 = nn.silu %51 : tensor<1x4x128xf32> loc("model.layers.0.mlp.act")
    %53 = builtin.weight {name = "model.layers.0.mlp.up_proj.weight"} : tensor<128x64xf32>
    %54 = nn.linear %49, %53 : tensor<1x4x128xf32> loc("model.layers.0.mlp.up_proj")
    %55 = nn.mul %52, %54 : tensor<1x4x128xf32> loc("model.layers.0.mlp.mul")
    %56 = builtin.weight {name = "model.layers.0.mlp.down_proj.weight"} : tensor<64x128xf32>
    %57 = nn.linear %55, %56 : tensor<1x4x64xf32> loc("model.layers.0.mlp.down_proj")
    %58 = nn.add %47, %57 : tensor<1x4x64xf32> loc("model.layers.0.mlp_residual")
    %59 = builtin.weight {name = "model.layers.1.input_layernorm.weight"} : tensor<64xf32>
    %60 = nn.rms_norm %58, %59 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.1.input_layernorm")
    %61 = builtin.weight {name = "model.layers.1.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %62 = nn.linear %60, %61 : tensor<1x4x64xf32> loc("model.layers.1.self_attn.q_proj")
    %63 = tensor.reshape %62 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.q_reshape")
    %64 = tensor.transpose %63 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.q_transpose")
    %65 = builtin.weight {name = "model.layers.1.self_attn.q_norm.weight"} : tensor<16xf32>
    %66 = nn.rms_norm %64, %65 {epsilon = 1e-6} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.q_norm")
    %67 = nn.rope %66, %4, %5 : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.rope_q")
    %68 = builtin.weight {name = "model.layers.1.self_attn.k_proj.weight"} : tensor<32x64xf32>
    %69 = nn.linear %60, %68 : tensor<1x4x32xf32> loc("model.layers.1.self_attn.k_proj")
    %70 = tensor.reshape %69 {shape = [1, 4, 2, 16]} : tensor<1x4x2x16xf32> loc("model.layers.1.self_attn.k_reshape")
    %71 = tensor.transpose %70 {perm = [0, 2, 1, 3]} : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.k_transpose")
    %72 = builtin.weight {name = "model.layers.1.self_attn.k_norm.weight"} : tensor<16xf32>
    %73 = nn.rms_norm %71, %72 {epsilon = 1e-6} : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.k_norm")
    %74 = nn.rope %73, %4, %5 : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.rope_k")
    %75 = builtin.weight {name = "model.layers.1.self_attn.v_proj.weight"} : tensor<32x64xf32>
    %76 = nn.linear %60, %75 : tensor<1x4x32xf32> loc("model.layers.1.self_attn.v_proj")
    %77 = tensor.reshape %76 {shape = [1, 4, 2, 16]} : tensor<1x4x2x16xf32> loc("model.layers.1.self_attn.v_reshape")
    %78 = tensor.transpose %77 {perm = [0, 2, 1, 3]} : tensor<1x2x4x16xf32> loc("model.layers.1.self_attn.v_transpose")
    %79 = tensor.concat %past_key_1, %74 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.k_concat")
    %80 = tensor.concat %past_value_1, %78 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.v_concat")
    %81 = tensor.reshape %67 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.q_group_reshape")
    %82 = nn.matmul %81, %79 {transpose_b = true} : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.qk_matmul")
    %83 = tensor.reshape %82 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.qk_reshape")
    %84 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %85 = nn.mul %83, %84 : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.qk_scale")
    %86 = nn.reduce_min %85 {axes = [-1], keepdims = true} : tensor<1x4x4x1xf32> loc("model.layers.1.self_attn.reduce_min")
    %87 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %88 = nn.add %86, %87 : tensor<1x4x4x1xf32> loc("model.layers.1.self_attn.mask_fill")
    %89 = nn.where %7, %85, %88 : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.mask_where")
    %90 = nn.softmax %89 {axis = -1} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.softmax")
    %91 = tensor.reshape %90 {shape = [1, 2, 8, 16]} : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.probs_group_reshape")
    %92 = nn.matmul %91, %80 : tensor<1x2x8x16xf32> loc("model.layers.1.self_attn.pv_matmul")
    %93 = tensor.reshape %92 {shape = [1, 4, 4, 16]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.pv_reshape")
    %94 = tensor.transpose %93 {perm = [0, 2, 1, 3]} : tensor<1x4x4x16xf32> loc("model.layers.1.self_attn.o_transpose")
    %95 = tensor.reshape %94 {shape = [1, 4, 64]} : tensor<1x4x64xf32> loc("model.layers.1.self_attn.o_reshape")
    %96 = builtin.weight {name = "model.layers.1.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %97 = nn.linear %95, %96 : tensor<1x4x64xf32> loc("model.layers.1.self_attn.o_proj")
    %98 = nn.add %58, %97 : tensor<1x4x64xf32> loc("model.layers.1.attn_residual")
    %99 = builtin.weight {name = "model.layers.1.post_attention_layernorm.weight"} : tensor<64xf32>
    %100 = nn.rms_norm %98, %99 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.layers.1.post_attention_layernorm")
    %101 = builtin.weight {name = "model.layers.1.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %102 = nn.linear %100, %101 : tensor<1x4x128xf32> loc("model.layers.1.mlp.gate_proj")
    %103 = nn.silu %102 : tensor<1x4x128xf32> loc("model.layers.1.mlp.act")
    %104 = builtin.weight {name = "model.layers.1.mlp.up_proj.weight"} : tensor<128x64xf32>
    %105 = nn.linear %100, %104 : tensor<1x4x128xf32> loc("model.layers.1.mlp.up_proj")
    %106 = nn.mul %103, %105 : tensor<1x4x128xf32> loc("model.layers.1.mlp.mul")
    %107 = builtin.weight {name = "model.layers.1.mlp.down_proj.weight"} : tensor<64x128xf32>
    %108 = nn.linear %106, %107 : tensor<1x4x64xf32> loc("model.layers.1.mlp.down_proj")
    %109 = nn.add %98, %108 : tensor<1x4x64xf32> loc("model.layers.1.mlp_residual")
    %110 = builtin.weight {name = "model.norm.weight"} : tensor<64xf32>
    %111 = nn.rms_norm %109, %110 {epsilon = 1e-6} : tensor<1x4x64xf32> loc("model.norm")
    %112 = nn.linear %111, %0 : tensor<1x4x151936xf32> loc("lm_head")
    func.return %112, %23, %74, %27, %78
  }
  func.func @model.0.s1(%sequence: tensor<1x1xi32>, %position_ids: tensor<1xi32>, %causal_mask: tensor<1x1x1x16xf32>, %past_key_0: tensor<1x2x15x16xf32>, %past_key_1: tensor<1x2x15x16xf32>, %past_value_0: tensor<1x2x15x16xf32>, %past_value_1: tensor<1x2x15x16xf32>) -> (tensor<1x1x151936xf32> {name = "logits"}, tensor<1x2x1x16xf32> {name = "present_key_0"}, tensor<1x2x1x16xf32> {name = "present_key_1"}, tensor<1x2x1x16xf32> {name = "present_value_0"}, tensor<1x2x1x16xf32> {name = "present_value_1"}) attributes {ar_len = 1, context_len = 16, layers = [0, 2], shard = 0} {
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
    %28 = tensor.concat %past_key_0, %23 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.k_concat")
    %29 = tensor.concat %past_value_0, %27 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.0.self_attn.v_concat")
    %30 = tensor.reshape %16 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.q_group_reshape")
    %31 = nn.matmul %30, %28 {transpose_b = true} : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.qk_matmul")
    %32 = tensor.reshape %31 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.qk_reshape")
    %33 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %34 = nn.mul %32, %33 : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.qk_scale")
    %35 = nn.reduce_min %34 {axes = [-1], keepdims = true} : tensor<1x4x1x1xf32> loc("model.layers.0.self_attn.reduce_min")
    %36 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %37 = nn.add %35, %36 : tensor<1x4x1x1xf32> loc("model.layers.0.self_attn.mask_fill")
    %38 = nn.where %7, %34, %37 : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.mask_where")
    %39 = nn.softmax %38 {axis = -1} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.softmax")
    %40 = tensor.reshape %39 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.probs_group_reshape")
    %41 = nn.matmul %40, %29 : tensor<1x2x2x16xf32> loc("model.layers.0.self_attn.pv_matmul")
    %42 = tensor.reshape %41 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.0.self_attn.pv_reshape")
    %43 = tensor.transpose %42 {perm = [0, 2, 1, 3]} : tensor<1x1x4x16xf32> loc("model.layers.0.self_attn.o_transpose")
    %44 = tensor.reshape %43 {shape = [1, 1, 64]} : tensor<1x1x64xf32> loc("model.layers.0.self_attn.o_reshape")
    %45 = builtin.weight {name = "model.layers.0.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %46 = nn.linear %44, %45 : tensor<1x1x64xf32> loc("model.layers.0.self_attn.o_proj")
    %47 = nn.add %1, %46 : tensor<1x1x64xf32> loc("model.layers.0.attn_residual")
    %48 = builtin.weight {name = "model.layers.0.post_attention_layernorm.weight"} : tensor<64xf32>
    %49 = nn.rms_norm %47, %48 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.0.post_attention_layernorm")
    %50 = builtin.weight {name = "model.layers.0.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %51 = nn.linear %49, %50 : tensor<1x1x128xf32> loc("model.layers.0.mlp.gate_proj")
    %52 = nn.silu %51 : tensor<1x1x128xf32> loc("model.layers.0.mlp.act")
    %53 = builtin.weight {name = "model.layers.0.mlp.up_proj.weight"} : tensor<128x64xf32>
    %54 = nn.linear %49, %53 : tensor<1x1x128xf32> loc("model.layers.0.mlp.up_proj")
    %55 = nn.mul %52, %54 : tensor<1x1x128xf32> loc("model.layers.0.mlp.mul")
    %56 = builtin.weight {name = "model.layers.0.mlp.down_proj.weight"} : tensor<64x128xf32>
    %57 = nn.linear %55, %56 : tensor<1x1x64xf32> loc("model.layers.0.mlp.down_proj")
    %58 = nn.add %47, %57 : tensor<1x1x64xf32> loc("model.layers.0.mlp_residual")
    %59 = builtin.weight {name = "model.layers.1.input_layernorm.weight"} : tensor<64xf32>
    %60 = nn.rms_norm %58, %59 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.1.input_layernorm")
    %61 = builtin.weight {name = "model.layers.1.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %62 = nn.linear %60, %61 : tensor<1x1x64xf32> loc("model.layers.1.self_attn.q_proj")
    %63 = tensor.reshape %62 {shape = [1, 1, 4, 16]} : tensor<1x1x4x16xf32> loc("model.layers.1.self_attn.q_reshape")
    %64 = tensor.transpose %63 {perm = [0, 2, 1, 3]} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.q_transpose")
    %65 = builtin.weight {name = "model.layers.1.self_attn.q_norm.weight"} : tensor<16xf32>
    %66 = nn.rms_norm %64, %65 {epsilon = 1e-6} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.q_norm")
    %67 = nn.rope %66, %4, %5 : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.rope_q")
    %68 = builtin.weight {name = "model.layers.1.self_attn.k_proj.weight"} : tensor<32x64xf32>
    %69 = nn.linear %60, %68 : tensor<1x1x32xf32> loc("model.layers.1.self_attn.k_proj")
    %70 = tensor.reshape %69 {shape = [1, 1, 2, 16]} : tensor<1x1x2x16xf32> loc("model.layers.1.self_attn.k_reshape")
    %71 = tensor.transpose %70 {perm = [0, 2, 1, 3]} : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.k_transpose")
    %72 = builtin.weight {name = "model.layers.1.self_attn.k_norm.weight"} : tensor<16xf32>
    %73 = nn.rms_norm %71, %72 {epsilon = 1e-6} : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.k_norm")
    %74 = nn.rope %73, %4, %5 : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.rope_k")
    %75 = builtin.weight {name = "model.layers.1.self_attn.v_proj.weight"} : tensor<32x64xf32>
    %76 = nn.linear %60, %75 : tensor<1x1x32xf32> loc("model.layers.1.self_attn.v_proj")
    %77 = tensor.reshape %76 {shape = [1, 1, 2, 16]} : tensor<1x1x2x16xf32> loc("model.layers.1.self_attn.v_reshape")
    %78 = tensor.transpose %77 {perm = [0, 2, 1, 3]} : tensor<1x2x1x16xf32> loc("model.layers.1.self_attn.v_transpose")
    %79 = tensor.concat %past_key_1, %74 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.k_concat")
    %80 = tensor.concat %past_value_1, %78 {axis = 2} : tensor<1x2x16x16xf32> loc("model.layers.1.self_attn.v_concat")
    %81 = tensor.reshape %67 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.q_group_reshape")
    %82 = nn.matmul %81, %79 {transpose_b = true} : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.qk_matmul")
    %83 = tensor.reshape %82 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.qk_reshape")
    %84 = builtin.constant {value = [0.25]} : tensor<1xf32>
    %85 = nn.mul %83, %84 : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.qk_scale")
    %86 = nn.reduce_min %85 {axes = [-1], keepdims = true} : tensor<1x4x1x1xf32> loc("model.layers.1.self_attn.reduce_min")
    %87 = builtin.constant {value = [-20.0]} : tensor<1xf32>
    %88 = nn.add %86, %87 : tensor<1x4x1x1xf32> loc("model.layers.1.self_attn.mask_fill")
    %89 = nn.where %7, %85, %88 : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.mask_where")
    %90 = nn.softmax %89 {axis = -1} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.softmax")
    %91 = tensor.reshape %90 {shape = [1, 2, 2, 16]} : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.probs_group_reshape")
    %92 = nn.matmul %91, %80 : tensor<1x2x2x16xf32> loc("model.layers.1.self_attn.pv_matmul")
    %93 = tensor.reshape %92 {shape = [1, 4, 1, 16]} : tensor<1x4x1x16xf32> loc("model.layers.1.self_attn.pv_reshape")
    %94 = tensor.transpose %93 {perm = [0, 2, 1, 3]} : tensor<1x1x4x16xf32> loc("model.layers.1.self_attn.o_transpose")
    %95 = tensor.reshape %94 {shape = [1, 1, 64]} : tensor<1x1x64xf32> loc("model.layers.1.self_attn.o_reshape")
    %96 = builtin.weight {name = "model.layers.1.self_attn.o_proj.weight"} : tensor<64x64xf32>
    %97 = nn.linear %95, %96 : tensor<1x1x64xf32> loc("model.layers.1.self_attn.o_proj")
    %98 = nn.add %58, %97 : tensor<1x1x64xf32> loc("model.layers.1.attn_residual")
    %99 = builtin.weight {name = "model.layers.1.post_attention_layernorm.weight"} : tensor<64xf32>
    %100 = nn.rms_norm %98, %99 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.layers.1.post_attention_layernorm")
    %101 = builtin.weight {name = "model.layers.1.mlp.gate_proj.weight"} : tensor<128x64xf32>
    %102 = nn.linear %100, %101 : tensor<1x1x128xf32> loc("model.layers.1.mlp.gate_proj")
    %103 = nn.silu %102 : tensor<1x1x128xf32> loc("model.layers.1.mlp.act")
    %104 = builtin.weight {name = "model.layers.1.mlp.up_proj.weight"} : tensor<128x64xf32>
    %105 = nn.linear %100, %104 : tensor<1x1x128xf32> loc("model.layers.1.mlp.up_proj")
    %106 = nn.mul %103, %105 : tensor<1x1x128xf32> loc("model.layers.1.mlp.mul")
    %107 = builtin.weight {name = "model.layers.1.mlp.down_proj.weight"} : tensor<64x128xf32>
    %108 = nn.linear %106, %107 : tensor<1x1x64xf32> loc("model.layers.1.mlp.down_proj")
    %109 = nn.add %98, %108 : tensor<1x1x64xf32> loc("model.layers.1.mlp_residual")
    %110 = builtin.weight {name = "model.norm.weight"} : tensor<64xf32>
    %111 = nn.rms_norm %109, %110 {epsilon = 1e-6} : tensor<1x1x64xf32> loc("model.norm")
    %112 = nn.linear %111, %0 : tensor<1x1x151936xf32> loc("lm_head")
    func.return %112, %23, %74, %27, %78
  }
}
