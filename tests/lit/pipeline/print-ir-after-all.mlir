// pipeline: builtin.module(func.func(cse,dce))
// tool: mllm-opt --print-ir-after-all
// --print-ir-after-all dumps each function after every pass (to stderr), changed or not.
func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  %1 = nn.neg %x : tensor<2xf32>
  %2 = nn.add %0, %1 : tensor<2xf32>
  func.return %2
}
func.func @g(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %x
}
