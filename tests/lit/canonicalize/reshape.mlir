// pipeline: builtin.module(func.func(canonicalize))
// reshape-identity and reshape-reshape: a chain of reshapes collapses to one reshape
// of the original input (or to the input itself when the shapes match); a reshape
// with other users stays alive for them.
func.func @chain(%x: tensor<2x3x4xf32>) -> (tensor<6x4xf32>, tensor<2x3x4xf32>) {
  %0 = tensor.reshape %x {shape = [24]} : tensor<24xf32>
  %1 = tensor.reshape %0 {shape = [4, 6]} : tensor<4x6xf32>
  %2 = tensor.reshape %1 {shape = [6, 4]} : tensor<6x4xf32>
  %3 = tensor.reshape %2 {shape = [2, 3, 4]} : tensor<2x3x4xf32>
  func.return %2, %3
}
// -----
func.func @identity(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = tensor.reshape %x {shape = [2, 3]} : tensor<2x3xf32>
  %1 = nn.silu %0 : tensor<2x3xf32>
  func.return %1
}
// -----
func.func @shared(%x: tensor<2x3xf32>) -> (tensor<6xf32>, tensor<3x2xf32>) {
  %0 = tensor.reshape %x {shape = [6]} : tensor<6xf32>
  %1 = tensor.reshape %0 {shape = [3, 2]} : tensor<3x2xf32>
  func.return %0, %1
}
// -----
// Quantized: the encoding travels with the element type through the chain.
func.func @quant(%x: tensor<2x2x!quant.uniform<u16:f32, scale = 0.5, offset = 0>>) -> (tensor<4x!quant.uniform<u16:f32, scale = 0.5, offset = 0>>) {
  %0 = tensor.reshape %x {shape = [1, 4]} : tensor<1x4x!quant.uniform<u16:f32, scale = 0.5, offset = 0>>
  %1 = tensor.reshape %0 {shape = [4]} : tensor<4x!quant.uniform<u16:f32, scale = 0.5, offset = 0>>
  func.return %1
}
