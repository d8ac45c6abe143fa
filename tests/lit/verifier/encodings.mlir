// expect: error
// Encoding checks: per-axis scale/offset counts and axis range, LPBQ block scale
// count, zero block scale, block size not dividing a channel, block scale above
// 2^bits, LPBQ storage, zero point out of the storage range, non-positive scales.
// Argument types are reported at the function, result types at the op.
func.func @f(%w: tensor<2x3x!quant.per_axis<i8:f32, axis = 0, scales = [0.5, 0.5, 0.5], offsets = [0, 0, 0]>>) {
  func.return
}
// -----
func.func @f() -> (tensor<2x3x!quant.per_axis<i8:f32, axis = 2, scales = [0.5, 0.5], offsets = [0, 0]>>) {
  %0 = builtin.weight {name = "w"} : tensor<2x3x!quant.per_axis<i8:f32, axis = 2, scales = [0.5, 0.5], offsets = [0, 0]>>
  func.return %0
}
// -----
func.func @f() -> (tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 1, 1]>>) {
  %0 = builtin.weight {name = "w"} : tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 1, 1]>>
  func.return %0
}
// -----
func.func @f() -> (tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 0, 1, 1]>>) {
  %0 = builtin.weight {name = "w"} : tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 0, 1, 1]>>
  func.return %0
}
// -----
func.func @f() -> (tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 3, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 1, 1, 1]>>) {
  %0 = builtin.weight {name = "w"} : tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 3, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 1, 1, 1]>>
  func.return %0
}
// -----
func.func @f() -> (tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 2, channel_scales = [1.0, 1.0], block_scales = [1, 5, 1, 1]>>) {
  %0 = builtin.weight {name = "w"} : tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 2, channel_scales = [1.0, 1.0], block_scales = [1, 5, 1, 1]>>
  func.return %0
}
// -----
func.func @f(%w: tensor<2x8x!quant.lpbq<u16:f32, axis = 0, block = 4, bits = 4, channel_scales = [1.0, 1.0], block_scales = [1, 1, 1, 1]>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 10>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2x!quant.uniform<u8:f32, scale = 0.0, offset = 0>>) {
  %0 = quant.quantize %a : tensor<2x!quant.uniform<u8:f32, scale = 0.0, offset = 0>>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3x!quant.per_axis<i8:f32, axis = 1, scales = [0.5, -0.5, 0.5], offsets = [0, 0, 0]>>) {
  func.return
}
