// pipeline: builtin.module(func.func(canonicalize{max-iterations=-1}))
// expect: error
// A negative value for an unsigned option.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
