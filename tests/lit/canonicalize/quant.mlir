// pipeline: builtin.module(func.func(canonicalize))
// quantize-dequantize: quantize(dequantize(q)) back to q's own type folds to q;
// requantize-identity: requantize to the input's own type folds to the input.
!a = !quant.uniform<u16:f32, scale = 0.5, offset = -100>
!b = !quant.uniform<u16:f32, scale = 0.25, offset = -100>
func.func @fold(%q: tensor<4x!a>) -> (tensor<4x!a>, tensor<4x!a>, tensor<4xf32>) {
  %0 = quant.dequantize %q : tensor<4xf32>
  %1 = quant.quantize %0 : tensor<4x!a>
  %2 = quant.requantize %1 : tensor<4x!a>
  func.return %1, %2, %0
}
// -----
// Must NOT fire: quantize to another encoding, dequantize(quantize(x)) (lossy),
// requantize to another encoding, and a per-axis encoding with other scales.
!a = !quant.uniform<u16:f32, scale = 0.5, offset = -100>
!b = !quant.uniform<u16:f32, scale = 0.25, offset = -100>
func.func @keep(%q: tensor<4x!a>, %x: tensor<4xf32>, %p: tensor<2x!quant.per_axis<i8:f32, axis = 0, scales = [1.0, 2.0], offsets = [0, 0]>>) -> (tensor<4x!b>, tensor<4xf32>, tensor<4x!b>, tensor<2x!quant.per_axis<i8:f32, axis = 0, scales = [1.0, 4.0], offsets = [0, 0]>>) {
  %0 = quant.dequantize %q : tensor<4xf32>
  %1 = quant.quantize %0 : tensor<4x!b>
  %2 = quant.quantize %x : tensor<4x!a>
  %3 = quant.dequantize %2 : tensor<4xf32>
  %4 = quant.requantize %q : tensor<4x!b>
  %5 = quant.requantize %p : tensor<2x!quant.per_axis<i8:f32, axis = 0, scales = [1.0, 4.0], offsets = [0, 0]>>
  func.return %1, %3, %4, %5
}
// -----
// dequantize to f16 then quantize: the quantize result type equals q's, folds.
func.func @f16(%q: tensor<4x!quant.uniform<u8:f16, scale = 0.5, offset = 0>>) -> (tensor<4x!quant.uniform<u8:f16, scale = 0.5, offset = 0>>) {
  %0 = quant.dequantize %q : tensor<4xf16>
  %1 = quant.quantize %0 : tensor<4x!quant.uniform<u8:f16, scale = 0.5, offset = 0>>
  func.return %1
}
