// pipeline: builtin.module(func.func(canonicalize{max-iteration=3}))
// expect: error
// An unknown option names the pass's options.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
