#include "engine/cpu_ntk.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include "kernels/cpu_backward.hpp"
#include "kernels/cpu_ops.hpp"
#include "kernels/onednn_conv.hpp"

namespace hn::engine {

using net::Step;
using net::StepKind;

NtkLayout ntk_layout(const net::Plan& plan, const LoweredPlan& L) {
  NtkLayout out;
  out.block_of_step.assign(L.steps.size(), -1);
  for (size_t i = 0; i < L.steps.size(); ++i) {
    const Step& st = L.steps[i];
    ParamBlock b;
    if (st.kind == StepKind::kConv) {
      b.kind = ParamBlock::kConv;
      b.slot = st.slot;
      b.size = net::slot_info(st.slot, plan.num_classes).numel();
    } else if (st.kind == StepKind::kBatchNorm) {
      b.kind = ParamBlock::kGamma;
      b.bn = st.bn;
      b.size = plan.bn_channels[st.bn];
    } else if (st.kind == StepKind::kLinear) {
      b.kind = ParamBlock::kLinear;
      b.slot = st.slot;
      b.size = net::slot_info(st.slot, plan.num_classes).numel();
    } else {
      continue;
    }
    b.offset = out.params;
    out.params += b.size;
    out.block_of_step[i] = static_cast<int64_t>(out.blocks.size());
    out.blocks.push_back(b);
  }
  return out;
}

ForwardOptions ntk_forward_options(bool batch_norm) {
  ForwardOptions fopt;
  fopt.batch_norm = batch_norm;
  fopt.report_sites = false;
  fopt.keep_values = true;
  return fopt;
}

int ntk_cotangents_per_pass(int n, const NtkOptions& opt) {
  return opt.exact ? std::clamp(opt.max_rows / n, 1, n) : n;
}

template <typename T>
void gram_accumulate(const T* rows, int n, int64_t cols, int64_t ld, double* theta, std::vector<double>& scratch) {
  constexpr int64_t kChunk = 4096;
  scratch.resize(static_cast<size_t>(n) * std::min(kChunk, cols));
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t w = std::min(kChunk, cols - c0);
    for (int i = 0; i < n; ++i)
      for (int64_t j = 0; j < w; ++j)
        scratch[static_cast<size_t>(i) * w + j] = static_cast<double>(rows[static_cast<size_t>(i) * ld + c0 + j]);
    kernels::syrk_lower<double>(n, static_cast<int>(w), 1.0, scratch.data(), static_cast<int>(w), 1.0, theta, n);
  }
}

namespace {
// The upper triangle of theta (n x n, row-major) from its lower one.
void mirror_lower(std::vector<double>& theta, int n) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) theta[size_t(j) * n + i] = theta[size_t(i) * n + j];
}

template <typename T>
struct NtkWorkspace {
  std::vector<std::vector<T>> pool;
  std::vector<T> dyt, colk, dw_all, slab;
  std::vector<double> gram_scratch;
  NtkGradients<T> grads;  // cpu_ntk_gram's G when the cotangents need several passes
};

// Where the backward puts cotangent c's gradient of block b: in G (rows `params` apart, blocks at
// their offsets), or, for the per-layer Gram, in a slab holding one block at a time (rows b.size
// apart) whose rows are folded into theta (FP64 syrk) as soon as the block is complete.
template <typename T>
struct GradTarget {
  T* g = nullptr;
  int64_t params = 0;
  T* slab = nullptr;
  double* theta = nullptr;
  std::vector<double>* scratch = nullptr;
  T* at(int cot, const ParamBlock& b) const {
    return slab ? slab + static_cast<int64_t>(cot) * b.size : g + static_cast<int64_t>(cot) * params + b.offset;
  }
};

