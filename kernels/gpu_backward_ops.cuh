// Per-element and per-block bodies of the NTK's backward kernels, shared by the single-tensor
// kernels (gpu_backward.cu) and the population's segmented ones (gpu_population_backward.cu), so
// that a member's gradients are computed by the same code either way. Rows map to forward images
// and cotangents as in kernels/cpu_backward.hpp (RowMap). Each body returns the value of element i
// of its output; the callers write it (first contribution) or add it.
#pragma once
#include <cstdint>

#include "kernels/elementwise.cuh"
#include "kernels/gpu_common.cuh"
#include "kernels/gpu_kernels.cuh"

namespace hn::kernels::gpu::detail {

__device__ inline int image_of(const GpuRowMap& m, int r) { return m.diagonal ? r : r % m.batch; }
__device__ inline int cotangents_of(const GpuRowMap& m) { return m.diagonal ? m.rows : m.rows / m.batch; }

// dy * (pre > 0) for element i of a rows x numel gradient.
__device__ inline float relu_backward_at(const GpuRowMap& map, const float* dy, const float* pre, int64_t numel,
                                         int64_t i) {
  const int r = static_cast<int>(i / numel);
  return relu_code(pre[int64_t(image_of(map, r)) * numel + i % numel]) ? dy[i] : 0.0f;
}

// Gather form of the 3x3 pooling adjoint: input cell i (of planes x h x w) receives the shares of
// the outputs whose windows cover it (no atomics).
__device__ inline float avgpool3_backward_at(const float* dy, int h, int w, int64_t i) {
  const int ix = static_cast<int>(i % w), iy = static_cast<int>((i / w) % h);
  const float* g = dy + (i / (int64_t(h) * w)) * h * w;
  float acc = 0.0f;
  for (int oy = max(iy - 1, 0); oy <= min(iy + 1, h - 1); ++oy) {
    const float rows = static_cast<float>(min(oy + 1, h - 1) - max(oy - 1, 0) + 1);
    for (int ox = max(ix - 1, 0); ox <= min(ix + 1, w - 1); ++ox) {
      const float cols = static_cast<float>(min(ox + 1, w - 1) - max(ox - 1, 0) + 1);
      acc += g[oy * w + ox] / (rows * cols);
    }
  }
  return acc;
}

__device__ inline float avgpool2_backward_at(const float* dy, int h, int w, int64_t i) {
  const int ow = w / 2, oh = h / 2;
  const int ix = static_cast<int>(i % w), iy = static_cast<int>((i / w) % h);
  const int64_t p = i / (int64_t(h) * w);
  return (iy / 2 < oh && ix / 2 < ow) ? dy[(p * oh + iy / 2) * ow + ix / 2] / 4.0f : 0.0f;
}

__device__ inline float global_avgpool_backward_at(const float* dy, int64_t hw, int64_t i) {
  return static_cast<float>(static_cast<double>(dy[i / hw]) / static_cast<double>(hw));
}

// W^T dy[r] at element i of rows x in (FP64 accumulation).
__device__ inline float linear_backward_dx_at(const float* dy, const float* w, int in, int out, int64_t i) {
  const int r = static_cast<int>(i / in), k = static_cast<int>(i % in);
  double acc = 0.0;
  for (int o = 0; o < out; ++o) acc += static_cast<double>(w[int64_t(o) * in + k]) * dy[int64_t(r) * out + o];
  return static_cast<float>(acc);
}

// Element i of cotangents x (out x in): sum over the cotangent's rows of dy[r][o] x[image(r)][k].
__device__ inline float linear_backward_dw_at(const GpuRowMap& map, const float* dy, const float* x, int in, int out,
                                              int64_t i) {
  const int per = map.diagonal ? 1 : map.batch;
  const int g = static_cast<int>(i / (int64_t(out) * in));
  const int o = static_cast<int>((i / in) % out), k = static_cast<int>(i % in);
  double acc = 0.0;
  for (int j = 0; j < per; ++j) {
    const int r = g * per + j;
    acc += static_cast<double>(dy[int64_t(r) * out + o]) * x[int64_t(image_of(map, r)) * in + k];
  }
  return static_cast<float>(acc);
}

// The block of (cotangent g, channel ch): FP64 sums of dy and dy * xhat over the cotangent's rows,
// then dx = / += bn_backward(...) for those rows, and *dgamma = sum dy * xhat. blockDim.x == kThreads.
__device__ inline void batchnorm_backward_block(const GpuRowMap& map, const float* dy, const float* xhat, int c,
                                                int64_t hw, const double* invstd, bool frozen, float* dx, bool add,
                                                float* dgamma, int g, int ch, double* shared) {
  const int per = map.diagonal ? 1 : map.batch;
  const int64_t count = static_cast<int64_t>(per) * hw;
  double sdy = 0.0, sdyx = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) {
    const int r = g * per + static_cast<int>(i / hw);
    const int64_t p = i % hw;
    const double a = dy[(int64_t(r) * c + ch) * hw + p];
    sdy += a;
    sdyx += a * static_cast<double>(xhat[(int64_t(image_of(map, r)) * c + ch) * hw + p]);
  }
  sdy = block_sum(sdy, shared);
  sdyx = block_sum(sdyx, shared);
  const double n_all = static_cast<double>(map.batch) * hw;
  const float mdy = frozen ? 0.0f : static_cast<float>(sdy / n_all);
  const float mdyx = frozen ? 0.0f : static_cast<float>(sdyx / n_all);
  const float is = static_cast<float>(invstd[ch]);
  for (int64_t i = threadIdx.x; i < count; i += kThreads) {
    const int r = g * per + static_cast<int>(i / hw);
    const int64_t p = i % hw;
    const int64_t off = (int64_t(r) * c + ch) * hw + p;
    const float v = bn_backward(dy[off], xhat[(int64_t(image_of(map, r)) * c + ch) * hw + p], mdy, mdyx, is);
    dx[off] = add ? dx[off] + v : v;
  }
  if (threadIdx.x == 0) *dgamma = static_cast<float>(sdyx);
}

// im2col element i: per_image layout [image][(ci, ky, kx)][p], else [(ci, ky, kx)][image][p].
__device__ inline float im2col_at(const float* x, int images, int cin, int h, int w, int k, int stride, int pad,
                                  int oh, int ow, bool per_image, int64_t i) {
  const int64_t ohw = static_cast<int64_t>(oh) * ow;
  const int64_t kdim = static_cast<int64_t>(cin) * k * k;
  const int64_t p = i % ohw;
  int n;
  int64_t row;  // (ci, ky, kx)
  if (per_image) {
    row = (i / ohw) % kdim;
    n = static_cast<int>(i / (ohw * kdim));
  } else {
    n = static_cast<int>((i / ohw) % images);
    row = i / (ohw * images);
  }
  const int kx = static_cast<int>(row % k), ky = static_cast<int>((row / k) % k), ci = static_cast<int>(row / (k * k));
  const int oy = static_cast<int>(p / ow), ox = static_cast<int>(p % ow);
  const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
  return (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[((int64_t(n) * cin + ci) * h + iy) * w + ix] : 0.0f;
}

// Element i of y = [g][c][n][hw] from x = [g][n][c][hw].
__device__ inline float transpose_rows_at(const float* x, int n, int c, int64_t hw, int64_t i) {
  const int64_t p = i % hw;
  const int img = static_cast<int>((i / hw) % n);
  const int ch = static_cast<int>((i / (hw * n)) % c);
  const int64_t g = i / (hw * n * c);
  return x[((g * n + img) * c + ch) * hw + p];
}

}  // namespace hn::kernels::gpu::detail
