// pipeline: builtin.module(func.func(canonicalize))
// Rules feed each other until a fixpoint: transpose pair -> identity -> folds, which
// exposes reshape(reshape) -> identity, which exposes mul-one; every dead op is gone.
func.func @f(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %one = builtin.constant {value = [1.0]} : tensor<1xf32>
  %0 = tensor.reshape %x {shape = [3, 2]} : tensor<3x2xf32>
  %1 = tensor.transpose %0 {perm = [1, 0]} : tensor<2x3xf32>
  %2 = tensor.transpose %1 {perm = [1, 0]} : tensor<3x2xf32>
  %3 = tensor.reshape %2 {shape = [2, 3]} : tensor<2x3xf32>
  %4 = tensor.concat %3 {axis = 0} : tensor<2x3xf32>
  %5 = nn.mul %4, %one : tensor<2x3xf32>
  %6 = tensor.slice %5 {starts = [0, 0], ends = [2, 3]} : tensor<2x3xf32>
  func.return %6
}
