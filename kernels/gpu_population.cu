// Segmented kernels of the population executor (engine/cuda_population.cpp): one launch runs a
// grouped step for every member of the group. Segment j is member j's tensor of `per` elements
// (its B images); its pointers come in a by-value table of at most kSegMax segments (a launcher
// splits longer groups), so no pointer array is copied to the device. Per-segment bodies are the
// single-tensor kernels' (kernels/gpu_device_ops.cuh); every reduction keeps a fixed partition
// and tree per segment, so a member's result does not depend on the other segments. CPU twins:
// the single-tensor CPU kernels applied per member (tests/test_gpu.cpp, GpuPopulation*).
#include <algorithm>

#include "kernels/cuda_check.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/gpu_common.cuh"
#include "kernels/gpu_device_ops.cuh"
#include "kernels/gpu_population.cuh"
#include "kernels/gpu_segments.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {
using detail::block_sum;
using detail::chunked;
using detail::kSegMax;
using detail::kThreads;
using detail::seg_grid;
using detail::Table;

constexpr int kStdBlocks = 32;  // blocks per segment of a segmented tensor std (fixed partition)

__global__ void seg_relu_kernel(Table t, int64_t per) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, per) y[i] = relu(x[i]);
}

__global__ void seg_add_kernel(Table t, int64_t per) {
  const float* a = static_cast<const float*>(t.a[blockIdx.y]);
  const float* b = static_cast<const float*>(t.b[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, per) y[i] = a[i] + b[i];
}

__global__ void seg_fill_zero_kernel(Table t, int64_t per) {
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, per) y[i] = 0.0f;
}

__global__ void seg_copy_kernel(Table t, int64_t per) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, per) y[i] = x[i];
}

__global__ void seg_avgpool3_kernel(Table t, int planes, int h, int w) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(planes) * h * w) y[i] = detail::avgpool3_at(x, h, w, i);
}

__global__ void seg_avgpool2_kernel(Table t, int planes, int h, int w) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(planes) * (h / 2) * (w / 2)) y[i] = detail::avgpool2_at(x, h, w, i);
}

// One block per (plane, segment).
__global__ void seg_global_avgpool_kernel(Table t, int64_t hw) {
  __shared__ double shared[kThreads];
  const float v = detail::plane_mean(static_cast<const float*>(t.a[blockIdx.y]) + blockIdx.x * hw, hw, shared);
  if (threadIdx.x == 0) static_cast<float*>(t.c[blockIdx.y])[blockIdx.x] = v;
}

__global__ void seg_linear_kernel(Table t, int batch, int in, int out, const float* w, const float* b) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, static_cast<int64_t>(batch) * out) y[i] = detail::linear_at(x, in, out, w, b, i);
}

// Block (channel, segment): the segment's channel statistics (detail::batchnorm_stats_channel,
// the single-tensor kernel's body). mean / invstd at c[seg] / d[seg].
__global__ void seg_batchnorm_stats_kernel(Table t, int batch, int c, int64_t hw, double eps) {
  __shared__ double shared[kThreads];
  const int ch = blockIdx.x;
  detail::batchnorm_stats_channel(static_cast<const float*>(t.a[blockIdx.y]), batch, c, hw, ch, eps,
                                  static_cast<double*>(t.c[blockIdx.y]) + ch, static_cast<double*>(t.d[blockIdx.y]) + ch,
                                  shared);
}

// a = x, b = mean, d = invstd (as scale), c = y.
__global__ void seg_batchnorm_apply_kernel(Table t, int64_t per, int c, int64_t hw) {
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  const double* mean = static_cast<const double*>(t.b[blockIdx.y]);
  const double* scale = static_cast<const double*>(t.d[blockIdx.y]);
  float* y = static_cast<float*>(t.c[blockIdx.y]);
  HN_SEG_LOOP(i, per) {
    const int ch = static_cast<int>((i / hw) % c);
    y[i] = bn_normalize(x[i], static_cast<float>(mean[ch]), static_cast<float>(scale[ch]));
  }
}