// The backward passes of one architecture (see the header); `target` receives the gradients.
// Returns, per block, whether the backward reached it (its rows written; the others' parameters
// do not reach the logits and their gradients are 0).
template <typename T>
std::vector<char> ntk_backward(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int n,
                               const NtkOptions& opt, const NtkLayout& layout, const LoweredPlan& L,
                               NtkWorkspace<T>& workspace, const GradTarget<T>& target) {
  if (n < 1) throw std::invalid_argument("ntk: need at least one image");
  if (target.slab && ntk_cotangents_per_pass(n, opt) < n)
    throw std::logic_error("ntk: a per-layer Gram needs every cotangent in one pass");
  const ForwardOptions fopt = ntk_forward_options(opt.batch_norm);
  const ForwardResult<T> fwd = cpu_forward<T>(plan, bank, x, n, fopt);
  const std::vector<ParamBlock>& blocks = layout.blocks;
  const std::vector<int64_t>& block_of_step = layout.block_of_step;
  std::vector<char> written(layout.blocks.size(), 0);

  int input_value = -1;
  for (const Step& st : L.steps)
    if (st.kind == StepKind::kInput) input_value = st.out;

  if (opt.labels && (!opt.exact || static_cast<int>(opt.labels->size()) < n))
    throw std::invalid_argument("ntk: cross-entropy mode needs exact and a label per image");
  // Cross-entropy mode: one cotangent, one pass.
  const int cotangents = opt.labels ? 1 : n;
  const int per_chunk = opt.labels ? 1 : ntk_cotangents_per_pass(n, opt);
  const int classes = plan.num_classes;
  // Gradient buffers come from a pool kept across steps and chunks (no allocation, page faults
  // and zeroing of fresh memory per step); a buffer is zeroed only for kernels that accumulate
  // into it, and a convolution's data gradient overwrites a buffer it is the first to write.
  // Kept per calling thread from architecture to architecture: after the first, no buffer is
  // allocated or first touched again (the pool holds the peak of one backward pass's live
  // gradients). References, so that the threads of the parallel regions below share the calling
  // thread's buffers.
  std::vector<std::vector<T>>& pool = workspace.pool;
  std::vector<T>& dyt = workspace.dyt;    // exact NTK's weight gradients (below)
  std::vector<T>& colk = workspace.colk;
  std::vector<T>& dw_all = workspace.dw_all;
  auto take = [&](size_t sz) {
    size_t best = pool.size();
    for (size_t i = 0; i < pool.size(); ++i)
      if (pool[i].size() >= sz && (best == pool.size() || pool[i].size() < pool[best].size())) best = i;
    std::vector<T> b;
    if (best < pool.size()) {
      b = std::move(pool[best]);
      pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(best));
    } else {
      b.resize(sz);
    }
    return b;
  };
  for (int c0 = 0; c0 < cotangents; c0 += per_chunk) {
    const int cots = std::min(per_chunk, n - c0);
    const kernels::RowMap map = opt.exact ? kernels::RowMap{cots * n, n, false}
                                          : kernels::RowMap{n, n, true};
    std::vector<std::vector<T>> grad(plan.values.size());
    auto numel = [&](int v) { return plan.values[v].numel(); };
    // The gradient buffer of v, zeroed on first use (for kernels that add into it).
    auto grad_of = [&](int v) -> T* {
      const size_t sz = static_cast<size_t>(map.rows) * numel(v);
      if (grad[v].empty()) {
        grad[v] = take(sz);
        std::fill_n(grad[v].data(), sz, T(0));
      }
      return grad[v].data();
    };
    // The buffer of v for a kernel that may overwrite it: *first says it holds nothing yet.
    auto grad_for_write = [&](int v, bool* first) -> T* {
      *first = grad[v].empty();
      if (*first) grad[v] = take(static_cast<size_t>(map.rows) * numel(v));
      return grad[v].data();
    };
    // Cotangent of row r: ones on the logits of its own image, for the cotangent's image; in
    // cross-entropy mode (one cotangent, rows = images) d(mean CE)/d(logits) = (softmax(logits)
    // - onehot(label)) / images, in FP64.
    T* dlogits = grad_of(L.rep[plan.logits]);
    if (opt.labels) {
      const T* logits = fwd.values[L.rep[plan.logits]].get();
      for (int r = 0; r < n; ++r) {
        const int y = (*opt.labels)[r];
        if (y < 0 || y >= classes) throw std::invalid_argument("ntk: a label outside [0, classes)");
        double mx = -std::numeric_limits<double>::infinity(), z = 0.0;
        for (int c = 0; c < classes; ++c) mx = std::max(mx, double(logits[int64_t(r) * classes + c]));
        for (int c = 0; c < classes; ++c) z += std::exp(double(logits[int64_t(r) * classes + c]) - mx);
        for (int c = 0; c < classes; ++c) {
          const double p = std::exp(double(logits[int64_t(r) * classes + c]) - mx) / z;
          dlogits[int64_t(r) * classes + c] = static_cast<T>((p - (c == y ? 1.0 : 0.0)) / n);
        }
      }
    } else {
      for (int r = 0; r < map.rows; ++r)
        if (map.diagonal || map.image(r) == c0 + map.cotangent(r))
          std::fill_n(dlogits + static_cast<int64_t>(r) * classes, classes, T(1));
    }
    auto g_row = [&](int cot, const ParamBlock& b) { return target.at(opt.exact ? c0 + cot : cot, b); };

    for (int i = static_cast<int>(L.steps.size()) - 1; i >= 0; --i) {
      const Step& st = L.steps[i];
      if (st.out < 0 || grad[st.out].empty()) continue;
      const T* dy = grad[st.out].data();
      const net::Shape si = st.in0 >= 0 ? plan.values[st.in0] : net::Shape{};
      switch (st.kind) {
        case StepKind::kInput:
        case StepKind::kZero:
        case StepKind::kBlockEnd:
          break;
        case StepKind::kLinear: {
          const ParamBlock& b = blocks[block_of_step[i]];
          std::vector<T> dw(static_cast<size_t>(map.cotangents()) * b.size, T(0));
          kernels::linear_backward(map, dy, fwd.values[st.in0].get(), bank.slot(st.slot),
                                   si.c, classes, grad_of(st.in0), dw.data());
          for (int g = 0; g < map.cotangents(); ++g)
            std::copy_n(dw.data() + static_cast<size_t>(g) * b.size, b.size, g_row(g, b));
          break;
        }
        case StepKind::kGlobalAvgPool:
          kernels::global_avgpool_backward(dy, map.rows, si.c, si.hw(), grad_of(st.in0));
          break;
        case StepKind::kRelu:
          kernels::relu_backward(map, dy, fwd.values[st.in0].get(), si.numel(), grad_of(st.in0));
          break;
        case StepKind::kBatchNorm: {
          const ParamBlock& b = blocks[block_of_step[i]];
          std::vector<double> dgamma(static_cast<size_t>(map.cotangents()) * si.c, 0.0);
          kernels::batchnorm_backward(map, dy, fwd.values[st.out].get(), si.c, si.hw(),
                                      fwd.bn_invstd[st.bn].data(), !opt.exact || opt.frozen_bn,
                                      grad_of(st.in0), dgamma.data());
          for (int g = 0; g < map.cotangents(); ++g)
            for (int c = 0; c < si.c; ++c) g_row(g, b)[c] = static_cast<T>(dgamma[size_t(g) * si.c + c]);
          break;
        }
        case StepKind::kAdd:
          kernels::accumulate(dy, static_cast<int64_t>(map.rows) * numel(st.out), grad_of(st.in0));
          kernels::accumulate(dy, static_cast<int64_t>(map.rows) * numel(st.out), grad_of(st.in1));
          break;
        case StepKind::kAvgPool3:
          kernels::avgpool3_backward(dy, map.rows, si.c, si.h, si.w, grad_of(st.in0));
          break;
        case StepKind::kAvgPool2:
          kernels::avgpool2_backward(dy, map.rows, si.c, si.h, si.w, grad_of(st.in0));
          break;
        case StepKind::kConv: {
          const net::SlotInfo info = net::slot_info(st.slot, classes);
          const kernels::ConvShape cs{map.rows, si.c, si.h, si.w, info.cout, st.k, st.stride, st.pad};
          if (st.in0 != input_value) {
            bool first = false;
            T* dx = grad_for_write(st.in0, &first);
            kernels::conv2d_backward_data(cs, dy, bank.slot(st.slot), dx, first);
          }
          const int kdim = si.c * st.k * st.k;
          const int ohw = static_cast<int>(plan.values[st.out].hw());
          const bool direct = st.k == 1 && st.stride == 1;
          const T* xin = fwd.values[st.in0].get();
          const ParamBlock& b = blocks[block_of_step[i]];
          if (!map.diagonal) {
            // Exact NTK: the weight gradients of a group of kGroup cotangents in one GEMM,
            //   dW[(g, co)][kd] = sum over (image, p) of dY[(g, image)][co][p] col[image][kd][p],
            // M = kGroup x C_out, K = images x positions, dY and the im2col of the inputs laid out
            // (co | kd) x (image, p) first (the im2col once per chunk). Cotangent c always sits at
            // row block c % kGroup of GEMMs of fixed shapes, so its gradient depends neither on how
            // the cotangents were chunked (tests/test_ntk.cpp) nor on the thread count.
            // (Cross-entropy mode has one cotangent and no chunking: groups of one.)
            const int kGroup = opt.labels ? 1 : 8;
            const int64_t kk = static_cast<int64_t>(n) * ohw;
            const int64_t block = static_cast<int64_t>(info.cout) * kk;
            dyt.resize(static_cast<size_t>(kGroup * block));
            colk.resize(static_cast<size_t>(kdim) * kk);
            dw_all.resize(static_cast<size_t>(kGroup) * b.size);
#pragma omp parallel
            {
              std::vector<T> col(direct ? 0 : static_cast<size_t>(kdim) * ohw);
#pragma omp for schedule(static)
              for (int img = 0; img < n; ++img) {
                const T* src = xin + static_cast<int64_t>(img) * si.numel();
                if (!direct) {
                  kernels::im2col_image(cs, src, col.data());
                  src = col.data();
                }
                for (int kd = 0; kd < kdim; ++kd)
                  std::copy_n(src + static_cast<int64_t>(kd) * ohw, ohw, colk.data() + kd * kk + int64_t(img) * ohw);
              }
            }
            for (int first = c0; first < c0 + cots;) {
              const int group_end = (first / kGroup + 1) * kGroup;
              const int last = std::min(c0 + cots, group_end);  // cotangents [first, last) of this group
              const int p0 = first % kGroup, p1 = p0 + (last - first);
              std::fill_n(dyt.data(), p0 * block, T(0));
              std::fill(dyt.data() + p1 * block, dyt.data() + kGroup * block, T(0));
#pragma omp parallel for schedule(static)
              for (int r = (first - c0) * n; r < (last - c0) * n; ++r) {
                const int pos = p0 + r / n - (first - c0), img = r % n;
                for (int co = 0; co < info.cout; ++co)
                  std::copy_n(dy + (static_cast<int64_t>(r) * info.cout + co) * ohw, ohw,
                              dyt.data() + pos * block + co * kk + int64_t(img) * ohw);
              }
              // Fixed column slices of 36 (not one per thread), one GEMM each, over the threads.
              constexpr int kSlice = 36;
              const int slices = (kdim + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
              for (int sl = 0; sl < slices; ++sl) {
                const int j0 = sl * kSlice, w = std::min(kSlice, kdim - j0);
                kernels::gemm<T>(false, true, kGroup * info.cout, w, static_cast<int>(kk), T(1), dyt.data(),
                                 static_cast<int>(kk), colk.data() + j0 * kk, static_cast<int>(kk), T(0),
                                 dw_all.data() + j0, kdim);
              }
              for (int c = first; c < last; ++c)
                std::copy_n(dw_all.data() + static_cast<size_t>(p0 + c - first) * b.size, b.size, g_row(c - c0, b));
              first = last;
            }
            break;
          }
          // ntk_fast: each image is its own cotangent: dW[image] = dY[image] col(X[image])^T.
          if constexpr (std::is_same_v<T, float>) {
            if (kernels::onednn_conv_applies(cs)) {
              // FP32 through oneDNN: fixed slices of kSlice images, one grouped backward-weights
              // call each (no im2col), over the threads; a slice's gradients depend only on its
              // own images, so neither the population nor the thread count changes them.
              constexpr int kSlice = 8;
              const int slices = (n + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
              for (int sl = 0; sl < slices; ++sl) {
                const int i0 = sl * kSlice;
                kernels::ConvShape part = cs;
                part.batch = std::min(kSlice, n - i0);
                const T* xs = xin + static_cast<int64_t>(i0) * si.numel();
                const T* dys = dy + static_cast<int64_t>(i0) * info.cout * ohw;
                if (target.slab) {  // rows b.size apart: written in place
                  kernels::onednn_conv_weight_grads_per_image(part, xs, dys, g_row(i0, b));
                } else {
                  static thread_local std::vector<float> tmp;
                  tmp.resize(static_cast<size_t>(part.batch) * b.size);
                  kernels::onednn_conv_weight_grads_per_image(part, xs, dys, tmp.data());
                  for (int j = 0; j < part.batch; ++j)
                    std::copy_n(tmp.data() + static_cast<size_t>(j) * b.size, b.size, g_row(i0 + j, b));
                }
              }
              break;
            }
          }
#pragma omp parallel
          {
            std::vector<T> col(direct ? 0 : static_cast<size_t>(kdim) * ohw);
#pragma omp for schedule(static)
            for (int g = 0; g < map.cotangents(); ++g) {
              const T* src = xin + static_cast<int64_t>(g) * si.numel();
              if (!direct) {
                kernels::im2col_image(cs, src, col.data());
                src = col.data();
              }
              kernels::gemm<T>(false, true, info.cout, kdim, ohw, T(1), dy + static_cast<int64_t>(g) * info.cout * ohw,
                               ohw, src, ohw, T(0), g_row(g, b), kdim);
            }
          }
          break;
        }
      }
      if (block_of_step[i] >= 0) written[static_cast<size_t>(block_of_step[i])] = 1;
      if (block_of_step[i] >= 0 && target.slab)  // the block is complete: fold it into theta
        gram_accumulate(target.slab, n, blocks[block_of_step[i]].size, blocks[block_of_step[i]].size,
                        target.theta, *target.scratch);
      pool.push_back(std::move(grad[st.out]));
      grad[st.out] = {};
    }
    for (auto& g : grad)
      if (!g.empty()) pool.push_back(std::move(g));
    if (!opt.exact) break;
  }
  return written;
}

template <typename T>
NtkWorkspace<T>& thread_workspace() {
  // Kept per calling thread from architecture to architecture: after the first, no buffer is
  // allocated or first touched again.
  static thread_local NtkWorkspace<T> workspace;
  return workspace;
}

template <typename T>
void gradients_into(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int n, const NtkOptions& opt,
                    NtkGradients<T>& out, NtkWorkspace<T>& workspace) {
  if (n < 1) throw std::invalid_argument("ntk: need at least one image");
  const LoweredPlan L = lower_plan(plan, ntk_forward_options(opt.batch_norm));
  const NtkLayout layout = ntk_layout(plan, L);
  out.images = n;
  out.layout = layout.blocks;
  out.params = layout.params;
  // Never shrunk: a reused buffer keeps the largest size it had (no reallocation, zeroing or
  // first touch when architectures of other sizes alternate); rows are out.params apart.
  if (out.g.size() < static_cast<size_t>(n) * out.params) out.g.resize(static_cast<size_t>(n) * out.params);
  // Every block a backward step reaches is written (not added to) for every row; the others
  // (parameters no logit depends on: blocks whose step no gradient reaches) are zeroed.
  GradTarget<T> target;
  target.g = out.g.data();
  target.params = out.params;
  const std::vector<char> reached = ntk_backward(plan, bank, x, n, opt, layout, L, workspace, target);
  for (size_t k = 0; k < out.layout.size(); ++k)
    if (!reached[k])
      for (int r = 0; r < n; ++r)
        std::fill_n(out.g.data() + static_cast<size_t>(r) * out.params + out.layout[k].offset, out.layout[k].size, T(0));
}

}  // namespace

