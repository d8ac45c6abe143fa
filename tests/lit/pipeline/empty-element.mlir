// pipeline: builtin.module(func.func(cse,,dce))
// expect: error
// An empty element between commas.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
