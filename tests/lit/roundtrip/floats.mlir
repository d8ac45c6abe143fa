// Float printing: shortest round-trip form, exponents, negative zero, nan and
// infinities in float-list and float attributes.
func.func @floats() -> (tensor<8xf32>, tensor<1x2xf32>) {
  %0 = builtin.constant {value = [0.1, -0.0, 1.0e10, 1.0e-45, 123456789.125, nan, inf, -inf]} : tensor<8xf32>
  %1 = builtin.constant {value = [3.0e38, -1.5E-3]} : tensor<1x2xf32>
  func.return %0, %1
}
// -----
func.func @eps(%x: tensor<4xf32>, %g: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = nn.rms_norm %x, %g {epsilon = 9.999999974752427e-7} : tensor<4xf32>
  %1 = nn.rms_norm %x, %g {epsilon = 1e-5} : tensor<4xf32>
  func.return %0, %1
}
// -----
// A negative NaN is read as the canonical NaN (the printer has one spelling, nan).
func.func @nans() -> (tensor<2xf32>) {
  %0 = builtin.constant {value = [-nan, nan]} : tensor<2xf32>
  func.return %0
}
