// Launchers of the CUDA kernels (FP32 activations, FP64 reductions). Each takes an explicit
// stream, checks its launch and never synchronises; only these are visible outside kernels/.
// Every kernel has a CPU twin in cpu_ops / cpu_backward / hamming (same per-element math from
// elementwise.cuh) that the Gpu* tests compare it with.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hn::kernels::gpu {

// ---- forward -----------------------------------------------------------------------------------
// BN statistics per channel over (batch, hw), two-pass in FP64 (one block per channel).
void launch_batchnorm_stats(const float* x, int batch, int c, int64_t hw, double eps, double* mean,
                            double* invstd, cudaStream_t s);
// y = (x - mean) * scale (scale = invstd: gamma = 1).
void launch_batchnorm_apply(const float* x, int batch, int c, int64_t hw, const double* mean,
                            const double* scale, float* y, cudaStream_t s);
void launch_relu(const float* x, int64_t n, float* y, cudaStream_t s);
void launch_add(const float* a, const float* b, int64_t n, float* y, cudaStream_t s);
void launch_fill_zero(float* y, int64_t n, cudaStream_t s);
void launch_avgpool3(const float* x, int planes, int h, int w, float* y, cudaStream_t s);
void launch_avgpool2(const float* x, int planes, int h, int w, float* y, cudaStream_t s);
void launch_global_avgpool(const float* x, int planes, int64_t hw, float* y, cudaStream_t s);
void launch_linear(const float* x, int batch, int in, int out, const float* w, const float* b,
                   float* y, cudaStream_t s);
// Entropy's block ends: std of all n elements (FP64 two-pass, fixed partition) into *out, then
// x /= *out (skipped, and *flag set, when it is 0 or not finite). `partial` holds >= 256 doubles.
void launch_tensor_std(const float* x, int64_t n, double* partial, double* out, cudaStream_t s);
void launch_divide_by(float* x, int64_t n, const double* divisor, int* flag, cudaStream_t s);

// ---- ReLU codes and the Hamming kernel -----------------------------------------------------------
// codes (uint32 words, bit u % 32 of word u / 32 = x[u] > 0) of batch x units (units % 64 == 0).
void launch_pack_codes(const float* x, int batch, int64_t units, uint32_t* codes, cudaStream_t s);
// k[n][m] += w1 * agree(n, m) and k_once[n][m] += w2 * agree(n, m), agree = units - popcount.
void launch_hamming_accumulate(const uint32_t* codes, int batch, int64_t units, int64_t w1,
                               int64_t w2, int64_t* k, int64_t* k_once, cudaStream_t s);
void launch_int64_to_double(const int64_t* x, int64_t n, double* y, cudaStream_t s);
// After an FP64 Cholesky (lower, column-major n x n, info from potrf): out[0] = log det, out[1]
// = 1 when singular (info != 0 or a pivot^2 <= 1e-12 * max diag of the original k).
void launch_logdet_finalize(const double* l, const int64_t* k_original, int n, const int* info,
                            double* out, cudaStream_t s);

// ---- reductions for the proxies ------------------------------------------------------------------
// *out = sum (a - b)^2 in FP64 (single block, fixed order).
void launch_sum_squared_diff(const float* a, const float* b, int64_t n, double* out, cudaStream_t s);
// *out = sum |x| (or sum max(x, 0) when positive_part) over n elements, FP64, fixed partition.
void launch_abs_sum(const float* x, int64_t n, bool positive_part, double* partial, double* out,
                    cudaStream_t s);

// ---- backward (NTK) ------------------------------------------------------------------------------
// Rows r of a backward batch belong to image r % batch and cotangent r / batch, or to image and
// cotangent r when diagonal (ntk_fast). All accumulate into their outputs.
struct GpuRowMap {
  int rows, batch;
  bool diagonal;
};
void launch_batchnorm_backward(GpuRowMap map, const float* dy, const float* xhat, int c, int64_t hw,
                               const double* invstd, bool frozen, float* dx, float* dgamma,
                               int64_t dgamma_stride, cudaStream_t s);
void launch_relu_backward(GpuRowMap map, const float* dy, const float* pre, int64_t numel, float* dx,
                          cudaStream_t s);
void launch_accumulate(const float* dy, int64_t n, float* dx, cudaStream_t s);
void launch_avgpool3_backward(const float* dy, int planes, int h, int w, float* dx, cudaStream_t s);
void launch_avgpool2_backward(const float* dy, int planes, int h, int w, float* dx, cudaStream_t s);
void launch_global_avgpool_backward(const float* dy, int planes, int64_t hw, float* dx, cudaStream_t s);
// dx[r] += W^T dy[r]; dw[cot] (rows of length in*out, stride dw_stride) = sum dy[r] x[image(r)]^T.
void launch_linear_backward(GpuRowMap map, const float* dy, const float* x, const float* w, int in,
                            int out, float* dx, float* dw, int64_t dw_stride, cudaStream_t s);
// col[(ci, ky, kx)][n * ohw + p] for n images: the weight-gradient GEMMs' shared operand.
void launch_im2col(const float* x, int images, int cin, int h, int w, int k, int stride, int pad,
                   float* col, cudaStream_t s);
// [g][n][c][hw] -> [g][c][n][hw]
void launch_transpose_rows(const float* x, int groups, int n, int c, int64_t hw, float* y, cudaStream_t s);
// The NTK's cotangents: row r gets ones on its logits when it is its cotangent's own image
// (always when diagonal), zeros elsewhere; c0 = the chunk's first cotangent.
void launch_ntk_seed(float* dlogits, GpuRowMap map, int classes, int c0, cudaStream_t s);
void launch_float_to_double(const float* x, int rows, int64_t cols, int64_t ld, double* y, cudaStream_t s);

}  // namespace hn::kernels::gpu
