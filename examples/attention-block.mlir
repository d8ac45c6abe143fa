// A small attention-style block in the textual IR, used by the README's quick start:
//   mllm-opt examples/attention-block.mlir --pass-pipeline='builtin.module(cleanup)'
// It carries the redundancies canonicalize/cse/dce remove: a reshape chain, a double
// transpose, a duplicated projection and a dead op.
module attributes {weights = "none"} {
  func.func @model.0.s1(%hidden: tensor<1x1x64xf32>, %mask: tensor<1x1x1x8xf32>) -> (tensor<1x4x1x16xf32> {name = "q"}, tensor<1x4x1x16xf32> {name = "q_again"}) {
    %0 = builtin.weight {name = "model.layers.0.self_attn.q_proj.weight"} : tensor<64x64xf32>
    %1 = nn.linear %hidden, %0 : tensor<1x1x64xf32> loc("model.layers.0.self_attn.q_proj")
    %2 = nn.linear %hidden, %0 : tensor<1x1x64xf32> loc("model.layers.0.self_attn.q_proj")
    %3 = tensor.reshape %1 {shape = [1, 1, 4, 16]} : tensor<1x1x4x16xf32>
    %4 = tensor.transpose %3 {perm = [0, 2, 1, 3]} : tensor<1x4x1x16xf32>
    %5 = tensor.transpose %4 {perm = [0, 2, 1, 3]} : tensor<1x1x4x16xf32>
    %6 = tensor.transpose %5 {perm = [0, 2, 1, 3]} : tensor<1x4x1x16xf32>
    %7 = tensor.reshape %2 {shape = [64]} : tensor<64xf32>
    %8 = tensor.reshape %7 {shape = [1, 1, 4, 16]} : tensor<1x1x4x16xf32>
    %9 = tensor.transpose %8 {perm = [0, 2, 1, 3]} : tensor<1x4x1x16xf32>
    %10 = nn.softmax %mask : tensor<1x1x1x8xf32>
    func.return %6, %9
  }
}
