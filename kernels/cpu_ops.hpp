// CPU twins of the network's kernels (NCHW, batch-major). Each function splits its work over
// images or channels with a fixed partition (OpenMP static schedule), and every output element is
// computed by exactly one thread in a fixed order, so results do not depend on the thread count.
// Instantiated for float and double.
#pragma once
#include <cstdint>
#include <vector>

namespace hn::kernels {

// Makes the BLAS single-threaded (the kernels parallelise over images themselves; nested BLAS
// threads would oversubscribe the cores). Called once by every CPU backend.
void cpu_kernels_init();

// Single-threaded GEMM, row-major: C = alpha * op(A) * op(B) + beta * C.
template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc);

// Lower triangle of C (n x n, row-major) = alpha A A^T + beta C, A n x k (BLAS syrk); the upper
// triangle is left as it was.
template <typename T>
void syrk_lower(int n, int k, T alpha, const T* a, int lda, T beta, T* c, int ldc);

struct ConvShape {
  int batch, cin, h, w, cout, k, stride, pad;
  int oh() const { return (h + 2 * pad - k) / stride + 1; }
  int ow() const { return (w + 2 * pad - k) / stride + 1; }
};

// y[n] = conv(x[n], w), no bias; w is [cout, cin, k, k].
template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, T* y);
// The grouped form (the population executor): `groups` tensors of s.batch images each, x[g] ->
// y[g], one weight tensor for all, parallel over every (group, image) pair. Each image is the
// same im2col + GEMM as in conv2d_forward, so results do not depend on the grouping.
template <typename T>
void conv2d_forward_grouped(const ConvShape& s, int groups, const T* const* x, const T* w, T* const* y);

// Train-mode BN statistics over (batch, H, W) per channel, two-pass in FP64 (mean, then the
// mean of squared deviations); invstd = 1 / sqrt(var + eps).
template <typename T>
void batchnorm_stats(const T* x, int batch, int c, int64_t hw, double eps, double* mean,
                     double* invstd);
// y = (x - mean) * scale with mean, scale rounded to T (kernels/elementwise.cuh); scale =
// invstd * gamma (gamma is 1 at init).
template <typename T>
void batchnorm_apply(const T* x, int batch, int c, int64_t hw, const double* mean,
                     const double* scale, T* y);

template <typename T>
void relu_forward(const T* x, int64_t n, T* y);
template <typename T>
void add_forward(const T* a, const T* b, int64_t n, T* y);

// 3x3 average, stride 1, pad 1, divisor = cells inside the image.
template <typename T>
void avgpool3_forward(const T* x, int batch, int c, int h, int w, T* y);
// 2x2 average, stride 2.
template <typename T>
void avgpool2_forward(const T* x, int batch, int c, int h, int w, T* y);
// y[n][c] = mean over H x W, accumulated in FP64.
template <typename T>
void global_avgpool_forward(const T* x, int batch, int c, int64_t hw, T* y);
// y[n][o] = b[o] + sum_i W[o][i] x[n][i], accumulated in FP64.
template <typename T>
void linear_forward(const T* x, int batch, int in, int out, const T* w, const T* b, T* y);

// Std of all elements as one scalar: mean first, then sum of squared deviations / (n - 1), FP64.
// Fixed chunks summed in order, so the value does not depend on the thread count.
template <typename T>
double tensor_std(const T* x, int64_t n);
// x /= s, with s rounded to T.
template <typename T>
void divide_inplace(T* x, int64_t n, double s);

}  // namespace hn::kernels
