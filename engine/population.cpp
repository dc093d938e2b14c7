#include "engine/population.hpp"

#include "engine/cpu_ntk.hpp"  // ntk_forward_options

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace hn::engine {

using net::StepKind;

PopulationSchedule::PopulationSchedule(const std::vector<const net::Plan*>& plans, const ForwardOptions& opt)
    : plans_(plans), report_sites_(opt.report_sites), rescale_(opt.rescale_blocks), keep_values_(opt.keep_values) {
  struct Item {
    int pos, variant, kind, slot, member, step;
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
      items.push_back({st.pos, st.variant, static_cast<int>(st.kind), st.slot, static_cast<int>(m), static_cast<int>(i)});
    }
  }
  // Position order is a valid execution order for every member (net::Step::pos); members keep
  // their population order within a group.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.pos, a.variant, a.kind, a.slot, a.member) < std::tie(b.pos, b.variant, b.kind, b.slot, b.member);
  });
  last_use_.resize(plans.size());
  readers_.resize(plans.size());
  for (size_t m = 0; m < plans.size(); ++m) {
    last_use_[m].assign(plans[m]->values.size(), -1);
    readers_[m].assign(plans[m]->values.size(), 0);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    const bool fresh = i == 0 || it.pos != items[i - 1].pos || it.variant != items[i - 1].variant || it.kind != items[i - 1].kind ||
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
    auto& rd = readers_[static_cast<size_t>(it.member)];
    if (st.in0 >= 0) lu[st.in0] = gi, ++rd[st.in0];
    if (st.in1 >= 0) lu[st.in1] = gi, ++rd[st.in1];
    steps_.back().members.push_back(ms);
  }
}

namespace {
// Members per segmented launch: kernels/gpu_population.cu's table size (segments_per_launch()).
constexpr int64_t kSegMax = 512;
int64_t chunks(int64_t n) { return (n + kSegMax - 1) / kSegMax; }
}  // namespace

