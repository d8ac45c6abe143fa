// pipeline: builtin.module(func.func(canonicalize,cse))
// tool: mllm-opt --verify-each=false
// --verify-each=false still verifies the final module; output as with verification.
func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  %1 = nn.neg %x : tensor<2xf32>
  %2 = nn.add %0, %1 : tensor<2xf32>
  func.return %2
}
