// pipeline: builtin.module(func.func(cse{aggressive}))
// expect: error
// An option on a pass that takes none.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
