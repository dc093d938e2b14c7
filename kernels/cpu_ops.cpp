#include "kernels/cpu_ops.hpp"

#include <cblas.h>
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cpu_backward.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/onednn_conv.hpp"

namespace hn::kernels {

extern "C" void openblas_set_num_threads(int);

void cpu_kernels_init() {
  openblas_set_num_threads(1);
  // Activations are large, short-lived buffers: keep them on the heap instead of mmap/munmap
  // per allocation, which costs a page fault per 4 KiB on every forward pass.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  omp_set_max_active_levels(1);  // kernels inside an architecture-parallel loop run serially
}

template <>
void gemm<float>(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
                  const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void syrk_lower<float>(int n, int k, float alpha, const float* a, int lda, float beta, float* c, int ldc) {
  cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, n, k, alpha, a, lda, beta, c, ldc);
}

template <>
void syrk_lower<double>(int n, int k, double alpha, const double* a, int lda, double beta, double* c, int ldc) {
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, n, k, alpha, a, lda, beta, c, ldc);
}

namespace {

// Rows (ci, ky, kx) x columns (oy, ox) of one image; zero where the window leaves the image.
// The valid ox range of each (kx, oy) row is computed once, so the inner loop is a plain copy.
template <typename T>
void im2col_impl(const ConvShape& s, const T* x, T* col) {
  const int oh = s.oh(), ow = s.ow();
  for (int ci = 0; ci < s.cin; ++ci)
    for (int ky = 0; ky < s.k; ++ky)
      for (int kx = 0; kx < s.k; ++kx) {
        T* dst = col + ((static_cast<int64_t>(ci) * s.k + ky) * s.k + kx) * oh * ow;
        const T* src = x + static_cast<int64_t>(ci) * s.h * s.w;
        // ox valid when 0 <= ox * stride - pad + kx < w.
        const int lo = std::min(ow, std::max(0, (s.pad - kx + s.stride - 1) / s.stride));
        const int hi = std::max(lo, std::min(ow, (s.w - 1 + s.pad - kx) / s.stride + 1));
        for (int oy = 0; oy < oh; ++oy) {
          const int iy = oy * s.stride - s.pad + ky;
          T* row = dst + static_cast<int64_t>(oy) * ow;
          if (iy < 0 || iy >= s.h) {
            std::fill(row, row + ow, T(0));
            continue;
          }
          std::fill(row, row + lo, T(0));
          const T* in = src + static_cast<int64_t>(iy) * s.w - s.pad + kx;
          if (s.stride == 1) {
            std::copy(in + lo, in + hi, row + lo);
          } else {
            for (int ox = lo; ox < hi; ++ox) row[ox] = in[ox * s.stride];
          }
          std::fill(row + hi, row + ow, T(0));
        }
      }
}

}  // namespace

template <typename T>
void conv2d_forward_grouped(const ConvShape& s, int groups, const T* const* x, const T* w, T* const* y) {
  const int64_t in_img = static_cast<int64_t>(s.cin) * s.h * s.w;
  const int64_t out_hw = static_cast<int64_t>(s.oh()) * s.ow();
  const int kdim = s.cin * s.k * s.k;
  const bool direct = s.k == 1 && s.stride == 1 && s.pad == 0;
  const int64_t items = static_cast<int64_t>(groups) * s.batch;
  if constexpr (std::is_same_v<T, float>) {
    if (onednn_conv_applies(s)) {
      // A contiguous share of the (group, image) items per thread, one oneDNN call per run of
      // images of one group (an image's output does not depend on the run it is in).
#pragma omp parallel
      {
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t i = items * t / nt;
        const int64_t end = items * (t + 1) / nt;
        while (i < end) {
          const int64_t g = i / s.batch, n = i % s.batch;
          const int64_t run = std::min<int64_t>(end - i, s.batch - n);
          ConvShape r = s;
          r.batch = static_cast<int>(run);
          onednn_conv_forward(r, x[g] + n * in_img, w, y[g] + n * s.cout * out_hw);
          i += run;
        }
      }
      return;
    }
  }
#pragma omp parallel
  {
    std::vector<T> col(direct ? 0 : static_cast<size_t>(kdim) * out_hw);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < items; ++i) {
      const int64_t g = i / s.batch, n = i % s.batch;
      const T* xn = x[g] + n * in_img;
      const T* b = xn;
      if (!direct) {
        im2col_impl(s, xn, col.data());
        b = col.data();
      }
      gemm<T>(false, false, s.cout, static_cast<int>(out_hw), kdim, T(1), w, kdim, b,
              static_cast<int>(out_hw), T(0), y[g] + n * s.cout * out_hw, static_cast<int>(out_hw));
    }
  }
}

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, T* y) {
  conv2d_forward_grouped(s, 1, &x, w, &y);
}

