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

#include "engine/population.hpp"
#include "kernels/cpu_ops.hpp"

#include <omp.h>
#include <exception>

namespace hn::engine {

using net::Step;
using net::StepKind;

template <typename T>
TypedBank<T>::TypedBank(const net::WeightBank& bank) : num_classes_(bank.num_classes()), space_(bank.space()) {
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
    const bool root = (opt.all_steps && st.out >= 0) || (st.kind == StepKind::kRelu && opt.report_sites) ||
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
    L.materialize.push_back(st.out >= 0 && (needed[st.out] || opt.all_steps ||
                                            (st.out == logits && opt.need_logits)));
    L.steps.push_back(st);
    const int idx = static_cast<int>(L.steps.size()) - 1;
    if (st.in0 >= 0) L.last_use[st.in0] = idx;
    if (st.in1 >= 0) L.last_use[st.in1] = idx;
  }
  return L;
}

namespace {

// Scratch of one member step (BN statistics), one per thread.
struct StepScratch {
  std::vector<double> mean, invstd, scale;
};

// Every step kind but kConv (grouped) for one member.
template <typename T>
void member_step(const GroupStep& g, const MemberStep& ms, const net::Plan& plan, const TypedBank<T>& bank,
                 const T* x, int batch, const ForwardOptions& opt, std::vector<std::unique_ptr<T[]>>& buf,
                 ForwardResult<T>& res, bool& stopped, StepScratch& sc, const MemberSiteCallback<T>& on_site,
                 size_t member) {
  auto numel = [&](int v) { return plan.values[v].numel() * batch; };
  auto alloc = [&](int v) -> T* {
    buf[v].reset(new T[static_cast<size_t>(numel(v))]);
    return buf[v].get();
  };
  const T* a = ms.in0 >= 0 ? buf[ms.in0].get() : nullptr;
  const T* b = ms.in1 >= 0 ? buf[ms.in1].get() : nullptr;
  const net::Shape si = g.in_shape;
  switch (g.kind) {
    case StepKind::kInput:
      std::memcpy(alloc(ms.out), x, sizeof(T) * numel(ms.out));
      break;
    case StepKind::kZero:
      std::fill_n(alloc(ms.out), numel(ms.out), T(0));
      break;
    case StepKind::kConv:
      throw std::logic_error("member_step: convolutions run grouped");
    case StepKind::kBatchNorm: {
      sc.mean.resize(si.c);
      sc.invstd.resize(si.c);
      kernels::batchnorm_stats(a, batch, si.c, si.hw(), net::kBnEps, sc.mean.data(), sc.invstd.data());
      sc.scale = sc.invstd;
      if (opt.bn_gamma)
        for (int c = 0; c < si.c; ++c) sc.scale[c] *= (*opt.bn_gamma)[ms.bn][c];
      kernels::batchnorm_apply(a, batch, si.c, si.hw(), sc.mean.data(), sc.scale.data(), alloc(ms.out));
      if (opt.keep_values) {
        res.bn_mean[ms.bn] = sc.mean;
        res.bn_invstd[ms.bn] = sc.invstd;
      }
      break;
    }
    case StepKind::kRelu:
      if (opt.report_sites && on_site) on_site(member, SiteView<T>{ms.site, a, batch, si.numel()});
      if (ms.materialize) kernels::relu_forward(a, numel(ms.out), alloc(ms.out));
      break;
    case StepKind::kAdd:
      kernels::add_forward(a, b, numel(ms.out), alloc(ms.out));
      break;
    case StepKind::kAvgPool3:
      kernels::avgpool3_forward(a, batch, si.c, si.h, si.w, alloc(ms.out));
      break;
    case StepKind::kAvgPool2:
      kernels::avgpool2_forward(a, batch, si.c, si.h, si.w, alloc(ms.out));
      break;
    case StepKind::kGlobalAvgPool:
      kernels::global_avgpool_forward(a, batch, si.c, si.hw(), alloc(ms.out));
      break;
    case StepKind::kLinear:
      kernels::linear_forward(a, batch, si.c, plan.num_classes, bank.slot(g.slot),
                              bank.slot(net::linear_bias_slot(g.slot)), alloc(ms.out));
      break;
    case StepKind::kBlockEnd: {
      if (!opt.rescale_blocks) break;
      T* v = buf[ms.in0].get();
      const double s = kernels::tensor_std(v, numel(ms.in0));
      res.block_std.push_back(s);
      if (!(s > 0.0) || !std::isfinite(s)) {
        res.zero_variance = true;
        stopped = true;  // the member's network ends here (MAE-DET: no entropy to measure)
        return;
      }
      kernels::divide_inplace(v, numel(ms.in0), s);
      break;
    }
  }
}

}  // namespace