// A node sum whose terms may be deferred BN outputs: y = t(a) + t(b), t(v) = bn_normalize(x,
// mean, invstd) when the term carries statistics, else x: the unfused BN apply's rounding, then
// the add's (bit-identical to apply-then-add).
constexpr int kBnSegMax = 256;  // 2 x 256 x 24 bytes + 256 pointers = 14 KiB of parameters
struct BnAddTable {
  SegBnInput a[kBnSegMax], b[kBnSegMax];
  float* y[kBnSegMax];
  int count;
};
__device__ inline float bn_term(const SegBnInput& t, int64_t i, int c, int64_t hw) {
  const float v = t.x[i];
  if (!t.mean) return v;
  const int ch = static_cast<int>((i / hw) % c);
  return bn_normalize(v, static_cast<float>(t.mean[ch]), static_cast<float>(t.invstd[ch]));
}
__global__ void seg_add_bn_kernel(BnAddTable t, int64_t per, int c, int64_t hw) {
  const SegBnInput& a = t.a[blockIdx.y];
  const SegBnInput& b = t.b[blockIdx.y];
  float* y = t.y[blockIdx.y];
  HN_SEG_LOOP(i, per) y[i] = bn_term(a, i, c, hw) + bn_term(b, i, c, hw);
}

// Segmented two-pass std: pass 1 (mean == nullptr semantics by `second`) partial sums into
// partial[seg * kStdBlocks + block]; finish reduces a segment's kStdBlocks partials in one block.
__global__ void seg_std_partial_kernel(Table t, int64_t per, const double* means, bool second, double* partial) {
  __shared__ double shared[kThreads];
  const float* x = static_cast<const float*>(t.a[blockIdx.y]);
  const double m = second ? means[blockIdx.y] : 0.0;
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < per; i += int64_t(kStdBlocks) * kThreads) {
    const double v = static_cast<double>(x[i]);
    s += second ? (v - m) * (v - m) : v;
  }
  const double total = block_sum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.y * kStdBlocks + blockIdx.x] = total;
}

__global__ void seg_std_finish_kernel(Table t, int64_t per, bool second, const double* partial, double* means) {
  __shared__ double shared[kThreads];
  const double v = threadIdx.x < kStdBlocks ? partial[blockIdx.x * kStdBlocks + threadIdx.x] : 0.0;
  const double total = block_sum(v, shared);
  if (threadIdx.x != 0) return;
  if (!second) {
    means[blockIdx.x] = total / static_cast<double>(per);
  } else {
    *static_cast<double*>(t.c[blockIdx.x]) = per > 1 ? sqrt(total / static_cast<double>(per - 1)) : 0.0;
  }
}

// x /= std (c[seg]); a std of 0 or not finite sets *d[seg] and leaves x as it is.
__global__ void seg_divide_kernel(Table t, int64_t per) {
  float* x = const_cast<float*>(static_cast<const float*>(t.a[blockIdx.y]));
  const double d = *static_cast<const double*>(t.c[blockIdx.y]);
  if (!(d > 0.0) || !isfinite(d)) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *static_cast<int*>(t.d[blockIdx.y]) = 1;
    return;
  }
  const float df = static_cast<float>(d);
  HN_SEG_LOOP(i, per) x[i] = x[i] / df;
}

// Codes of segment j at c[j] (uint32 words, the layout of launch_pack_codes).
__global__ void seg_pack_codes_kernel(Table t, int64_t per) {
  detail::pack_codes_loop(static_cast<const float*>(t.a[blockIdx.y]), per, static_cast<uint32_t*>(t.c[blockIdx.y]));
}

