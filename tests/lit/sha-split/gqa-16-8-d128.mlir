// pipeline: builtin.module(func.func(sha-split))
// GQA 16/8, head_dim 128 (S = 2, C = 4): one attention block shaped like the Qwen3
// builder's. After sha-split every query head h has its own projection rows, norm, RoPE,
// QK^T, mask, softmax and PV and reads kv head h / 2; past K/V inputs are sliced per kv
// head and the present K/V outputs are concatenations, so the signature is unchanged.
func.func @model.0.s2(%h: tensor<1x2x64xf32>, %cos: tensor<2x128xf32>, %sin: tensor<2x128xf32>, %causal_mask: tensor<1x1x2x4xf32>, %past_key_0: tensor<1x8x2x128xf32>, %past_value_0: tensor<1x8x2x128xf32>) -> (tensor<1x2x64xf32> {name = "out"}, tensor<1x8x2x128xf32> {name = "present_key_0"}, tensor<1x8x2x128xf32> {name = "present_value_0"}) {
  %wq = builtin.weight {name = "q_proj.weight"} : tensor<2048x64xf32>
  %wk = builtin.weight {name = "k_proj.weight"} : tensor<1024x64xf32>
  %wv = builtin.weight {name = "v_proj.weight"} : tensor<1024x64xf32>
  %wo = builtin.weight {name = "o_proj.weight"} : tensor<64x2048xf32>
  %qn = builtin.weight {name = "q_norm.weight"} : tensor<128xf32>
  %kn = builtin.weight {name = "k_norm.weight"} : tensor<128xf32>
  %q0 = nn.linear %h, %wq : tensor<1x2x2048xf32> loc("q_proj")
  %q1 = tensor.reshape %q0 {shape = [1, 2, 16, 128]} : tensor<1x2x16x128xf32>
  %q2 = tensor.transpose %q1 {perm = [0, 2, 1, 3]} : tensor<1x16x2x128xf32>
  %q3 = nn.rms_norm %q2, %qn {epsilon = 1.0e-6} : tensor<1x16x2x128xf32> loc("q_norm")
  %q4 = nn.rope %q3, %cos, %sin : tensor<1x16x2x128xf32> loc("rope_q")
  %k0 = nn.linear %h, %wk : tensor<1x2x1024xf32> loc("k_proj")
  %k1 = tensor.reshape %k0 {shape = [1, 2, 8, 128]} : tensor<1x2x8x128xf32>
  %k2 = tensor.transpose %k1 {perm = [0, 2, 1, 3]} : tensor<1x8x2x128xf32>
  %k3 = nn.rms_norm %k2, %kn {epsilon = 1.0e-6} : tensor<1x8x2x128xf32> loc("k_norm")
  %k4 = nn.rope %k3, %cos, %sin : tensor<1x8x2x128xf32> loc("rope_k")
  %v0 = nn.linear %h, %wv : tensor<1x2x1024xf32> loc("v_proj")
  %v1 = tensor.reshape %v0 {shape = [1, 2, 8, 128]} : tensor<1x2x8x128xf32>
  %v2 = tensor.transpose %v1 {perm = [0, 2, 1, 3]} : tensor<1x8x2x128xf32>
  %kall = tensor.concat %past_key_0, %k4 {axis = 2} : tensor<1x8x4x128xf32>
  %vall = tensor.concat %past_value_0, %v2 {axis = 2} : tensor<1x8x4x128xf32>
  %qg = tensor.reshape %q4 {shape = [1, 8, 4, 128]} : tensor<1x8x4x128xf32>
  %s0 = nn.matmul %qg, %kall {transpose_b = true} : tensor<1x8x4x4xf32> loc("qk_matmul")
  %s1 = tensor.reshape %s0 {shape = [1, 16, 2, 4]} : tensor<1x16x2x4xf32>
  %sc = builtin.constant {value = [0.08838834764831843]} : tensor<1xf32>
  %s2 = nn.mul %s1, %sc : tensor<1x16x2x4xf32> loc("scale")
  %one = builtin.constant {value = [1.0]} : tensor<1xf32>
  %eq = nn.equal %causal_mask, %one : tensor<1x1x2x4xi1>
  %mn = nn.reduce_min %s2 {axes = [-1]} : tensor<1x16x2x1xf32>
  %m20 = builtin.constant {value = [-20.0]} : tensor<1xf32>
  %fill = nn.add %mn, %m20 : tensor<1x16x2x1xf32>
  %att = nn.where %eq, %s2, %fill : tensor<1x16x2x4xf32> loc("mask")
  %p = nn.softmax %att {axis = -1} : tensor<1x16x2x4xf32> loc("softmax")
  %pg = tensor.reshape %p {shape = [1, 8, 4, 4]} : tensor<1x8x4x4xf32>
  %o0 = nn.matmul %pg, %vall : tensor<1x8x4x128xf32> loc("pv_matmul")
  %o1 = tensor.reshape %o0 {shape = [1, 16, 2, 128]} : tensor<1x16x2x128xf32>
  %o2 = tensor.transpose %o1 {perm = [0, 2, 1, 3]} : tensor<1x2x16x128xf32>
  %o3 = tensor.reshape %o2 {shape = [1, 2, 2048]} : tensor<1x2x2048xf32>
  %out = nn.linear %o3, %wo : tensor<1x2x64xf32> loc("o_proj")
  func.return %out, %k4, %v2
}
