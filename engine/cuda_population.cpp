#include "engine/cuda_population.hpp"

#include <optional>
#include <stdexcept>

#include "kernels/gpu_population.cuh"
#include "kernels/nvtx.hpp"

namespace hn::engine {

namespace {

using net::StepKind;

// A member's value: a slice of a group's allocation (shared by the group's members, freed when
// the last of them drops it), or the input images (no allocation). A BN output whose only reader
// is a node sum is deferred: p is the conv's output and mean / invstd its statistics, applied by
// the fused add.
struct Val {
  std::shared_ptr<gpu::StreamBuffer<float>> buf;
  float* p = nullptr;
  std::shared_ptr<gpu::StreamBuffer<double>> stats;  // mean then invstd, count x c
  const double* mean = nullptr;
  const double* invstd = nullptr;
  const double* bn_invstd = nullptr;  // keep_values: the invstd of the BN that produced this value
};

}  // namespace

GpuPopulationForward gpu_forward_population(Lane& lane, const PopulationSchedule& S, const DeviceBank& bank,
                                            const float* x, int batch, const ForwardOptions& opt,
                                            const GpuPopulationHooks& hooks) {
  HN_NVTX_RANGE("gpu_forward_population");
  const cudaStream_t s = lane.s();
  const size_t P = S.size();
  std::vector<std::vector<Val>> vals(P);
  for (size_t m = 0; m < P; ++m) vals[m].resize(S.plan(m).values.size());
  std::optional<gpu::StreamBuffer<double>> rescale_scratch;
  if (opt.rescale_blocks) rescale_scratch.emplace(kg::seg_rescale_scratch_doubles(), s);

  // Scratch pointer lists, reused by every step.
  std::vector<const float*> in0, in1;
  std::vector<float*> out;
  std::vector<int> members, sites;
  // One allocation of `count` x `per` floats; member j's slice at j * per.
  auto alloc_group = [&](const std::vector<const MemberStep*>& ms, int64_t per) {
    auto buf = std::make_shared<gpu::StreamBuffer<float>>(static_cast<size_t>(per) * ms.size(), s);
    out.clear();
    for (size_t j = 0; j < ms.size(); ++j) {
      Val& v = vals[static_cast<size_t>(ms[j]->member)][ms[j]->out];
      v.buf = buf;
      v.p = buf->get() + static_cast<int64_t>(j) * per;
      out.push_back(v.p);
    }
  };
  auto inputs = [&](const std::vector<const MemberStep*>& ms) {
    in0.clear();
    in1.clear();
    for (const MemberStep* m : ms) {
      const auto& mv = vals[static_cast<size_t>(m->member)];
      in0.push_back(m->in0 >= 0 ? mv[m->in0].p : nullptr);
      in1.push_back(m->in1 >= 0 ? mv[m->in1].p : nullptr);
    }
  };

  const auto& steps = S.steps();
  std::vector<const MemberStep*> group, sub;
  for (size_t gi = 0; gi < steps.size(); ++gi) {
    const GroupStep& g = steps[gi];
    group.clear();
    for (const MemberStep& ms : g.members) group.push_back(&ms);
    if (group.empty()) continue;
    const net::Shape si = g.in_shape, so = g.out_shape;
    const int64_t per_in = si.numel() * batch, per_out = so.numel() * batch;
    inputs(group);
    // Members whose inputs are all one tensor (the stem, the first edges of cell 0, identical
    // prefixes) get one computation, its output shared: the step runs for the first member and
    // the others alias its value. Not for block ends (in place; handled below) and ReLU sites
    // (each member's codes are its own).
    std::vector<const MemberStep*> aliases;
    const bool pure = g.kind != StepKind::kBlockEnd && g.kind != StepKind::kInput &&
                      !(g.kind == StepKind::kRelu && opt.report_sites && hooks.on_sites);
    if (pure && group.size() > 1) {
      bool same = true;
      for (size_t j = 1; j < group.size() && same; ++j)
        same = in0[j] == in0[0] && in1[j] == in1[0] && group[j]->materialize == group[0]->materialize;
      if (same) {
        aliases.assign(group.begin() + 1, group.end());
        group.resize(1);
        in0.resize(1);
        in1.resize(1);
      }
    }
    const int count = static_cast<int>(group.size());
    switch (g.kind) {
      case StepKind::kInput:
        for (const MemberStep* m : group) {
          Val v;
          v.p = const_cast<float*>(x);
          vals[static_cast<size_t>(m->member)][m->out] = v;
        }
        break;
      case StepKind::kZero:
        alloc_group(group, per_out);
        kg::launch_seg_unary(kg::SegUnary::kZero, nullptr, out.data(), count, per_out, s);
        break;
      case StepKind::kConv: {
        // One cuDNN call over every member's images: their inputs must be one contiguous
        // tensor, in group order; gather them when they are not (groups split differently).
        bool contiguous = true;
        for (int j = 1; j < count && contiguous; ++j) contiguous = in0[j] == in0[0] + j * per_in;
        std::optional<gpu::StreamBuffer<float>> gathered;
        const float* xin = in0[0];
        if (!contiguous) {
          gathered.emplace(static_cast<size_t>(per_in) * count, s);
          std::vector<float*> dst(count);
          for (int j = 0; j < count; ++j) dst[j] = gathered->get() + j * per_in;
          kg::launch_seg_unary(kg::SegUnary::kCopy, in0.data(), dst.data(), count, per_in, s);
          xin = gathered->get();
        }
        alloc_group(group, per_out);
        const net::SlotInfo info = net::slot_info(g.slot, S.plan(0).num_classes);
        lane.conv.forward({batch * count, si.c, si.h, si.w, info.cout, g.k, g.stride, g.pad}, xin, bank.slot(g.slot),
                          out[0]);
        break;
      }
      case StepKind::kBatchNorm: {
        auto stats = std::make_shared<gpu::StreamBuffer<double>>(2 * static_cast<size_t>(si.c) * count, s);
        double* mean = stats->get();
        double* invstd = mean + static_cast<size_t>(si.c) * count;
        bool fuse = !opt.keep_values;  // every member's output read by one node sum only
        for (const MemberStep* m : group) fuse = fuse && S.feeds_only_an_add(static_cast<size_t>(m->member), m->out);
        if (!fuse) {
          alloc_group(group, per_out);
          kg::launch_seg_batchnorm(in0.data(), out.data(), count, batch, si.c, si.hw(), net::kBnEps, mean, invstd, s);
          for (int j = 0; j < count; ++j) {
            Val& v = vals[static_cast<size_t>(group[j]->member)][group[j]->out];
            v.stats = stats;
            v.bn_invstd = invstd + static_cast<size_t>(j) * si.c;
          }
          break;
        }
        kg::launch_seg_batchnorm_stats(in0.data(), count, batch, si.c, si.hw(), net::kBnEps, mean, invstd, s);
        for (int j = 0; j < count; ++j) {
          const MemberStep* m = group[j];
          auto& mv = vals[static_cast<size_t>(m->member)];
          Val v = mv[m->in0];  // the conv's output, kept alive by the deferred value
          v.stats = stats;
          v.mean = mean + static_cast<size_t>(j) * si.c;
          v.invstd = invstd + static_cast<size_t>(j) * si.c;
          mv[m->out] = v;
        }
        break;
      }
      case StepKind::kRelu: {
        if (opt.report_sites && hooks.on_sites) {
          members.clear();
          sites.clear();
          for (const MemberStep* m : group) {
            members.push_back(m->member);
            sites.push_back(m->site);
          }
          hooks.on_sites(members, sites, in0, si.numel());
        }
        sub.clear();
        std::vector<const float*> src;
        for (int j = 0; j < count; ++j)
          if (group[j]->materialize) {
            sub.push_back(group[j]);
            src.push_back(in0[j]);
          }
        if (!sub.empty()) {
          alloc_group(sub, per_out);
          kg::launch_seg_unary(kg::SegUnary::kRelu, src.data(), out.data(), static_cast<int>(sub.size()), per_out, s);
        }
        break;
      }
      case StepKind::kAdd: {
        std::vector<kg::SegBnInput> a(count), b(count);
        bool deferred = false;
        for (int j = 0; j < count; ++j) {
          const auto& mv = vals[static_cast<size_t>(group[j]->member)];
          const Val& va = mv[group[j]->in0];
          const Val& vb = mv[group[j]->in1];
          a[j] = {va.p, va.mean, va.invstd};
          b[j] = {vb.p, vb.mean, vb.invstd};
          deferred = deferred || va.mean || vb.mean;
        }
        alloc_group(group, per_out);
        if (deferred)
          kg::launch_seg_add_bn(a.data(), b.data(), out.data(), count, per_out, so.c, so.hw(), s);
        else
          kg::launch_seg_add(in0.data(), in1.data(), out.data(), count, per_out, s);
        break;
      }
      case StepKind::kAvgPool3:
      case StepKind::kAvgPool2:
        alloc_group(group, per_out);
        kg::launch_seg_avgpool(g.kind == StepKind::kAvgPool3 ? 3 : 2, in0.data(), out.data(), count, batch * si.c,
                               si.h, si.w, s);
        break;
      case StepKind::kGlobalAvgPool:
        alloc_group(group, per_out);
        kg::launch_seg_global_avgpool(in0.data(), out.data(), count, batch * si.c, si.hw(), s);
        break;
      case StepKind::kLinear:
        alloc_group(group, per_out);
        kg::launch_seg_linear(in0.data(), out.data(), count, batch, si.c, so.c, bank.slot(g.slot),
                              bank.slot(net::linear_bias_slot(g.slot)), s);
        break;
      case StepKind::kBlockEnd: {
        if (!opt.rescale_blocks) break;
        if (!hooks.block_std || !hooks.block_flag)
          throw std::logic_error("gpu_forward_population: rescale_blocks needs block_std and block_flag");
        // In place: a tensor shared by several members is rescaled once, by its first member,
        // and its std and flag copied to the others.
        std::vector<float*> xs;
        std::vector<double*> stds;
        std::vector<int*> flags;
        std::vector<const double*> dup_std_src;
        std::vector<const int*> dup_flag_src;
        std::vector<double*> dup_std;
        std::vector<int*> dup_flag;
        for (int j = 0; j < count; ++j) {
          double* sd = hooks.block_std(group[j]->member, group[j]->block);
          int* fl = hooks.block_flag(group[j]->member);
          int first = j;
          for (int i = 0; i < j; ++i)
            if (in0[i] == in0[j]) {
              first = i;
              break;
            }
          if (first == j) {
            xs.push_back(const_cast<float*>(in0[j]));
            stds.push_back(sd);
            flags.push_back(fl);
          } else {
            dup_std_src.push_back(hooks.block_std(group[first]->member, group[first]->block));
            dup_flag_src.push_back(hooks.block_flag(group[first]->member));
            dup_std.push_back(sd);
            dup_flag.push_back(fl);
          }
        }
        kg::launch_seg_rescale(xs.data(), static_cast<int>(xs.size()), per_in, stds.data(), flags.data(),
                               rescale_scratch->get(), s);
        if (!dup_std.empty())
          kg::launch_seg_copy_results(dup_std_src.data(), dup_flag_src.data(), dup_std.data(), dup_flag.data(),
                                      static_cast<int>(dup_std.size()), s);
        break;
      }
    }
    for (const MemberStep* a : aliases) {
      auto& mv = vals[static_cast<size_t>(a->member)];
      if (a->out >= 0) mv[a->out] = vals[static_cast<size_t>(group[0]->member)][group[0]->out];
      group.push_back(a);
    }
    // Values die after their last reader (kept all with keep_values); a group's allocation goes
    // when its last member's does.
    if (opt.keep_values) continue;
    for (const MemberStep* m : group) {
      auto& mv = vals[static_cast<size_t>(m->member)];
      if (m->in0 >= 0 && S.last_use(static_cast<size_t>(m->member), m->in0) == static_cast<int>(gi)) mv[m->in0] = {};
      if (m->in1 >= 0 && S.last_use(static_cast<size_t>(m->member), m->in1) == static_cast<int>(gi)) mv[m->in1] = {};
    }
  }
  GpuPopulationForward res;
  if (opt.keep_values) {
    res.values.resize(P);
    res.bn_invstd.resize(P);
    for (size_t m = 0; m < P; ++m) {
      res.values[m].assign(vals[m].size(), nullptr);
      res.bn_invstd[m].assign(S.plan(m).bn_channels.size(), nullptr);
      for (size_t v = 0; v < vals[m].size(); ++v) {
        res.values[m][v] = vals[m][v].p;
        if (vals[m][v].buf) res.keep.push_back(vals[m][v].buf);
        if (vals[m][v].stats) res.keep_stats.push_back(vals[m][v].stats);
      }
    }
    // Per BN layer: the invstd of the value it produced.
    for (const GroupStep& g : steps)
      if (g.kind == StepKind::kBatchNorm)
        for (const MemberStep& ms : g.members)
          res.bn_invstd[static_cast<size_t>(ms.member)][ms.bn] = vals[static_cast<size_t>(ms.member)][ms.out].bn_invstd;
  }
  if (opt.need_logits) {
    for (size_t m = 0; m < P; ++m) {
      const Val& v = vals[m][S.lowered(m).rep[S.plan(m).logits]];
      if (!v.p) throw std::logic_error("gpu_forward_population: a member's logits were not produced");
      res.logits.push_back(v.p);
      res.keep.push_back(v.buf);
    }
  }
  return res;
}

}  // namespace hn::engine
