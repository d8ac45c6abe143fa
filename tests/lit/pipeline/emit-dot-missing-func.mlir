// tool: mllm-opt --emit=dot --func=nope
// expect: error
// --func naming a function that does not exist is an error.
func.func @first(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  func.return %x
}
