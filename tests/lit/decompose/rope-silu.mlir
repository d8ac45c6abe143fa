// pipeline: builtin.module(func.func(decompose))
// rope -> slice/neg/concat/mul/add (rotate_half = concat(-x2, x1)); silu -> x * sigmoid(x).
// Each step is named after the op it comes from.
func.func @f(%x: tensor<1x2x3x4xf32>, %cos: tensor<3x4xf32>, %sin: tensor<3x4xf32>) -> (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>) {
  %r = nn.rope %x, %cos, %sin : tensor<1x2x3x4xf32> loc("rope_q")
  %s = nn.silu %x : tensor<1x2x3x4xf32> loc("act")
  func.return %r, %s
}
