// pipeline: builtin.module(func.func(sha-split{q-only}))
// q-only: every query head gets its own projection, norm, RoPE, QK^T, softmax and PV,
// but the K/V projections and the cache concatenations stay merged; each head reads the
// slice of its kv head (heads 0,1 -> kv 0, heads 2,3 -> kv 1).
func.func @model.0.s2(%h: tensor<1x2x8xf32>, %cos: tensor<2x4xf32>, %sin: tensor<2x4xf32>, %causal_mask: tensor<1x1x2x4xf32>, %past_key_0: tensor<1x2x2x4xf32>, %past_value_0: tensor<1x2x2x4xf32>) -> (tensor<1x2x8xf32> {name = "out"}, tensor<1x2x2x4xf32> {name = "present_key_0"}, tensor<1x2x2x4xf32> {name = "present_value_0"}) {
  %wq = builtin.weight {name = "q_proj.weight"} : tensor<16x8xf32>
  %wk = builtin.weight {name = "k_proj.weight"} : tensor<8x8xf32>
  %wv = builtin.weight {name = "v_proj.weight"} : tensor<8x8xf32>
  %wo = builtin.weight {name = "o_proj.weight"} : tensor<8x16xf32>
  %qn = builtin.weight {name = "q_norm.weight"} : tensor<4xf32>
  %kn = builtin.weight {name = "k_norm.weight"} : tensor<4xf32>
  %q0 = nn.linear %h, %wq : tensor<1x2x16xf32> loc("q_proj")
  %q1 = tensor.reshape %q0 {shape = [1, 2, 4, 4]} : tensor<1x2x4x4xf32>
  %q2 = tensor.transpose %q1 {perm = [0, 2, 1, 3]} : tensor<1x4x2x4xf32>
  %q3 = nn.rms_norm %q2, %qn {epsilon = 1.0e-6} : tensor<1x4x2x4xf32> loc("q_norm")
  %q4 = nn.rope %q3, %cos, %sin : tensor<1x4x2x4xf32> loc("rope_q")
  %k0 = nn.linear %h, %wk : tensor<1x2x8xf32> loc("k_proj")
  %k1 = tensor.reshape %k0 {shape = [1, 2, 2, 4]} : tensor<1x2x2x4xf32>
  %k2 = tensor.transpose %k1 {perm = [0, 2, 1, 3]} : tensor<1x2x2x4xf32>
  %k3 = nn.rms_norm %k2, %kn {epsilon = 1.0e-6} : tensor<1x2x2x4xf32> loc("k_norm")
  %k4 = nn.rope %k3, %cos, %sin : tensor<1x2x2x4xf32> loc("rope_k")
  %v0 = nn.linear %h, %wv : tensor<1x2x8xf32> loc("v_proj")
  %v1 = tensor.reshape %v0 {shape = [1, 2, 2, 4]} : tensor<1x2x2x4xf32>
  %v2 = tensor.transpose %v1 {perm = [0, 2, 1, 3]} : tensor<1x2x2x4xf32>
  %kall = tensor.concat %past_key_0, %k4 {axis = 2} : tensor<1x2x4x4xf32>
  %vall = tensor.concat %past_value_0, %v2 {axis = 2} : tensor<1x2x4x4xf32>
  %qg = tensor.reshape %q4 {shape = [1, 2, 4, 4]} : tensor<1x2x4x4xf32>
  %s0 = nn.matmul %qg, %kall {transpose_b = true} : tensor<1x2x4x4xf32> loc("qk_matmul")
  %s1 = tensor.reshape %s0 {shape = [1, 4, 2, 4]} : tensor<1x4x2x4xf32>
  %sc = builtin.constant {value = [0.5]} : tensor<1xf32>
  %s2 = nn.mul %s1, %sc : tensor<1x4x2x4xf32> loc("scale")
  %one = builtin.constant {value = [1.0]} : tensor<1xf32>
  %eq = nn.equal %causal_mask, %one : tensor<1x1x2x4xi1>
  %mn = nn.reduce_min %s2 {axes = [-1]} : tensor<1x4x2x1xf32>
  %m20 = builtin.constant {value = [-20.0]} : tensor<1xf32>
  %fill = nn.add %mn, %m20 : tensor<1x4x2x1xf32>
  %att = nn.where %eq, %s2, %fill : tensor<1x4x2x4xf32> loc("mask")
  %p = nn.softmax %att {axis = -1} : tensor<1x4x2x4xf32> loc("softmax")
  %pg = tensor.reshape %p {shape = [1, 2, 4, 4]} : tensor<1x2x4x4xf32>
  %o0 = nn.matmul %pg, %vall : tensor<1x2x4x4xf32> loc("pv_matmul")
  %o1 = tensor.reshape %o0 {shape = [1, 4, 2, 4]} : tensor<1x4x2x4xf32>
  %o2 = tensor.transpose %o1 {perm = [0, 2, 1, 3]} : tensor<1x2x4x4xf32>
  %o3 = tensor.reshape %o2 {shape = [1, 2, 16]} : tensor<1x2x16xf32>
  %out = nn.linear %o3, %wo : tensor<1x2x8xf32> loc("o_proj")
  func.return %out, %k4, %v2
}
