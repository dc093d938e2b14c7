// Segmented backward kernels of the NTK on the population schedule (engine/cuda_ntk.cpp): one
// launch runs a grouped backward step for every member of the group, segment j being member j's
// gradient tensors (map.rows rows each). Bodies are the single-tensor backward kernels'
// (kernels/gpu_backward_ops.cuh), so a member's gradients do not depend on the group. `add`
// selects dx += (a later contribution) or dx = (the first: no zeroing of fresh buffers).
#include "kernels/cuda_check.hpp"
#include "kernels/gpu_backward_ops.cuh"
#include "kernels/gpu_population.cuh"
#include "kernels/gpu_segments.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {
using namespace detail;

__device__ inline void put(float* dx, int64_t i, float v, bool add) { dx[i] = add ? dx[i] + v : v; }

// a = dy, b = pre, c = dx
__global__ void seg_relu_backward_kernel(Table t, GpuRowMap map, int64_t numel, bool add) {
  const float* dy = static_cast<const float*>(t.a[blockIdx.y]);
  const float* pre = static_cast<const float*>(t.b[blockIdx.y]);
  float* dx = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(map.rows) * numel) put(dx, i, relu_backward_at(map, dy, pre, numel, i), add);
}

// a = dy, c = dx
__global__ void seg_accumulate_kernel(Table t, int64_t per, bool add) {
  const float* dy = static_cast<const float*>(t.a[blockIdx.y]);
  float* dx = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, per) put(dx, i, dy[i], add);
}

__global__ void seg_avgpool_backward_kernel(Table t, int window, int planes, int h, int w, bool add) {
  const float* dy = static_cast<const float*>(t.a[blockIdx.y]);
  float* dx = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(planes) * h * w)
    put(dx, i, window == 3 ? avgpool3_backward_at(dy, h, w, i) : avgpool2_backward_at(dy, h, w, i), add);
}

__global__ void seg_global_avgpool_backward_kernel(Table t, int planes, int64_t hw, bool add) {
  const float* dy = static_cast<const float*>(t.a[blockIdx.y]);
  float* dx = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(planes) * hw) put(dx, i, global_avgpool_backward_at(dy, hw, i), add);
}

// a = dy, b = x, c = dx (may be null: no data gradient), d = dw (cotangents x out x in)
__global__ void seg_linear_backward_kernel(Table t, GpuRowMap map, int in, int out, const float* w, bool add) {
  const float* dy = static_cast<const float*>(t.a[blockIdx.y]);
  const float* x = static_cast<const float*>(t.b[blockIdx.y]);
  float* dx = static_cast<float*>(t.c[blockIdx.y]);
  float* dw = static_cast<float*>(t.d[blockIdx.y]);
  const int64_t ndx = static_cast<int64_t>(map.rows) * in;
  const int64_t ndw = static_cast<int64_t>(cotangents_of(map)) * out * in;
  HN_SEG_LOOP(i, ndx + ndw) {
    if (i < ndx) {
      if (dx) put(dx, i, linear_backward_dx_at(dy, w, in, out, i), add);
    } else {
      dw[i - ndx] = linear_backward_dw_at(map, dy, x, in, out, i - ndx);
    }
  }
}

constexpr int kBnSeg = 256;  // 5 x 256 pointers = 10 KiB of parameters
struct BnBackwardTable {
  const float* dy[kBnSeg];
  const float* xhat[kBnSeg];
  const double* invstd[kBnSeg];
  float* dx[kBnSeg];
  float* dgamma[kBnSeg];
};

// Block (cotangent x channel, segment).
__global__ void seg_batchnorm_backward_kernel(BnBackwardTable t, GpuRowMap map, int c, int64_t hw, bool frozen,
                                              bool add) {
  __shared__ double shared[kThreads];
  const int j = blockIdx.y;
  const int g = blockIdx.x / c, ch = blockIdx.x % c;
  batchnorm_backward_block(map, t.dy[j], t.xhat[j], c, hw, t.invstd[j], frozen, t.dx[j], add,
                           t.dgamma[j] + int64_t(g) * c + ch, g, ch, shared);
}

// a = x, c = col
__global__ void seg_im2col_kernel(Table t, int images, int cin, int h, int w, int k, int stride, int pad, int oh,
                                  int ow, bool per_image) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* col = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(cin) * k * k * images * oh * ow)
    col[i] = im2col_at(x, images, cin, h, w, k, stride, pad, oh, ow, per_image, i);
}

// a = x, c = y
__global__ void seg_transpose_rows_kernel(Table t, int groups, int n, int c, int64_t hw) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(groups) * n * c * hw) y[i] = transpose_rows_at(x, n, c, hw, i);
}

}  // namespace

