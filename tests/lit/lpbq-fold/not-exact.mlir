// pipeline: builtin.module(func.func(lpbq-fold{requantize=false}))
// With requantize=false, chains whose scales are not exactly two-level are left alone:
// float block scales with no exact u8 x f32 split, a zero block scale, a negative
// channel scale. (With requantize=true they would be requantized from the codes'
// payload; mllm-opt has no payloads, see the unit tests in lpbq_fold.rs.)
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @float_scales(%x: tensor<3x8xf32>) -> (tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x8xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %s = builtin.constant {value = [0.0123, 0.0456, 0.0789, 0.0101]} : tensor<2x2x1xf32>
  %m = nn.mul %q3, %s : tensor<2x2x4xf32>
  %w = tensor.reshape %m {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.linear %x, %w : tensor<3x2xf32>
  func.return %y
}
// -----
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @zero_and_negative(%x: tensor<3x8xf32>) -> (tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x8xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %s1 = builtin.constant {value = [0.0, 2.0, 3.0, 4.0]} : tensor<2x2x1xf32>
  %m1 = nn.mul %q3, %s1 : tensor<2x2x4xf32>
  %s2 = builtin.constant {value = [0.5, -0.25]} : tensor<2x1x1xf32>
  %m2 = nn.mul %m1, %s2 : tensor<2x2x4xf32>
  %w = tensor.reshape %m2 {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.linear %x, %w : tensor<3x2xf32>
  func.return %y
}
