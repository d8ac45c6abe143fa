// tool: mllm-opt --emit=dot
// --emit=dot renders every function as a Graphviz digraph: arguments are ellipses,
// ops are boxes (with their loc name and weight name), edges carry the shape.
func.func @f(%x: tensor<1x4xf32>, %arg1: tensor<1x4xf32>) -> (tensor<1x2xf32>) {
  %w = builtin.weight {name = "proj.weight"} : tensor<2x4xf32>
  %0 = nn.add %x, %arg1 : tensor<1x4xf32> loc("residual \"add\"")
  %1 = nn.linear %0, %w : tensor<1x2xf32> loc("proj")
  func.return %1
}
// -----
// tool flags apply to all chunks; --func is exercised via the CLI tests.
func.func @"g\"quoted"() {
  func.return
}
