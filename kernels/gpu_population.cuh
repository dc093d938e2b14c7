// Launchers of the population executor's segmented kernels (kernels/gpu_population.cu). A call
// runs one grouped step for `count` members: segment g is member g's tensor of `per` elements
// (B images), read from x[g] / a[g] / b[g] and written to y[g] (host arrays of device pointers,
// passed to the device by value in chunks of segments_per_launch()). Elementwise, pooling,
// linear, BN and code / Hamming results are those of the single-tensor launchers of
// gpu_kernels.cuh bit for bit (the same bodies, kernels/gpu_device_ops.cuh); the whole-tensor
// FP64 sums (block-end std, |x| sums) use a fixed partition per segment that differs from the
// single-tensor launchers' 256-block one in summation order only. Either way a member's values
// do not depend on the group.
// Every launcher takes an explicit stream and never synchronises.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/gpu_kernels.cuh"  // GpuRowMap

namespace hn::kernels::gpu {

// Segments handled by one launch (longer groups take ceil(count / this) launches).
int segments_per_launch();

enum class SegUnary { kRelu, kZero, kCopy };
// y[g] = relu(x[g]) | 0 | x[g] (x unused for kZero and may be null).
void launch_seg_unary(SegUnary op, const float* const* x, float* const* y, int count, int64_t per, cudaStream_t s);
void launch_seg_add(const float* const* a, const float* const* b, float* const* y, int count, int64_t per,
                    cudaStream_t s);
// window 3: 3x3 stride 1 pad 1 (divisor = cells inside); window 2: 2x2 stride 2. planes = B x C.
void launch_seg_avgpool(int window, const float* const* x, float* const* y, int count, int planes, int h, int w,
                        cudaStream_t s);
void launch_seg_global_avgpool(const float* const* x, float* const* y, int count, int planes, int64_t hw,
                               cudaStream_t s);
// y[g] = x[g] W^T + b, batch rows of `in` -> `out`, FP64 accumulation; one W, b for all.
void launch_seg_linear(const float* const* x, float* const* y, int count, int batch, int in, int out, const float* w,
                       const float* b, cudaStream_t s);
// Train-mode BN per member: FP64 two-pass statistics of each (member, channel) over its batch x hw
// (mean / invstd: count x c doubles, member-major), then y[g] = (x[g] - mean) * invstd.
void launch_seg_batchnorm(const float* const* x, float* const* y, int count, int batch, int c, int64_t hw,
                          double eps, double* mean, double* invstd, cudaStream_t s);
// The statistics half of launch_seg_batchnorm (for an apply fused into the node sum).
void launch_seg_batchnorm_stats(const float* const* x, int count, int batch, int c, int64_t hw, double eps,
                                double* mean, double* invstd, cudaStream_t s);
// A tensor read by a fused node sum: x itself, or with mean / invstd (c doubles each) the
// train-mode BN of x (the apply launch_seg_batchnorm would have written).
struct SegBnInput {
  const float* x = nullptr;
  const double* mean = nullptr;
  const double* invstd = nullptr;
};
// y[g] = t(a[g]) + t(b[g]) with t the BN apply where a term carries statistics (tensors of
// per = B x c x hw): bit-identical to applying the BN first, then adding.
void launch_seg_add_bn(const SegBnInput* a, const SegBnInput* b, float* const* y, int count, int64_t per, int c,
                       int64_t hw, cudaStream_t s);
// Entropy's block ends: *stds[g] = std of x[g] (FP64 two-pass, n - 1), then x[g] /= it; a std of
// 0 or not finite sets *flags[g] and leaves x[g]. scratch: seg_rescale_scratch_doubles() doubles.
void launch_seg_rescale(float* const* x, int count, int64_t per, double* const* stds, int* const* flags,
                        double* scratch, cudaStream_t s);
size_t seg_rescale_scratch_doubles();
// *std_dst[g] = *std_src[g], *flag_dst[g] = *flag_src[g]: a block end shared by several members
// (one tensor) is rescaled once, its std and flag copied to the others' slots.
void launch_seg_copy_results(const double* const* std_src, const int* const* flag_src, double* const* std_dst,
                             int* const* flag_dst, int count, cudaStream_t s);
// NASWOT at one ReLU site: codes of pre[g] (batch x units, units % 64 == 0) into codes (count x
// batch x units/32 words), then k[g] += w1[g] * agree, k_once[g] += w2[g] * agree (batch x batch).
void launch_seg_naswot_site(const float* const* pre, int count, int batch, int64_t units, uint32_t* codes,
                            int64_t* const* k, int64_t* const* k_once, const int64_t* w1, const int64_t* w2,
                            cudaStream_t s);
// *out[g] = sum over per elements of |x[g]| (max(x, 0) when positive_part), FP64.
void launch_seg_abs_sum(const float* const* x, int count, int64_t per, bool positive_part, double* const* out,
                        cudaStream_t s);
// *out[g] = sum (a[g] - b[g])^2, FP64.
void launch_seg_sum_squared_diff(const float* const* a, const float* const* b, int count, int64_t per,
                                 double* const* out, cudaStream_t s);
// After a batched Cholesky of count n x n matrices (l, k: contiguous, column-major, info per
// matrix): out[j * out_stride] = log det, out[j * out_stride + 1] = 1 when singular (the rule of
// launch_logdet_finalize).
void launch_batched_logdet_finalize(const double* l, const int64_t* k, int n, int count, const int* info,
                                    double* out, int64_t out_stride, cudaStream_t s);

// ---- Backward: the NTK on the population schedule (kernels/gpu_population_backward.cu) ----
// Segment g's gradients hold map.rows rows (kernels/cpu_backward.hpp's RowMap); forward tensors
// (pre, xhat, x) hold map.batch images. add: dx[g] += the contribution; else dx[g] = it (the
// first contribution: fresh buffers need no zeroing). Values equal the single-tensor launchers'
// of gpu_kernels.cuh (the same bodies, kernels/gpu_backward_ops.cuh).
void launch_seg_relu_backward(GpuRowMap map, const float* const* dy, const float* const* pre, float* const* dx,
                              int count, int64_t numel, bool add, cudaStream_t s);
// dx[g] (+)= dy[g], per elements each.
void launch_seg_accumulate(const float* const* dy, float* const* dx, int count, int64_t per, bool add, cudaStream_t s);
// Adjoint of launch_seg_avgpool (window 3 or 2); planes = rows x C, h x w the input's.
void launch_seg_avgpool_backward(int window, const float* const* dy, float* const* dx, int count, int planes, int h,
                                 int w, bool add, cudaStream_t s);
void launch_seg_global_avgpool_backward(const float* const* dy, float* const* dx, int count, int planes, int64_t hw,
                                        bool add, cudaStream_t s);
// dx[g] (+)= W^T dy[g] (dx may be null: not needed); dw[g] (cotangents x out x in, contiguous) = sum
// over a cotangent's rows of dy[r] x[image(r)]^T.
void launch_seg_linear_backward(GpuRowMap map, const float* const* dy, const float* const* x, const float* w, int in,
                                int out, float* const* dx, bool add, float* const* dw, int count, cudaStream_t s);
// Train-mode BN backward (gamma = 1) per member with its own xhat (the BN output) and invstd (c
// doubles): dx[g] (+)= ..., dgamma[g] (cotangents x c) = sum dy * xhat.
void launch_seg_batchnorm_backward(GpuRowMap map, const float* const* dy, const float* const* xhat,
                                   const double* const* invstd, int c, int64_t hw, bool frozen, float* const* dx,
                                   bool add, float* const* dgamma, int count, cudaStream_t s);
// im2col of `images` NCHW images x[g] into col[g]: per_image layout [image][(ci, ky, kx)][oh x ow],
// else launch_im2col's [(ci, ky, kx)][image][oh x ow].
void launch_seg_im2col(const float* const* x, float* const* col, int count, int images, int cin, int h, int w, int k,
                       int stride, int pad, bool per_image, cudaStream_t s);
// launch_transpose_rows per segment: [groups][n][c][hw] -> [groups][c][n][hw].
void launch_seg_transpose_rows(const float* const* x, float* const* y, int count, int groups, int n, int c, int64_t hw,
                               cudaStream_t s);

}  // namespace hn::kernels::gpu