ScheduleCounts PopulationSchedule::simulate(const std::vector<char>& active, int batch, int site_launches) const {
  ScheduleCounts c;
  // Where each member's values live: (group step, slot in its allocation); group -1 = the input.
  struct Loc {
    int group = -2, slot = 0;
    bool operator==(const Loc& o) const { return group == o.group && slot == o.slot; }
  };
  std::vector<std::vector<Loc>> loc(plans_.size());
  for (size_t m = 0; m < plans_.size(); ++m)
    if (active[m]) loc[m].resize(plans_[m]->values.size());
  const int64_t b = batch;
  std::vector<const MemberStep*> ms;
  for (size_t gi = 0; gi < steps_.size(); ++gi) {
    const GroupStep& g = steps_[gi];
    ms.clear();
    for (const MemberStep& m : g.members)
      if (active[static_cast<size_t>(m.member)]) ms.push_back(&m);
    if (ms.empty()) continue;
    c.groups += 1;
    auto in_loc = [&](const MemberStep* m, int v) { return v >= 0 ? loc[static_cast<size_t>(m->member)][v] : Loc{}; };
    // Steps whose members all read one tensor run once (engine/cuda_population.cpp).
    const bool pure = g.kind != StepKind::kBlockEnd && g.kind != StepKind::kInput &&
                      !(g.kind == StepKind::kRelu && report_sites_);
    bool same = pure;
    for (size_t j = 1; j < ms.size() && same; ++j)
      same = in_loc(ms[j], ms[j]->in0) == in_loc(ms[0], ms[0]->in0) &&
             in_loc(ms[j], ms[j]->in1) == in_loc(ms[0], ms[0]->in1) && ms[j]->materialize == ms[0]->materialize;
    const size_t run = same ? 1 : ms.size();
    const int64_t n = static_cast<int64_t>(run);
    const int64_t in = 4 * g.in_shape.numel() * b, out = 4 * g.out_shape.numel() * b;
    switch (g.kind) {
      case StepKind::kInput:
        for (const MemberStep* m : ms) loc[static_cast<size_t>(m->member)][m->out] = Loc{-1, 0};
        break;
      case StepKind::kZero:
        c.launches += chunks(n);
        c.bytes += out * n;
        break;
      case StepKind::kConv: {
        c.launches += 1;
        c.library_calls += 1;
        bool contiguous = true;
        const Loc first = in_loc(ms[0], ms[0]->in0);
        for (size_t j = 1; j < run && contiguous; ++j) {
          const Loc l = in_loc(ms[j], ms[j]->in0);
          contiguous = first.group >= 0 && l.group == first.group && l.slot == first.slot + static_cast<int>(j);
        }
        if (!contiguous) {  // the gather into one tensor
          c.launches += chunks(n);
          c.bytes += 2 * in * n;
        }
        const net::SlotInfo info = net::slot_info(g.slot, plans_.front()->num_classes);
        c.bytes += (in + out) * n + 4 * info.numel();
        break;
      }
      case StepKind::kBatchNorm: {
        // Statistics, then the apply, which is fused into the node sum that reads the output when
        // that sum is its only reader (for every member of the group).
        bool fused = !keep_values_;
        for (size_t j = 0; j < run && fused; ++j) fused = feeds_only_an_add(static_cast<size_t>(ms[j]->member), ms[j]->out);
        c.launches += (fused ? 1 : 2) * chunks(n);
        c.bytes += (fused ? 2 * in : 3 * in + out) * n;
        if (fused) {
          // The output is the conv's tensor, read by the add with the statistics.
          for (size_t j = 0; j < ms.size(); ++j)
            loc[static_cast<size_t>(ms[j]->member)][ms[j]->out] = in_loc(ms[j < run ? j : 0], ms[j < run ? j : 0]->in0);
          continue;
        }
        break;
      }
      case StepKind::kRelu: {
        if (report_sites_) {
          c.launches += site_launches * chunks(n);
          c.bytes += in * n;
        }
        int64_t mat = 0;
        for (size_t j = 0; j < run; ++j) mat += ms[j]->materialize ? 1 : 0;
        if (mat > 0) c.launches += chunks(mat);
        c.bytes += (in + out) * mat;
        break;
      }
      case StepKind::kAdd:
        c.launches += chunks(n);
        c.bytes += (2 * in + out) * n;
        break;
      case StepKind::kAvgPool3:
      case StepKind::kAvgPool2:
      case StepKind::kGlobalAvgPool:
        c.launches += chunks(n);
        c.bytes += (in + out) * n;
        break;
      case StepKind::kLinear: {
        c.launches += chunks(n);
        const net::SlotInfo info = net::slot_info(g.slot, plans_.front()->num_classes);
        c.bytes += (in + out) * n + 4 * info.numel();
        break;
      }
      case StepKind::kBlockEnd:
        if (rescale_) {
          // Two partial + two finish launches for the std, one divide; a tensor shared by several
          // members once, its std copied to the others.
          int64_t unique = 0, dups = 0;
          for (size_t j = 0; j < ms.size(); ++j) {
            bool seen = false;
            for (size_t i = 0; i < j && !seen; ++i) seen = in_loc(ms[i], ms[i]->in0) == in_loc(ms[j], ms[j]->in0);
            (seen ? dups : unique) += 1;
          }
          c.launches += 5 * chunks(unique) + chunks(dups);
          c.bytes += 4 * in * unique;
        }
        break;
    }
    if (g.kind != StepKind::kInput && g.kind != StepKind::kBlockEnd) {
      int slot = 0;
      for (size_t j = 0; j < run; ++j) {
        const MemberStep* m = ms[j];
        if (m->out < 0 || (g.kind == StepKind::kRelu && !m->materialize)) continue;
        loc[static_cast<size_t>(m->member)][m->out] = Loc{static_cast<int>(gi), slot++};
      }
      for (size_t j = run; j < ms.size(); ++j)
        if (ms[j]->out >= 0) loc[static_cast<size_t>(ms[j]->member)][ms[j]->out] = loc[static_cast<size_t>(ms[0]->member)][ms[0]->out];
    }
  }
  return c;
}

namespace {
// sim(active) for the whole population, with per_member_* the sums of sim for each member alone.
template <typename Sim>
ScheduleCounts with_per_member(size_t P, const Sim& sim) {
  ScheduleCounts c = sim(std::vector<char>(P, 1));
  for (size_t m = 0; m < P; ++m) {
    std::vector<char> one(P, 0);
    one[m] = 1;
    const ScheduleCounts k = sim(one);
    c.per_member_launches += k.launches;
    c.per_member_library_calls += k.library_calls;
  }
  return c;
}

void add_counts(ScheduleCounts& total, const ScheduleCounts& c, int times) {
  total.groups += times * c.groups;
  total.launches += times * c.launches;
  total.library_calls += times * c.library_calls;
  total.bytes += times * c.bytes;
  total.per_member_launches += times * c.per_member_launches;
  total.per_member_library_calls += times * c.per_member_library_calls;
}
}  // namespace

