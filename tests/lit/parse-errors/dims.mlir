// expect: error
// Bad dimensions: zero, dynamic '?', negative, missing 'x', out of range.
func.func @f(%a: tensor<0x2xf32>) {
  func.return
}
// -----
func.func @f(%a: tensor<2x?xf32>) {
  func.return
}
// -----
func.func @f(%a: tensor<-1xf32>) {
  func.return
}
// -----
func.func @f(%a: tensor<2 3xf32>) {
  func.return
}
// -----
func.func @f(%a: tensor<99999999999999999999999xf32>) {
  func.return
}
// -----
func.func @f(%a: tensor<2xf32) {
  func.return
}
// -----
// More elements than an i64 can count.
func.func @f(%a: tensor<4294967296x4294967296x4294967296xf32>) {
  func.return
}
