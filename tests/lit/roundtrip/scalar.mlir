// Rank-0 (scalar) tensors: arguments, constants, broadcasting a scalar against a
// vector, reshape to and from rank 0, and the empty transpose permutation.
func.func @scalars(%s: tensor<f32>, %v: tensor<3xf32>) -> (tensor<3xf32>, tensor<1xf32>, tensor<f32>, tensor<f32>) {
  %0 = builtin.constant {value = [2.0]} : tensor<f32>
  %1 = nn.mul %s, %0 : tensor<f32>
  %2 = nn.add %1, %v : tensor<3xf32>
  %3 = tensor.reshape %1 {shape = [1]} : tensor<1xf32>
  %4 = tensor.reshape %3 {shape = []} : tensor<f32>
  %5 = tensor.transpose %4 {perm = []} : tensor<f32>
  func.return %2, %3, %4, %5
}
