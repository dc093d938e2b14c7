#include "kernels/cpu_backward.hpp"

#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/elementwise.cuh"
#include "kernels/onednn_conv.hpp"

namespace hn::kernels {

template <typename T>
void conv2d_backward_data(const ConvShape& s, const T* dy, const T* w, T* dx, bool overwrite) {
  const int oh = s.oh(), ow = s.ow();
  const int64_t out_hw = static_cast<int64_t>(oh) * ow;
  const int64_t in_img = static_cast<int64_t>(s.cin) * s.h * s.w;
  const int kdim = s.cin * s.k * s.k;
  const bool direct = s.k == 1 && s.stride == 1 && s.pad == 0;
  // A stride-1 "same" convolution's transpose is itself a same convolution, of dy with the
  // weights flipped in space and transposed in channels: im2col + one well-shaped GEMM per row
  // (K = cout * k * k) instead of a K = cout GEMM and a col2im scatter.
  const bool same = !direct && s.stride == 1 && 2 * s.pad == s.k - 1;
  std::vector<T> flipped;
  if (same) {
    flipped.resize(static_cast<size_t>(s.cin) * s.cout * s.k * s.k);
    for (int co = 0; co < s.cout; ++co)
      for (int ci = 0; ci < s.cin; ++ci)
        for (int ky = 0; ky < s.k; ++ky)
          for (int kx = 0; kx < s.k; ++kx)
            flipped[((static_cast<size_t>(ci) * s.cout + co) * s.k + (s.k - 1 - ky)) * s.k + (s.k - 1 - kx)] =
                w[((static_cast<size_t>(co) * s.cin + ci) * s.k + ky) * s.k + kx];
  }
  const ConvShape ts{1, s.cout, oh, ow, s.cin, s.k, 1, s.pad};  // the transposed convolution
  const int tkdim = s.cout * s.k * s.k;
  if constexpr (std::is_same_v<T, float>) {
    if (same && onednn_conv_applies(ts)) {
      // FP32: the same convolution through oneDNN, a contiguous run of rows per thread (a row's
      // result does not depend on the run it is in: kernels/onednn_conv.hpp), straight into dx
      // when it is overwritten, else through a buffer added to it.
#pragma omp parallel
      {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int r0 = static_cast<int>(int64_t(s.batch) * t / nt), r1 = static_cast<int>(int64_t(s.batch) * (t + 1) / nt);
        if (r1 > r0) {
          ConvShape run = ts;
          run.batch = r1 - r0;
          const float* g = dy + int64_t(r0) * s.cout * out_hw;
          float* d = dx + int64_t(r0) * in_img;
          if (overwrite) {
            onednn_conv_forward(run, g, flipped.data(), d);
          } else {
            static thread_local std::vector<float> tmp;  // kept: no allocation per call
            tmp.resize(static_cast<size_t>(run.batch) * in_img);
            onednn_conv_forward(run, g, flipped.data(), tmp.data());
            for (size_t i = 0; i < tmp.size(); ++i) d[i] += tmp[i];
          }
        }
      }
      return;
    }
  }
  if (overwrite) std::fill_n(dx, int64_t(s.batch) * in_img, T(0));
#pragma omp parallel
  {
    std::vector<T> col(direct ? 0 : static_cast<size_t>(std::max<int64_t>(int64_t(kdim) * out_hw, int64_t(tkdim) * s.h * s.w)));
#pragma omp for schedule(static)
    for (int r = 0; r < s.batch; ++r) {
      const T* g = dy + r * s.cout * out_hw;
      T* d = dx + r * in_img;
      if (direct) {  // dx += W^T dy
        gemm<T>(true, false, kdim, static_cast<int>(out_hw), s.cout, T(1), w, kdim, g,
                static_cast<int>(out_hw), T(1), d, static_cast<int>(out_hw));
        continue;
      }
      if (same) {  // dx += conv(dy, flipped)
        im2col_image(ts, g, col.data());
        gemm<T>(false, false, s.cin, s.h * s.w, tkdim, T(1), flipped.data(), tkdim, col.data(), s.h * s.w,
                T(1), d, s.h * s.w);
        continue;
      }
      gemm<T>(true, false, kdim, static_cast<int>(out_hw), s.cout, T(1), w, kdim, g,
              static_cast<int>(out_hw), T(0), col.data(), static_cast<int>(out_hw));
      // col2im: add each (ci, ky, kx) row back to the input positions it read; the valid ox
      // range of a row is computed once so the inner loop is a plain (vectorisable) add.
      for (int ci = 0; ci < s.cin; ++ci)
        for (int ky = 0; ky < s.k; ++ky)
          for (int kx = 0; kx < s.k; ++kx) {
            const T* src = col.data() + ((static_cast<int64_t>(ci) * s.k + ky) * s.k + kx) * out_hw;
            T* dst = d + static_cast<int64_t>(ci) * s.h * s.w;
            const int lo = std::min(ow, std::max(0, (s.pad - kx + s.stride - 1) / s.stride));
            const int hi = std::max(lo, std::min(ow, (s.w - 1 + s.pad - kx) / s.stride + 1));
            for (int oy = 0; oy < oh; ++oy) {
              const int iy = oy * s.stride - s.pad + ky;
              if (iy < 0 || iy >= s.h) continue;
              T* row = dst + static_cast<int64_t>(iy) * s.w - s.pad + kx;
              const T* gr = src + static_cast<int64_t>(oy) * ow;
              if (s.stride == 1) {
                for (int ox = lo; ox < hi; ++ox) row[ox] += gr[ox];
              } else {
                for (int ox = lo; ox < hi; ++ox) row[ox * s.stride] += gr[ox];
              }
            }
          }
    }
  }
}

template <typename T>
void batchnorm_backward(const RowMap& map, const T* dy, const T* xhat, int c, int64_t hw,
                        const double* invstd, bool frozen, T* dx, double* dgamma) {
  const int cots = map.cotangents();
  const int per = map.diagonal ? 1 : map.batch;  // rows of one cotangent
  const double count = static_cast<double>(map.batch) * hw;
  // One (cotangent, channel) pair per iteration: its reductions, then its dx.
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < static_cast<int64_t>(cots) * c; ++p) {
    const int g = static_cast<int>(p / c), ch = static_cast<int>(p % c);
    double sdy = 0.0, sdyx = 0.0;
    for (int k = 0; k < per; ++k) {
      const int r = g * per + k, n = map.image(r);
      const T* a = dy + (static_cast<int64_t>(r) * c + ch) * hw;
      const T* x = xhat + (static_cast<int64_t>(n) * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) {
        sdy += static_cast<double>(a[i]);
        sdyx += static_cast<double>(a[i]) * static_cast<double>(x[i]);
      }
    }
    dgamma[static_cast<int64_t>(g) * c + ch] += sdyx;
    const T mdy = frozen ? T(0) : static_cast<T>(sdy / count);
    const T mdyx = frozen ? T(0) : static_cast<T>(sdyx / count);
    const T is = static_cast<T>(invstd[ch]);
    for (int k = 0; k < per; ++k) {
      const int r = g * per + k, n = map.image(r);
      const int64_t off = (static_cast<int64_t>(r) * c + ch) * hw;
      const T* x = xhat + (static_cast<int64_t>(n) * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) dx[off + i] += bn_backward(dy[off + i], x[i], mdy, mdyx, is);
    }
  }
}

