// Executes a plan step by step on the host. Before running, the plan is lowered for the options:
// skipped BN / ReLU steps become aliases, and steps that feed neither the logits, a reported
// site nor an entropy block end are dropped (e.g. a conv edge into a node that never reaches node
// 3 still has its ReLU site, but its conv need not run). Activations are freed after their last
// use unless keep_values is set.
#include "engine/cpu_forward.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "kernels/cpu_ops.hpp"

namespace hn::engine {

using net::Step;
using net::StepKind;

template <typename T>
TypedBank<T>::TypedBank(const net::WeightBank& bank) : num_classes_(bank.num_classes()) {
  slots_.resize(net::kNumSlots);
  for (int s = 0; s < net::kNumSlots; ++s) {
    const auto& src = bank.slot(s);
    slots_[s].assign(src.begin(), src.end());
  }
}

LoweredPlan lower_plan(const net::Plan& plan, const ForwardOptions& opt) {
  LoweredPlan L;
  const int nv = static_cast<int>(plan.values.size());
  L.rep.resize(nv);
  for (int v = 0; v < nv; ++v) L.rep[v] = v;
  std::vector<Step> kept;
  for (Step st : plan.steps) {
    if (st.in0 >= 0) st.in0 = L.rep[st.in0];
    if (st.in1 >= 0) st.in1 = L.rep[st.in1];
    if ((st.kind == StepKind::kBatchNorm && !opt.batch_norm) ||
        (st.kind == StepKind::kRelu && !opt.relu)) {
      L.rep[st.out] = st.in0;
      continue;
    }
    kept.push_back(st);
  }
  // Dead-step elimination, backwards from the roots.
  std::vector<char> needed(nv, 0), keep(kept.size(), 0);
  const int logits = L.rep[plan.logits];
  for (int i = static_cast<int>(kept.size()) - 1; i >= 0; --i) {
    const Step& st = kept[i];
    const bool root = (st.kind == StepKind::kRelu && opt.report_sites) ||
                      (st.kind == StepKind::kBlockEnd && opt.rescale_blocks) ||
                      (st.out >= 0 && st.out == logits && opt.need_logits);
    if (root || (st.out >= 0 && needed[st.out])) {
      keep[i] = 1;
      if (st.in0 >= 0) needed[st.in0] = 1;
      if (st.in1 >= 0) needed[st.in1] = 1;
    }
  }
  L.last_use.assign(nv, -1);
  for (size_t i = 0; i < kept.size(); ++i) {
    if (!keep[i]) continue;
    const Step& st = kept[i];
    L.materialize.push_back(st.out >= 0 &&
                            (needed[st.out] || (st.out == logits && opt.need_logits)));
    L.steps.push_back(st);
    const int idx = static_cast<int>(L.steps.size()) - 1;
    if (st.in0 >= 0) L.last_use[st.in0] = idx;
    if (st.in1 >= 0) L.last_use[st.in1] = idx;
  }
  return L;
}

template <typename T>
ForwardResult<T> cpu_forward(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int batch,
                             const ForwardOptions& opt, const SiteCallback<T>& on_site) {
  if (batch < 1) throw std::invalid_argument("batch must be at least 1");
  if (bank.num_classes() != plan.num_classes)
    throw std::invalid_argument("weight bank and plan disagree on num_classes");
  const LoweredPlan L = lower_plan(plan, opt);
  ForwardResult<T> res;
  std::vector<std::unique_ptr<T[]>> buf(plan.values.size());
  if (opt.keep_values) {
    res.bn_mean.resize(plan.bn_channels.size());
    res.bn_invstd.resize(plan.bn_channels.size());
  }
  auto numel = [&](int v) { return plan.values[v].numel() * batch; };
  auto alloc = [&](int v) -> T* {
    buf[v].reset(new T[static_cast<size_t>(numel(v))]);
    return buf[v].get();
  };
  std::vector<double> mean, invstd, scale;

  for (size_t i = 0; i < L.steps.size(); ++i) {
    const Step& st = L.steps[i];
    const T* a = st.in0 >= 0 ? buf[st.in0].get() : nullptr;
    const T* b = st.in1 >= 0 ? buf[st.in1].get() : nullptr;
    const net::Shape si = st.in0 >= 0 ? plan.values[st.in0] : net::Shape{};
    const bool mat = L.materialize[i];
    switch (st.kind) {
      case StepKind::kInput:
        std::memcpy(alloc(st.out), x, sizeof(T) * numel(st.out));
        break;
      case StepKind::kZero:
        std::fill_n(alloc(st.out), numel(st.out), T(0));
        break;
      case StepKind::kConv: {
        const net::SlotInfo info = net::slot_info(st.slot, plan.num_classes);
        const kernels::ConvShape cs{batch, si.c, si.h, si.w, info.cout, st.k, st.stride, st.pad};
        kernels::conv2d_forward(cs, a, bank.slot(st.slot), alloc(st.out));
        break;
      }
      case StepKind::kBatchNorm: {
        mean.resize(si.c);
        invstd.resize(si.c);
        kernels::batchnorm_stats(a, batch, si.c, si.hw(), net::kBnEps, mean.data(), invstd.data());
        scale = invstd;
        if (opt.bn_gamma)
          for (int c = 0; c < si.c; ++c) scale[c] *= (*opt.bn_gamma)[st.bn][c];
        kernels::batchnorm_apply(a, batch, si.c, si.hw(), mean.data(), scale.data(), alloc(st.out));
        if (opt.keep_values) {
          res.bn_mean[st.bn] = mean;
          res.bn_invstd[st.bn] = invstd;
        }
        break;
      }
      case StepKind::kRelu:
        if (opt.report_sites && on_site) on_site(SiteView<T>{st.site, a, batch, si.numel()});
        if (mat) kernels::relu_forward(a, numel(st.out), alloc(st.out));
        break;
      case StepKind::kAdd:
        kernels::add_forward(a, b, numel(st.out), alloc(st.out));
        break;
      case StepKind::kAvgPool3:
        kernels::avgpool3_forward(a, batch, si.c, si.h, si.w, alloc(st.out));
        break;
      case StepKind::kAvgPool2:
        kernels::avgpool2_forward(a, batch, si.c, si.h, si.w, alloc(st.out));
        break;
      case StepKind::kGlobalAvgPool:
        kernels::global_avgpool_forward(a, batch, si.c, si.hw(), alloc(st.out));
        break;
      case StepKind::kLinear:
        kernels::linear_forward(a, batch, si.c, plan.num_classes, bank.slot(net::kSlotLinearWeight),
                                bank.slot(net::kSlotLinearBias), alloc(st.out));
        break;
      case StepKind::kBlockEnd: {
        if (!opt.rescale_blocks) break;
        T* v = buf[st.in0].get();
        const double s = kernels::tensor_std(v, numel(st.in0));
        res.block_std.push_back(s);
        if (!(s > 0.0) || !std::isfinite(s)) {
          res.zero_variance = true;
          return res;
        }
        kernels::divide_inplace(v, numel(st.in0), s);
        break;
      }
    }
    if (!opt.keep_values) {
      if (st.in0 >= 0 && L.last_use[st.in0] == static_cast<int>(i)) buf[st.in0].reset();
      if (st.in1 >= 0 && L.last_use[st.in1] == static_cast<int>(i)) buf[st.in1].reset();
    }
  }
  const int lv = L.rep[plan.logits];
  if (opt.need_logits && buf[lv]) res.logits.assign(buf[lv].get(), buf[lv].get() + numel(lv));
  if (opt.keep_values) res.values = std::move(buf);
  return res;
}

template class TypedBank<float>;
template class TypedBank<double>;
template ForwardResult<float> cpu_forward(const net::Plan&, const TypedBank<float>&, const float*,
                                          int, const ForwardOptions&, const SiteCallback<float>&);
template ForwardResult<double> cpu_forward(const net::Plan&, const TypedBank<double>&,
                                           const double*, int, const ForwardOptions&,
                                           const SiteCallback<double>&);

}  // namespace hn::engine
