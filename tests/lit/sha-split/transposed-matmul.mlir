// pipeline: builtin.module(func.func(sha-split))
// slice-matmul with transposed operands: per head, the slice of a `transpose_a` lhs
// keeps its contraction rows and selects columns (M), the slice of a `transpose_b` rhs
// keeps its contraction columns and selects rows (N); the attributes stay on every
// per-head matmul. (The Qwen3 scores are `q x k^T` with the keys in row layout.)
func.func @f(%qt: tensor<1x4x8x2xf32>, %k: tensor<1x4x3x8xf32>, %v: tensor<1x4x3x8xf32>) -> (tensor<1x2x32xf32> {name = "out"}) {
  %s = nn.matmul %qt, %k {transpose_a = true, transpose_b = true} : tensor<1x4x2x3xf32> loc("qk_matmul")
  %p = nn.softmax %s {axis = -1} : tensor<1x4x2x3xf32> loc("softmax")
  %o = nn.matmul %p, %v : tensor<1x4x2x8xf32> loc("pv_matmul")
  %o1 = tensor.transpose %o {perm = [0, 2, 1, 3]} : tensor<1x2x4x8xf32>
  %o2 = tensor.reshape %o1 {shape = [1, 2, 32]} : tensor<1x2x32xf32>
  func.return %o2
}
