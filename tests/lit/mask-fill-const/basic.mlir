// pipeline: builtin.module(func.func(mask-fill-const))
// The Qwen3 attention mask after calibration (encodings of the tiny model's layer 1):
// where(mask, x, reduce_min(x) - 20) -> softmax. The where's encoding starts at
// -57082 * 0.00041456925 = -23.66444, min(x)'s lowest possible value is
// -33499 * 0.00010938882 = -3.66440, so the new fill (code 0 of the where) is at or
// below min(x) - 20 for every x: the fill becomes that constant, shape [1, 1, 1, 1],
// and reduce_min / add / -20 are erased.
!m = !quant.uniform<u16:f32, scale = 1.5259022e-5, offset = 0>
!x = !quant.uniform<u16:f32, scale = 0.00010938882, offset = -33499>
!r = !quant.uniform<u16:f32, scale = 5.59151e-5, offset = -65535>
!c = !quant.uniform<u16:f32, scale = 0.00030518044, offset = -65535>
!f = !quant.uniform<u16:f32, scale = 0.00036109553, offset = -65535>
!w = !quant.uniform<u16:f32, scale = 0.00041456925, offset = -57082>
func.func @attn(%causal_mask: tensor<1x1x4x8x!m>, %x: tensor<1x2x4x8x!x>) -> (tensor<1x2x4x8x!m>) {
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

// The constant first (add is commutative), and the fill also used elsewhere: the where
// gets the constant, the add stays for its other use, and the where's second use (a
// softmax too) is fine.
!m = !quant.uniform<u16:f32, scale = 1.5259022e-5, offset = 0>
!x = !quant.uniform<u16:f32, scale = 0.00010938882, offset = -33499>
!r = !quant.uniform<u16:f32, scale = 5.59151e-5, offset = -65535>
!c = !quant.uniform<u16:f32, scale = 0.00030518044, offset = -65535>
!f = !quant.uniform<u16:f32, scale = 0.00036109553, offset = -65535>
!w = !quant.uniform<u16:f32, scale = 0.00041456925, offset = -57082>
func.func @swapped(%causal_mask: tensor<1x1x4x8x!m>, %x: tensor<1x2x4x8x!x>) -> (tensor<1x2x4x8x!m>, tensor<1x2x4x8x!m>, tensor<1x2x4x1x!f>) {
  %one = builtin.constant {value = [1.0]} : tensor<1x!m>
  %mask = nn.equal %causal_mask, %one : tensor<1x1x4x8xi1> loc("mask_equal")
  %rmin = nn.reduce_min %x {axes = [-1], keepdims = true} : tensor<1x2x4x1x!r> loc("attn.reduce_min")
  %off = builtin.constant {value = [-20.0]} : tensor<1x!c>
  %fill = nn.add %off, %rmin : tensor<1x2x4x1x!f> loc("attn.mask_fill")
  %w = nn.where %mask, %x, %fill : tensor<1x2x4x8x!w> loc("attn.mask_where")
  %p = nn.softmax %w {axis = -1} : tensor<1x2x4x8x!m> loc("attn.softmax")
  %p2 = nn.softmax %w {axis = -1} : tensor<1x2x4x8x!m> loc("attn.softmax2")
  func.return %p, %p2, %fill
}
