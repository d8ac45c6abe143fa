// pipeline: builtin.module(func.func(mask-fill-const))
// Left alone (the statistics say why): a float graph keeps the reduce_min form.
func.func @float(%mask: tensor<1x1x4x8xi1>, %x: tensor<1x2x4x8xf32>) -> (tensor<1x2x4x8xf32>) {
  %rmin = nn.reduce_min %x {axes = [-1], keepdims = true} : tensor<1x2x4x1xf32> loc("attn.reduce_min")
  %off = builtin.constant {value = [-20.0]} : tensor<1xf32>
  %fill = nn.add %rmin, %off : tensor<1x2x4x1xf32> loc("attn.mask_fill")
  %w = nn.where %mask, %x, %fill : tensor<1x2x4x8xf32> loc("attn.mask_where")
  %p = nn.softmax %w {axis = -1} : tensor<1x2x4x8xf32> loc("attn.softmax")
  func.return %p
}

// -----

// Left alone: the where's encoding starts at -10, above min(x) - 20 (>= -23.66): a
// constant there could come within 20 of a row's maximum (encodings not calibrated on
// this graph).
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

// -----

// Left alone: the where's result is also returned (masked positions are observable), the
// offset is positive, and the reduce_min reads another value than the where's scores.
!m = !quant.uniform<u16:f32, scale = 1.5259022e-5, offset = 0>
!x = !quant.uniform<u16:f32, scale = 0.00010938882, offset = -33499>
!r = !quant.uniform<u16:f32, scale = 5.59151e-5, offset = -65535>
!c = !quant.uniform<u16:f32, scale = 0.00030518044, offset = -65535>
!p = !quant.uniform<u16:f32, scale = 0.00030518044, offset = 0>
!f = !quant.uniform<u16:f32, scale = 0.00036109553, offset = -65535>
!w = !quant.uniform<u16:f32, scale = 0.00041456925, offset = -57082>
func.func @other(%causal_mask: tensor<1x1x4x8x!m>, %x: tensor<1x2x4x8x!x>, %y: tensor<1x2x4x8x!x>) -> (tensor<1x2x4x8x!m>, tensor<1x2x4x8x!w>, tensor<1x2x4x8x!m>, tensor<1x2x4x8x!m>) {
  %one = builtin.constant {value = [1.0]} : tensor<1x!m>
  %mask = nn.equal %causal_mask, %one : tensor<1x1x4x8xi1> loc("mask_equal")
  %rmin = nn.reduce_min %x {axes = [-1], keepdims = true} : tensor<1x2x4x1x!r> loc("a.reduce_min")
  %off = builtin.constant {value = [-20.0]} : tensor<1x!c>
  %fill = nn.add %rmin, %off : tensor<1x2x4x1x!f> loc("a.mask_fill")
  %w = nn.where %mask, %x, %fill : tensor<1x2x4x8x!w> loc("a.mask_where")
  %p = nn.softmax %w {axis = -1} : tensor<1x2x4x8x!m> loc("a.softmax")
  %pos = builtin.constant {value = [20.0]} : tensor<1x!p>
  %fill2 = nn.add %rmin, %pos : tensor<1x2x4x1x!f> loc("b.mask_fill")
  %w2 = nn.where %mask, %x, %fill2 : tensor<1x2x4x8x!w> loc("b.mask_where")
  %p2 = nn.softmax %w2 {axis = -1} : tensor<1x2x4x8x!m> loc("b.softmax")
  %w3 = nn.where %mask, %y, %fill : tensor<1x2x4x8x!w> loc("c.mask_where")
  %p3 = nn.softmax %w3 {axis = -1} : tensor<1x2x4x8x!m> loc("c.softmax")
  func.return %p, %w, %p2, %p3
}
