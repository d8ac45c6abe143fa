// expect: error
// nn.conv2d shape checks: channel mismatch, rank, kernel larger than the padded
// input, bad stride/pad lengths and values, groups, bias shape, wrong result shape.
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x4x8xf32>) -> (tensor<1x6x6x8xf32>) {
  %0 = nn.conv2d %x, %w : tensor<1x6x6x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<8x8x3xf32>, %w: tensor<3x3x3x8xf32>) -> (tensor<6x6x8xf32>) {
  %0 = nn.conv2d %x, %w : tensor<6x6x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x2x2x3xf32>, %w: tensor<3x3x3x8xf32>) -> (tensor<1x1x1x8xf32>) {
  %0 = nn.conv2d %x, %w : tensor<1x1x1x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) -> (tensor<1x6x6x8xf32>) {
  %0 = nn.conv2d %x, %w {pad = [1, 1]} : tensor<1x6x6x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) -> (tensor<1x6x6x8xf32>) {
  %0 = nn.conv2d %x, %w {stride = [0, 1]} : tensor<1x6x6x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) -> (tensor<1x6x6x8xf32>) {
  %0 = nn.conv2d %x, %w {group = 3} : tensor<1x6x6x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>, %b: tensor<3xf32>) -> (tensor<1x6x6x8xf32>) {
  %0 = nn.conv2d %x, %w, %b : tensor<1x6x6x8xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) -> (tensor<1x8x8x8xf32>) {
  %0 = nn.conv2d %x, %w : tensor<1x8x8x8xf32>
  func.return %0
}
