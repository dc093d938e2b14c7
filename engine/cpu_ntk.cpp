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

template <typename T>
NtkGradients<T> cpu_ntk_gradients(const net::Plan& plan, const TypedBank<T>& bank, const T* x,
                                  int n, const NtkOptions& opt) {
  if (n < 1) throw std::invalid_argument("ntk: need at least one image");
  ForwardOptions fopt;
  fopt.report_sites = false;
  fopt.keep_values = true;
  const LoweredPlan L = lower_plan(plan, fopt);
  const ForwardResult<T> fwd = cpu_forward<T>(plan, bank, x, n, fopt);

  NtkGradients<T> out;
  out.images = n;
  const NtkLayout layout = ntk_layout(plan, L);
  out.layout = layout.blocks;
  out.params = layout.params;
  const std::vector<int64_t>& block_of_step = layout.block_of_step;
  out.g.assign(static_cast<size_t>(n) * out.params, T(0));

  int input_value = -1;
  for (const Step& st : L.steps)
    if (st.kind == StepKind::kInput) input_value = st.out;

  const int per_chunk = opt.exact ? std::clamp(opt.max_rows / n, 1, n) : n;
  const int classes = plan.num_classes;
  for (int c0 = 0; c0 < n; c0 += per_chunk) {
    const int cots = std::min(per_chunk, n - c0);
    const kernels::RowMap map = opt.exact ? kernels::RowMap{cots * n, n, false}
                                          : kernels::RowMap{n, n, true};
    std::vector<std::unique_ptr<T[]>> grad(plan.values.size());
    auto numel = [&](int v) { return plan.values[v].numel(); };
    auto grad_of = [&](int v) -> T* {
      if (!grad[v]) {
        const size_t sz = static_cast<size_t>(map.rows) * numel(v);
        grad[v].reset(new T[sz]);
        std::fill_n(grad[v].get(), sz, T(0));
      }
      return grad[v].get();
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
      if (st.out < 0 || !grad[st.out]) continue;
      const T* dy = grad[st.out].get();
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
          if (st.in0 != input_value)
            kernels::conv2d_backward_data(cs, dy, bank.slot(st.slot), grad_of(st.in0));
          // Weight gradient of each cotangent: sum over its rows of dY[r] col(X[image(r)])^T.
          const int kdim = si.c * st.k * st.k;
          const int ohw = static_cast<int>(plan.values[st.out].hw());
          const bool direct = st.k == 1 && st.stride == 1;
          const T* xin = fwd.values[st.in0].get();
          std::vector<T> cols;
          if (!direct) {
            cols.resize(static_cast<size_t>(n) * kdim * ohw);
#pragma omp parallel for schedule(static)
            for (int img = 0; img < n; ++img)
              kernels::im2col_image(cs, xin + static_cast<int64_t>(img) * si.numel(),
                                    cols.data() + static_cast<size_t>(img) * kdim * ohw);
          }
          const ParamBlock& b = out.layout[block_of_step[i]];
          const int per = map.diagonal ? 1 : map.batch;
#pragma omp parallel for schedule(static)
          for (int g = 0; g < map.cotangents(); ++g) {
            T* dw = g_row(g, b);
            for (int k = 0; k < per; ++k) {
              const int r = g * per + k, img = map.image(r);
              const T* col = direct ? xin + static_cast<int64_t>(img) * si.numel()
                                    : cols.data() + static_cast<size_t>(img) * kdim * ohw;
              kernels::gemm<T>(false, true, info.cout, kdim, ohw, T(1),
                               dy + static_cast<int64_t>(r) * info.cout * ohw, ohw, col, ohw, T(1),
                               dw, kdim);
            }
          }
          break;
        }
      }
      grad[st.out].reset();
    }
    if (!opt.exact) break;
  }
  return out;
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
    kernels::gemm<double>(false, true, n, n, static_cast<int>(w), 1.0, chunk.data(), static_cast<int>(w),
                          chunk.data(), static_cast<int>(w), 1.0, theta.data(), n);
  }
  // Exactly symmetric, whatever the GEMM's rounding.
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) theta[size_t(j) * n + i] = theta[size_t(i) * n + j];
  return theta;
}

template NtkGradients<float> cpu_ntk_gradients(const net::Plan&, const TypedBank<float>&, const float*,
                                               int, const NtkOptions&);
template NtkGradients<double> cpu_ntk_gradients(const net::Plan&, const TypedBank<double>&,
                                                const double*, int, const NtkOptions&);
template std::vector<double> gram_fp64(const NtkGradients<float>&);
template std::vector<double> gram_fp64(const NtkGradients<double>&);

}  // namespace hn::engine