template <typename T>
NtkGradients<T> cpu_ntk_gradients(const net::Plan& plan, const TypedBank<T>& bank, const T* x,
                                  int n, const NtkOptions& opt) {
  NtkGradients<T> out;
  cpu_ntk_gradients_into(plan, bank, x, n, opt, out);
  return out;
}

template <typename T>
void cpu_ntk_gradients_into(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int n,
                            const NtkOptions& opt, NtkGradients<T>& out) {
  gradients_into(plan, bank, x, n, opt, out, thread_workspace<T>());
}

template <typename T>
std::vector<double> cpu_ntk_gram(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int n,
                                 const NtkOptions& opt) {
  if (n < 1) throw std::invalid_argument("ntk: need at least one image");
  NtkWorkspace<T>& ws = thread_workspace<T>();
  if (ntk_cotangents_per_pass(n, opt) < n) {
    // Cotangents in several passes: theta's cross terms need every row of a block at once, so G
    // is materialised (per thread, reused) and multiplied once.
    gradients_into(plan, bank, x, n, opt, ws.grads, ws);
    return gram_fp64(ws.grads);
  }
  const LoweredPlan L = lower_plan(plan, ntk_forward_options(opt.batch_norm));
  const NtkLayout layout = ntk_layout(plan, L);
  int64_t largest = 0;
  for (const ParamBlock& b : layout.blocks) largest = std::max(largest, b.size);
  if (ws.slab.size() < static_cast<size_t>(n) * largest) ws.slab.resize(static_cast<size_t>(n) * largest);
  std::vector<double> theta(static_cast<size_t>(n) * n, 0.0);
  GradTarget<T> target;
  target.slab = ws.slab.data();
  target.theta = theta.data();
  target.scratch = &ws.gram_scratch;
  ntk_backward(plan, bank, x, n, opt, layout, L, ws, target);
  mirror_lower(theta, n);
  return theta;
}