ScheduleCounts PopulationSchedule::counts(int batch, int site_launches) const {
  return with_per_member(plans_.size(), [&](const std::vector<char>& active) {
    return simulate(active, batch, site_launches);
  });
}

ScheduleCounts PopulationSchedule::simulate_ntk(const std::vector<char>& active, int images, bool exact) const {
  ScheduleCounts c = simulate(active, images, 0);  // the forward pass, every value kept
  const int64_t n = images, R = exact ? n * n : n, cots = n;
  const int classes = plans_.front()->num_classes;
  int64_t P = 0;
  for (char a : active) P += a ? 1 : 0;
  // Where each member's gradients live: (group step, slot in its allocation); -1 = the seed.
  struct Loc {
    int group = -2, slot = 0;
  };
  std::vector<std::vector<Loc>> grad(plans_.size());
  std::vector<int> input(plans_.size(), -1);
  for (size_t m = 0; m < plans_.size(); ++m) {
    if (!active[m]) continue;
    grad[m].resize(plans_[m]->values.size());
    grad[m][static_cast<size_t>(lowered_[m].rep[plans_[m]->logits])] = {-1, 0};
    for (const net::Step& st : lowered_[m].steps)
      if (st.kind == StepKind::kInput) input[m] = st.out;
  }
  c.launches += 2;  // the seed, Theta's zeroing
  c.bytes += 4 * R * classes + 8 * P * n * n;
  auto fold = [&](int64_t count, int64_t size) {
    c.launches += 4;  // FP64 conversion, two pointer uploads, the batched DGEMM
    c.library_calls += 1;
    c.bytes += count * cots * size * (4 + 8 + 8) + 2 * 8 * count * n * n;
  };
  // The fresh / adding split of one gradient write; per = elements per member; returns the launches.
  std::vector<const MemberStep*> ms;
  auto into = [&](int gi, auto value_of, int64_t per, int64_t extra_read) {
    int64_t olds = 0, news = 0;
    for (const MemberStep* m : ms) {
      Loc& l = grad[static_cast<size_t>(m->member)][static_cast<size_t>(value_of(m))];
      if (l.group != -2) {
        ++olds;
      } else {
        l = {gi, static_cast<int>(news)};
        ++news;
      }
    }
    c.launches += chunks(news) + chunks(olds);
    c.bytes += (news + 2 * olds) * 4 * per + (news + olds) * 4 * extra_read;
  };
  for (int gi = static_cast<int>(steps_.size()) - 1; gi >= 0; --gi) {
    const GroupStep& g = steps_[static_cast<size_t>(gi)];
    ms.clear();
    for (const MemberStep& m : g.members)
      if (active[static_cast<size_t>(m.member)] && m.out >= 0 &&
          grad[static_cast<size_t>(m.member)][static_cast<size_t>(m.out)].group != -2)
        ms.push_back(&m);
    if (ms.empty()) continue;
    const int64_t count = static_cast<int64_t>(ms.size());
    const net::Shape si = g.in_shape, so = g.out_shape;
    auto in0 = [](const MemberStep* m) { return m->in0; };
    auto in1 = [](const MemberStep* m) { return m->in1; };
    switch (g.kind) {
      case StepKind::kInput:
      case StepKind::kZero:
      case StepKind::kBlockEnd:
        break;
      case StepKind::kLinear:
        into(gi, in0, R * si.c, R * classes + n * si.c);
        c.bytes += 4 * count * cots * si.c * classes;
        fold(count, int64_t(si.c) * classes);
        break;
      case StepKind::kGlobalAvgPool:
        into(gi, in0, R * si.numel(), R * si.c);
        break;
      case StepKind::kRelu:
        into(gi, in0, R * si.numel(), R * si.numel() + n * si.numel());
        break;
      case StepKind::kBatchNorm:
        into(gi, in0, R * si.numel(), 2 * (R * si.numel() + n * si.numel()));  // two passes over dy and xhat
        fold(count, si.c);
        break;
      case StepKind::kAdd:
        into(gi, in0, R * so.numel(), R * so.numel());
        into(gi, in1, R * so.numel(), R * so.numel());
        break;
      case StepKind::kAvgPool3:
      case StepKind::kAvgPool2:
        into(gi, in0, R * si.numel(), R * so.numel());
        break;
      case StepKind::kConv: {
        const net::SlotInfo info = net::slot_info(g.slot, classes);
        const int64_t kdim = int64_t(si.c) * g.k * g.k, ohw = so.hw(), size = info.numel();
        const int64_t per_dy = R * so.numel(), per_dx = R * si.numel();
        bool contiguous = true;
        const Loc first = grad[static_cast<size_t>(ms[0]->member)][static_cast<size_t>(ms[0]->out)];
        for (size_t j = 1; j < ms.size() && contiguous; ++j) {
          const Loc l = grad[static_cast<size_t>(ms[j]->member)][static_cast<size_t>(ms[j]->out)];
          contiguous = first.group >= 0 && l.group == first.group && l.slot == first.slot + static_cast<int>(j);
        }
        if (!contiguous) {
          c.launches += chunks(count);
          c.bytes += 2 * 4 * per_dy * count;
        }
        if (ms[0]->in0 != input[static_cast<size_t>(ms[0]->member)]) {
          c.launches += 1;  // cuDNN backward data into a fresh tensor
          c.library_calls += 1;
          c.bytes += 4 * (per_dy + per_dx) * count + 4 * size;
          int64_t olds = 0, slot = 0;
          for (const MemberStep* m : ms) {
            Loc& l = grad[static_cast<size_t>(m->member)][static_cast<size_t>(m->in0)];
            if (l.group != -2) ++olds;
            else l = {gi, static_cast<int>(slot)};
            ++slot;
          }
          if (olds > 0) {
            c.launches += chunks(olds);
            c.bytes += 3 * 4 * per_dx * olds;
          }
        }
        const int64_t col = kdim * n * ohw;  // per member, either layout
        c.launches += chunks(count) + 1;      // im2col, the GEMM
        c.library_calls += 1;
        c.bytes += 4 * count * (n * si.numel() + col);
        if (exact) {
          c.launches += chunks(count);  // dY's transpose
          c.bytes += 2 * 4 * per_dy * count;
        }
        c.bytes += 4 * count * (col + per_dy + cots * size);
        fold(count, size);
        break;
      }
    }
    for (const MemberStep* m : ms) grad[static_cast<size_t>(m->member)][static_cast<size_t>(m->out)] = {};
  }
  c.launches += 3;  // the batched eigensolve, two copies of its results
  c.library_calls += 1;
  c.bytes += 8 * P * n * (n + 1);
  return c;
}

