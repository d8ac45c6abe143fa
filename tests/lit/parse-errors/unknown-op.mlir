// expect: error
// Unknown op names: near misses get a "did you mean" hint, others do not; the
// column points at the op name.
func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> (tensor<2x4xf32>) {
  %0 = nn.matmull %a, %b : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = tensor.reshpe %a {shape = [2]} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = frobnicate.everything %a : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  return %a
}
