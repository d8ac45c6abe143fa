// tool: mllm-opt --emit=dot --func=second --no-split-input-file
// --emit=dot --func=NAME renders only the named function.
func.func @first(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %x
}
func.func @second(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  func.return %0
}
