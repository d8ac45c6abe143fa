// String escapes in loc names, attribute strings and symbol names: \" \\ \n \t,
// two-digit hex escapes (\01 and \7F), non-ASCII text; printing re-escapes them.
module @"mod \"quoted\"" {
  func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32> {name = "out\tput"}) {
    %0 = builtin.weight {name = "w\\x\n\01 \7F"} : tensor<2xf32>
    %1 = nn.add %a, %0 : tensor<2xf32> loc("héllo \"wörld\" ✓")
    func.return %1
  }
}
