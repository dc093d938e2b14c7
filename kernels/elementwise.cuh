// Per-element math shared by the CPU kernels and the CUDA kernels: one definition, so that the
// two backends compute the same function and the CPU tests exercise the device formulas.
#pragma once
#include "kernels/philox.cuh"  // HN_HD

namespace hn::kernels {

// Train-mode BN with gamma = 1, beta = 0 (their init values): mean and invstd come from FP64
// statistics, rounded to the activation type.
template <typename T>
HN_HD T bn_normalize(T x, T mean, T invstd) {
  return (x - mean) * invstd;
}

template <typename T>
HN_HD T relu(T x) {
  return x > T(0) ? x : T(0);
}

// ReLU code: pre-activation strictly positive.
template <typename T>
HN_HD bool relu_code(T x) {
  return x > T(0);
}

}  // namespace hn::kernels

namespace hn::kernels {

// Train-mode BN backward per element (gamma = 1): the batch-statistics terms mean(dy) and
// mean(dy * xhat) come from FP64 reductions, rounded to T; frozen statistics pass zeros.
template <typename T>
HN_HD T bn_backward(T dy, T xhat, T mean_dy, T mean_dy_xhat, T invstd) {
  return invstd * (dy - mean_dy - xhat * mean_dy_xhat);
}

}  // namespace hn::kernels
