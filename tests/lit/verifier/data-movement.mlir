// expect: error
// Shape rules of reshape/slice/gather/repeat and the data-movement element-type rule.
func.func @f(%a: tensor<2x3xf32>) -> (tensor<6xf32>) {
  %0 = tensor.reshape %a {shape = [6, -1]} : tensor<6xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xf32>) -> (tensor<2x4xf32>) {
  %0 = tensor.slice %a {starts = [2, 0], ends = [5, 4]} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xf32>) -> (tensor<2x4xf32>) {
  %0 = tensor.slice %a {starts = [0, 0], ends = [2, 4], steps = [1, 0]} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xf32>) -> (tensor<2x4xf32>) {
  %0 = tensor.slice %a {starts = [0], ends = [2]} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xf32>) -> (tensor<1x4xf32>) {
  %0 = tensor.slice %a {starts = [3, 0], ends = [3, 4]} : tensor<1x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xf32>, %i: tensor<2xf32>) -> (tensor<2x4xf32>) {
  %0 = tensor.gather %a, %i {axis = 0} : tensor<2x4xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xf32>) -> (tensor<4x4xf32>) {
  %0 = tensor.repeat %a {axis = 0, times = 0} : tensor<4x4xf32>
  func.return %0
}
// -----
// Data-movement ops keep the element type: f32 -> f16 through a reshape.
func.func @f(%a: tensor<2x3xf32>) -> (tensor<6xf16>) {
  %0 = tensor.reshape %a {shape = [6]} : tensor<6xf16>
  func.return %0
}
// -----
// ... and the encoding: a transpose may not requantize.
func.func @f(%a: tensor<2x3x!quant.uniform<u16:f32, scale = 1.0, offset = 0>>) -> (tensor<3x2x!quant.uniform<u16:f32, scale = 2.0, offset = 0>>) {
  %0 = tensor.transpose %a {perm = [1, 0]} : tensor<3x2x!quant.uniform<u16:f32, scale = 2.0, offset = 0>>
  func.return %0
}
// -----
func.func @f(%a: tensor<4x4xi32>, %i: tensor<2xi32>) -> (tensor<2x4xf32>) {
  %0 = tensor.gather %a, %i {axis = 0} : tensor<2x4xf32>
  func.return %0
}
