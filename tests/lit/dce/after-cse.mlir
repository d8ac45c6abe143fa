// pipeline: builtin.module(func.func(cse,dce))
// cse leaves an op whose only user was merged away dead; dce then removes it.
func.func @f(%x: tensor<4xf32>) -> (tensor<4xf32>) {
  %0 = nn.sigmoid %x : tensor<4xf32>
  %1 = nn.mul %x, %0 : tensor<4xf32>
  %2 = nn.sigmoid %x : tensor<4xf32>
  %3 = nn.mul %x, %2 : tensor<4xf32>
  %4 = nn.add %1, %3 : tensor<4xf32>
  %5 = nn.silu %3 : tensor<4xf32>
  func.return %4
}
