// expect: error
// Wrong operand and result counts are reported at the op with the expected count.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.add %a : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x2xf32>) -> (tensor<2x2xf32>) {
  %0 = nn.linear %a, %a, %a, %a : tensor<2x2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = builtin.weight %a {name = "w"} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f() -> (tensor<2xf32>) {
  %0 = tensor.concat {axis = 0} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%c: tensor<2xi1>, %a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.where %c, %a : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0, %1 = nn.neg %a : (tensor<2xf32>, tensor<2xf32>)
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  nn.neg %a
  func.return %a
}
