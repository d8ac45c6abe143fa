// Round trip of builtin.weight, builtin.constant (splat, full, integer-valued) and
// func.return with zero, one and several values.
func.func @consts() -> (tensor<2x2xf32>, tensor<2x2xf32>, tensor<3xi32>, tensor<64x32xbf16>) {
  %0 = builtin.constant {value = [1.0, 2.5, -3.0, 4.0e10]} : tensor<2x2xf32>
  %1 = builtin.constant {value = [0.5]} : tensor<2x2xf32>
  %2 = builtin.constant {value = [1, 2, 3]} : tensor<3xi32>
  %3 = builtin.weight {name = "model.layers.0.mlp.up_proj.weight"} : tensor<64x32xbf16>
  func.return %0, %1, %2, %3
}
// -----
// A function with no results and no arguments.
func.func @nothing() {
  func.return
}
// -----
// Single result given without parentheses in the signature.
func.func @single(%a: tensor<3xi8>) -> tensor<3xi8> {
  func.return %a
}
