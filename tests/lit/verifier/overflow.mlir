// expect: error
// Huge attribute values are rejected without arithmetic overflow: reshape to too
// many elements, slice steps near i64::MAX (valid: one element), conv2d dilation and
// padding near i64::MAX, repeat and concat results too large.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = tensor.reshape %a {shape = [4294967296, 4294967296, 4294967296]} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = tensor.slice %a {starts = [0], ends = [2], steps = [9223372036854775807]} : tensor<2xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<1x8x8x1xf32>, %w: tensor<3x3x1x1xf32>) -> (tensor<1x8x8x1xf32>) {
  %0 = nn.conv2d %a, %w {dilation = [9223372036854775807, 1]} : tensor<1x8x8x1xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<1x8x8x1xf32>, %w: tensor<3x3x1x1xf32>) -> (tensor<1x8x8x1xf32>) {
  %0 = nn.conv2d %a, %w {pad = [9223372036854775807, 9223372036854775807, 0, 0]} : tensor<1x8x8x1xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<3xf32>) -> (tensor<3xf32>) {
  %0 = tensor.repeat %a {axis = 0, times = 9223372036854775807} : tensor<3xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<4611686018427387904xi8>) -> (tensor<4611686018427387904xi8>) {
  %0 = tensor.concat %a, %a, %a {axis = 0} : tensor<4611686018427387904xi8>
  func.return %0
}
// -----
func.func @f(%a: tensor<4294967296x1xf32>, %b: tensor<1x4294967296xf32>) -> (tensor<4294967296x1xf32>) {
  %0 = nn.add %a, %b : tensor<4294967296x1xf32>
  func.return %0
}
