// Round trip of per-tensor (uniform) quantized types and the quant.* ops: a type
// used once prints inline, a type used twice or more becomes a !qN alias; f16
// expressed types and every storage type.
func.func @qdq(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4x!quant.uniform<u8:f32, scale = 0.5, offset = -128>>) {
  %0 = quant.quantize %x : tensor<4x!quant.uniform<u16:f32, scale = 1.5e-5, offset = -32768>>
  %1 = quant.requantize %0 : tensor<4x!quant.uniform<u8:f32, scale = 0.5, offset = -128>>
  %2 = quant.dequantize %0 : tensor<4xf32>
  %3 = nn.add %0, %0 : tensor<4x!quant.uniform<u16:f32, scale = 1.5e-5, offset = -32768>>
  func.return %2, %1
}
// -----
func.func @storages(%a: tensor<2x!quant.uniform<i8:f16, scale = 0.25, offset = 0>>, %b: tensor<2x!quant.uniform<i16:f32, scale = 1.0, offset = 5>>, %c: tensor<2x!quant.uniform<i32:f32, scale = 3.0e-9, offset = 0>>, %d: tensor<2x!quant.uniform<i4:f32, scale = 0.1, offset = -7>>) -> (tensor<2x!quant.uniform<i8:f16, scale = 0.25, offset = 0>>) {
  func.return %a
}