namespace {
// Sum of a block in FP64 with 8 independent accumulators, combined pairwise at the end: a fixed
// order (so deterministic), whose lanes the compiler keeps in vector registers instead of one
// long dependency chain (4x faster than 4 scalar chains, measured).
template <typename T, typename F>
double block_sum(const T* __restrict p, int64_t n, F f) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += f(static_cast<double>(p[i + j]));
  for (; i < n; ++i) a[0] += f(static_cast<double>(p[i]));
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
}  // namespace

template <typename T>
void batchnorm_stats(const T* x, int batch, int c, int64_t hw, double eps, double* mean,
                     double* invstd) {
  const double count = static_cast<double>(batch) * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (int n = 0; n < batch; ++n)
      sum += block_sum(x + (static_cast<int64_t>(n) * c + ch) * hw, hw, [](double v) { return v; });
    const double m = sum / count;
    double sq = 0.0;
    for (int n = 0; n < batch; ++n)
      sq += block_sum(x + (static_cast<int64_t>(n) * c + ch) * hw, hw, [m](double v) {
        const double d = v - m;
        return d * d;
      });
    mean[ch] = m;
    invstd[ch] = 1.0 / std::sqrt(sq / count + eps);
  }
}

template <typename T>
void batchnorm_apply(const T* x, int batch, int c, int64_t hw, const double* mean,
                     const double* scale, T* y) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < batch; ++n)
    for (int ch = 0; ch < c; ++ch) {
      const int64_t off = (static_cast<int64_t>(n) * c + ch) * hw;
      const T m = static_cast<T>(mean[ch]), is = static_cast<T>(scale[ch]);
      for (int64_t i = 0; i < hw; ++i) y[off + i] = bn_normalize(x[off + i], m, is);
    }
}

template <typename T>
void relu_forward(const T* x, int64_t n, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = relu(x[i]);
}

template <typename T>
void add_forward(const T* a, const T* b, int64_t n, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

namespace {
// avgpool3's column sums of two or three rows, and its horizontal pass over them (restrict:
// the compiler vectorises without alias checks; 1.2-1.5x over one loop with += per row).
template <typename T>
void sum_rows3(const T* __restrict a, const T* __restrict b, const T* __restrict c, T* __restrict col, int w) {
  for (int i = 0; i < w; ++i) col[i] = (a[i] + b[i]) + c[i];
}
template <typename T>
void sum_rows2(const T* __restrict a, const T* __restrict b, T* __restrict col, int w) {
  for (int i = 0; i < w; ++i) col[i] = a[i] + b[i];
}
template <typename T>
void avgpool3_row(const T* __restrict col, T* __restrict out, int w, T rows) {
  if (w == 1) {
    out[0] = col[0] / rows;
    return;
  }
  const T full = rows * T(3), edge = rows * T(2);
  out[0] = (col[0] + col[1]) / edge;
  for (int ox = 1; ox < w - 1; ++ox) out[ox] = (col[ox - 1] + col[ox] + col[ox + 1]) / full;
  out[w - 1] = (col[w - 2] + col[w - 1]) / edge;
}
}  // namespace

// Separable: the column sums of the (up to) three rows, then the (up to) three columns, divided
// by the number of cells inside the image.
template <typename T>
void avgpool3_forward(const T* x, int batch, int c, int h, int w, T* y) {
#pragma omp parallel
  {
    std::vector<T> colv(w);
    T* col = colv.data();
#pragma omp for schedule(static)
    for (int64_t p = 0; p < static_cast<int64_t>(batch) * c; ++p) {
      const T* src = x + p * h * w;
      T* dst = y + p * h * w;
      for (int oy = 0; oy < h; ++oy) {
        const int y0 = std::max(oy - 1, 0), y1 = std::min(oy + 1, h - 1);
        if (y1 - y0 == 2)
          sum_rows3(src + y0 * w, src + (y0 + 1) * w, src + y1 * w, col, w);
        else if (y1 - y0 == 1)
          sum_rows2(src + y0 * w, src + y1 * w, col, w);
        else
          std::copy(src + y0 * w, src + y0 * w + w, col);
        avgpool3_row(col, dst + oy * w, w, static_cast<T>(y1 - y0 + 1));
      }
    }
  }
}

template <typename T>
void avgpool2_forward(const T* x, int batch, int c, int h, int w, T* y) {
  const int oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < static_cast<int64_t>(batch) * c; ++p) {
    const T* src = x + p * h * w;
    T* dst = y + p * oh * ow;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const T* s0 = src + (2 * oy) * w + 2 * ox;
        dst[oy * ow + ox] = (s0[0] + s0[1] + s0[w] + s0[w + 1]) / T(4);
      }
  }
}

