// pipeline: builtin.module(func.func(canonicalize{max-iterations=many}))
// expect: error
// A bad option value names the expected type.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
