// FP32 convolutions through oneDNN (the library behind PyTorch's CPU convolutions), for the shapes
// where it beats im2col + OpenBLAS: NB201's 3x3 convolutions, 1.9-4.2x faster per image at batch 32
// on this project's 2-core AVX-512 machine (bench/NOTES.md). Built when HYBRIDNAS_ONEDNN is on
// (CMake: on by default with GCC when libdnnl-dev is found; off with clang, whose OpenMP runtime is
// not oneDNN's libgomp).
//
// Determinism: every call creates and runs its primitive with the calling thread's OpenMP thread
// count pinned to 1 (primitives are cached per thread and per shape), so oneDNN always picks the
// same blocking and runs on the calling thread; results are then bit-identical across thread
// counts, and, for the NB201 shapes, across batch sizes (an image's output does not depend on the
// images beside it). tests/test_kernels.cpp checks both on every shape of the network.
#pragma once
#include <string>

#include "kernels/cpu_ops.hpp"

namespace hn::kernels {

// Whether this build sends `s` to oneDNN: FP32 convolutions with k > 1 (1x1 convolutions stay
// one direct GEMM, which is faster).
bool onednn_conv_applies(const ConvShape& s);

// y = conv(x, w): s.batch NCHW images x [batch, cin, h, w] -> y [batch, cout, oh, ow], w
// [cout, cin, k, k], no bias, on the calling thread. Throws std::logic_error in a build without
// oneDNN.
void onednn_conv_forward(const ConvShape& s, const float* x, const float* w, float* y);

// Per-image weight gradients (ntk_fast): dw[i] (cout x cin x k x k) = the gradient of image i's
// convolution output dy[i] (cout x oh x ow) with respect to the weights, for i < s.batch images of
// x, written to dw (s.batch x cout x cin x k x k). One oneDNN backward-weights call of a grouped
// convolution (the images as groups of one image of batch x cin channels), on the calling thread.
// Deterministic; an image's gradient is the same bits whatever images share its call for the
// cells' shapes, not for the stem's (cin 3: another blocking per group count), so callers split
// images into fixed slices.
// Throws std::logic_error in a build without oneDNN.
void onednn_conv_weight_grads_per_image(const ConvShape& s, const float* x, const float* dy, float* dw);
// "oneDNN 2.6.3 (cpu isa: ...)" or "" without oneDNN (for `hybridnas --version`).
std::string onednn_description();

}  // namespace hn::kernels