template <typename T>
std::vector<kernels::Condition> cpu_ntk_population(const std::vector<const net::Plan*>& members,
                                                   const TypedBank<T>& bank, const T* x, int n, const NtkOptions& opt) {
  std::vector<kernels::Condition> out(members.size());
  each_member(members.size(), [&](size_t m) {
    out[m] = kernels::condition_number(cpu_ntk_gram<T>(*members[m], bank, x, n, opt), n);
  });
  return out;
}

template <typename T>
std::vector<double> gram_fp64(const NtkGradients<T>& grads) {
  const int n = grads.images;
  std::vector<double> theta(static_cast<size_t>(n) * n, 0.0);
  std::vector<double> scratch;
  gram_accumulate(grads.g.data(), n, grads.params, grads.params, theta.data(), scratch);
  mirror_lower(theta, n);
  return theta;
}

TypedBank<double> synflow_bank(uint64_t score_seed, int num_classes, net::Space space) {
  net::WeightBank b = net::WeightBank::generate(net::InitScheme::kDefault, score_seed, num_classes, 0, space);
  for (int slot = 0; slot < net::kNumSlots; ++slot) {
    std::vector<float> v = b.slot(slot);
    for (float& x : v) x = std::abs(x);
    b.set_slot(slot, std::move(v));
  }
  return TypedBank<double>(b);
}

