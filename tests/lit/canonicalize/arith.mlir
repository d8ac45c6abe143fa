// pipeline: builtin.module(func.func(canonicalize))
// mul-one, add-zero, sub-zero with splat constants (on either side for mul/add,
// only on the right for sub), including full-shape splats written out in full and
// broadcasting constants that leave the shape unchanged. The constants become dead.
// The last chunk: x + -0.0 is exactly x (and -0.0 compares equal to 0.0).
func.func @fold(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %one = builtin.constant {value = [1.0]} : tensor<1xf32>
  %zero = builtin.constant {value = [0.0]} : tensor<3xf32>
  %z6 = builtin.constant {value = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]} : tensor<2x3xf32>
  %o1 = builtin.constant {value = [1]} : tensor<1x1xf32>
  %0 = nn.mul %x, %one : tensor<2x3xf32>
  %1 = nn.mul %o1, %0 : tensor<2x3xf32>
  %2 = nn.add %zero, %1 : tensor<2x3xf32>
  %3 = nn.add %2, %z6 : tensor<2x3xf32>
  %4 = nn.sub %3, %zero : tensor<2x3xf32>
  func.return %0, %1, %2, %3, %4
}
// -----
func.func @negzero(%x: tensor<3xf32>) -> (tensor<3xf32>) {
  %nz = builtin.constant {value = [-0.0]} : tensor<1xf32>
  %0 = nn.add %x, %nz : tensor<3xf32>
  func.return %0
}
