// Backward kernels of the NTK proxies on the GPU (FP32 gradients, FP64 reductions). Rows of a
// backward batch map to forward images and cotangents as in kernels/cpu_backward.hpp (RowMap);
// every kernel accumulates (dx +=). The bodies are kernels/gpu_backward_ops.cuh's (shared with the
// population's segmented kernels). CPU twins: kernels/cpu_backward.cpp; tests: test_gpu.cpp.
#include "kernels/cuda_check.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/gpu_backward_ops.cuh"
#include "kernels/gpu_common.cuh"
#include "kernels/gpu_kernels.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {
using namespace detail;

#define HN_GRID_LOOP(i, total) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (total); i += int64_t(gridDim.x) * blockDim.x)

// One block per (cotangent, channel).
__global__ void batchnorm_backward_kernel(GpuRowMap map, const float* dy, const float* xhat, int c,
                                          int64_t hw, const double* invstd, bool frozen, float* dx,
                                          float* dgamma, int64_t dgamma_stride) {
  __shared__ double shared[kThreads];
  const int g = blockIdx.x / c, ch = blockIdx.x % c;
  batchnorm_backward_block(map, dy, xhat, c, hw, invstd, frozen, dx, true, dgamma + int64_t(g) * dgamma_stride + ch,
                           g, ch, shared);
}

__global__ void relu_backward_kernel(GpuRowMap map, const float* dy, const float* pre, int64_t numel, float* dx) {
  HN_GRID_LOOP(i, static_cast<int64_t>(map.rows) * numel) dx[i] += relu_backward_at(map, dy, pre, numel, i);
}

__global__ void accumulate_kernel(const float* dy, int64_t n, float* dx) {
  HN_GRID_LOOP(i, n) dx[i] += dy[i];
}

__global__ void avgpool3_backward_kernel(const float* dy, int planes, int h, int w, float* dx) {
  HN_GRID_LOOP(i, static_cast<int64_t>(planes) * h * w) dx[i] += avgpool3_backward_at(dy, h, w, i);
}

__global__ void avgpool2_backward_kernel(const float* dy, int planes, int h, int w, float* dx) {
  HN_GRID_LOOP(i, static_cast<int64_t>(planes) * h * w) dx[i] += avgpool2_backward_at(dy, h, w, i);
}

__global__ void global_avgpool_backward_kernel(const float* dy, int planes, int64_t hw, float* dx) {
  HN_GRID_LOOP(i, static_cast<int64_t>(planes) * hw) dx[i] += global_avgpool_backward_at(dy, hw, i);
}

__global__ void linear_backward_dx_kernel(GpuRowMap map, const float* dy, const float* w, int in,
                                          int out, float* dx) {
  HN_GRID_LOOP(i, static_cast<int64_t>(map.rows) * in) dx[i] += linear_backward_dx_at(dy, w, in, out, i);
}

__global__ void linear_backward_dw_kernel(GpuRowMap map, const float* dy, const float* x, int in,
                                          int out, float* dw, int64_t dw_stride) {
  const int64_t per_cot = int64_t(out) * in;
  HN_GRID_LOOP(i, static_cast<int64_t>(cotangents_of(map)) * per_cot)
    dw[(i / per_cot) * dw_stride + i % per_cot] = linear_backward_dw_at(map, dy, x, in, out, i);
}

__global__ void im2col_kernel(const float* x, int images, int cin, int h, int w, int k, int stride,
                              int pad, int oh, int ow, float* col) {
  HN_GRID_LOOP(i, static_cast<int64_t>(cin) * k * k * images * oh * ow)
    col[i] = im2col_at(x, images, cin, h, w, k, stride, pad, oh, ow, false, i);
}

__global__ void transpose_rows_kernel(const float* x, int groups, int n, int c, int64_t hw, float* y) {
  HN_GRID_LOOP(i, static_cast<int64_t>(groups) * n * c * hw) y[i] = transpose_rows_at(x, n, c, hw, i);
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
