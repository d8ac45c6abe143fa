// pipeline: builtin.module(func.func(cse))
// Merging cascades in one walk: once the two reshapes merge, the transposes of them
// become identical and merge, then the reshapes of those. The two subs have swapped
// operands and stay apart (no commutativity). Op names (loc) do not block merging:
// the first op's name survives.
func.func @f(%x: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %0 = tensor.reshape %x {shape = [3, 2]} : tensor<3x2xf32> loc("first")
  %1 = tensor.reshape %x {shape = [3, 2]} : tensor<3x2xf32> loc("second")
  %2 = tensor.transpose %0 {perm = [1, 0]} : tensor<2x3xf32>
  %3 = tensor.transpose %1 {perm = [1, 0]} : tensor<2x3xf32>
  %4 = tensor.reshape %2 {shape = [3, 2]} : tensor<3x2xf32>
  %5 = tensor.reshape %3 {shape = [3, 2]} : tensor<3x2xf32>
  %6 = nn.sub %4, %0 : tensor<3x2xf32>
  %7 = nn.sub %0, %5 : tensor<3x2xf32>
  func.return %6, %7
}
// -----
// Same op and operands with different quantized result encodings stay apart.
func.func @q(%x: tensor<4xf32>) -> (tensor<4x!quant.uniform<u8:f32, scale = 0.5, offset = 0>>, tensor<4x!quant.uniform<u8:f32, scale = 0.25, offset = 0>>, tensor<4x!quant.uniform<u8:f32, scale = 0.5, offset = 0>>) {
  %0 = quant.quantize %x : tensor<4x!quant.uniform<u8:f32, scale = 0.5, offset = 0>>
  %1 = quant.quantize %x : tensor<4x!quant.uniform<u8:f32, scale = 0.25, offset = 0>>
  %2 = quant.quantize %x : tensor<4x!quant.uniform<u8:f32, scale = 0.5, offset = 0>>
  func.return %0, %1, %2
}
// -----
// Values returned twice after merging; arguments are never merged.
func.func @r(%a: tensor<2xf32>, %b: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {
  %0 = nn.silu %a : tensor<2xf32>
  %1 = nn.silu %a : tensor<2xf32>
  func.return %0, %1, %a, %b
}
