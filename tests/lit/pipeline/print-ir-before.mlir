// pipeline: builtin.module(func.func(canonicalize,cse,dce))
// tool: mllm-opt --print-ir-before=cse
// --print-ir-before=cse dumps each function right before cse only: after
// canonicalize folded the identity reshape (its e-graph also merged the two negs).
func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = tensor.reshape %x {shape = [2]} : tensor<2xf32>
  %1 = nn.neg %0 : tensor<2xf32>
  %2 = nn.neg %x : tensor<2xf32>
  %3 = nn.add %1, %2 : tensor<2xf32>
  func.return %3
}
