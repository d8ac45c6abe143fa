// pipeline: builtin.module(func.func(canonicalize))
// Transposes that must NOT become reshapes: they move non-unit dimensions past each
// other (even when size-1 dims move too, or when the shape is unchanged). They stay.
func.func @swap(%x: tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  %0 = tensor.transpose %x {perm = [1, 0]} : tensor<3x2xf32>
  func.return %0
}
// -----
func.func @mixed(%x: tensor<1x4x1x8xf32>) -> (tensor<8x1x4x1xf32>) {
  %0 = tensor.transpose %x {perm = [3, 0, 1, 2]} : tensor<8x1x4x1xf32>
  func.return %0
}
// -----
// Same shape, different element order: [2,2] transposed is not the identity.
func.func @square(%x: tensor<2x2xf32>) -> (tensor<2x2xf32>) {
  %0 = tensor.transpose %x {perm = [1, 0]} : tensor<2x2xf32>
  func.return %0
}
// -----
// A head merge with S > 1 moves a non-unit dim: stays a transpose.
func.func @head_merge(%x: tensor<1x16x4x128xf32>) -> (tensor<1x4x16x128xf32>) {
  %0 = tensor.transpose %x {perm = [0, 2, 1, 3]} : tensor<1x4x16x128xf32>
  func.return %0
}
