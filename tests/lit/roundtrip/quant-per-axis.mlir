// Round trip of per-axis quantized types: small arrays print inline, arrays longer
// than 16 entries print as little-endian hex blobs (and hex input is accepted).
func.func @small(%w: tensor<2x3x!quant.per_axis<i8:f32, axis = 0, scales = [0.5, 0.25], offsets = [0, -1]>>) -> (tensor<2x3x!quant.per_axis<i8:f32, axis = 0, scales = [0.5, 0.25], offsets = [0, -1]>>) {
  func.return %w
}
// -----
func.func @large() -> (tensor<20x4x!quant.per_axis<i8:f16, axis = 0, scales = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.010, 0.011, 0.012, 0.013, 0.014, 0.015, 0.016, 0.017, 0.018, 0.019, 0.020], offsets = [0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -18, -19]>>) {
  %0 = builtin.weight {name = "w20"} : tensor<20x4x!quant.per_axis<i8:f16, axis = 0, scales = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.010, 0.011, 0.012, 0.013, 0.014, 0.015, 0.016, 0.017, 0.018, 0.019, 0.020], offsets = [0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -18, -19]>>
  func.return %0
}
// -----
// The same 17-channel encoding written as hex blobs (scales all 1.0, offsets all 0).
func.func @hex_input() -> (tensor<3x17x!quant.per_axis<u8:f32, axis = 1, scales = hex"0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f", offsets = hex"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000">>) {
  %0 = builtin.weight {name = "w17"} : tensor<3x17x!quant.per_axis<u8:f32, axis = 1, scales = hex"0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f", offsets = hex"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000">>
  func.return %0
}
