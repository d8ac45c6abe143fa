// Round trip of the nn.* compute ops: matmul (with transpose flags), linear (with and
// without bias), conv2d (defaults, stride/pad/dilation, bias), rms_norm, softmax,
// rope, activations, broadcasting binaries, equal/where, reduce_min, embedding, cast.
func.func @matmuls(%a: tensor<2x4x8xf32>, %b: tensor<8x16xf32>, %w: tensor<16x8xf32>, %bias: tensor<16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x8x8xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>) {
  %0 = nn.matmul %a, %b : tensor<2x4x16xf32>
  %1 = nn.matmul %a, %w {transpose_b = true} : tensor<2x4x16xf32>
  %2 = nn.matmul %a, %a {transpose_a = true, transpose_b = false} : tensor<2x8x8xf32>
  %3 = nn.linear %a, %w : tensor<2x4x16xf32>
  %4 = nn.linear %a, %w, %bias : tensor<2x4x16xf32>
  func.return %0, %1, %2, %3, %4
}
// -----
func.func @convs(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x4xf32>, %b: tensor<4xf32>) -> (tensor<1x6x6x4xf32>, tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) {
  %0 = nn.conv2d %x, %w : tensor<1x6x6x4xf32>
  %1 = nn.conv2d %x, %w, %b {stride = [2, 2], pad = [1, 1, 1, 1], group = 1} : tensor<1x4x4x4xf32>
  %2 = nn.conv2d %x, %w {dilation = [2, 2]} : tensor<1x4x4x4xf32>
  func.return %0, %1, %2
}
// -----
func.func @norms(%x: tensor<1x2x4x8xf32>, %g: tensor<8xf32>, %g4: tensor<4xf32>, %cos: tensor<4x8xf32>, %sin: tensor<1x1x4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
  %0 = nn.rms_norm %x, %g {epsilon = 1.0e-6} : tensor<1x2x4x8xf32>
  %1 = nn.rms_norm %x, %g4 {epsilon = 1, axis = 2} : tensor<1x2x4x8xf32>
  %2 = nn.softmax %x : tensor<1x2x4x8xf32>
  %3 = nn.softmax %x {axis = 1} : tensor<1x2x4x8xf32>
  %4 = nn.rope %x, %cos, %sin : tensor<1x2x4x8xf32>
  func.return %0, %1, %2, %3, %4
}
// -----
func.func @elementwise(%a: tensor<4x1xf32>, %b: tensor<1x8xf32>, %c: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xi1>, tensor<4x8xf32>) {
  %0 = nn.add %a, %b : tensor<4x8xf32>
  %1 = nn.sub %a, %c : tensor<4x8xf32>
  %2 = nn.mul %0, %1 : tensor<4x8xf32>
  %3 = nn.silu %2 : tensor<4x8xf32>
  %4 = nn.sigmoid %3 : tensor<4x8xf32>
  %5 = nn.neg %4 : tensor<4x8xf32>
  %6 = nn.equal %0, %c : tensor<4x8xi1>
  %7 = nn.where %6, %a, %b : tensor<4x8xf32>
  func.return %0, %1, %2, %3, %4, %5, %6, %7
}
// -----
func.func @misc(%x: tensor<2x4x8xf32>, %ids: tensor<1x3xi32>, %table: tensor<10x8xf32>) -> (tensor<2x1x8xf32>, tensor<4xf32>, tensor<1x3x8xf32>, tensor<1x3xf32>, tensor<2x4x8xf16>) {
  %0 = nn.reduce_min %x {axes = [1]} : tensor<2x1x8xf32>
  %1 = nn.reduce_min %x {axes = [0, -1], keepdims = false} : tensor<4xf32>
  %2 = nn.embedding %ids, %table : tensor<1x3x8xf32>
  %3 = nn.cast %ids : tensor<1x3xf32>
  %4 = nn.cast %x : tensor<2x4x8xf16>
  func.return %0, %1, %2, %3, %4
}
