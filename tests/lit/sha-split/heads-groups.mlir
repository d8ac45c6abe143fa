// pipeline: builtin.module(func.func(sha-split{heads=2}))
// heads=2 splits 4 heads into 2 groups of 2: the q/k projections are sliced per group
// and each group runs a 2-head batched QK^T; the group outputs are concatenated.
func.func @f(%h: tensor<1x2x8xf32>) -> (tensor<1x2x8xf32> {name = "out"}) {
  %wq = builtin.weight {name = "q_proj.weight"} : tensor<16x8xf32>
  %wk = builtin.weight {name = "k_proj.weight"} : tensor<16x8xf32>
  %wo = builtin.weight {name = "o_proj.weight"} : tensor<8x16xf32>
  %q0 = nn.linear %h, %wq : tensor<1x2x16xf32> loc("q_proj")
  %q1 = tensor.reshape %q0 {shape = [1, 2, 4, 4]} : tensor<1x2x4x4xf32>
  %q2 = tensor.transpose %q1 {perm = [0, 2, 1, 3]} : tensor<1x4x2x4xf32>
  %k0 = nn.linear %h, %wk : tensor<1x2x16xf32> loc("k_proj")
  %k1 = tensor.reshape %k0 {shape = [1, 2, 4, 4]} : tensor<1x2x4x4xf32>
  %k2 = tensor.transpose %k1 {perm = [0, 2, 3, 1]} : tensor<1x4x4x2xf32>
  %s = nn.matmul %q2, %k2 : tensor<1x4x2x2xf32> loc("qk_matmul")
  %p = nn.softmax %s {axis = -1} : tensor<1x4x2x2xf32> loc("softmax")
  %o = nn.matmul %p, %q2 : tensor<1x4x2x4xf32> loc("pv_matmul")
  %o2 = tensor.transpose %o {perm = [0, 2, 1, 3]} : tensor<1x2x4x4xf32>
  %o3 = tensor.reshape %o2 {shape = [1, 2, 16]} : tensor<1x2x16xf32>
  %out = nn.linear %o3, %wo : tensor<1x2x8xf32> loc("o_proj")
  func.return %out
}
