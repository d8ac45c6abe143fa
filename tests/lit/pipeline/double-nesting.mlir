// pipeline: builtin.module(func.func(func.func(cse)))
// expect: error
// func.func cannot be nested under func.func.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
