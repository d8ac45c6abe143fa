// pipeline: builtin.module(func.func(canonicalize,cse,dce))
// tool: mllm-opt --print-ir-after-change
// The worked example of docs/writing-a-pass.md: the `cleanup` passes on a small
// quantized function. canonicalize folds the reshape round trip (rule
// `reshape-reshape`, then `reshape-identity`: same type, encoding included) and the
// requantize to the value's own encoding (`requantize-identity`); the e-graph puts
// the two identical transposes in one e-class, and the driver's own cse/dce after
// extraction erase the duplicate and the dead nn.neg. So the standalone cse and dce
// that follow change nothing and --print-ir-after-change prints only canonicalize.
!a = !quant.uniform<u16:f32, scale = 0.001, offset = -32768>
func.func @f(%x: tensor<1x4x8x!a>) -> (tensor<1x8x4x!a>, tensor<1x8x4x!a>) {
  %0 = tensor.reshape %x {shape = [32]} : tensor<32x!a>
  %1 = tensor.reshape %0 {shape = [1, 4, 8]} : tensor<1x4x8x!a>
  %2 = quant.requantize %1 : tensor<1x4x8x!a>
  %3 = tensor.transpose %2 {perm = [0, 2, 1]} : tensor<1x8x4x!a>
  %4 = tensor.transpose %x {perm = [0, 2, 1]} : tensor<1x8x4x!a>
  %5 = nn.neg %x : tensor<1x4x8x!a>
  func.return %3, %4
}
// -----
// Must NOT change: a requantize to another encoding changes values (it is a real
// op on the NPU), and a reshape to another shape is not an identity.
!a = !quant.uniform<u16:f32, scale = 0.001, offset = -32768>
!b = !quant.uniform<u16:f32, scale = 0.002, offset = -32768>
func.func @keep(%x: tensor<1x4x8x!a>) -> (tensor<32x!b>) {
  %0 = quant.requantize %x : tensor<1x4x8x!b>
  %1 = tensor.reshape %0 {shape = [32]} : tensor<32x!b>
  func.return %1
}
