// pipeline: builtin.module(quant-fix)
// expect: error
// A graph input's encoding cannot change: a concat of a KV input with a value of a
// different storage type fails, naming the op.
!k = !quant.uniform<u8:f32, scale = 0.02, offset = -128>
!a = !quant.uniform<u16:f32, scale = 0.0001, offset = -32768>
func.func @g(%past: tensor<1x2x!k>, %new: tensor<1x2x!a>) -> (tensor<1x4x!k>) {
  %c = tensor.concat %past, %new {axis = 1} : tensor<1x4x!k> loc("k_concat")
  func.return %c
}
