// expect: error
// tensor.transpose permutations: repeated entry, wrong length, out of range,
// negative entry; and a result shape that does not follow the permutation.
func.func @f(%a: tensor<2x3x4xf32>) -> (tensor<2x2x3xf32>) {
  %0 = tensor.transpose %a {perm = [0, 0, 1]} : tensor<2x2x3xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3x4xf32>) -> (tensor<3x2xf32>) {
  %0 = tensor.transpose %a {perm = [1, 0]} : tensor<3x2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3x4xf32>) -> (tensor<2x4x3xf32>) {
  %0 = tensor.transpose %a {perm = [0, 3, 1]} : tensor<2x4x3xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  %0 = tensor.transpose %a {perm = [-1, 0]} : tensor<3x2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>) {
  %0 = tensor.transpose %a {perm = [2, 1, 0]} : tensor<2x3x4xf32>
  func.return %0
}
