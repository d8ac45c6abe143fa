// pipeline: builtin.module(cse)
// expect: error
// A function pass directly under builtin.module: suggests nesting under func.func.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