template <typename T>
void relu_backward(const RowMap& map, const T* dy, const T* pre, int64_t numel, T* dx) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < map.rows; ++r) {
    const T* p = pre + static_cast<int64_t>(map.image(r)) * numel;
    const int64_t off = static_cast<int64_t>(r) * numel;
    for (int64_t i = 0; i < numel; ++i) dx[off + i] += relu_code(p[i]) ? dy[off + i] : T(0);
  }
}

template <typename T>
void accumulate(const T* dy, int64_t n, T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i];
}

// Adjoint of the separable forward: each output's share (dy / cells) goes to its (up to) 3x3
// window, first along rows, then down the columns.
template <typename T>
void avgpool3_backward(const T* dy, int rows, int c, int h, int w, T* dx) {
#pragma omp parallel
  {
    std::vector<T> share(w), col(w);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < static_cast<int64_t>(rows) * c; ++p) {
      const T* g = dy + p * h * w;
      T* d = dx + p * h * w;
      for (int oy = 0; oy < h; ++oy) {
        const int y0 = std::max(oy - 1, 0), y1 = std::min(oy + 1, h - 1);
        const T nrows = static_cast<T>(y1 - y0 + 1);
        const T* gr = g + oy * w;
        for (int ox = 0; ox < w; ++ox) {
          const int x0 = std::max(ox - 1, 0), x1 = std::min(ox + 1, w - 1);
          share[ox] = gr[ox] / (nrows * static_cast<T>(x1 - x0 + 1));
        }
        // col[ix] = sum of the shares of the outputs whose window covers column ix.
        for (int ix = 0; ix < w; ++ix) {
          T s = share[ix];
          if (ix > 0) s += share[ix - 1];
          if (ix + 1 < w) s += share[ix + 1];
          col[ix] = s;
        }
        for (int iy = y0; iy <= y1; ++iy) {
          T* r = d + iy * w;
          for (int ix = 0; ix < w; ++ix) r[ix] += col[ix];
        }
      }
    }
  }
}

