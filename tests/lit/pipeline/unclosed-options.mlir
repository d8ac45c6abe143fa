// pipeline: builtin.module(func.func(canonicalize{max-iterations=3
// expect: error
// An option list that is never closed.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
