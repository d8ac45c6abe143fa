// pipeline: builtin.module(func.func(cse))
// Weights with the same name and type merge; same name with another type, or another
// name, do not. Identical constants merge; constants differing in value, in a
// negative zero, or in type do not.
func.func @w() -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf16>, tensor<4xf32>) {
  %0 = builtin.weight {name = "a"} : tensor<4xf32>
  %1 = builtin.weight {name = "a"} : tensor<4xf32>
  %2 = builtin.weight {name = "a"} : tensor<4xf16>
  %3 = builtin.weight {name = "b"} : tensor<4xf32>
  func.return %0, %1, %2, %3
}
// -----
func.func @c() -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf16>) {
  %0 = builtin.constant {value = [0.0]} : tensor<2xf32>
  %1 = builtin.constant {value = [0.0]} : tensor<2xf32>
  %2 = builtin.constant {value = [-0.0]} : tensor<2xf32>
  %3 = builtin.constant {value = [0.0, 0.0]} : tensor<2xf32>
  %4 = builtin.constant {value = [0.0]} : tensor<2xf16>
  func.return %0, %1, %2, %3, %4
}