template <typename T>
void global_avgpool_forward(const T* x, int batch, int c, int64_t hw, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < static_cast<int64_t>(batch) * c; ++p) {
    double sum = 0.0;
    for (int64_t i = 0; i < hw; ++i) sum += static_cast<double>(x[p * hw + i]);
    y[p] = static_cast<T>(sum / static_cast<double>(hw));
  }
}

template <typename T>
void linear_forward(const T* x, int batch, int in, int out, const T* w, const T* b, T* y) {
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < out; ++o) {
      double acc = static_cast<double>(b[o]);
      for (int i = 0; i < in; ++i)
        acc += static_cast<double>(w[static_cast<int64_t>(o) * in + i]) * x[static_cast<int64_t>(n) * in + i];
      y[static_cast<int64_t>(n) * out + o] = static_cast<T>(acc);
    }
}

namespace {
constexpr int64_t kReduceChunk = 1 << 16;

// Sum of f(x[i]) over fixed chunks (each a block_sum), the chunk sums added in order.
template <typename T, typename F>
double chunked_sum(const T* x, int64_t n, F f) {
  const int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  std::vector<double> part(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t lo = ch * kReduceChunk;
    part[ch] = block_sum(x + lo, std::min(n, lo + kReduceChunk) - lo, f);
  }
  double total = 0.0;
  for (double p : part) total += p;
  return total;
}
}  // namespace

template <typename T>
double tensor_std(const T* x, int64_t n) {
  if (n < 2) return 0.0;
  const double mean = chunked_sum(x, n, [](double v) { return v; }) / static_cast<double>(n);
  const double sq = chunked_sum(x, n, [mean](double v) {
    const double d = v - mean;
    return d * d;
  });
  return std::sqrt(sq / static_cast<double>(n - 1));
}

template <typename T>
void divide_inplace(T* x, int64_t n, double s) {
  const T d = static_cast<T>(s);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / d;
}

template <typename T>
void im2col_image(const ConvShape& s, const T* x, T* col) {
  im2col_impl(s, x, col);
}

#define HN_INSTANTIATE(T)                                                                        \
  template void im2col_image<T>(const ConvShape&, const T*, T*);                                  \
  template void conv2d_forward<T>(const ConvShape&, const T*, const T*, T*);                      \
  template void conv2d_forward_grouped<T>(const ConvShape&, int, const T* const*, const T*, T* const*); \
  template void batchnorm_stats<T>(const T*, int, int, int64_t, double, double*, double*);         \
  template void batchnorm_apply<T>(const T*, int, int, int64_t, const double*, const double*, T*); \
  template void relu_forward<T>(const T*, int64_t, T*);                                           \
  template void add_forward<T>(const T*, const T*, int64_t, T*);                                  \
  template void avgpool3_forward<T>(const T*, int, int, int, int, T*);                            \
  template void avgpool2_forward<T>(const T*, int, int, int, int, T*);                            \
  template void global_avgpool_forward<T>(const T*, int, int, int64_t, T*);                       \
  template void linear_forward<T>(const T*, int, int, int, const T*, const T*, T*);               \
  template double tensor_std<T>(const T*, int64_t);                                               \
  template void divide_inplace<T>(T*, int64_t, double);
HN_INSTANTIATE(float)
HN_INSTANTIATE(double)
#undef HN_INSTANTIATE

}  // namespace hn::kernels
