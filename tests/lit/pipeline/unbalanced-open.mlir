// pipeline: builtin.module(func.func(cse,dce)
// expect: error
// Unbalanced parentheses: '(' never closed (column of the opening anchor).
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
