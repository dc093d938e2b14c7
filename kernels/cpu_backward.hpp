// CPU twins of the backward kernels used by the NTK proxies. A backward pass runs on "rows":
// gradient tensors that each belong to one forward image (image_of_row) and, for the exact NTK,
// one cotangent (several rows per cotangent). Every kernel accumulates into its output (dx +=),
// splits work over rows or channels with a fixed partition, and so does not depend on the
// thread count. Instantiated for float and double.
#pragma once
#include <cstdint>

#include "kernels/cpu_ops.hpp"

namespace hn::kernels {

// Row r of a backward batch: forward image r % batch; cotangent r / batch (exact NTK), or r
// itself when `diagonal` (ntk_fast: each image is its own cotangent, rows = batch).
struct RowMap {
  int rows;
  int batch;
  bool diagonal;
  int image(int r) const { return diagonal ? r : r % batch; }
  int cotangent(int r) const { return diagonal ? r : r / batch; }
  int cotangents() const { return diagonal ? rows : rows / batch; }
};

template <typename T>
void im2col_image(const ConvShape& s, const T* x, T* col);

// dx[r] += conv_transpose(dy[r], w) for s.batch rows (dx[r] = ... with `overwrite`: dx's contents
// are then ignored). FP32 stride-1 "same" convolutions (NB201's 3x3) run as the forward convolution
// of dy with the flipped, channel-transposed weights through oneDNN where it is built.
template <typename T>
void conv2d_backward_data(const ConvShape& s, const T* dy, const T* w, T* dx, bool overwrite = false);

// Train-mode BN backward (gamma = 1): with batch statistics in the graph,
//   dx = invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), means over a cotangent's images;
// with frozen statistics (ntk_fast), dx = invstd * dy. dgamma[cotangent][c] = sum dy * xhat.
template <typename T>
void batchnorm_backward(const RowMap& map, const T* dy, const T* xhat, int c, int64_t hw,
                        const double* invstd, bool frozen, T* dx, double* dgamma);

// dx[r] += dy[r] * (pre[image(r)] > 0)
template <typename T>
void relu_backward(const RowMap& map, const T* dy, const T* pre, int64_t numel, T* dx);

template <typename T>
void accumulate(const T* dy, int64_t n, T* dx);

template <typename T>
void avgpool3_backward(const T* dy, int rows, int c, int h, int w, T* dx);
template <typename T>
void avgpool2_backward(const T* dy, int rows, int c, int h, int w, T* dx);
template <typename T>
void global_avgpool_backward(const T* dy, int rows, int c, int64_t hw, T* dx);

// Linear y = W x + b: dx[r] += W^T dy[r]; dw[cotangent] += dy[r] (x) x[image(r)].
template <typename T>
void linear_backward(const RowMap& map, const T* dy, const T* x, const T* w, int in, int out,
                     T* dx, T* dw);

}  // namespace hn::kernels
