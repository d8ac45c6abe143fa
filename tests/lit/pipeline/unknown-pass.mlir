// pipeline: builtin.module(func.func(csee))
// expect: error
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
