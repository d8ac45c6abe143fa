// pipeline: builtin.module(func.func(cleanup))
// expect: error
// A named pipeline (anchored on builtin.module) nested under func.func.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
