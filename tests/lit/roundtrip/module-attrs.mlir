// Module, function and op attributes of every kind (bool, int, float, string, int
// list, float list, empty float list, type), quoted keys, and dialect-prefixed
// discardable op attributes (accepted by the verifier on any op).
module @qwen3 attributes {weights = "model.safetensors", version = 2, ratio = 0.5, big = -9223372036854775808, flag = true, off = false, dims = [1, -2, 3], fs = [1.5, 2.0], none = array<f64>[], ty = tensor<2x!quant.uniform<u16:f32, scale = 1.0, offset = 0>>, "quoted key" = "v"} {
  func.func @f(%a: tensor<2xf32>) -> (tensor<2xf32>) attributes {qnn.graph = "g0", seq = 32} {
    %0 = nn.silu %a {qnn.note = "keep", mllm.priority = 3} : tensor<2xf32>
    func.return %0
  }
}
