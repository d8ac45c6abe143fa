// pipeline: builtin.module(cleanup)
// The named pipeline `cleanup` = func.func(canonicalize,cse,dce) on every function.
func.func @f(%x: tensor<1x4x8xf32>, %w: tensor<8xf32>) -> (tensor<4x8xf32>) {
  %0 = tensor.transpose %x {perm = [0, 1, 2]} : tensor<1x4x8xf32>
  %1 = nn.rms_norm %0, %w {epsilon = 1.0e-6} : tensor<1x4x8xf32>
  %2 = nn.rms_norm %x, %w {epsilon = 1.0e-6} : tensor<1x4x8xf32>
  %3 = nn.add %1, %2 : tensor<1x4x8xf32>
  %4 = tensor.reshape %3 {shape = [4, 8]} : tensor<4x8xf32>
  %5 = nn.softmax %4 : tensor<4x8xf32>
  func.return %4
}
// -----
// sub-zero with a splat constant of the full shape folds; the constant is then dead.
func.func @g(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %z = builtin.constant {value = [0.0]} : tensor<2xf32>
  %0 = nn.sub %x, %z : tensor<2xf32>
  func.return %0
}
