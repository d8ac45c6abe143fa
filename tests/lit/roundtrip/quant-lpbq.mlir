// Round trip of LPBQ (blockwise) encodings: a small one printed inline, one with 20
// block scales (> 16, printed as a hex blob) and one written in hex; LPBQ weights
// feeding nn.linear with a u16 activation.
!act = !quant.uniform<u16:f32, scale = 0.001, offset = -32768>
func.func @small(%x: tensor<1x8x!act>) -> (tensor<1x2x!act>) {
  %0 = builtin.weight {name = "w"} : tensor<2x8x!quant.lpbq<i4:f32, axis = 0, block = 4, bits = 4, channel_scales = [0.5, 0.125], block_scales = [1, 16, 3, 4]>>
  %1 = nn.linear %x, %0 : tensor<1x2x!act>
  func.return %1
}
// -----
func.func @large() -> (tensor<5x32x!quant.lpbq<i8:f32, axis = 0, block = 8, bits = 4, channel_scales = [0.01, 0.02, 0.03, 0.04, 0.05], block_scales = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 4]>>) {
  %0 = builtin.weight {name = "big"} : tensor<5x32x!quant.lpbq<i8:f32, axis = 0, block = 8, bits = 4, channel_scales = [0.01, 0.02, 0.03, 0.04, 0.05], block_scales = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 4]>>
  func.return %0
}
// -----
// Axis 1 (HWIO-style output channels last would be axis 3; here a [K, N] weight).
func.func @hex_input() -> (tensor<8x2x!quant.lpbq<i4:f32, axis = 1, block = 2, bits = 4, channel_scales = [1.0, 2.0], block_scales = hex"0102030405060708">>) {
  %0 = builtin.weight {name = "kn"} : tensor<8x2x!quant.lpbq<i4:f32, axis = 1, block = 2, bits = 4, channel_scales = [1.0, 2.0], block_scales = hex"0102030405060708">>
  func.return %0
}
