// Value and symbol names: named arguments keep their names, quoted names are
// accepted, %argN names are positional (renumbered by position), result names and
// loc(...) op names are kept, op results are renumbered %0, %1, ... per function.
func.func @model.0.s1(%sequence: tensor<1x1xi32>, %"position ids": tensor<1x1xi32>, %arg7: tensor<1x1xf32>, %x.y_z: tensor<1x1xf32>) -> (tensor<1x1xf32> {name = "logits"}, tensor<1x1xf32>, tensor<1x1xi32> {name = "next position"}) {
  %sum = nn.add %arg7, %x.y_z : tensor<1x1xf32> loc("model.layers.0.self_attn.q_proj")
  %a.b = nn.mul %sum, %sum : tensor<1x1xf32> loc("")
  %999 = nn.neg %a.b : tensor<1x1xf32>
  func.return %999, %sum, %"position ids"
}
// -----
// Symbol names that are not bare identifiers are quoted.
func.func @"graph with spaces"(%arg0: tensor<2xf32>, %arg1: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.add %arg0, %arg1 : tensor<2xf32>
  func.return %0
}
