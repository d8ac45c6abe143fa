// pipeline: builtin.module(func.func(lpbq-fold))
// int codes x f32 per-block scales that are exactly two-level (s[c,b] = q[c,b] * s_c
// with an exact product): the split is found per channel and the fold is exact.
// Channel 0: s_c = 0.375/1024, q = 3,15,7,1; channel 1: s_c = 0.625/256, q = 2,4,8,15.
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @linear(%x: tensor<3x32xf32>) -> (tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x32x!c4>
  %qf = quant.dequantize %q : tensor<2x32xf32>
  %q3 = tensor.reshape %qf {shape = [2, 4, 8]} : tensor<2x4x8xf32>
  %s = builtin.constant {value = [0.0010986328125, 0.0054931640625, 0.0025634765625, 0.0003662109375, 0.0048828125, 0.009765625, 0.01953125, 0.03662109375]} : tensor<2x4x1xf32>
  %m = nn.mul %q3, %s : tensor<2x4x8xf32>
  %w = tensor.reshape %m {shape = [2, 32]} : tensor<2x32xf32>
  %y = nn.linear %x, %w : tensor<3x2xf32>
  func.return %y
}
// -----
// A matmul reading a [K=32, N=2] weight: the channel axis is 1, blocks of 16 run along K.
// Per-block scales [K/B, N] = [2, 2]: column 0 gets 0.5, 0.25; column 1 gets 3.0, 1.0.
!c8 = !quant.uniform<i8:f32, scale = 1.0, offset = 0>
func.func @matmul(%x: tensor<3x32xf32>) -> (tensor<3x2xf32>) {
  %q = builtin.weight {name = "m.q"} : tensor<32x2x!c8>
  %qf = quant.dequantize %q : tensor<32x2xf32>
  %q3 = tensor.reshape %qf {shape = [2, 16, 2]} : tensor<2x16x2xf32>
  %s = builtin.constant {value = [0.5, 3.0, 0.25, 1.0]} : tensor<2x1x2xf32>
  %m = nn.mul %q3, %s : tensor<2x16x2xf32>
  %w = tensor.reshape %m {shape = [32, 2]} : tensor<32x2xf32>
  %y = nn.matmul %x, %w : tensor<3x2xf32>
  func.return %y
}
