// expect: error
// Shape mismatches of nn.matmul (contraction, batch broadcast, rank, transposes)
// and nn.linear (K mismatch, weight rank, bias shape).
func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> (tensor<2x5xf32>) {
  %0 = nn.matmul %a, %b : tensor<2x5xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x4x3xf32>, %b: tensor<3x3x5xf32>) -> (tensor<2x4x5xf32>) {
  %0 = nn.matmul %a, %b : tensor<2x4x5xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<3xf32>, %b: tensor<3x5xf32>) -> (tensor<5xf32>) {
  %0 = nn.matmul %a, %b : tensor<5xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>, %b: tensor<5x3xf32>) -> (tensor<2x5xf32>) {
  %0 = nn.matmul %a, %b {transpose_a = true, transpose_b = true} : tensor<2x5xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8xf32>, %w: tensor<8x16xf32>) -> (tensor<1x16xf32>) {
  %0 = nn.linear %x, %w : tensor<1x16xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8xf32>, %w: tensor<1x16x8xf32>) -> (tensor<1x16xf32>) {
  %0 = nn.linear %x, %w : tensor<1x16xf32>
  func.return %0
}
// -----
func.func @f(%x: tensor<1x8xf32>, %w: tensor<16x8xf32>, %b: tensor<8xf32>) -> (tensor<1x16xf32>) {
  %0 = nn.linear %x, %w, %b : tensor<1x16xf32>
  func.return %0
}
// -----
func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x5xf32>) -> (tensor<2x6xf32>) {
  %0 = nn.matmul %a, %b : tensor<2x6xf32>
  func.return %0
}
