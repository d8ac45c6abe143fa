// pipeline: builtin.module(func.func(canonicalize{max-iterations=1}))
// max-iterations=1 bounds the e-graph iterations: the first iteration composes the
// transpose pair into an identity transpose, but removing that new node needs a
// second iteration, so the (cheaper than the pair) identity transpose stays.
func.func @f(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = tensor.transpose %x {perm = [1, 0]} : tensor<3x2xf32>
  %1 = tensor.transpose %0 {perm = [1, 0]} : tensor<2x3xf32>
  func.return %1
}
