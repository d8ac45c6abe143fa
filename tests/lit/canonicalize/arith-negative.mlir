// pipeline: builtin.module(func.func(canonicalize))
// Neutral-element rules that must NOT fire: 0 - x; a non-splat constant; a splat
// that is not neutral; a broadcast that changes the shape (x: [3] times ones
// [2x3]). A constant of another float type is invalid IR, so the type-mismatch case
// is quantized (second chunk): the result encoding differs from x's.
func.func @keep(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<2x3xf32>) {
  %zero = builtin.constant {value = [0.0]} : tensor<3xf32>
  %ones = builtin.constant {value = [1.0, 1.0, 2.0]} : tensor<3xf32>
  %two = builtin.constant {value = [2.0]} : tensor<1xf32>
  %wide = builtin.constant {value = [1.0]} : tensor<2x3xf32>
  %0 = nn.sub %zero, %x : tensor<3xf32>
  %1 = nn.mul %x, %ones : tensor<3xf32>
  %2 = nn.mul %x, %two : tensor<3xf32>
  %3 = nn.add %x, %two : tensor<3xf32>
  %4 = nn.mul %x, %wide : tensor<2x3xf32>
  func.return %0, %1, %2, %3, %4
}
// -----
!a = !quant.uniform<u16:f32, scale = 0.5, offset = 0>
!b = !quant.uniform<u16:f32, scale = 0.25, offset = 0>
func.func @encoding(%x: tensor<4x!a>) -> (tensor<4x!b>, tensor<4x!a>) {
  %one = builtin.constant {value = [1.0]} : tensor<1x!a>
  %0 = nn.mul %x, %one : tensor<4x!b>
  %1 = nn.mul %x, %one : tensor<4x!a>
  func.return %0, %1
}