ScheduleCounts PopulationSchedule::ntk_counts(int images, bool exact) const {
  return with_per_member(plans_.size(), [&](const std::vector<char>& active) {
    return simulate_ntk(active, images, exact);
  });
}

ScheduleCounts schedule_counts(const std::vector<net::Arch>& genes, const ScoreSettings& s) {
  std::vector<net::Plan> plans;
  for (const auto& g : genes)
    if (!net::is_degenerate(g)) plans.push_back(net::build_plan(g, s.num_classes));
  ScheduleCounts total;
  if (plans.empty()) return total;
  std::vector<const net::Plan*> pp;
  for (const auto& p : plans) pp.push_back(&p);
  auto add = [&](const ForwardOptions& opt, int batch, int times, int site_launches = 2) {
    add_counts(total, PopulationSchedule(pp, opt).counts(batch, site_launches), times);
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
  const int64_t P = static_cast<int64_t>(pp.size());
  if (codes) {
    // Per population: K to FP64, the batched Cholesky and the batched log-determinant, for K and
    // K_once (a population of one: the same 6 per member).
    total.launches += 6;
    total.library_calls += 2;
    total.per_member_launches += 6 * P;
    total.per_member_library_calls += 2 * P;
  }
  if (ni) {
    ForwardOptions noisy;
    noisy.report_sites = false;
    add(noisy, s.batch, 1);
    total.launches += chunks(P);  // the segmented sum of squared logit differences
    total.per_member_launches += P;
  }
  if (has(Proxy::kEntropy)) add(entropy_options(), s.entropy_batch, s.entropy_repeats);
  for (const bool exact : {false, true}) {
    if (!has(exact ? Proxy::kNtk : Proxy::kNtkFast)) continue;
    add_counts(total, PopulationSchedule(pp, ntk_forward_options()).ntk_counts(std::min(64, s.batch), exact), 1);
  }
  if (has(Proxy::kEntropySeed)) {
    ForwardOptions seed;
    seed.need_logits = false;
    add(seed, s.batch, 1, 1);  // one segmented |x| sum per site (two when a group mixes in-place sites)
  }
  return total;
}

}  // namespace hn::engine
