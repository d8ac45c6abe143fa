// expect: error
// Unterminated strings: a newline inside a string, and end of input inside a
// string (this file deliberately has no final newline).
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32> loc("abc
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32> loc("bad \q escape")
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32> loc("bad \0z hex")
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %a : tensor<2xf32> loc("never closed