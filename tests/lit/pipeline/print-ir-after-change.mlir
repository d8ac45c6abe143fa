// pipeline: builtin.module(func.func(dce,cse,dce))
// tool: mllm-opt --print-ir-after-change
// --print-ir-after-change: only a pass that changed a function prints it. In @f only
// cse changes something (the merged neg is erased by cse itself, so the second dce
// has nothing to do); in @h only the first dce does; @g never changes and is never
// printed.
func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  %1 = nn.neg %x : tensor<2xf32>
  %2 = nn.add %0, %1 : tensor<2xf32>
  func.return %2
}
func.func @g(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  func.return %0
}
func.func @h(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.silu %x : tensor<2xf32>
  func.return %x
}
