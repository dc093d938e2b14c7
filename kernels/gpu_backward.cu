// Backward kernels of the NTK proxies on the GPU (FP32 gradients, FP64 reductions). Rows of a
// backward batch map to forward images and cotangents as in kernels/cpu_backward.hpp (RowMap);
// every kernel accumulates (dx +=). CPU twins: kernels/cpu_backward.cpp; tests: test_gpu.cpp.
#include "kernels/cuda_check.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/gpu_common.cuh"
#include "kernels/gpu_kernels.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {
using detail::kThreads;
using detail::blocks_for;
using detail::block_sum;


__device__ int image_of(const GpuRowMap& m, int r) { return m.diagonal ? r : r % m.batch; }


// One block per (cotangent, channel): FP64 sums of dy and dy * xhat over the cotangent's rows,
// then dx += bn_backward(...) for those rows.
__global__ void batchnorm_backward_kernel(GpuRowMap map, const float* dy, const float* xhat, int c,
                                          int64_t hw, const double* invstd, bool frozen, float* dx,
                                          float* dgamma, int64_t dgamma_stride) {
  __shared__ double shared[kThreads];
  const int g = blockIdx.x / c, ch = blockIdx.x % c;
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
    dx[off] += bn_backward(dy[off], xhat[(int64_t(image_of(map, r)) * c + ch) * hw + p], mdy, mdyx, is);
  }
  if (threadIdx.x == 0) dgamma[int64_t(g) * dgamma_stride + ch] = static_cast<float>(sdyx);
}

__global__ void relu_backward_kernel(GpuRowMap map, const float* dy, const float* pre, int64_t numel, float* dx) {
  const int64_t total = static_cast<int64_t>(map.rows) * numel;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / numel);
    const float p = pre[int64_t(image_of(map, r)) * numel + i % numel];
    dx[i] += relu_code(p) ? dy[i] : 0.0f;
  }
}

__global__ void accumulate_kernel(const float* dy, int64_t n, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] += dy[i];
}

// Gather form of the 3x3 pooling adjoint: input cell (iy, ix) receives the shares of the
// outputs whose windows cover it (no atomics).
__global__ void avgpool3_backward_kernel(const float* dy, int planes, int h, int w, float* dx) {
  const int64_t total = static_cast<int64_t>(planes) * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
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
    dx[i] += acc;
  }
}

__global__ void avgpool2_backward_kernel(const float* dy, int planes, int h, int w, float* dx) {
  const int64_t total = static_cast<int64_t>(planes) * h * w;
  const int ow = w / 2, oh = h / 2;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int ix = static_cast<int>(i % w), iy = static_cast<int>((i / w) % h);
    const int64_t p = i / (int64_t(h) * w);
    if (iy / 2 < oh && ix / 2 < ow) dx[i] += dy[(p * oh + iy / 2) * ow + ix / 2] / 4.0f;
  }
}

__global__ void global_avgpool_backward_kernel(const float* dy, int planes, int64_t hw, float* dx) {
  const int64_t total = static_cast<int64_t>(planes) * hw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] += static_cast<float>(static_cast<double>(dy[i / hw]) / static_cast<double>(hw));
}

__global__ void linear_backward_dx_kernel(GpuRowMap map, const float* dy, const float* w, int in,
                                          int out, float* dx) {
  const int64_t total = static_cast<int64_t>(map.rows) * in;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / in), k = static_cast<int>(i % in);
    double acc = 0.0;
    for (int o = 0; o < out; ++o) acc += static_cast<double>(w[int64_t(o) * in + k]) * dy[int64_t(r) * out + o];
    dx[i] += static_cast<float>(acc);
  }
}

__global__ void linear_backward_dw_kernel(GpuRowMap map, const float* dy, const float* x, int in,
                                          int out, float* dw, int64_t dw_stride) {
  const int cots = map.diagonal ? map.rows : map.rows / map.batch;
  const int per = map.diagonal ? 1 : map.batch;
  const int64_t total = static_cast<int64_t>(cots) * out * in;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int g = static_cast<int>(i / (int64_t(out) * in));
    const int o = static_cast<int>((i / in) % out), k = static_cast<int>(i % in);
    double acc = 0.0;
    for (int j = 0; j < per; ++j) {
      const int r = g * per + j;
      acc += static_cast<double>(dy[int64_t(r) * out + o]) * x[int64_t(image_of(map, r)) * in + k];
    }
    dw[int64_t(g) * dw_stride + int64_t(o) * in + k] = static_cast<float>(acc);
  }
}

__global__ void im2col_kernel(const float* x, int images, int cin, int h, int w, int k, int stride,
                              int pad, int oh, int ow, float* col) {
  const int64_t ohw = static_cast<int64_t>(oh) * ow;
  const int64_t total = static_cast<int64_t>(cin) * k * k * images * ohw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i % ohw;
    const int n = static_cast<int>((i / ohw) % images);
    const int64_t row = i / (ohw * images);  // (ci, ky, kx)
    const int kx = static_cast<int>(row % k), ky = static_cast<int>((row / k) % k), ci = static_cast<int>(row / (k * k));
    const int oy = static_cast<int>(p / ow), ox = static_cast<int>(p % ow);
    const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    col[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w)
                 ? x[((int64_t(n) * cin + ci) * h + iy) * w + ix]
                 : 0.0f;
  }
}