template <typename T>
double cpu_zico(const net::Plan& plan, const TypedBank<T>& bank, const T* x, const std::vector<int>& labels,
                int images) {
  const int half = images / 2;
  if (half < 2) throw std::invalid_argument("zico: needs at least 4 images (two batches of 2)");
  if (static_cast<int>(labels.size()) < 2 * half) throw std::invalid_argument("zico: a label per image");
  NtkOptions opt;
  opt.exact = true;
  NtkGradients<T> g[2];
  std::vector<int> y[2];
  for (int h = 0; h < 2; ++h) {
    y[h].assign(labels.begin() + h * half, labels.begin() + (h + 1) * half);
    opt.labels = &y[h];
    gradients_into(plan, bank, x + static_cast<int64_t>(h) * half * net::kImageNumel, half, opt, g[h],
                   thread_workspace<T>());
  }
  double zico = 0.0;
  bool measured = false;
  for (const ParamBlock& b : g[0].layout) {
    if (b.kind == ParamBlock::kGamma) continue;  // convolution and linear weights only
    double sum = 0.0;
    for (int64_t i = 0; i < b.size; ++i) {
      const double a = double(g[0].g[b.offset + i]), c = double(g[1].g[b.offset + i]);
      const double sd = std::abs(a - c) / 2.0;
      if (sd != 0.0) sum += (std::abs(a) + std::abs(c)) / 2.0 / sd;
    }
    if (sum > 0.0) {
      zico += std::log(sum);
      measured = true;
    }
  }
  return measured ? zico : std::numeric_limits<double>::quiet_NaN();
}

