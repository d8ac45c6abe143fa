// expect: error
// SSA structure (reported by the parser for textual input): undefined value, use
// before definition, redefinition of a value / argument / function, missing
// func.return, op after func.return, return count and type mismatches.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.add %a, %b : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.add %a, %1 : tensor<2xf32>
  %1 = nn.neg %a : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32>
  %0 = nn.neg %0 : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>, %a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %a = nn.neg %a : tensor<2xf32>
  func.return %a
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32>
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
  %0 = nn.neg %a : tensor<2xf32>
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) {
  func.return %a
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf16>) {
  func.return %a
}
// -----
func.func @f(%a: tensor<2xf32>) {
  func.return %a
}
// -----
func.func @f(%a: tensor<2xf32>) {
  func.return
}
func.func @f(%a: tensor<2xf32>) {
  func.return
}
