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
#include "kernels/linalg.hpp"

namespace hn::engine {

struct NtkOptions {
  bool exact = true;        // false: ntk_fast
  bool frozen_bn = false;   // exact path with BN statistics as constants (tests: equals ntk_fast)
  int max_rows = 512;       // exact: cotangents per chunk = max(1, max_rows / images)
  bool batch_norm = true;   // false: BN layers removed (SynFlow's network); no gamma blocks
  // Cross-entropy mode (ZiCo): one cotangent, the gradient of the mean cross-entropy of the
  // images' logits against these labels (images of them, each in [0, classes)); needs exact.
  // The gradients then have one row: d(mean CE) / d(parameters), BN statistics in the graph.
  const std::vector<int>* labels = nullptr;
};

// Where each parameter tensor sits in a gradient row.
struct ParamBlock {
  enum Kind { kConv, kGamma, kLinear } kind;
  int slot = -1;  // kConv, kLinear: weight slot
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

// theta's lower triangle (n x n, row-major) += R R^T for rows R (n x cols, rows `ld` apart),
// converted to FP64 in chunks of <= 4,096 columns (scratch: a buffer kept by the caller).
template <typename T>
void gram_accumulate(const T* rows, int n, int64_t cols, int64_t ld, double* theta, std::vector<double>& scratch);

// The forward options of the NTK's pass (activations and BN statistics kept, no sites); without
// BN (SynFlow), BN steps are the identity.
ForwardOptions ntk_forward_options(bool batch_norm = true);

// Cotangents per backward pass: all n for ntk_fast; max(1, max_rows / n) for the exact NTK.
int ntk_cotangents_per_pass(int n, const NtkOptions& opt);

// Theta (n x n, row-major, FP64, symmetric) of the first `images` images of x (images x 3 x 32 x
// 32), the same matrix as gram_fp64(cpu_ntk_gradients(...)) up to the order of FP64 sums.
// Accumulated per layer when one backward pass holds every cotangent (ntk_fast always; exact
// when images^2 <= max_rows): each parameter block's gradients (images x block size) are folded
// into theta as soon as the backward has produced them, and G is never materialised. Otherwise
// (exact, cotangents in several passes) the cross terms need every row of a block at once: G is
// materialised in a per-thread buffer and gram_fp64'd. Throws std::invalid_argument for
// images < 1.
template <typename T>
std::vector<double> cpu_ntk_gram(const net::Plan& plan, const TypedBank<T>& bank, const T* x,
                                 int images, const NtkOptions& opt);

// The NTK proxies of a population (SPEC.md 3): for every member, the condition number of its Theta
// (kernels::condition_number: LAPACK dsyevd). With at least a member per thread, each thread takes
// whole members (forward, backward, per-layer Gram and eigensolve), as the forward executor does
// at that size; with fewer, members run one after another, each backward parallel over its
// images (each_member). The CPU does not group members' steps (the GPU does: engine/cuda_ntk). A
// member's result is bit for bit the same whatever the population and the thread count.
template <typename T>
std::vector<kernels::Condition> cpu_ntk_population(const std::vector<const net::Plan*>& members,
                                                   const TypedBank<T>& bank, const T* x, int images,
                                                   const NtkOptions& opt);

}  // namespace hn::engine

namespace hn::engine {

// SynFlow (Tanaka et al., NeurIPS 2020) as zero-cost-nas computes it for NAS (Abdelfattah et al.,
// ICLR 2021: measures/synflow.py, the `bn=False` copy), and LogSynflow (Cavagnero et al., FreeREA,
// WACV 2023): every parameter replaced by its absolute value, BN layers removed, one input image of
// ones (3 x 32 x 32), FP64; R = the sum of the logits, g = dR/dw for every convolution and
// linear weight w (biases and BN take no part in the sum; BN is gone).
//   synflow    = sum over those weights of |w * g|
//   logsynflow = sum over those weights of |w| * log(|g| + 1)
// Higher is better for both. `abs_bank` holds the absolute values of the scoring bank
// (kDefault init, every slot incl. the linear bias). docs/proxies.md has the details.
struct SynflowValues {
  double synflow = 0.0, logsynflow = 0.0;
};
SynflowValues cpu_synflow(const net::Plan& plan, const TypedBank<double>& abs_bank);
// The absolute values of the scoring bank (kDefault init) for `score_seed`, in FP64.
TypedBank<double> synflow_bank(uint64_t score_seed, int num_classes, net::Space space = net::Space::kNb201);

// ZiCo (Li, Yang, Wang & Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
// Gradients", ICLR 2023), as its authors' code (SLDGroup/ZiCo compute_zico.py; AZ-NAS's NB201 copy)
// computes it: train-mode BN, the gradient g_h of the mean cross-entropy of mini-batch h (h = 1, 2)
// with respect to every convolution and linear weight; per layer, over the weights whose std over
// the two batches is not 0, S = sum mean_h |g_h| / std_h g_h (numpy's std: |g_1 - g_2| / 2); zico
// = the sum over layers with S > 0 of log S. The two batches are the halves of `images` (the first
// images / 2 and the next images / 2; an odd last image is unused), labels[i] the class of image i.
// Higher is better. NaN when no layer has S > 0 (the two batches' gradients agree everywhere, e.g.
// identical batches): not measurable. Throws std::invalid_argument for fewer than 4 images or a
// label out of range.
template <typename T>
double cpu_zico(const net::Plan& plan, const TypedBank<T>& bank, const T* x, const std::vector<int>& labels,
                int images);

}  // namespace hn::engine
