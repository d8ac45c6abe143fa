// expect: error
// tensor.concat (mismatch outside the axis, rank mismatch, axis out of range) and
// numpy broadcasting failures of the elementwise ops (add, where, rope), a result
// shape that ignores broadcasting (mul), a non-i1 where condition, and rope's even
// last dimension.
func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x3xf32>) -> (tensor<2x6xf32>) {
  %0 = tensor.concat %a, %b {axis = 1} : tensor<2x6xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>, %b: tensor<2x3x1xf32>) -> (tensor<4x3xf32>) {
  %0 = tensor.concat %a, %b {axis = 0} : tensor<4x3xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>) -> (tensor<2x6xf32>) {
  %0 = tensor.concat %a, %a {axis = 2} : tensor<2x6xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) -> (tensor<4x3xf32>) {
  %0 = nn.add %a, %b : tensor<4x3xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x1xf32>, %b: tensor<3xf32>) -> (tensor<2x1xf32>) {
  %0 = nn.mul %a, %b : tensor<2x1xf32>
  func.return %0
}
// -----
func.func @f(%c: tensor<5xi1>, %a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>) {
  %0 = nn.where %c, %a, %b : tensor<4xf32>
  func.return %0
}
// -----
func.func @f(%c: tensor<4xf32>, %a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>) {
  %0 = nn.where %c, %a, %b : tensor<4xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x4x8xf32>, %cos: tensor<4x16xf32>) -> (tensor<1x4x8xf32>) {
  %0 = nn.rope %x, %cos, %cos : tensor<1x4x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x4x7xf32>, %cos: tensor<4x7xf32>) -> (tensor<1x4x7xf32>) {
  %0 = nn.rope %x, %cos, %cos : tensor<1x4x7xf32>
  func.return %0
}
