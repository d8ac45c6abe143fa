// expect: error
// Type alias errors: use of an undefined alias, redefinition, an alias that is not a
// quantized type, a missing '=' and an alias defined after use.
func.func @f(%a: tensor<2x!nope>) {
  func.return
}
// -----
!a = !quant.uniform<u8:f32, scale = 1.0, offset = 0>
!a = !quant.uniform<u8:f32, scale = 2.0, offset = 0>
func.func @f(%a: tensor<2x!a>) {
  func.return
}
// -----
!a = f32
func.func @f(%a: tensor<2x!a>) {
  func.return
}
// -----
!a !quant.uniform<u8:f32, scale = 1.0, offset = 0>
// -----
func.func @f(%a: tensor<2x!late>) {
  func.return
}
!late = !quant.uniform<u8:f32, scale = 1.0, offset = 0>
