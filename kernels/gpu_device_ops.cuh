// Per-element and per-block bodies of the forward kernels, shared by the single-tensor kernels
// (gpu_forward.cu, gpu_hamming.cu) and the population executor's segmented kernels
// (gpu_population.cu), so that a member's values are computed by the same code either way.
// blockDim.x must be kThreads where a body reduces over the block.
#pragma once
#include <cstdint>

#include "kernels/elementwise.cuh"
#include "kernels/gpu_common.cuh"

namespace hn::kernels::gpu::detail {

// Train-mode BN statistics of channel `ch` over (batch, hw), FP64 two-pass; the whole block
// cooperates, thread 0 writes *mean and *invstd.
__device__ inline void batchnorm_stats_channel(const float* x, int batch, int c, int64_t hw, int ch, double eps,
                                               double* mean, double* invstd, double* shared) {
  const int64_t count = static_cast<int64_t>(batch) * hw;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) {
    const int64_t n = i / hw, p = i % hw;
    s += static_cast<double>(x[(n * c + ch) * hw + p]);
  }
  const double m = block_sum(s, shared) / static_cast<double>(count);
  double sq = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) {
    const int64_t n = i / hw, p = i % hw;
    const double d = static_cast<double>(x[(n * c + ch) * hw + p]) - m;
    sq += d * d;
  }
  const double var = block_sum(sq, shared) / static_cast<double>(count);
  if (threadIdx.x == 0) {
    *mean = m;
    *invstd = 1.0 / sqrt(var + eps);
  }
}

// Output i of a 3x3 average (stride 1, pad 1, divisor = cells inside) over planes of h x w: the
// column sums of the window's rows, then the columns (the CPU twin's order).
__device__ inline float avgpool3_at(const float* x, int h, int w, int64_t i) {
  const int ox = static_cast<int>(i % w), oy = static_cast<int>((i / w) % h);
  const float* src = x + (i / (int64_t(h) * w)) * h * w;
  const int y0 = max(oy - 1, 0), y1 = min(oy + 1, h - 1);
  const int x0 = max(ox - 1, 0), x1 = min(ox + 1, w - 1);
  float sum = 0.0f;
  for (int ix = x0; ix <= x1; ++ix) {
    float col = src[y0 * w + ix];
    for (int iy = y0 + 1; iy <= y1; ++iy) col += src[iy * w + ix];
    sum += col;
  }
  return sum / (static_cast<float>(y1 - y0 + 1) * static_cast<float>(x1 - x0 + 1));
}

// Output i of a 2x2 stride-2 average over planes of h x w.
__device__ inline float avgpool2_at(const float* x, int h, int w, int64_t i) {
  const int oh = h / 2, ow = w / 2;
  const int ox = static_cast<int>(i % ow), oy = static_cast<int>((i / ow) % oh);
  const float* s0 = x + (i / (int64_t(oh) * ow)) * h * w + (2 * oy) * w + 2 * ox;
  return (s0[0] + s0[1] + s0[w] + s0[w + 1]) / 4.0f;
}

// Output i = (n, o) of y = x W^T + b, FP64 accumulation.
__device__ inline float linear_at(const float* x, int in, int out, const float* w, const float* b, int64_t i) {
  const int n = static_cast<int>(i / out), o = static_cast<int>(i % out);
  double acc = static_cast<double>(b[o]);
  for (int k = 0; k < in; ++k)
    acc += static_cast<double>(w[int64_t(o) * in + k]) * static_cast<double>(x[int64_t(n) * in + k]);
  return static_cast<float>(acc);
}

// Mean over hw of one plane (FP64), the whole block cooperating; every thread gets it.
__device__ inline float plane_mean(const float* x, int64_t hw, double* shared) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < hw; i += kThreads) s += static_cast<double>(x[i]);
  return static_cast<float>(block_sum(s, shared) / static_cast<double>(hw));
}

// ReLU codes of x[0, total) as uint32 words (bit i % 32 of word i / 32 = x[i] > 0) by warp
// ballots, grid-stride over the calling grid's x dimension.
__device__ inline void pack_codes_loop(const float* x, int64_t total, uint32_t* codes) {
  const int64_t words = (total + 31) / 32;
  for (int64_t base = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) & ~int64_t(31); base < words * 32;
       base += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = base + (threadIdx.x & 31);
    const bool bit = i < total && relu_code(x[i]);
    const uint32_t word = __ballot_sync(0xffffffffu, bit);
    if ((threadIdx.x & 31) == 0) codes[base / 32] = word;
  }
}

// Row n of the Hamming kernels: for m >= n (warps of the block take m = n + warp, n + warp +
// warps, ...), k[n][m] += w1 * agree and k_once[n][m] += w2 * agree (and the mirror), agree =
// units - popcount(code_n ^ code_m). Exact integers.
__device__ inline void hamming_row(const uint32_t* codes, int batch, int64_t words, int64_t units, int n, int64_t w1,
                                   int64_t w2, int64_t* k, int64_t* k_once) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t* a = codes + static_cast<int64_t>(n) * words;
  for (int m = n + warp; m < batch; m += blockDim.x / 32) {
    const uint32_t* b = codes + static_cast<int64_t>(m) * words;
    int64_t diff = 0;
    for (int64_t i = lane; i < words; i += 32) diff += __popc(a[i] ^ b[i]);
    for (int off = 16; off > 0; off >>= 1) diff += __shfl_down_sync(0xffffffffu, diff, off);
    if (lane == 0) {
      const int64_t agree = units - diff;
      k[int64_t(n) * batch + m] += w1 * agree;
      k_once[int64_t(n) * batch + m] += w2 * agree;
      if (m != n) {
        k[int64_t(m) * batch + n] += w1 * agree;
        k_once[int64_t(m) * batch + n] += w2 * agree;
      }
    }
  }
}

// Fixed-order FP64 sum over one block of sum f(i) for i in [0, n): the partition and tree of the
// single-block reductions (ni's squared logit differences, entropy_seed's |x| sums).
template <typename F>
__device__ inline double block_reduce(int64_t n, F f, double* shared) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) s += f(i);
  return block_sum(s, shared);
}

// log det after a Cholesky (lower, column-major n x n) with the singularity rule of
// launch_logdet_finalize: out[0] = log det, out[1] = 1 when singular.
__device__ inline void logdet_finalize(const double* l, const int64_t* k, int n, int info, double* out) {
  double max_diag = 0.0;
  for (int i = 0; i < n; ++i) max_diag = fmax(max_diag, static_cast<double>(k[int64_t(i) * n + i]));
  bool singular = info != 0 || !(max_diag > 0.0);
  double sum = 0.0;
  for (int j = 0; j < n && !singular; ++j) {
    const double ljj = l[int64_t(j) * n + j];
    const double pivot2 = ljj * ljj;
    if (!(pivot2 > 1e-12 * max_diag) || !isfinite(pivot2)) singular = true;
    else sum += log(pivot2);
  }
  out[0] = sum;
  out[1] = singular ? 1.0 : 0.0;
}

}  // namespace hn::kernels::gpu::detail