// Block (row n, segment): codes a[j], k c[j], k_once d[j]; weights w1 / w2 per segment.
struct Weights {
  int64_t w1[kSegMax], w2[kSegMax];
};
__global__ void seg_hamming_kernel(Table t, Weights wt, int batch, int64_t words, int64_t units) {
  const int j = blockIdx.y;
  detail::hamming_row(static_cast<const uint32_t*>(t.a[j]), batch, words, units, blockIdx.x, wt.w1[j], wt.w2[j],
                      static_cast<int64_t*>(t.c[j]), static_cast<int64_t*>(t.d[j]));
}

// Block per segment: *c[j] = sum over the segment of |x| (or max(x, 0)), FP64, one block's
// fixed partition per segment.
__global__ void seg_abs_sum_kernel(Table t, int64_t per, bool positive) {
  __shared__ double shared[kThreads];
  const float* x = static_cast<const float*>(t.a[blockIdx.x]);
  const double total = detail::block_reduce(
      per,
      [&](int64_t i) {
        const double v = static_cast<double>(x[i]);
        return positive ? (v > 0 ? v : 0.0) : fabs(v);
      },
      shared);
  if (threadIdx.x == 0) *static_cast<double*>(t.c[blockIdx.x]) = total;
}

// Block per segment: *c[j] = sum (a - b)^2 in FP64 (the partition of launch_sum_squared_diff).
__global__ void seg_sum_squared_diff_kernel(Table t, int64_t per) {
  __shared__ double shared[kThreads];
  const float* a = static_cast<const float*>(t.a[blockIdx.x]);
  const float* b = static_cast<const float*>(t.b[blockIdx.x]);
  const double total = detail::block_reduce(
      per,
      [&](int64_t i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        return d * d;
      },
      shared);
  if (threadIdx.x == 0) *static_cast<double*>(t.c[blockIdx.x]) = total;
}

// One thread per matrix: out[j * out_stride ...] = {log det, singular} (detail::logdet_finalize).
__global__ void batched_logdet_finalize_kernel(const double* l, const int64_t* k, int n, int count, const int* info,
                                               double* out, int64_t out_stride) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= count) return;
  detail::logdet_finalize(l + int64_t(j) * n * n, k + int64_t(j) * n * n, n, info[j], out + j * out_stride);
}

// *c[j] = *a[j] (a double) and *d[j] = *b[j] (an int).
__global__ void seg_copy_scalars_kernel(Table t) {
  const int j = threadIdx.x;
  if (j >= t.count) return;
  *static_cast<double*>(t.c[j]) = *static_cast<const double*>(t.a[j]);
  *static_cast<int*>(t.d[j]) = *static_cast<const int*>(t.b[j]);
}

}  // namespace

int segments_per_launch() { return kSegMax; }

void launch_seg_unary(SegUnary op, const float* const* x, float* const* y, int count, int64_t per, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x ? x[g] : nullptr, t.c[j] = y[g]; },
      [&](const Table& t, int) {
        const dim3 grid = seg_grid(per, t.count);
        switch (op) {
          case SegUnary::kRelu: seg_relu_kernel<<<grid, kThreads, 0, s>>>(t, per); break;
          case SegUnary::kZero: seg_fill_zero_kernel<<<grid, kThreads, 0, s>>>(t, per); break;
          case SegUnary::kCopy: seg_copy_kernel<<<grid, kThreads, 0, s>>>(t, per); break;
        }
      });
  HN_CHECK_LAUNCH(s, "launch_seg_unary");
}

void launch_seg_add(const float* const* a, const float* const* b, float* const* y, int count, int64_t per,
                    cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = a[g], t.b[j] = b[g], t.c[j] = y[g]; },
      [&](const Table& t, int) { seg_add_kernel<<<seg_grid(per, t.count), kThreads, 0, s>>>(t, per); });
  HN_CHECK_LAUNCH(s, "launch_seg_add");
}

void launch_seg_avgpool(int window, const float* const* x, float* const* y, int count, int planes, int h, int w,
                        cudaStream_t s) {
  const int64_t outs = window == 3 ? int64_t(planes) * h * w : int64_t(planes) * (h / 2) * (w / 2);
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x[g], t.c[j] = y[g]; },
      [&](const Table& t, int) {
        if (window == 3) seg_avgpool3_kernel<<<seg_grid(outs, t.count), kThreads, 0, s>>>(t, planes, h, w);
        else seg_avgpool2_kernel<<<seg_grid(outs, t.count), kThreads, 0, s>>>(t, planes, h, w);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_avgpool");
}

