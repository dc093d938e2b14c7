#include "engine/population.hpp"

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace hn::engine {

using net::StepKind;

PopulationSchedule::PopulationSchedule(const std::vector<const net::Plan*>& plans, const ForwardOptions& opt)
    : plans_(plans), report_sites_(opt.report_sites) {
  struct Item {
    int pos, kind, slot, member, step;
  };
  std::vector<Item> items;
  lowered_.reserve(plans.size());
  for (size_t m = 0; m < plans.size(); ++m) {
    if (!plans[m]) throw std::invalid_argument("PopulationSchedule: null plan");
    lowered_.push_back(lower_plan(*plans[m], opt));
    const auto& L = lowered_.back();
    for (size_t i = 0; i < L.steps.size(); ++i) {
      const net::Step& st = L.steps[i];
      if (st.pos < 0) throw std::logic_error("PopulationSchedule: a plan step without a position");
      items.push_back({st.pos, static_cast<int>(st.kind), st.slot, static_cast<int>(m), static_cast<int>(i)});
    }
  }
  // Position order is a valid execution order for every member (net::Step::pos); members keep
  // their population order within a group.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.pos, a.kind, a.slot, a.member) < std::tie(b.pos, b.kind, b.slot, b.member);
  });
  last_use_.resize(plans.size());
  for (size_t m = 0; m < plans.size(); ++m) last_use_[m].assign(plans[m]->values.size(), -1);
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    const bool fresh = i == 0 || it.pos != items[i - 1].pos || it.kind != items[i - 1].kind ||
                       it.slot != items[i - 1].slot;
    const auto& L = lowered_[static_cast<size_t>(it.member)];
    const net::Step& st = L.steps[static_cast<size_t>(it.step)];
    const net::Plan& p = *plans_[static_cast<size_t>(it.member)];
    if (fresh) {
      GroupStep g;
      g.kind = st.kind;
      g.pos = st.pos;
      g.slot = st.slot;
      g.k = st.k;
      g.stride = st.stride;
      g.pad = st.pad;
      if (st.in0 >= 0) g.in_shape = p.values[st.in0];
      if (st.out >= 0) g.out_shape = p.values[st.out];
      steps_.push_back(std::move(g));
    } else {
      // Equal positions compute the same thing on the same shapes; a plan that breaks that is a
      // bug in net/plan, not something to run.
      const GroupStep& g = steps_.back();
      if ((st.in0 >= 0 && p.values[st.in0].numel() != g.in_shape.numel()) ||
          (st.out >= 0 && p.values[st.out].numel() != g.out_shape.numel()))
        throw std::logic_error("PopulationSchedule: members disagree on the shapes at position " +
                               std::to_string(st.pos));
    }
    MemberStep ms;
    ms.member = it.member;
    ms.in0 = st.in0;
    ms.in1 = st.in1;
    ms.out = st.out;
    ms.bn = st.bn;
    ms.site = st.site;
    ms.block = st.block;
    ms.materialize = L.materialize[static_cast<size_t>(it.step)] != 0;
    const int gi = static_cast<int>(steps_.size()) - 1;
    auto& lu = last_use_[static_cast<size_t>(it.member)];
    if (st.in0 >= 0) lu[st.in0] = gi;
    if (st.in1 >= 0) lu[st.in1] = gi;
    steps_.back().members.push_back(ms);
  }
}

ScheduleCounts PopulationSchedule::counts(int batch) const {
  ScheduleCounts c;
  auto kernel_launches = [](StepKind k) -> int64_t {
    switch (k) {
      case StepKind::kBatchNorm: return 2;  // segmented statistics, fused apply
      case StepKind::kConv: return 0;       // a library call
      case StepKind::kLinear: return 0;     // a library call
      case StepKind::kBlockEnd: return 1;   // entropy's std (a no-op otherwise, counted anyway)
      default: return 1;
    }
  };
  const int64_t b = batch;
  for (const GroupStep& g : steps_) {
    const int64_t n = static_cast<int64_t>(g.members.size());
    const bool lib = g.kind == StepKind::kConv || g.kind == StepKind::kLinear;
    c.groups += 1;
    c.launches += lib ? 1 : kernel_launches(g.kind);
    c.library_calls += lib ? 1 : 0;
    c.per_member_launches += n * (lib ? 1 : kernel_launches(g.kind));
    c.per_member_library_calls += lib ? n : 0;
    int64_t act = 0;
    for (const MemberStep& m : g.members) {
      if (m.in0 >= 0) act += g.in_shape.numel();
      if (m.in1 >= 0) act += g.in_shape.numel();
      if (m.out >= 0 && m.materialize) act += g.out_shape.numel();
    }
    c.bytes += 4 * act * b;
    if (g.kind == StepKind::kConv || g.kind == StepKind::kLinear) {
      const net::SlotInfo info = net::slot_info(g.slot >= 0 ? g.slot : net::kSlotLinearWeight,
                                                plans_.front()->num_classes);
      c.bytes += 4 * info.numel();
    }
  }
  if (!plans_.empty() && report_sites_) {
    c.launches += 2;  // K for every member (tiled popcount) and one batched log-determinant
    c.per_member_launches += 2 * static_cast<int64_t>(plans_.size());
  }
  return c;
}

ScheduleCounts forward_counts(const std::vector<net::Genes>& genes, const ScoreSettings& s) {
  std::vector<net::Plan> plans;
  for (const auto& g : genes)
    if (!net::is_degenerate(g)) plans.push_back(net::build_plan(g, s.num_classes));
  ScheduleCounts total;
  if (plans.empty()) return total;
  std::vector<const net::Plan*> pp;
  for (const auto& p : plans) pp.push_back(&p);
  auto add = [&](const ForwardOptions& opt, int batch, int times) {
    const ScheduleCounts c = PopulationSchedule(pp, opt).counts(batch);
    total.groups += times * c.groups;
    total.launches += times * c.launches;
    total.library_calls += times * c.library_calls;
    total.bytes += times * c.bytes;
    total.per_member_launches += times * c.per_member_launches;
    total.per_member_library_calls += times * c.per_member_library_calls;
  };
  const auto has = [&](Proxy p) { return std::find(s.proxies.begin(), s.proxies.end(), p) != s.proxies.end(); };
  const bool codes = has(Proxy::kNaswot) || has(Proxy::kNaswotOnce) || has(Proxy::kNinaswot);
  const bool ni = has(Proxy::kNi) || has(Proxy::kNinaswot);
  if (codes || ni) {
    ForwardOptions clean;
    clean.need_logits = ni;
    clean.report_sites = codes;
    add(clean, s.batch, 1);
  }
  if (ni) {
    ForwardOptions noisy;
    noisy.report_sites = false;
    add(noisy, s.batch, 1);
  }
  if (has(Proxy::kEntropy)) add(entropy_options(), s.entropy_batch, s.entropy_repeats);
  if (has(Proxy::kEntropySeed)) {
    ForwardOptions seed;
    seed.need_logits = false;
    add(seed, s.batch, 1);
  }
  return total;
}

}  // namespace hn::engine
