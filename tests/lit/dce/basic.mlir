// pipeline: builtin.module(func.func(dce))
// A dead chain goes in one run (reverse walk with use counts); ops feeding the
// return and unused arguments stay; an op used only by a dead op is dead too.
func.func @f(%x: tensor<2x3xf32>, %unused: tensor<7xf32>) -> (tensor<2x3xf32>) {
  %w = builtin.weight {name = "dead.weight"} : tensor<3x3xf32>
  %0 = nn.matmul %x, %w : tensor<2x3xf32>
  %1 = nn.silu %0 : tensor<2x3xf32>
  %2 = tensor.reshape %1 {shape = [6]} : tensor<6xf32>
  %3 = nn.neg %x : tensor<2x3xf32>
  func.return %3
}
// -----
// Everything but the return is dead.
func.func @g(%x: tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  %1 = nn.add %0, %0 : tensor<2xf32>
  %2 = builtin.constant {value = [1.0]} : tensor<2xf32>
  func.return
}
// -----
// Nothing is dead: a value used twice, a value used by a dead-looking but returned op.
func.func @h(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  %1 = nn.add %0, %0 : tensor<2xf32>
  func.return %1, %0
}