void parallel_each(size_t n, const std::function<void(size_t)>& f) {
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
#pragma omp critical(hn_parallel_each_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void each_member(size_t n, const std::function<void(size_t)>& f) {
  const int threads = omp_get_max_threads();
  if (threads > 1 && n >= static_cast<size_t>(threads)) {
    parallel_each(n, f);
  } else {
    for (size_t m = 0; m < n; ++m) f(m);
  }
}

template <typename T>
std::vector<ForwardResult<T>> cpu_forward_population(const PopulationSchedule& S, const TypedBank<T>& bank,
                                                     const T* x, int batch, const ForwardOptions& opt,
                                                     const MemberSiteCallback<T>& on_site) {
  if (batch < 1) throw std::invalid_argument("batch must be at least 1");
  const size_t P = S.size();
  for (size_t m = 0; m < P; ++m)
    if (bank.num_classes() != S.plan(m).num_classes)
      throw std::invalid_argument("weight bank and plan disagree on num_classes");
    else if (bank.space() != S.plan(m).space)
      throw std::invalid_argument(std::string("a weight bank of space ") + net::space_name(bank.space()) +
                                  " cannot run a " + net::space_name(S.plan(m).space) + " network");
  std::vector<ForwardResult<T>> res(P);
  std::vector<std::vector<std::unique_ptr<T[]>>> buf(P);
  std::vector<char> stopped(P, 0);
  for (size_t m = 0; m < P; ++m) {
    buf[m].resize(S.plan(m).values.size());
    if (opt.keep_values) {
      res[m].bn_mean.resize(S.plan(m).bn_channels.size());
      res[m].bn_invstd.resize(S.plan(m).bn_channels.size());
    }
  }
  const int threads = omp_get_max_threads();
  std::vector<StepScratch> scratch(static_cast<size_t>(std::max(1, threads)));
  const auto& steps = S.steps();
  auto free_inputs = [&](size_t m, const MemberStep& ms, size_t gi) {
    if (opt.keep_values) return;
    if (stopped[m]) {
      for (auto& v : buf[m]) v.reset();
      return;
    }
    if (ms.in0 >= 0 && S.last_use(m, ms.in0) == static_cast<int>(gi)) buf[m][ms.in0].reset();
    if (ms.in1 >= 0 && S.last_use(m, ms.in1) == static_cast<int>(gi)) buf[m][ms.in1].reset();
  };
  auto conv_shape = [&](const GroupStep& g) {
    const net::SlotInfo info = net::slot_info(g.slot, bank.num_classes());
    return kernels::ConvShape{batch, g.in_shape.c, g.in_shape.h, g.in_shape.w, info.cout, g.k, g.stride, g.pad};
  };
  auto new_output = [&](size_t m, const MemberStep& ms, const GroupStep& g) -> T* {
    auto& out = buf[m][ms.out];
    out.reset(new T[static_cast<size_t>(g.out_shape.numel() * batch)]);
    return out.get();
  };
  // Logits out, and with keep_values every activation.
  auto finish = [&] {
    for (size_t m = 0; m < P; ++m) {
      if (stopped[m]) continue;
      const net::Plan& plan = S.plan(m);
      const int lv = S.lowered(m).rep[plan.logits];
      if (opt.need_logits && buf[m][lv])
        res[m].logits.assign(buf[m][lv].get(), buf[m][lv].get() + plan.values[lv].numel() * batch);
      if (opt.keep_values) res[m].values = std::move(buf[m]);
    }
  };
  if (P > 1 && P >= static_cast<size_t>(threads)) {
    // At least a member per thread: each thread walks the schedule for whole members, taken one
    // at a time (no barrier per step, members of unequal cost balance out). Measured faster on
    // the CPU than lockstep, whose per-step barriers and larger working set cost 10-15% at 2
    // threads; the results are the same (each image's convolution is the same call either way).
    std::vector<std::vector<std::pair<size_t, const MemberStep*>>> walk(P);
    for (size_t gi = 0; gi < steps.size(); ++gi)
      for (const MemberStep& ms : steps[gi].members) walk[static_cast<size_t>(ms.member)].push_back({gi, &ms});
    parallel_each(P, [&](size_t m) {
      StepScratch& sc = scratch[static_cast<size_t>(omp_get_thread_num())];
      for (const auto& [gi, ms] : walk[m]) {
        if (stopped[m]) break;
        const GroupStep& g = steps[gi];
        if (g.kind == StepKind::kConv) {
          kernels::conv2d_forward(conv_shape(g), buf[m][ms->in0].get(), bank.slot(g.slot), new_output(m, *ms, g));
        } else {
          bool stop = false;
          member_step(g, *ms, S.plan(m), bank, x, batch, opt, buf[m], res[m], stop, sc, on_site, m);
          if (stop) stopped[m] = 1;
        }
        free_inputs(m, *ms, gi);
      }
    });
    finish();
    return res;
  }
  std::vector<const T*> xs;
  std::vector<T*> ys;
  std::vector<const MemberStep*> active;
  for (size_t gi = 0; gi < steps.size(); ++gi) {
    const GroupStep& g = steps[gi];
    active.clear();
    for (const MemberStep& ms : g.members)
      if (!stopped[static_cast<size_t>(ms.member)]) active.push_back(&ms);
    if (g.kind == StepKind::kConv) {
      // One call for the whole group: every member's images with the position's weights.
      xs.clear();
      ys.clear();
      for (const MemberStep* ms : active) {
        const size_t m = static_cast<size_t>(ms->member);
        xs.push_back(buf[m][ms->in0].get());
        ys.push_back(new_output(m, *ms, g));
      }
      if (!active.empty())
        kernels::conv2d_forward_grouped(conv_shape(g), static_cast<int>(active.size()), xs.data(),
                                        bank.slot(g.slot), ys.data());
    } else if (threads > 1 && static_cast<int>(active.size()) >= threads) {
      parallel_each(active.size(), [&](size_t i) {
        const size_t m = static_cast<size_t>(active[i]->member);
        bool stop = false;
        member_step(g, *active[i], S.plan(m), bank, x, batch, opt, buf[m], res[m], stop,
                    scratch[static_cast<size_t>(omp_get_thread_num())], on_site, m);
        if (stop) stopped[m] = 1;
      });
    } else {
      for (const MemberStep* ms : active) {
        const size_t m = static_cast<size_t>(ms->member);
        bool stop = false;
        member_step(g, *ms, S.plan(m), bank, x, batch, opt, buf[m], res[m], stop, scratch[0], on_site, m);
        if (stop) stopped[m] = 1;
      }
    }
    for (const MemberStep* ms : active) free_inputs(static_cast<size_t>(ms->member), *ms, gi);
  }
  finish();
  return res;
}

