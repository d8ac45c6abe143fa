// expect: error
// Unknown element types in tensor types (argument, op result, quantized storage and
// expressed types).
func.func @f(%a: tensor<2xf33>) {
  func.return
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xfloat>) {
  %0 = nn.neg %a : tensor<2xfloat>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u3:f32, scale = 1.0, offset = 0>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u8:bf16, scale = 1.0, offset = 0>>) {
  func.return
}
// -----
func.func @f(%a: tensor<2>) {
  func.return
}
// -----
func.func @f(%a: memref<2xf32>) {
  func.return
}
