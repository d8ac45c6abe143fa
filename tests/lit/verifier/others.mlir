// expect: error
// Remaining per-op rules: rms_norm weight shape and axis, softmax axis, reduce_min
// axes, embedding table rank, result shape of explicitly typed ops.
func.func @f(%a: tensor<2x4xf32>, %w: tensor<2xf32>) -> (tensor<2x4xf32>) {
  %0 = nn.rms_norm %a, %w {epsilon = 1.0e-6} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4xf32>, %w: tensor<4xf32>) -> (tensor<2x4xf32>) {
  %0 = nn.rms_norm %a, %w {epsilon = 1.0e-6, axis = 2} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4xf32>) -> (tensor<2x4xf32>) {
  %0 = nn.softmax %a {axis = -3} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4xf32>) -> (tensor<2x1xf32>) {
  %0 = nn.reduce_min %a {axes = [5]} : tensor<2x1xf32>
  func.return %0
}
// -----
func.func @f(%ids: tensor<3xi32>, %t: tensor<8xf32>) -> (tensor<3x8xf32>) {
  %0 = nn.embedding %ids, %t : tensor<3x8xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4xf32>) -> (tensor<4x2xf16>) {
  %0 = nn.cast %a : tensor<4x2xf16>
  func.return %0
}