template double cpu_zico(const net::Plan&, const TypedBank<float>&, const float*, const std::vector<int>&, int);
template double cpu_zico(const net::Plan&, const TypedBank<double>&, const double*, const std::vector<int>&, int);

SynflowValues cpu_synflow(const net::Plan& plan, const TypedBank<double>& abs_bank) {
  NtkOptions opt;
  opt.exact = false;
  opt.batch_norm = false;
  const std::vector<double> ones(net::kImageNumel, 1.0);
  NtkGradients<double> g;
  cpu_ntk_gradients_into<double>(plan, abs_bank, ones.data(), 1, opt, g);
  SynflowValues out;
  for (const ParamBlock& b : g.layout) {
    const double* w = b.kind == ParamBlock::kLinear || b.kind == ParamBlock::kConv ? abs_bank.slot(b.slot) : nullptr;
    if (!w) continue;  // (no BN gammas without BN)
    const double* gr = g.g.data() + b.offset;
    for (int64_t i = 0; i < b.size; ++i) {
      const double a = std::abs(w[i]), d = std::abs(gr[i]);
      out.synflow += a * d;
      out.logsynflow += a * std::log1p(d);
    }
  }
  return out;
}

template void cpu_ntk_gradients_into(const net::Plan&, const TypedBank<float>&, const float*, int,
                                     const NtkOptions&, NtkGradients<float>&);
