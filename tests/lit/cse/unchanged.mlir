// pipeline: builtin.module(func.func(cse))
// tool: mllm-opt --print-ir-after-change
// Nothing to merge: commuted operands are different expressions (no commutativity),
// so the output equals the input and cse reports no change (--print-ir-after-change
// prints nothing).
func.func @f(%x: tensor<2xf32>, %y: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.add %x, %y : tensor<2xf32>
  %1 = nn.add %y, %x : tensor<2xf32>
  %2 = nn.mul %0, %1 : tensor<2xf32>
  func.return %2
}