__global__ void transpose_rows_kernel(const float* x, int groups, int n, int c, int64_t hw, float* y) {
  const int64_t total = static_cast<int64_t>(groups) * n * c * hw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    // i indexes the output [g][c][n][hw].
    const int64_t p = i % hw;
    const int img = static_cast<int>((i / hw) % n);
    const int ch = static_cast<int>((i / (hw * n)) % c);
    const int g = static_cast<int>(i / (hw * n * c));
    y[i] = x[((int64_t(g) * n + img) * c + ch) * hw + p];
  }
}

__global__ void float_to_double_kernel(const float* x, int rows, int64_t cols, int64_t ld, double* y) {
  const int64_t total = static_cast<int64_t>(rows) * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<double>(x[(i / cols) * ld + i % cols]);
}

__global__ void ntk_seed_kernel(float* d, GpuRowMap map, int classes, int c0) {
  const int64_t total = static_cast<int64_t>(map.rows) * classes;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / classes);
    d[i] = (map.diagonal || r % map.batch == c0 + r / map.batch) ? 1.0f : 0.0f;
  }
}

}  // namespace

void launch_ntk_seed(float* dlogits, GpuRowMap map, int classes, int c0, cudaStream_t s) {
  ntk_seed_kernel<<<blocks_for(int64_t(map.rows) * classes), kThreads, 0, s>>>(dlogits, map, classes, c0);
  HN_CHECK_LAUNCH(s, "launch_ntk_seed");
}

void launch_batchnorm_backward(GpuRowMap map, const float* dy, const float* xhat, int c, int64_t hw,
                               const double* invstd, bool frozen, float* dx, float* dgamma,
                               int64_t dgamma_stride, cudaStream_t s) {
  HN_NVTX_RANGE("batchnorm_backward");
  const int cots = map.diagonal ? map.rows : map.rows / map.batch;
  batchnorm_backward_kernel<<<cots * c, kThreads, 0, s>>>(map, dy, xhat, c, hw, invstd, frozen, dx,
                                                          dgamma, dgamma_stride);
  HN_CHECK_LAUNCH(s, "launch_batchnorm_backward");
}

void launch_relu_backward(GpuRowMap map, const float* dy, const float* pre, int64_t numel, float* dx,
                          cudaStream_t s) {
  relu_backward_kernel<<<blocks_for(int64_t(map.rows) * numel), kThreads, 0, s>>>(map, dy, pre, numel, dx);
  HN_CHECK_LAUNCH(s, "launch_relu_backward");
}

void launch_accumulate(const float* dy, int64_t n, float* dx, cudaStream_t s) {
  accumulate_kernel<<<blocks_for(n), kThreads, 0, s>>>(dy, n, dx);
  HN_CHECK_LAUNCH(s, "launch_accumulate");
}

void launch_avgpool3_backward(const float* dy, int planes, int h, int w, float* dx, cudaStream_t s) {
  avgpool3_backward_kernel<<<blocks_for(int64_t(planes) * h * w), kThreads, 0, s>>>(dy, planes, h, w, dx);
  HN_CHECK_LAUNCH(s, "launch_avgpool3_backward");
}

void launch_avgpool2_backward(const float* dy, int planes, int h, int w, float* dx, cudaStream_t s) {
  avgpool2_backward_kernel<<<blocks_for(int64_t(planes) * h * w), kThreads, 0, s>>>(dy, planes, h, w, dx);
  HN_CHECK_LAUNCH(s, "launch_avgpool2_backward");
}

void launch_global_avgpool_backward(const float* dy, int planes, int64_t hw, float* dx, cudaStream_t s) {
  global_avgpool_backward_kernel<<<blocks_for(int64_t(planes) * hw), kThreads, 0, s>>>(dy, planes, hw, dx);
  HN_CHECK_LAUNCH(s, "launch_global_avgpool_backward");
}

void launch_linear_backward(GpuRowMap map, const float* dy, const float* x, const float* w, int in,
                            int out, float* dx, float* dw, int64_t dw_stride, cudaStream_t s) {
  linear_backward_dx_kernel<<<blocks_for(int64_t(map.rows) * in), kThreads, 0, s>>>(map, dy, w, in, out, dx);
  const int cots = map.diagonal ? map.rows : map.rows / map.batch;
  linear_backward_dw_kernel<<<blocks_for(int64_t(cots) * out * in), kThreads, 0, s>>>(map, dy, x, in, out, dw, dw_stride);
  HN_CHECK_LAUNCH(s, "launch_linear_backward");
}

void launch_im2col(const float* x, int images, int cin, int h, int w, int k, int stride, int pad,
                   float* col, cudaStream_t s) {
  HN_NVTX_RANGE("im2col");
  const int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  const int64_t total = int64_t(cin) * k * k * images * oh * ow;
  im2col_kernel<<<blocks_for(total), kThreads, 0, s>>>(x, images, cin, h, w, k, stride, pad, oh, ow, col);
  HN_CHECK_LAUNCH(s, "launch_im2col");
}

void launch_transpose_rows(const float* x, int groups, int n, int c, int64_t hw, float* y, cudaStream_t s) {
  transpose_rows_kernel<<<blocks_for(int64_t(groups) * n * c * hw), kThreads, 0, s>>>(x, groups, n, c, hw, y);
  HN_CHECK_LAUNCH(s, "launch_transpose_rows");
}

void launch_float_to_double(const float* x, int rows, int64_t cols, int64_t ld, double* y, cudaStream_t s) {
  float_to_double_kernel<<<blocks_for(int64_t(rows) * cols), kThreads, 0, s>>>(x, rows, cols, ld, y);
  HN_CHECK_LAUNCH(s, "launch_float_to_double");
}

}  // namespace hn::kernels::gpu
