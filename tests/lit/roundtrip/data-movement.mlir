// Round trip of every data-movement op (reshape, transpose, concat, slice with and
// without steps, gather, repeat), including negative axes and variadic concat.
func.func @data_movement(%x: tensor<2x3x4xf32>, %idx: tensor<5xi32>) -> (tensor<4x6xf32>, tensor<4x2x3xf32>, tensor<2x6x4xf32>, tensor<1x2x2xf32>, tensor<2x5x4xf32>, tensor<2x3x12xf32>) {
  %0 = tensor.reshape %x {shape = [4, 6]} : tensor<4x6xf32>
  %1 = tensor.transpose %x {perm = [2, 0, 1]} : tensor<4x2x3xf32>
  %2 = tensor.concat %x, %x {axis = 1} : tensor<2x6x4xf32>
  %3 = tensor.slice %x {starts = [1, 0, 0], ends = [2, 3, 4], steps = [1, 2, 3]} : tensor<1x2x2xf32>
  %4 = tensor.gather %x, %idx {axis = 1} : tensor<2x5x4xf32>
  %5 = tensor.repeat %x {times = 3, axis = -1} : tensor<2x3x12xf32>
  func.return %0, %1, %2, %3, %4, %5
}
// -----
// Three-way concat on a negative axis, slice without steps, gather with i64 2-D
// indices on axis 0.
func.func @more(%x: tensor<2x3xf16>, %y: tensor<2x1xf16>, %i: tensor<2x2xi64>) -> (tensor<2x7xf16>, tensor<1x2xf16>, tensor<2x2x3xf16>) {
  %0 = tensor.concat %x, %y, %x {axis = -1} : tensor<2x7xf16>
  %1 = tensor.slice %x {starts = [1, 1], ends = [2, 3]} : tensor<1x2xf16>
  %2 = tensor.gather %x, %i {axis = 0} : tensor<2x2x3xf16>
  func.return %0, %1, %2
}