void launch_seg_relu_backward(GpuRowMap map, const float* const* dy, const float* const* pre, float* const* dx,
                              int count, int64_t numel, bool add, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = dy[g], t.b[j] = pre[g], t.c[j] = dx[g]; },
      [&](const Table& t, int) {
        seg_relu_backward_kernel<<<seg_grid(int64_t(map.rows) * numel, t.count), kThreads, 0, s>>>(t, map, numel, add);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_relu_backward");
}

void launch_seg_accumulate(const float* const* dy, float* const* dx, int count, int64_t per, bool add, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = dy[g], t.c[j] = dx[g]; },
      [&](const Table& t, int) { seg_accumulate_kernel<<<seg_grid(per, t.count), kThreads, 0, s>>>(t, per, add); });
  HN_CHECK_LAUNCH(s, "launch_seg_accumulate");
}

void launch_seg_avgpool_backward(int window, const float* const* dy, float* const* dx, int count, int planes, int h,
                                 int w, bool add, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = dy[g], t.c[j] = dx[g]; },
      [&](const Table& t, int) {
        seg_avgpool_backward_kernel<<<seg_grid(int64_t(planes) * h * w, t.count), kThreads, 0, s>>>(t, window, planes,
                                                                                                    h, w, add);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_avgpool_backward");
}

void launch_seg_global_avgpool_backward(const float* const* dy, float* const* dx, int count, int planes, int64_t hw,
                                        bool add, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = dy[g], t.c[j] = dx[g]; },
      [&](const Table& t, int) {
        seg_global_avgpool_backward_kernel<<<seg_grid(int64_t(planes) * hw, t.count), kThreads, 0, s>>>(t, planes, hw,
                                                                                                        add);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_global_avgpool_backward");
}

void launch_seg_linear_backward(GpuRowMap map, const float* const* dy, const float* const* x, const float* w, int in,
                                int out, float* const* dx, bool add, float* const* dw, int count, cudaStream_t s) {
  const int64_t total = int64_t(map.rows) * in + int64_t(map.diagonal ? map.rows : map.rows / map.batch) * out * in;
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = dy[g], t.b[j] = x[g], t.c[j] = dx ? dx[g] : nullptr, t.d[j] = dw[g]; },
      [&](const Table& t, int) {
        seg_linear_backward_kernel<<<seg_grid(total, t.count), kThreads, 0, s>>>(t, map, in, out, w, add);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_linear_backward");
}

void launch_seg_batchnorm_backward(GpuRowMap map, const float* const* dy, const float* const* xhat,
                                   const double* const* invstd, int c, int64_t hw, bool frozen, float* const* dx,
                                   bool add, float* const* dgamma, int count, cudaStream_t s) {
  HN_NVTX_RANGE("seg_batchnorm_backward");
  const int cots = map.diagonal ? map.rows : map.rows / map.batch;
  for (int start = 0; start < count; start += kBnSeg) {
    BnBackwardTable t{};
    const int n = std::min(kBnSeg, count - start);
    for (int j = 0; j < n; ++j) {
      t.dy[j] = dy[start + j];
      t.xhat[j] = xhat[start + j];
      t.invstd[j] = invstd[start + j];
      t.dx[j] = dx[start + j];
      t.dgamma[j] = dgamma[start + j];
    }
    seg_batchnorm_backward_kernel<<<dim3(static_cast<unsigned>(cots * c), static_cast<unsigned>(n)), kThreads, 0, s>>>(
        t, map, c, hw, frozen, add);
  }
  HN_CHECK_LAUNCH(s, "launch_seg_batchnorm_backward");
}

void launch_seg_im2col(const float* const* x, float* const* col, int count, int images, int cin, int h, int w, int k,
                       int stride, int pad, bool per_image, cudaStream_t s) {
  HN_NVTX_RANGE("seg_im2col");
  const int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  const int64_t total = int64_t(cin) * k * k * images * oh * ow;
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x[g], t.c[j] = col[g]; },
      [&](const Table& t, int) {
        seg_im2col_kernel<<<seg_grid(total, t.count), kThreads, 0, s>>>(t, images, cin, h, w, k, stride, pad, oh, ow,
                                                                        per_image);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_im2col");
}

void launch_seg_transpose_rows(const float* const* x, float* const* y, int count, int groups, int n, int c, int64_t hw,
                               cudaStream_t s) {
  const int64_t total = int64_t(groups) * n * c * hw;
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x[g], t.c[j] = y[g]; },
      [&](const Table& t, int) {
        seg_transpose_rows_kernel<<<seg_grid(total, t.count), kThreads, 0, s>>>(t, groups, n, c, hw);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_transpose_rows");
}

}  // namespace hn::kernels::gpu
