// expect: error
// Attribute schema: wrong kind, unknown attribute (with the list of known ones, or
// "it takes none"), missing required attribute, wrong kind of an optional one.
func.func @f(%a: tensor<2x3xf32>) -> (tensor<6xf32>) {
  %0 = tensor.reshape %a {shape = 6} : tensor<6xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.silu %a {alpha = 1.0} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  %0 = tensor.transpose %a {perm = [1, 0], axis = 1} : tensor<3x2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4xf32>, %w: tensor<4xf32>) -> (tensor<2x4xf32>) {
  %0 = nn.rms_norm %a, %w : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4xf32>, %b: tensor<4x4xf32>) -> (tensor<2x4xf32>) {
  %0 = nn.matmul %a, %b {transpose_b = 1} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f() -> (tensor<2xf32>) {
  %0 = builtin.weight {name = ""} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f() -> (tensor<2xf32>) {
  %0 = builtin.constant {value = "zero"} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f() -> (tensor<2x2xf32>) {
  %0 = builtin.constant {value = [1.0, 2.0]} : tensor<2x2xf32>
  func.return %0
}
