// expect: error
func.func @f(%a: tensor<2x3xf32>) -> (tensor<5xf32>) {
  %0 = tensor.reshape %a {shape = [5]} : tensor<5xf32>
  func.return %0
}
