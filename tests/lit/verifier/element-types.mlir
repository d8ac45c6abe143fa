// expect: error
// Element-type rules: mixing float and quantized operands without a quant.* op,
// mixing f32 and f16, integer results of float ops, equal must return i1, cast of a
// quantized type, and the direction of quantize/dequantize/requantize.
!q = !quant.uniform<u16:f32, scale = 1.0, offset = 0>
func.func @f(%a: tensor<2x!q>, %b: tensor<2xf32>) -> (tensor<2x!q>) {
  %0 = nn.add %a, %b : tensor<2x!q>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf16>, %b: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.mul %a, %b : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xi32>, %b: tensor<2xi32>) -> (tensor<2xi32>) {
  %0 = nn.add %a, %b : tensor<2xi32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>, %b: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.equal %a, %b : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>) -> (tensor<2xf32>) {
  %0 = nn.cast %a : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>) -> (tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>) {
  %0 = quant.quantize %a : tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf16>) {
  %0 = quant.dequantize %a : tensor<2xf16>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>) {
  %0 = quant.requantize %a : tensor<2x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>
  func.return %0
}
// -----
func.func @f(%ids: tensor<3xi32>, %t: tensor<8x4x!quant.uniform<u8:f32, scale = 1.0, offset = 0>>) -> (tensor<3x4xf32>) {
  %0 = nn.embedding %ids, %t : tensor<3x4xf32>
  func.return %0
}
// -----
func.func @f(%ids: tensor<3xf32>, %t: tensor<8x4xf32>) -> (tensor<3x4xf32>) {
  %0 = nn.embedding %ids, %t : tensor<3x4xf32>
  func.return %0
}
