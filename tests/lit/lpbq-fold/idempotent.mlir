// tool: mllm-opt --pass-pipeline=builtin.module(func.func(lpbq-fold,lpbq-fold)) --print-ir-after-change
// A weight already in LPBQ form is not a chain: left alone (quantized graph, and a float
// graph reading it through quant.dequantize). A chain is folded by the first run; the
// second run changes nothing (only one after-change dump per function with a chain).
!a = !quant.uniform<u16:f32, scale = 0.001, offset = -32768>
func.func @lpbq(%x: tensor<1x3x8x!a>) -> (tensor<1x3x4x!a>) {
  %w = builtin.weight {name = "w"} : tensor<4x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [0.5, 0.25, 0.125, 1.0], block_scales = [1, 2, 3, 4, 5, 6, 7, 8]>>
  %y = nn.linear %x, %w : tensor<1x3x4x!a> loc("proj")
  func.return %y
}
// -----
func.func @dequantized(%x: tensor<3x8xf32>) -> (tensor<3x4xf32>) {
  %w = builtin.weight {name = "w"} : tensor<4x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [0.5, 0.25, 0.125, 1.0], block_scales = [1, 2, 3, 4, 5, 6, 7, 8]>>
  %d = quant.dequantize %w : tensor<4x8xf32>
  %y = nn.linear %x, %d : tensor<3x4xf32> loc("proj")
  func.return %y
}
// -----
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @twice(%x: tensor<3x8xf32>) -> (tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x8xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %s1 = builtin.constant {value = [3.0, 15.0, 15.0, 1.0]} : tensor<2x2x1xf32>
  %m1 = nn.mul %q3, %s1 : tensor<2x2x4xf32>
  %s2 = builtin.constant {value = [0.02, 0.0625]} : tensor<2x1x1xf32>
  %m2 = nn.mul %m1, %s2 : tensor<2x2x4xf32>
  %w = tensor.reshape %m2 {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.linear %x, %w : tensor<3x2xf32> loc("proj")
  func.return %y
}
