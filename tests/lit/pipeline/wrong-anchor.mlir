// pipeline: func.func(cse)
// expect: error
// The top-level anchor must be builtin.module.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
