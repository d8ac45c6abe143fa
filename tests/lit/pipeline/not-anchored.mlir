// pipeline: cse,dce
// expect: error
// A pipeline that is not anchored on an op suggests the anchored form.
func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %a
}
