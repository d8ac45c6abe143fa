// expect: error
// Garbage input: stray text, a missing ':' in the argument list, unbalanced braces,
// an attribute dictionary without '=', trailing tokens after the module, control
// characters, and a non-ASCII token.
hello world
// -----
func.func @f(%a tensor<2xf32>) {
  func.return
}
// -----
func.func @f(%a: tensor<2xf32>) {
  func.return
}}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.softmax %a {axis 1} : tensor<2xf32>
  func.return %0
}
// -----
module {
}
module {
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32> ☃
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) {
  func.return
// -----
 junk