template <typename T>
void avgpool2_backward(const T* dy, int rows, int c, int h, int w, T* dx) {
  const int oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < static_cast<int64_t>(rows) * c; ++p) {
    const T* g = dy + p * oh * ow;
    T* d = dx + p * h * w;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const T share = g[oy * ow + ox] / T(4);
        T* d0 = d + (2 * oy) * w + 2 * ox;
        d0[0] += share;
        d0[1] += share;
        d0[w] += share;
        d0[w + 1] += share;
      }
  }
}

template <typename T>
void global_avgpool_backward(const T* dy, int rows, int c, int64_t hw, T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < static_cast<int64_t>(rows) * c; ++p) {
    const T share = static_cast<T>(static_cast<double>(dy[p]) / static_cast<double>(hw));
    for (int64_t i = 0; i < hw; ++i) dx[p * hw + i] += share;
  }
}

template <typename T>
void linear_backward(const RowMap& map, const T* dy, const T* x, const T* w, int in, int out,
                     T* dx, T* dw) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < map.rows; ++r)
    for (int i = 0; i < in; ++i) {
      double acc = 0.0;
      for (int o = 0; o < out; ++o)
        acc += static_cast<double>(w[static_cast<int64_t>(o) * in + i]) * dy[static_cast<int64_t>(r) * out + o];
      dx[static_cast<int64_t>(r) * in + i] += static_cast<T>(acc);
    }
  const int per = map.diagonal ? 1 : map.batch;
#pragma omp parallel for schedule(static)
  for (int g = 0; g < map.cotangents(); ++g)
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) {
        double acc = 0.0;
        for (int k = 0; k < per; ++k) {
          const int r = g * per + k;
          acc += static_cast<double>(dy[static_cast<int64_t>(r) * out + o]) *
                 x[static_cast<int64_t>(map.image(r)) * in + i];
        }
        dw[(static_cast<int64_t>(g) * out + o) * in + i] += static_cast<T>(acc);
      }
}

#define HN_INSTANTIATE(T)                                                                       \
  template void conv2d_backward_data<T>(const ConvShape&, const T*, const T*, T*, bool);               \
  template void batchnorm_backward<T>(const RowMap&, const T*, const T*, int, int64_t,            \
                                      const double*, bool, T*, double*);                         \
  template void relu_backward<T>(const RowMap&, const T*, const T*, int64_t, T*);                \
  template void accumulate<T>(const T*, int64_t, T*);                                            \
  template void avgpool3_backward<T>(const T*, int, int, int, int, T*);                          \
  template void avgpool2_backward<T>(const T*, int, int, int, int, T*);                          \
  template void global_avgpool_backward<T>(const T*, int, int, int64_t, T*);                     \
  template void linear_backward<T>(const RowMap&, const T*, const T*, const T*, int, int, T*, T*);
HN_INSTANTIATE(float)
HN_INSTANTIATE(double)
#undef HN_INSTANTIATE

}  // namespace hn::kernels