void launch_seg_global_avgpool(const float* const* x, float* const* y, int count, int planes, int64_t hw,
                               cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x[g], t.c[j] = y[g]; },
      [&](const Table& t, int) {
        seg_global_avgpool_kernel<<<dim3(planes, t.count), kThreads, 0, s>>>(t, hw);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_global_avgpool");
}

void launch_seg_linear(const float* const* x, float* const* y, int count, int batch, int in, int out, const float* w,
                       const float* b, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x[g], t.c[j] = y[g]; },
      [&](const Table& t, int) {
        seg_linear_kernel<<<seg_grid(int64_t(batch) * out, t.count), kThreads, 0, s>>>(t, batch, in, out, w, b);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_linear");
}

void launch_seg_batchnorm_stats(const float* const* x, int count, int batch, int c, int64_t hw, double eps,
                                double* mean, double* invstd, cudaStream_t s) {
  HN_NVTX_RANGE("seg_batchnorm_stats");
  chunked(
      count,
      [&](Table& t, int j, int g) {
        t.a[j] = x[g];
        t.c[j] = mean + int64_t(g) * c;
        t.d[j] = invstd + int64_t(g) * c;
      },
      [&](const Table& t, int) {
        seg_batchnorm_stats_kernel<<<dim3(c, t.count), kThreads, 0, s>>>(t, batch, c, hw, eps);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_batchnorm_stats");
}

void launch_seg_batchnorm(const float* const* x, float* const* y, int count, int batch, int c, int64_t hw,
                          double eps, double* mean, double* invstd, cudaStream_t s) {
  HN_NVTX_RANGE("seg_batchnorm");
  const int64_t per = int64_t(batch) * c * hw;
  launch_seg_batchnorm_stats(x, count, batch, c, hw, eps, mean, invstd, s);
  chunked(
      count,
      [&](Table& t, int j, int g) {
        t.a[j] = x[g];
        t.b[j] = mean + int64_t(g) * c;
        t.c[j] = y[g];
        t.d[j] = invstd + int64_t(g) * c;
      },
      [&](const Table& t, int) { seg_batchnorm_apply_kernel<<<seg_grid(per, t.count), kThreads, 0, s>>>(t, per, c, hw); });
  HN_CHECK_LAUNCH(s, "launch_seg_batchnorm");
}

void launch_seg_add_bn(const SegBnInput* a, const SegBnInput* b, float* const* y, int count, int64_t per, int c,
                       int64_t hw, cudaStream_t s) {
  for (int start = 0; start < count; start += kBnSegMax) {
    BnAddTable t{};
    t.count = std::min(kBnSegMax, count - start);
    for (int j = 0; j < t.count; ++j) {
      t.a[j] = a[start + j];
      t.b[j] = b[start + j];
      t.y[j] = y[start + j];
    }
    seg_add_bn_kernel<<<seg_grid(per, t.count), kThreads, 0, s>>>(t, per, c, hw);
  }
  HN_CHECK_LAUNCH(s, "launch_seg_add_bn");
}

void launch_seg_rescale(float* const* x, int count, int64_t per, double* const* stds, int* const* flags,
                        double* scratch, cudaStream_t s) {
  HN_NVTX_RANGE("seg_rescale");
  // scratch: kSegMax * kStdBlocks partials, then kSegMax means.
  double* partial = scratch;
  double* means = scratch + kSegMax * kStdBlocks;
  chunked(
      count,
      [&](Table& t, int j, int g) {
        t.a[j] = x[g];
        t.c[j] = stds[g];
        t.d[j] = flags[g];
      },
      [&](const Table& t, int) {
        for (const bool second : {false, true}) {
          seg_std_partial_kernel<<<dim3(kStdBlocks, t.count), kThreads, 0, s>>>(t, per, means, second, partial);
          seg_std_finish_kernel<<<t.count, kThreads, 0, s>>>(t, per, second, partial, means);
        }
        seg_divide_kernel<<<seg_grid(per, t.count), kThreads, 0, s>>>(t, per);
      });
  HN_CHECK_LAUNCH(s, "launch_seg_rescale");
}

void launch_seg_copy_results(const double* const* std_src, const int* const* flag_src, double* const* std_dst,
                             int* const* flag_dst, int count, cudaStream_t s) {
  chunked(
      count,
      [&](Table& t, int j, int g) {
        t.a[j] = std_src[g];
        t.b[j] = flag_src[g];
        t.c[j] = std_dst[g];
        t.d[j] = flag_dst[g];
      },
      [&](const Table& t, int) { seg_copy_scalars_kernel<<<1, kSegMax, 0, s>>>(t); });
  HN_CHECK_LAUNCH(s, "launch_seg_copy_results");
}

size_t seg_rescale_scratch_doubles() { return size_t(kSegMax) * kStdBlocks + kSegMax; }

void launch_seg_naswot_site(const float* const* pre, int count, int batch, int64_t units, uint32_t* codes,
                            int64_t* const* k, int64_t* const* k_once, const int64_t* w1, const int64_t* w2,
                            cudaStream_t s) {
  HN_NVTX_RANGE("seg_naswot_site");
  const int64_t per = int64_t(batch) * units;
  const int64_t words = (units + 31) / 32;
  chunked(
      count,
      [&](Table& t, int j, int g) {
        t.a[j] = pre[g];
        t.c[j] = codes + int64_t(g) * batch * words;
      },
      [&](const Table& t, int) {
        seg_pack_codes_kernel<<<seg_grid(per, t.count), kThreads, 0, s>>>(t, per);
      });
  for (int start = 0; start < count; start += kSegMax) {
    Table t{};
    Weights wt{};
    t.count = std::min(kSegMax, count - start);
    for (int j = 0; j < t.count; ++j) {
      const int g = start + j;
      t.a[j] = codes + int64_t(g) * batch * words;
      t.c[j] = k[g];
      t.d[j] = k_once[g];
      wt.w1[j] = w1[g];
      wt.w2[j] = w2[g];
    }
    seg_hamming_kernel<<<dim3(batch, t.count), 256, 0, s>>>(t, wt, batch, words, units);
  }
  HN_CHECK_LAUNCH(s, "launch_seg_naswot_site");
}

void launch_seg_abs_sum(const float* const* x, int count, int64_t per, bool positive_part, double* const* out,
                        cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = x[g], t.c[j] = out[g]; },
      [&](const Table& t, int) { seg_abs_sum_kernel<<<t.count, kThreads, 0, s>>>(t, per, positive_part); });
  HN_CHECK_LAUNCH(s, "launch_seg_abs_sum");
}

void launch_seg_sum_squared_diff(const float* const* a, const float* const* b, int count, int64_t per,
                                 double* const* out, cudaStream_t s) {
  chunked(
      count, [&](Table& t, int j, int g) { t.a[j] = a[g], t.b[j] = b[g], t.c[j] = out[g]; },
      [&](const Table& t, int) { seg_sum_squared_diff_kernel<<<t.count, kThreads, 0, s>>>(t, per); });
  HN_CHECK_LAUNCH(s, "launch_seg_sum_squared_diff");
}

void launch_batched_logdet_finalize(const double* l, const int64_t* k, int n, int count, const int* info,
                                    double* out, int64_t out_stride, cudaStream_t s) {
  batched_logdet_finalize_kernel<<<(count + 127) / 128, 128, 0, s>>>(l, k, n, count, info, out, out_stride);
  HN_CHECK_LAUNCH(s, "launch_batched_logdet_finalize");
}

}  // namespace hn::kernels::gpu
