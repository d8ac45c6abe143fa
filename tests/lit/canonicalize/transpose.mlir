// pipeline: builtin.module(func.func(canonicalize))
// transpose-identity, transpose-transpose (composition, and composition to the
// identity which then folds away), transpose-as-reshape (only size-1 dims move).
func.func @identity(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = tensor.transpose %x {perm = [0, 1]} : tensor<2x3xf32>
  func.return %0
}
// -----
func.func @inverse(%x: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>) {
  %0 = tensor.transpose %x {perm = [2, 0, 1]} : tensor<4x2x3xf32>
  %1 = tensor.transpose %0 {perm = [1, 2, 0]} : tensor<2x3x4xf32>
  func.return %1
}
// -----
// [2,3,4] -perm [1,2,0]-> [3,4,2] -perm [2,1,0]-> [2,4,3]: one transpose with
// perm p1[p2[i]] = [0, 2, 1].
func.func @compose(%x: tensor<2x3x4xf32>) -> (tensor<2x4x3xf32>) {
  %0 = tensor.transpose %x {perm = [1, 2, 0]} : tensor<3x4x2xf32>
  %1 = tensor.transpose %0 {perm = [2, 1, 0]} : tensor<2x4x3xf32>
  func.return %1
}
// -----
// Moving only size-1 dimensions keeps the memory order: becomes a reshape.
func.func @unit_dims(%x: tensor<1x4x1x8xf32>) -> (tensor<4x1x8x1xf32>) {
  %0 = tensor.transpose %x {perm = [1, 0, 3, 2]} : tensor<4x1x8x1xf32>
  func.return %0
}
// -----
// The typical head split: [1, S, H, D] -> [1, H, S, D] with S = 1 is a reshape.
func.func @head_split(%x: tensor<1x1x16x128xf32>) -> (tensor<1x16x1x128xf32>) {
  %0 = tensor.transpose %x {perm = [0, 2, 1, 3]} : tensor<1x16x1x128xf32>
  func.return %0
}