template void cpu_ntk_gradients_into(const net::Plan&, const TypedBank<double>&, const double*, int,
                                     const NtkOptions&, NtkGradients<double>&);
template NtkGradients<float> cpu_ntk_gradients(const net::Plan&, const TypedBank<float>&, const float*,
                                               int, const NtkOptions&);
template NtkGradients<double> cpu_ntk_gradients(const net::Plan&, const TypedBank<double>&,
                                                const double*, int, const NtkOptions&);
template std::vector<double> gram_fp64(const NtkGradients<float>&);
template std::vector<double> cpu_ntk_gram(const net::Plan&, const TypedBank<float>&, const float*, int,
                                          const NtkOptions&);
template std::vector<double> cpu_ntk_gram(const net::Plan&, const TypedBank<double>&, const double*, int,
                                          const NtkOptions&);
template std::vector<kernels::Condition> cpu_ntk_population(const std::vector<const net::Plan*>&,
                                                            const TypedBank<float>&, const float*, int,
                                                            const NtkOptions&);
template std::vector<kernels::Condition> cpu_ntk_population(const std::vector<const net::Plan*>&,
                                                            const TypedBank<double>&, const double*, int,
                                                            const NtkOptions&);
template void gram_accumulate(const float*, int, int64_t, int64_t, double*, std::vector<double>&);
template void gram_accumulate(const double*, int, int64_t, int64_t, double*, std::vector<double>&);
template std::vector<double> gram_fp64(const NtkGradients<double>&);

}  // namespace hn::engine
