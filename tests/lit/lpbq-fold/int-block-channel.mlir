// pipeline: builtin.module(func.func(lpbq-fold))
// int codes x block scale x channel scale -> one LPBQ weight. The linear keeps a float
// operand: the chain becomes quant.dequantize of a weight that reuses the codes' payload
// ("w.q") with a blockwise type (block 8, the integer block scales, the channel scales).
// Scales are constants here (weights work the same when their payloads are loaded).
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @linear(%x: tensor<3x32xf32>) -> (tensor<3x4xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<4x32x!c4>
  %qf = quant.dequantize %q : tensor<4x32xf32>
  %q3 = tensor.reshape %qf {shape = [4, 4, 8]} : tensor<4x4x8xf32>
  %s1 = builtin.constant {value = [1.0, 15.0, 7.0, 3.0, 2.0, 4.0, 15.0, 9.0, 11.0, 15.0, 1.0, 5.0, 15.0, 14.0, 13.0, 12.0]} : tensor<4x4xf32>
  %s1r = tensor.reshape %s1 {shape = [4, 4, 1]} : tensor<4x4x1xf32>
  %m1 = nn.mul %q3, %s1r : tensor<4x4x8xf32>
  %s2 = builtin.constant {value = [0.013, 0.0007, 0.0015, 0.21]} : tensor<4xf32>
  %s2r = tensor.reshape %s2 {shape = [4, 1, 1]} : tensor<4x1x1xf32>
  %m2 = nn.mul %m1, %s2r : tensor<4x4x8xf32>
  %w = tensor.reshape %m2 {shape = [4, 32]} : tensor<4x32xf32>
  %y = nn.linear %x, %w : tensor<3x4xf32> loc("proj")
  func.return %y
}
// -----
// pymllm's layout: codes HWIO [1,1,In=32,Out=4], scale1 out-channel-major [Out*In/B],
// scale2 [Out], feeding a 1x1 conv2d: the LPBQ axis is 3 (HWIO), blocks run along In.
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @hwio(%x: tensor<1x1x3x32xf32>) -> (tensor<1x1x3x4xf32>) {
  %q = builtin.weight {name = "model.layers.0.mlp.up_proj.weight"} : tensor<1x1x32x4x!c4>
  %qf = quant.dequantize %q : tensor<1x1x32x4xf32>
  %q5 = tensor.reshape %qf {shape = [1, 1, 4, 8, 4]} : tensor<1x1x4x8x4xf32>
  %s1 = builtin.constant {value = [1.0, 2.0, 3.0, 15.0, 4.0, 5.0, 15.0, 6.0, 15.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 15.0]} : tensor<16xf32>
  %s1a = tensor.reshape %s1 {shape = [4, 4]} : tensor<4x4xf32>
  %s1t = tensor.transpose %s1a {perm = [1, 0]} : tensor<4x4xf32>
  %s1r = tensor.reshape %s1t {shape = [1, 1, 4, 1, 4]} : tensor<1x1x4x1x4xf32>
  %m1 = nn.mul %q5, %s1r : tensor<1x1x4x8x4xf32>
  %s2 = builtin.constant {value = [0.5, 0.25, 0.001, 0.03]} : tensor<4xf32>
  %m2 = nn.mul %m1, %s2 : tensor<1x1x4x8x4xf32>
  %w = tensor.reshape %m2 {shape = [1, 1, 32, 4]} : tensor<1x1x32x4xf32>
  %y = nn.conv2d %x, %w : tensor<1x1x3x4xf32> loc("model.layers.0.mlp.up_proj")
  func.return %y
}
// -----
// mllm clamps block scales to 16, which needs 5 bits: the type says bits = 5. Scales
// on the left of the mul, codes declared [N, K/B, B] (the weight keeps its own shape and
// a reshape carries the encoding to the linear's [N, K]).
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @sixteen(%x: tensor<2x16xf32>) -> (tensor<2x2xf32>) {
  %q = builtin.weight {name = "w16"} : tensor<2x2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x2x8xf32>
  %s1 = builtin.constant {value = [16.0, 3.0, 1.0, 16.0]} : tensor<2x2x1xf32>
  %m1 = nn.mul %s1, %qf : tensor<2x2x8xf32>
  %s2 = builtin.constant {value = [0.1, 0.2]} : tensor<2x1x1xf32>
  %m2 = nn.mul %m1, %s2 : tensor<2x2x8xf32>
  %w = tensor.reshape %m2 {shape = [2, 16]} : tensor<2x16xf32>
  %y = nn.linear %x, %w : tensor<2x2xf32>
  func.return %y
}
// -----
// pymllm's HWIO codes [1,1,In=32,Out=4] read by a linear as [Out, In] through a
// transpose: the weight keeps its own layout (axis 3) and the reshape/transpose carry the
// encoding to the linear's axis 0 (the codes' payload is reused, nothing is copied).
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @hwio_linear(%x: tensor<3x32xf32>) -> (tensor<3x4xf32>) {
  %q = builtin.weight {name = "model.layers.0.self_attn.o_proj.weight"} : tensor<1x1x32x4x!c4>
  %qf = quant.dequantize %q : tensor<1x1x32x4xf32>
  %q2 = tensor.reshape %qf {shape = [32, 4]} : tensor<32x4xf32>
  %qt = tensor.transpose %q2 {perm = [1, 0]} : tensor<4x32xf32>
  %q3 = tensor.reshape %qt {shape = [4, 4, 8]} : tensor<4x4x8xf32>
  %s1 = builtin.constant {value = [1.0, 2.0, 3.0, 15.0, 4.0, 5.0, 15.0, 6.0, 15.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 15.0]} : tensor<16xf32>
  %s1r = tensor.reshape %s1 {shape = [4, 4, 1]} : tensor<4x4x1xf32>
  %m1 = nn.mul %q3, %s1r : tensor<4x4x8xf32>
  %s2 = builtin.constant {value = [0.5, 0.25, 0.001, 0.03]} : tensor<4x1x1xf32>
  %m2 = nn.mul %m1, %s2 : tensor<4x4x8xf32>
  %w = tensor.reshape %m2 {shape = [4, 32]} : tensor<4x32xf32>
  %y = nn.linear %x, %w : tensor<3x4xf32> loc("model.layers.0.self_attn.o_proj")
  func.return %y
}
// -----
// Two graphs (prefill and decode) reading the same chain get the same LPBQ weight (the
// second one from the pass's cache).
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @s4(%x: tensor<4x16xf32>) -> (tensor<4x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x16x!c4>
  %qf = quant.dequantize %q : tensor<2x16xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 8]} : tensor<2x2x8xf32>
  %s1 = builtin.constant {value = [5.0, 15.0, 15.0, 2.0]} : tensor<2x2x1xf32>
  %m1 = nn.mul %q3, %s1 : tensor<2x2x8xf32>
  %s2 = builtin.constant {value = [0.125, 0.0078125]} : tensor<2x1x1xf32>
  %m2 = nn.mul %m1, %s2 : tensor<2x2x8xf32>
  %w = tensor.reshape %m2 {shape = [2, 16]} : tensor<2x16xf32>
  %y = nn.linear %x, %w : tensor<4x2xf32>
  func.return %y
}
func.func @s1(%x: tensor<1x16xf32>) -> (tensor<1x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x16x!c4>
  %qf = quant.dequantize %q : tensor<2x16xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 8]} : tensor<2x2x8xf32>
  %s1 = builtin.constant {value = [5.0, 15.0, 15.0, 2.0]} : tensor<2x2x1xf32>
  %m1 = nn.mul %q3, %s1 : tensor<2x2x8xf32>
  %s2 = builtin.constant {value = [0.125, 0.0078125]} : tensor<2x1x1xf32>
  %m2 = nn.mul %m1, %s2 : tensor<2x2x8xf32>
  %w = tensor.reshape %m2 {shape = [2, 16]} : tensor<2x16xf32>
  %y = nn.linear %x, %w : tensor<1x2xf32>
  func.return %y
}