template <typename T>
ForwardResult<T> cpu_forward(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int batch,
                             const ForwardOptions& opt, const SiteCallback<T>& on_site) {
  const PopulationSchedule one({&plan}, opt);
  MemberSiteCallback<T> cb;
  if (on_site) cb = [&](size_t, const SiteView<T>& v) { on_site(v); };
  return std::move(cpu_forward_population<T>(one, bank, x, batch, opt, cb).front());
}

template class TypedBank<float>;
template class TypedBank<double>;
template ForwardResult<float> cpu_forward(const net::Plan&, const TypedBank<float>&, const float*,
                                          int, const ForwardOptions&, const SiteCallback<float>&);
template ForwardResult<double> cpu_forward(const net::Plan&, const TypedBank<double>&,
                                           const double*, int, const ForwardOptions&,
                                           const SiteCallback<double>&);

}  // namespace hn::engine

namespace hn::engine {
template std::vector<ForwardResult<float>> cpu_forward_population(const PopulationSchedule&, const TypedBank<float>&,
                                                                  const float*, int, const ForwardOptions&,
                                                                  const MemberSiteCallback<float>&);
template std::vector<ForwardResult<double>> cpu_forward_population(const PopulationSchedule&,
                                                                   const TypedBank<double>&, const double*, int,
                                                                   const ForwardOptions&,
                                                                   const MemberSiteCallback<double>&);
}  // namespace hn::engine
