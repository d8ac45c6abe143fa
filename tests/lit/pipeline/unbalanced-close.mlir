// pipeline: builtin.module(func.func(cse)))
// expect: error
// Unbalanced parentheses: an extra ')' (column of the stray ')').
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
