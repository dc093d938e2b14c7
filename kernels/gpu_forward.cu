// Forward kernels of the network plan on the GPU (FP32 activations, FP64 statistics).
// Work split: elementwise kernels are grid-stride loops over all elements; reductions use a fixed
// grid and fixed trees, so results do not depend on scheduling. Tested against the CPU twins in
// kernels/cpu_ops.cpp by tests/test_gpu.cpp (Gpu*).
#include "kernels/cuda_check.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/gpu_common.cuh"
#include "kernels/gpu_device_ops.cuh"
#include "kernels/gpu_kernels.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {
using detail::kThreads;
using detail::blocks_for;
using detail::block_sum;
constexpr int kReduceBlocks = 256;



__global__ void batchnorm_stats_kernel(const float* x, int batch, int c, int64_t hw, double eps,
                                       double* mean, double* invstd) {
  __shared__ double shared[kThreads];
  const int ch = blockIdx.x;
  detail::batchnorm_stats_channel(x, batch, c, hw, ch, eps, mean + ch, invstd + ch, shared);
}

__global__ void batchnorm_apply_kernel(const float* x, int64_t total, int c, int64_t hw,
                                       const double* mean, const double* scale, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>((i / hw) % c);
    y[i] = bn_normalize(x[i], static_cast<float>(mean[ch]), static_cast<float>(scale[ch]));
  }
}

__global__ void relu_kernel(const float* x, int64_t n, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = relu(x[i]);
}

__global__ void add_kernel(const float* a, const float* b, int64_t n, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

__global__ void fill_zero_kernel(float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = 0.0f;
}

// Same order of operations as the CPU twin (detail::avgpool3_at).
__global__ void avgpool3_kernel(const float* x, int planes, int h, int w, float* y) {
  const int64_t total = static_cast<int64_t>(planes) * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = detail::avgpool3_at(x, h, w, i);
}

__global__ void avgpool2_kernel(const float* x, int planes, int h, int w, float* y) {
  const int64_t total = static_cast<int64_t>(planes) * (h / 2) * (w / 2);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = detail::avgpool2_at(x, h, w, i);
}

__global__ void global_avgpool_kernel(const float* x, int planes, int64_t hw, float* y) {
  __shared__ double shared[kThreads];
  const float v = detail::plane_mean(x + blockIdx.x * hw, hw, shared);
  if (threadIdx.x == 0) y[blockIdx.x] = v;
}

__global__ void linear_kernel(const float* x, int batch, int in, int out, const float* w,
                              const float* b, float* y) {
  const int64_t total = static_cast<int64_t>(batch) * out;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = detail::linear_at(x, in, out, w, b, i);
}

// Two-pass std over a fixed partition: pass 1 partial sums -> mean, pass 2 squared deviations.
__global__ void partial_sum_kernel(const float* x, int64_t n, const double* mean, double* partial) {
  __shared__ double shared[kThreads];
  const double m = mean ? *mean : 0.0;
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n; i += int64_t(kReduceBlocks) * kThreads) {
    const double v = static_cast<double>(x[i]);
    s += mean ? (v - m) * (v - m) : v;
  }
  const double t = block_sum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = t;
}

__global__ void finish_mean_kernel(const double* partial, int64_t n, double* out) {
  __shared__ double shared[kThreads];
  const double t = block_sum(threadIdx.x < kReduceBlocks ? partial[threadIdx.x] : 0.0, shared);
  if (threadIdx.x == 0) *out = t / static_cast<double>(n);
}

__global__ void finish_std_kernel(const double* partial, int64_t n, double* out) {
  __shared__ double shared[kThreads];
  const double t = block_sum(threadIdx.x < kReduceBlocks ? partial[threadIdx.x] : 0.0, shared);
  if (threadIdx.x == 0) *out = n > 1 ? sqrt(t / static_cast<double>(n - 1)) : 0.0;
}

__global__ void divide_by_kernel(float* x, int64_t n, const double* divisor, int* flag) {
  const double d = *divisor;
  if (!(d > 0.0) || !isfinite(d)) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *flag = 1;
    return;
  }
  const float df = static_cast<float>(d);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = x[i] / df;
}

__global__ void sum_squared_diff_kernel(const float* a, const float* b, int64_t n, double* out) {
  __shared__ double shared[kThreads];
  const double t = detail::block_reduce(
      n,
      [&](int64_t i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        return d * d;
      },
      shared);
  if (threadIdx.x == 0) *out = t;
}

__global__ void abs_partial_kernel(const float* x, int64_t n, bool positive, double* partial) {
  __shared__ double shared[kThreads];
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n; i += int64_t(kReduceBlocks) * kThreads) {
    const double v = static_cast<double>(x[i]);
    s += positive ? (v > 0 ? v : 0.0) : fabs(v);
  }
  const double t = block_sum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = t;
}

