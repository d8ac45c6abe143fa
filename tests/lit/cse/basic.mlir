// pipeline: builtin.module(func.func(cse))
// Two identical adds become one; the mul then uses the survivor twice.
func.func @f(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = nn.add %a, %b : tensor<2x3xf32>
  %1 = nn.add %a, %b : tensor<2x3xf32>
  %2 = nn.mul %0, %1 : tensor<2x3xf32>
  func.return %2
}
// -----
// Different attributes are not common subexpressions.
func.func @g(%a: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<6xf32>) {
  %0 = tensor.reshape %a {shape = [3, 2]} : tensor<3x2xf32>
  %1 = tensor.reshape %a {shape = [6]} : tensor<6xf32>
  func.return %0, %1
}
