// The NTK proxies on the CPU (SPEC.md 3): per-image gradients of the summed logits with respect
// to every conv weight, BN gamma and the linear weight, their FP64 Gram matrix and its condition
// number.
//   ntk (exact): BN batch statistics are part of the graph, so every image's gradient depends on
//     all images. All cotangents go through one batched backward, in chunks of cotangents
//     (rows = cotangents x images), never one backward per image from scratch.
//   ntk_fast: BN statistics are constants in the backward, so each image's gradient depends only
//     on its own path: one batched backward of the images plus per-image weight-gradient products.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/cpu_forward.hpp"

namespace hn::engine {

struct NtkOptions {
  bool exact = true;        // false: ntk_fast
  bool frozen_bn = false;   // exact path with BN statistics as constants (tests: equals ntk_fast)
  int max_rows = 512;       // exact: cotangents per chunk = max(1, max_rows / images)
};

// Where each parameter tensor sits in a gradient row.
struct ParamBlock {
  enum Kind { kConv, kGamma, kLinear } kind;
  int slot = -1;  // kConv: weight slot
  int bn = -1;    // kGamma: BN layer
  int64_t offset = 0, size = 0;
};

// The gradient vector's layout for a lowered plan: one block per conv, BN and linear step, in step
// order (shared by the CPU and CUDA backends).
struct NtkLayout {
  std::vector<ParamBlock> blocks;
  std::vector<int64_t> block_of_step;  // index into blocks, -1 for steps without parameters
  int64_t params = 0;
};
NtkLayout ntk_layout(const net::Plan& plan, const LoweredPlan& lowered);

template <typename T>
struct NtkGradients {
  std::vector<ParamBlock> layout;
  int64_t params = 0;
  int images = 0;
  // images x params (row i = d(sum_c logit_c(x_i)) / d(parameters)); a buffer reused by
  // cpu_ntk_gradients_into may be longer: only the first images x params values are meaningful.
  std::vector<T> g;
};

template <typename T>
NtkGradients<T> cpu_ntk_gradients(const net::Plan& plan, const TypedBank<T>& bank, const T* x,
                                  int images, const NtkOptions& opt);
// The same into `out`, whose buffer is reused when it is large enough (a scorer keeps one per
// thread: no allocation, page faults or zeroing of images x params values per architecture).
template <typename T>
void cpu_ntk_gradients_into(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int images,
                            const NtkOptions& opt, NtkGradients<T>& out);

// Theta = G G^T in FP64: FP32 rows are converted in chunks of <= 4,096 columns and the chunk
// products (BLAS syrk, the lower triangle, mirrored) summed in FP64.
template <typename T>
std::vector<double> gram_fp64(const NtkGradients<T>& grads);

}  // namespace hn::engine