__global__ void finish_sum_kernel(const double* partial, double* out) {
  __shared__ double shared[kThreads];
  const double t = block_sum(threadIdx.x < kReduceBlocks ? partial[threadIdx.x] : 0.0, shared);
  if (threadIdx.x == 0) *out = t;
}

}  // namespace

void launch_batchnorm_stats(const float* x, int batch, int c, int64_t hw, double eps, double* mean,
                            double* invstd, cudaStream_t s) {
  HN_NVTX_RANGE("batchnorm_stats");
  batchnorm_stats_kernel<<<c, kThreads, 0, s>>>(x, batch, c, hw, eps, mean, invstd);
  HN_CHECK_LAUNCH(s, "launch_batchnorm_stats");
}

void launch_batchnorm_apply(const float* x, int batch, int c, int64_t hw, const double* mean,
                            const double* scale, float* y, cudaStream_t s) {
  const int64_t n = static_cast<int64_t>(batch) * c * hw;
  batchnorm_apply_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, n, c, hw, mean, scale, y);
  HN_CHECK_LAUNCH(s, "launch_batchnorm_apply");
}

void launch_relu(const float* x, int64_t n, float* y, cudaStream_t s) {
  relu_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, n, y);
  HN_CHECK_LAUNCH(s, "launch_relu");
}

void launch_add(const float* a, const float* b, int64_t n, float* y, cudaStream_t s) {
  add_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, n, y);
  HN_CHECK_LAUNCH(s, "launch_add");
}

void launch_fill_zero(float* y, int64_t n, cudaStream_t s) {
  fill_zero_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, n);
  HN_CHECK_LAUNCH(s, "launch_fill_zero");
}

void launch_avgpool3(const float* x, int planes, int h, int w, float* y, cudaStream_t s) {
  avgpool3_kernel<<<blocks_for(int64_t(planes) * h * w), kThreads, 0, s>>>(x, planes, h, w, y);
  HN_CHECK_LAUNCH(s, "launch_avgpool3");
}

void launch_avgpool2(const float* x, int planes, int h, int w, float* y, cudaStream_t s) {
  avgpool2_kernel<<<blocks_for(int64_t(planes) * (h / 2) * (w / 2)), kThreads, 0, s>>>(x, planes, h, w, y);
  HN_CHECK_LAUNCH(s, "launch_avgpool2");
}

void launch_global_avgpool(const float* x, int planes, int64_t hw, float* y, cudaStream_t s) {
  global_avgpool_kernel<<<planes, kThreads, 0, s>>>(x, planes, hw, y);
  HN_CHECK_LAUNCH(s, "launch_global_avgpool");
}

void launch_linear(const float* x, int batch, int in, int out, const float* w, const float* b,
                   float* y, cudaStream_t s) {
  linear_kernel<<<blocks_for(int64_t(batch) * out), kThreads, 0, s>>>(x, batch, in, out, w, b, y);
  HN_CHECK_LAUNCH(s, "launch_linear");
}

void launch_tensor_std(const float* x, int64_t n, double* partial, double* out, cudaStream_t s) {
  HN_NVTX_RANGE("tensor_std");
  partial_sum_kernel<<<kReduceBlocks, kThreads, 0, s>>>(x, n, nullptr, partial);
  finish_mean_kernel<<<1, kThreads, 0, s>>>(partial, n, out);
  partial_sum_kernel<<<kReduceBlocks, kThreads, 0, s>>>(x, n, out, partial);
  finish_std_kernel<<<1, kThreads, 0, s>>>(partial, n, out);
  HN_CHECK_LAUNCH(s, "launch_tensor_std");
}

void launch_divide_by(float* x, int64_t n, const double* divisor, int* flag, cudaStream_t s) {
  divide_by_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, n, divisor, flag);
  HN_CHECK_LAUNCH(s, "launch_divide_by");
}

void launch_sum_squared_diff(const float* a, const float* b, int64_t n, double* out, cudaStream_t s) {
  sum_squared_diff_kernel<<<1, kThreads, 0, s>>>(a, b, n, out);
  HN_CHECK_LAUNCH(s, "launch_sum_squared_diff");
}

void launch_abs_sum(const float* x, int64_t n, bool positive_part, double* partial, double* out,
                    cudaStream_t s) {
  abs_partial_kernel<<<kReduceBlocks, kThreads, 0, s>>>(x, n, positive_part, partial);
  finish_sum_kernel<<<1, kThreads, 0, s>>>(partial, out);
  HN_CHECK_LAUNCH(s, "launch_abs_sum");
}

}  // namespace hn::kernels::gpu
