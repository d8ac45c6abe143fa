// pipeline: builtin.module(func.func(linear-to-conv2d))
// An LPBQ linear [N=4, K=8] becomes a 1x1 conv2d with an HWIO [1,1,8,4] weight: the
// weight's transpose/reshape carry the LPBQ encoding from axis 0 to axis 3 (same
// block scales, same channel scales); the conv takes the linear's name.
!a = !quant.uniform<u16:f32, scale = 0.001, offset = -32768>
func.func @f(%x: tensor<1x3x8x!a>) -> (tensor<1x3x4x!a>) {
  %w = builtin.weight {name = "w"} : tensor<4x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [0.5, 0.25, 0.125, 1.0], block_scales = [1, 2, 3, 4, 5, 6, 7, 8]>>
  %y = nn.linear %x, %w : tensor<1x3x4x!a> loc("proj")
  func.return %y
}
// -----
// Float linear with a bias and a 2-D input.
func.func @g(%x: tensor<5x8xf32>) -> (tensor<5x2xf32>) {
  %w = builtin.weight {name = "w"} : tensor<2x8xf32>
  %b = builtin.weight {name = "b"} : tensor<2xf32>
  %y = nn.linear %x, %w, %b : tensor<5x2xf32> loc("fc")
  func.return %y
}
