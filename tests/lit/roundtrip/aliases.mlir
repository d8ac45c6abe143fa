// Type aliases: user-chosen alias names are accepted and renumbered !q0, !q1, ... in
// first-use order; an unused alias disappears; an alias used once is printed inline;
// the same encoding written inline and via an alias is one type.
!unused = !quant.uniform<u8:f32, scale = 1.0, offset = 0>
!act = !quant.uniform<u16:f32, scale = 2.0e-4, offset = -30000>
!once = !quant.uniform<u16:f32, scale = 0.125, offset = 0>
!w = !quant.per_axis<i8:f32, axis = 0, scales = [0.5, 0.5], offsets = [0, 0]>
func.func @f(%x: tensor<1x4x!act>, %y: tensor<1x4x!quant.uniform<u16:f32, scale = 2.0e-4, offset = -30000>>) -> (tensor<1x2x!act>, tensor<1x4x!once>) {
  %0 = builtin.weight {name = "w0"} : tensor<2x4x!w>
  %1 = builtin.weight {name = "w1"} : tensor<2x4x!w>
  %2 = nn.add %x, %y : tensor<1x4x!act>
  %3 = nn.linear %2, %0 : tensor<1x2x!act>
  %4 = nn.linear %2, %1 : tensor<1x2x!act>
  %5 = nn.add %3, %4 : tensor<1x2x!act>
  %6 = quant.requantize %x : tensor<1x4x!once>
  func.return %5, %6
}
