// pipeline: builtin.module(func.func(cse))
// tool: mllm-opt --print-ir-after-failure
// expect: error
// --print-ir-after-failure with an input that fails to verify: the module is
// rejected before any pass runs, so no pass failed and nothing is dumped; only the
// verifier diagnostic is printed. (A failing pass is tested in tests/instrumentation.rs.)
func.func @f(%x: tensor<2xf32>) -> (tensor<3xf32>) {
  %0 = nn.neg %x : tensor<3xf32>
  func.return %0
}
