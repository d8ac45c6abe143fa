// pipeline: builtin.module(func.func(canonicalize))
// concat-single and slice-whole fold to their input; a partial slice, a whole-range
// slice with a non-unit step (even on a size-1 dim where it selects everything),
// and a two-input concat stay.
func.func @fold(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %0 = tensor.concat %x {axis = 1} : tensor<2x3xf32>
  %1 = tensor.slice %x {starts = [0, 0], ends = [2, 3]} : tensor<2x3xf32>
  %2 = tensor.slice %x {starts = [0, 0], ends = [2, 3], steps = [1, 1]} : tensor<2x3xf32>
  func.return %0, %1, %2
}
// -----
func.func @keep(%x: tensor<2x3xf32>, %y: tensor<1x3xf32>) -> (tensor<1x3xf32>, tensor<2x2xf32>, tensor<1x3xf32>, tensor<3x3xf32>) {
  %0 = tensor.slice %x {starts = [1, 0], ends = [2, 3]} : tensor<1x3xf32>
  %1 = tensor.slice %x {starts = [0, 0], ends = [2, 3], steps = [1, 2]} : tensor<2x2xf32>
  %2 = tensor.slice %y {starts = [0, 0], ends = [1, 3], steps = [2, 1]} : tensor<1x3xf32>
  %3 = tensor.concat %x, %y {axis = 0} : tensor<3x3xf32>
  func.return %0, %1, %2, %3
}
