// pipeline: builtin.module(quant-fix)
// The rotate_half concat of neg(x2) and x1 (a slice of %n's result): all three get one
// encoding covering the union of their ranges; it is set at the computing ops (neg and
// the norm that x1 slices), and the slices re-derive theirs. The sigmoid gets its fixed
// encoding 1/65536.
!a = !quant.uniform<u16:f32, scale = 0.0001, offset = -30000>
!b = !quant.uniform<u16:f32, scale = 0.0001, offset = -35000>
!c = !quant.uniform<u16:f32, scale = 0.0002, offset = -32768>
func.func @f(%x: tensor<1x4x!a>, %w: tensor<4x!a>) -> (tensor<1x4x!c>, tensor<1x4x!a>) {
  %n = nn.rms_norm %x, %w {epsilon = 1.0e-6} : tensor<1x4x!a> loc("norm")
  %x1 = tensor.slice %n {starts = [0, 0], ends = [1, 2]} : tensor<1x2x!a> loc("x1")
  %x2 = tensor.slice %n {starts = [0, 2], ends = [1, 4]} : tensor<1x2x!a> loc("x2")
  %ng = nn.neg %x2 : tensor<1x2x!b> loc("neg")
  %rot = tensor.concat %ng, %x1 {axis = 1} : tensor<1x4x!c> loc("rotate_half")
  %s = nn.sigmoid %x : tensor<1x4x!a> loc("sig")
  func.return %rot, %s
}
