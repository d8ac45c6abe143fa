// pipeline: builtin.module(func.func(cse),tosa.func(dce))
// expect: error
// Unknown anchor op in a nested pipeline.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
