// pipeline: builtin.module(func.func(mask-fill-const{strict}))
// expect: error
// With `strict`, a mask fill whose encodings do not give the guarantee (the where's
// encoding starts at -10, above min(x) - 20) fails, naming the op.
!m = !quant.uniform<u16:f32, scale = 1.5259022e-5, offset = 0>
!x = !quant.uniform<u16:f32, scale = 0.00010938882, offset = -33499>
!r = !quant.uniform<u16:f32, scale = 5.59151e-5, offset = -65535>
!c = !quant.uniform<u16:f32, scale = 0.00030518044, offset = -65535>
!f = !quant.uniform<u16:f32, scale = 0.00036109553, offset = -65535>
!w = !quant.uniform<u16:f32, scale = 0.0002, offset = -50000>
func.func @bound(%causal_mask: tensor<1x1x4x8x!m>, %x: tensor<1x2x4x8x!x>) -> (tensor<1x2x4x8x!m>) {
  %one = builtin.constant {value = [1.0]} : tensor<1x!m>
  %mask = nn.equal %causal_mask, %one : tensor<1x1x4x8xi1> loc("mask_equal")
  %rmin = nn.reduce_min %x {axes = [-1], keepdims = true} : tensor<1x2x4x1x!r> loc("attn.reduce_min")
  %off = builtin.constant {value = [-20.0]} : tensor<1x!c>
  %fill = nn.add %rmin, %off : tensor<1x2x4x1x!f> loc("attn.mask_fill")
  %w = nn.where %mask, %x, %fill : tensor<1x2x4x8x!w> loc("attn.mask_where")
  %p = nn.softmax %w {axis = -1} : tensor<1x2x4x8x!m> loc("attn.softmax")
  func.return %p
}
