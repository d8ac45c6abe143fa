// pipeline: builtin.module(func.func(sha-split{heads=2}))
// heads=2 splits a 4-head merge into 2 groups of 2 heads: the projection weight is
// sliced in two, each group keeps a batched (2-head) attention core.
func.func @f(%h: tensor<1x2x8xf32>) -> (tensor<1x2x8xf32> {name = "out"}) {
  %wq = builtin.weight {name = "q_proj.weight"} : tensor<16x8xf32>
  %wo = builtin.weight {name = "o_proj.weight"} : tensor<8x16xf32>
  %q0 = nn.linear %h, %wq : tensor<1x2x16xf32> loc("q_proj")
  %q1 = tensor.reshape %q0 {shape = [1, 2, 4, 4]} : tensor<1x2x4x4xf32>
  %q2 = tensor.transpose %q1 {perm = [0, 2, 1, 3]} : tensor<1x4x2x4xf32>
  %s = nn.softmax %q2 {axis = -1} : tensor<1x4x2x4xf32> loc("softmax")
  %o2 = tensor.transpose %s {perm = [0, 2, 1, 3]} : tensor<1x2x4x4xf32>
  %o3 = tensor.reshape %o2 {shape = [1, 2, 16]} : tensor<1x2x16xf32>
  %out = nn.linear %o3, %wo : tensor<1x2x8xf32> loc("o_proj")
  func.return %out
}
