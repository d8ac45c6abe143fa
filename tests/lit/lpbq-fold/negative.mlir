// pipeline: builtin.module(func.func(lpbq-fold))
// Left alone: a chain that does not feed a matmul/conv weight (an add, a return).
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @not_a_weight(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x8xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %s = builtin.constant {value = [1.0, 2.0, 3.0, 4.0]} : tensor<2x2x1xf32>
  %m = nn.mul %q3, %s : tensor<2x2x4xf32>
  %w = tensor.reshape %m {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.add %x, %w : tensor<2x8xf32>
  func.return %y
}
// -----
// Left alone: the chain is the matmul's activation operand, not its weight.
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @activation_side(%x: tensor<8x3xf32>) -> (tensor<2x3xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x8xf32>
  %q3 = tensor.reshape %qf {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %s = builtin.constant {value = [1.0, 2.0, 3.0, 4.0]} : tensor<2x2x1xf32>
  %m = nn.mul %q3, %s : tensor<2x2x4xf32>
  %w = tensor.reshape %m {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.matmul %w, %x : tensor<2x3xf32>
  func.return %y
}
// -----
// Left alone: scales of the wrong shape. A per-input-column scale [1, K] changes at
// every element of a channel (no blocks); a per-channel-only scale [N, 1] makes one
// block of the whole channel (per-axis, not LPBQ).
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @wrong_shapes(%x: tensor<3x8xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<2x8x!c4>
  %qf = quant.dequantize %q : tensor<2x8xf32>
  %col = builtin.constant {value = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]} : tensor<1x8xf32>
  %w1 = nn.mul %qf, %col : tensor<2x8xf32>
  %y1 = nn.linear %x, %w1 : tensor<3x2xf32>
  %q2 = builtin.weight {name = "w2.q"} : tensor<2x8x!c4>
  %qf2 = quant.dequantize %q2 : tensor<2x8xf32>
  %ch = builtin.constant {value = [0.5, 0.25]} : tensor<2x1xf32>
  %w2 = nn.mul %qf2, %ch : tensor<2x8xf32>
  %y2 = nn.linear %x, %w2 : tensor<3x2xf32>
  func.return %y1, %y2
}
// -----
// Left alone: the codes are sliced on their way to the matmul (only some channels'
// scales would be known), and codes with a per-tensor scale other than 1.
!c4 = !quant.uniform<i4:f32, scale = 1.0, offset = 0>
func.func @codes(%x: tensor<3x8xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %q = builtin.weight {name = "w.q"} : tensor<4x8x!c4>
  %qf = quant.dequantize %q : tensor<4x8xf32>
  %qs = tensor.slice %qf {starts = [0, 0], ends = [2, 8]} : tensor<2x8xf32>
  %q3 = tensor.reshape %qs {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %s = builtin.constant {value = [1.0, 2.0, 3.0, 4.0]} : tensor<2x2x1xf32>
  %m = nn.mul %q3, %s : tensor<2x2x4xf32>
  %w = tensor.reshape %m {shape = [2, 8]} : tensor<2x8xf32>
  %y = nn.linear %x, %w : tensor<3x2xf32>
  %p = builtin.weight {name = "p.q"} : tensor<2x8x!quant.uniform<i4:f32, scale = 0.5, offset = 0>>
  %pf = quant.dequantize %p : tensor<2x8xf32>
  %p3 = tensor.reshape %pf {shape = [2, 2, 4]} : tensor<2x2x4xf32>
  %pm = nn.mul %p3, %s : tensor<2x2x4xf32>
  %pw = tensor.reshape %pm {shape = [2, 8]} : tensor<2x8xf32>
  %z = nn.linear %x, %pw : tensor<3x2xf32>
  func.return %y, %z
}
