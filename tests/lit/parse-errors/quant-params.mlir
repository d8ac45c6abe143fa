// expect: error
// Quantized type parameters: unknown parameter, missing parameter, parameter that
// does not apply, duplicate, out-of-range values, unknown quantized kind, bad hex.
func.func @f(%a: tensor<2x!quant.uniform<u16:f32, scale = 1.0, offset = 0, zero_point = 3>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u16:f32, scale = 1.0>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u16:f32, scale = 1.0, offset = 0, axis = 0>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u16:f32, scale = 1.0, scale = 2.0, offset = 0>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 9, channel_scales = [1.0, 1.0], block_scales = [1, 1]>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.per_axis<i8:f32, axis = 0, scales = [1.0, 1.0], offsets = [0, 3000000000]>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.blockwise<i8:f32, scale = 1.0>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.per_axis<i8:f32, axis = 0, scales = hex"0000803", offsets = [0, 0]>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [1.0, 1.0], block_scales = hex"zz">>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u16:f32, scale = 1.0, offset = 0.5>>) {
  func.return
}
