// pipeline: builtin.module(func.func(canonicalize,cse,dce))
// tool: mllm-opt --print-ir-after=canonicalize,dce --print-ir-before-all
// Before every pass, and after canonicalize and dce only (a comma-separated list).
func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = tensor.reshape %x {shape = [2]} : tensor<2xf32>
  %1 = nn.neg %0 : tensor<2xf32>
  func.return %1
}
