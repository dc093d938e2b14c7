#include "engine/cpu_ntk.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "kernels/cpu_backward.hpp"
#include "kernels/cpu_ops.hpp"

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
      b.slot = net::kSlotLinearWeight;
      b.size = net::slot_info(net::kSlotLinearWeight, plan.num_classes).numel();
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

namespace {
template <typename T>
struct NtkWorkspace {
  std::vector<std::vector<T>> pool;
  std::vector<T> dyt, colk, dw_all;
};
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
  if (n < 1) throw std::invalid_argument("ntk: need at least one image");
  ForwardOptions fopt;
  fopt.report_sites = false;
  fopt.keep_values = true;
  const LoweredPlan L = lower_plan(plan, fopt);
  const ForwardResult<T> fwd = cpu_forward<T>(plan, bank, x, n, fopt);

  out.images = n;
  const NtkLayout layout = ntk_layout(plan, L);
  out.layout = layout.blocks;
  out.params = layout.params;
  const std::vector<int64_t>& block_of_step = layout.block_of_step;
  // Every block a backward step reaches is written (not added to) for every row; the others
  // (parameters no logit depends on) are zeroed at the end.
  // Never shrunk: a reused buffer keeps the largest size it had (no reallocation, zeroing or
  // first touch when architectures of other sizes alternate); rows are out.params apart.
  if (out.g.size() < static_cast<size_t>(n) * out.params) out.g.resize(static_cast<size_t>(n) * out.params);
  std::vector<char> written(out.layout.size(), 0);

  int input_value = -1;
  for (const Step& st : L.steps)
    if (st.kind == StepKind::kInput) input_value = st.out;

  const int per_chunk = opt.exact ? std::clamp(opt.max_rows / n, 1, n) : n;
  const int classes = plan.num_classes;
  // Gradient buffers come from a pool kept across steps and chunks (no allocation, page faults
  // and zeroing of fresh memory per step); a buffer is zeroed only for kernels that accumulate
  // into it, and a convolution's data gradient overwrites a buffer it is the first to write.
  // Kept per calling thread from architecture to architecture: after the first, no buffer is
  // allocated or first touched again (the pool holds the peak of one backward pass's live
  // gradients). References, so that the threads of the parallel regions below share the calling
  // thread's buffers.
  static thread_local NtkWorkspace<T> workspace;
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
  for (int c0 = 0; c0 < n; c0 += per_chunk) {
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
    // Cotangent of row r: ones on the logits of its own image, for the cotangent's image.
    T* dlogits = grad_of(L.rep[plan.logits]);
    for (int r = 0; r < map.rows; ++r)
      if (map.diagonal || map.image(r) == c0 + map.cotangent(r))
        std::fill_n(dlogits + static_cast<int64_t>(r) * classes, classes, T(1));
    auto g_row = [&](int cot, const ParamBlock& b) {
      return out.g.data() + static_cast<size_t>(opt.exact ? c0 + cot : cot) * out.params + b.offset;
    };

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
          const ParamBlock& b = out.layout[block_of_step[i]];
          std::vector<T> dw(static_cast<size_t>(map.cotangents()) * b.size, T(0));
          kernels::linear_backward(map, dy, fwd.values[st.in0].get(), bank.slot(net::kSlotLinearWeight),
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
          const ParamBlock& b = out.layout[block_of_step[i]];
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
          const ParamBlock& b = out.layout[block_of_step[i]];
          if (!map.diagonal) {
            // Exact NTK: the weight gradients of a group of kGroup cotangents in one GEMM,
            //   dW[(g, co)][kd] = sum over (image, p) of dY[(g, image)][co][p] col[image][kd][p],
            // M = kGroup x C_out, K = images x positions, dY and the im2col of the inputs laid out
            // (co | kd) x (image, p) first (the im2col once per chunk). Cotangent c always sits at
            // row block c % kGroup of GEMMs of fixed shapes, so its gradient depends neither on how
            // the cotangents were chunked (tests/test_ntk.cpp) nor on the thread count.
            constexpr int kGroup = 8;
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
      if (block_of_step[i] >= 0) written[static_cast<size_t>(block_of_step[i])] = 1;  // its rows were written
      pool.push_back(std::move(grad[st.out]));
      grad[st.out] = {};
    }
    for (auto& g : grad)
      if (!g.empty()) pool.push_back(std::move(g));
    if (!opt.exact) break;
  }
  for (size_t k = 0; k < out.layout.size(); ++k)
    if (!written[k])
      for (int r = 0; r < n; ++r)
        std::fill_n(out.g.data() + static_cast<size_t>(r) * out.params + out.layout[k].offset, out.layout[k].size, T(0));
}

template <typename T>
std::vector<double> gram_fp64(const NtkGradients<T>& grads) {
  const int n = grads.images;
  const int64_t p = grads.params;
  std::vector<double> theta(static_cast<size_t>(n) * n, 0.0);
  constexpr int64_t kChunk = 4096;
  std::vector<double> chunk(static_cast<size_t>(n) * kChunk);
  for (int64_t c0 = 0; c0 < p; c0 += kChunk) {
    const int64_t w = std::min(kChunk, p - c0);
    for (int i = 0; i < n; ++i)
      for (int64_t j = 0; j < w; ++j)
        chunk[static_cast<size_t>(i) * w + j] = static_cast<double>(grads.g[static_cast<size_t>(i) * p + c0 + j]);
    kernels::syrk_lower<double>(n, static_cast<int>(w), 1.0, chunk.data(), static_cast<int>(w), 1.0, theta.data(), n);
  }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) theta[size_t(j) * n + i] = theta[size_t(i) * n + j];
  return theta;
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
template std::vector<double> gram_fp64(const NtkGradients<double>&);

}  // namespace hn::engine
