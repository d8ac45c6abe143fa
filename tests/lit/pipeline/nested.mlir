// pipeline: builtin.module(func.func(canonicalize{max-iterations=5}),func.func(cse,dce))
// Nested pipelines run in order on every function: canonicalize folds the reshape
// pair and the neutral mul (and, being e-graph based, already merges the duplicate
// negs and drops the dead silu); cse and dce then find nothing left to do.
func.func @a(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %one = builtin.constant {value = [1.0]} : tensor<1xf32>
  %0 = tensor.reshape %x {shape = [6]} : tensor<6xf32>
  %1 = tensor.reshape %0 {shape = [2, 3]} : tensor<2x3xf32>
  %2 = nn.mul %1, %one : tensor<2x3xf32>
  %3 = nn.neg %2 : tensor<2x3xf32>
  %4 = nn.neg %2 : tensor<2x3xf32>
  %5 = nn.silu %4 : tensor<2x3xf32>
  %6 = nn.add %3, %4 : tensor<2x3xf32>
  func.return %6
}
func.func @b(%x: tensor<4xf32>) -> (tensor<4xf32>) {
  %0 = nn.sigmoid %x : tensor<4xf32>
  %1 = nn.sigmoid %x : tensor<4xf32>
  %2 = nn.mul %0, %1 : tensor<4xf32>
  func.return %2
}
