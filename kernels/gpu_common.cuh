// Pieces shared by the .cu files: grid sizing and the fixed-shape FP64 block reduction that
// keeps every reduction's order independent of scheduling.
#pragma once
#include <cstdint>

namespace hn::kernels::gpu::detail {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 16 ? (b < 1 ? 1 : b) : 65535 * 16);
}

// Sum of one double per thread (blockDim.x == kThreads) by a fixed tree; every thread gets it.
__device__ inline double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int step = kThreads / 2; step > 0; step >>= 1) {
    if (threadIdx.x < step) shared[threadIdx.x] += shared[threadIdx.x + step];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

}  // namespace hn::kernels::gpu::detail
