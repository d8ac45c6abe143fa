// Several functions in one module (each numbered from %0), the builtin.module
// spelling, and an implicit module (functions without a module wrapper).
builtin.module {
  func.func @a(%x: tensor<2xf32>) -> (tensor<2xf32>) {
    %0 = nn.neg %x : tensor<2xf32>
    func.return %0
  }
  func.func @b(%x: tensor<2xf32>) -> (tensor<2xf32>) {
    %0 = nn.silu %x : tensor<2xf32>
    %1 = nn.sigmoid %0 : tensor<2xf32>
    func.return %1
  }
  func.func @c() {
    func.return
  }
}
// -----
func.func @first(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %x
}
func.func @second(%x: tensor<4xi32>) -> (tensor<4xi32>) {
  func.return %x
}
