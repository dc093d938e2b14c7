// CPU backend of the scorer: runs each architecture's plan with engine/cpu_forward and turns
// ReLU codes, logits and block statistics into proxies (SPEC.md 3).
#include <omp.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <optional>
#include <algorithm>

#include "engine/cpu_forward.hpp"
#include "engine/cpu_ntk.hpp"
#include "engine/feature_proxies.hpp"
#include "engine/cpu_proxies.hpp"
#include "engine/population.hpp"
#include "kernels/linalg.hpp"
#include "engine/scorer.hpp"
#include "kernels/cpu_ops.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

void require_space(const std::vector<net::Arch>& archs, net::Space space) {
  for (const auto& a : archs)
    if (a.space != space)
      throw std::invalid_argument(std::string("a ") + net::space_name(a.space) + " architecture given to a " +
                                  net::space_name(space) + " scorer");
}

ArchScore degenerate_score(const net::Arch& g, const std::vector<Proxy>& raw) {
  ArchScore out;
  out.arch = g;
  for (Proxy p : raw) out[p] = worst(p, kFlagDegenerate);
  return out;
}

RunnableMembers runnable_members(const std::vector<net::Arch>& archs, int num_classes, const std::vector<Proxy>& raw,
                                 std::vector<ArchScore>& out) {
  RunnableMembers r;
  out.assign(archs.size(), ArchScore{});
  for (size_t i = 0; i < archs.size(); ++i) {
    if (net::is_degenerate(archs[i])) {
      out[i] = degenerate_score(archs[i], raw);
      continue;
    }
    out[i].arch = archs[i];
    r.index.push_back(i);
    r.plans.push_back(net::build_plan(archs[i], num_classes));
  }
  for (const auto& p : r.plans) r.members.push_back(&p);
  return r;
}

std::vector<ArchScore> Scorer::score_all(const std::vector<net::Arch>& archs) {
  std::vector<ArchScore> out(archs.size());
  score(archs, [&](size_t i, ArchScore&& s) { out[i] = std::move(s); });
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool has(const std::vector<Proxy>& ps, Proxy p) {
  for (Proxy q : ps)
    if (q == p) return true;
  return false;
}

template <typename T>
std::vector<T> to_type(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}
template <typename T>
std::vector<T> to_type(const std::vector<float>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T>
class CpuScorer final : public Scorer {
 public:
  CpuScorer(const ScoreSettings& s, const ScoreInputs& in)
      : s_(s), raw_(raw_proxies(s.proxies)), features_(s, raw_proxies(s.proxies), in.images) {
    raw_.erase(std::remove(raw_.begin(), raw_.end(), Proxy::kNinaswot), raw_.end());
    kernels::cpu_kernels_init();
    if (s_.threads > 0) omp_set_num_threads(s_.threads);
    const bool forward_default = has(raw_, Proxy::kNaswot) || has(raw_, Proxy::kNaswotOnce) ||
                                 has(raw_, Proxy::kNi) || has(raw_, Proxy::kNtk) ||
                                 has(raw_, Proxy::kNtkFast) || has(raw_, Proxy::kZico);
    if (forward_default) {
      if (in.images.size() != static_cast<size_t>(s_.batch) * net::kImageNumel)
        throw std::invalid_argument("scorer inputs do not hold --batch images");
      images_ = to_type<T>(in.images);
      labels_ = in.labels;
      if (has(raw_, Proxy::kZico)) check_zico_labels(labels_, s_);
      bank_default_.emplace(net::WeightBank::generate(net::InitScheme::kDefault, s_.score_seed, s_.num_classes, 0, s_.space));
    }
    if (has(raw_, Proxy::kNi)) {
      // x' = x + z, z ~ N(0, 0.05^2) drawn in float and added in T.
      const auto z = net::gaussian_images(s_.score_seed, Purpose::kNiNoise, 0, s_.batch, 0.05);
      noisy_ = images_;
      for (size_t i = 0; i < noisy_.size(); ++i) noisy_[i] += static_cast<T>(z[i]);
    }
    if (has(raw_, Proxy::kEntropy)) {
      for (int r = 0; r < s_.entropy_repeats; ++r) {
        bank_entropy_.emplace_back(net::WeightBank::generate(net::InitScheme::kEntropy, s_.score_seed, s_.num_classes, r, s_.space));
        entropy_inputs_.push_back(to_type<T>(net::gaussian_images(
            s_.score_seed, Purpose::kEntropyInput, r, s_.entropy_batch)));
      }
    }
    // SynFlow's network: |every parameter| of the scoring bank, in FP64 whatever the precision.
    if (has(raw_, Proxy::kSynflow) || has(raw_, Proxy::kLogsynflow))
      bank_abs_.emplace(synflow_bank(s_.score_seed, s_.num_classes, s_.space));
    if (has(raw_, Proxy::kEntropySeed)) {
      bank_eseed_.emplace(net::WeightBank::generate(net::InitScheme::kEntropySeed, s_.score_seed, s_.num_classes, 0, s_.space));
      eseed_input_ = to_type<T>(
          net::gaussian_images(s_.score_seed, Purpose::kEntropySeedInput, 0, s_.batch));
    }
  }

  const char* backend_name() const override { return "cpu"; }

  // Architectures are scored in populations (engine/population.hpp): each forward proxy runs its
  // network once for a whole slice of the list in lockstep, and every member's result is the same
  // whatever else is in the slice (tests/test_population.cpp). `done` is called in input order,
  // after each slice.
  void score(const std::vector<net::Arch>& archs,
             const std::function<void(size_t, ArchScore&&)>& done) override {
    require_space(archs, s_.space);
    const size_t slice = population_slice();
    for (size_t start = 0; start < archs.size(); start += slice) {
      const size_t end = std::min(archs.size(), start + slice);
      std::vector<net::Arch> part(archs.begin() + static_cast<std::ptrdiff_t>(start),
                                   archs.begin() + static_cast<std::ptrdiff_t>(end));
      std::vector<ArchScore> out = score_population(part);
      for (size_t i = 0; i < out.size(); ++i) done(start + i, std::move(out[i]));
    }
  }

 private:
  // Members per population: all their live activations exist at once, so about 1 GiB of them
  // (at least one per thread, at most 64: on the CPU larger groups gain nothing).
  size_t population_slice() const {
    if (s_.population_batch > 0) return static_cast<size_t>(s_.population_batch);
    const int64_t per_member = int64_t(std::max(s_.batch, s_.entropy_batch)) *
                               net::max_full_resolution_channels(s_.space) *
                               net::kImageSize * net::kImageSize * int64_t(sizeof(T)) * 12;
    const int64_t fit = (int64_t(1) << 30) / std::max<int64_t>(1, per_member);
    return static_cast<size_t>(std::clamp<int64_t>(fit, std::max(1, omp_get_max_threads()), 64));
  }

  std::vector<ArchScore> score_population(const std::vector<net::Arch>& archs) {
    std::vector<ArchScore> out;
    const RunnableMembers rm = runnable_members(archs, s_.num_classes, raw_, out);
    const std::vector<size_t>& run = rm.index;
    const std::vector<const net::Plan*>& pp = rm.members;
    if (run.empty()) return out;
    auto set = [&](size_t member, Proxy p, ProxyValue v) { out[run[member]][p] = std::move(v); };
    if (has(raw_, Proxy::kNaswot) || has(raw_, Proxy::kNaswotOnce) || has(raw_, Proxy::kNi))
      naswot_and_ni(pp, set);
    if (has(raw_, Proxy::kEntropy)) entropy(pp, set);
    if (has(raw_, Proxy::kEntropySeed)) entropy_seed(pp, set);
    for (const bool exact : {false, true}) {
      const Proxy p = exact ? Proxy::kNtk : Proxy::kNtkFast;
      if (has(raw_, p)) ntk(pp, exact, set);
    }
    for (size_t m = 0; m < pp.size(); ++m) {  // counted from the plan (net/plan.hpp)
      if (has(raw_, Proxy::kParams)) set(m, Proxy::kParams, ProxyValue{net::nb201_params_m(*pp[m]), "", 0.0});
      if (has(raw_, Proxy::kFlops)) set(m, Proxy::kFlops, ProxyValue{net::nb201_flops_m(*pp[m]), "", 0.0});
    }
    if (has(raw_, Proxy::kSynflow) || has(raw_, Proxy::kLogsynflow)) synflow(pp, set);
    if (has(raw_, Proxy::kZico)) zico(pp, set);
    if (features_.any()) features_.score(pp, set);
    for (size_t i : run)
      for (Proxy p : raw_) out[i][p] = sanitize(p, *out[i][p]);
    return out;
  }

  using Setter = std::function<void(size_t, Proxy, ProxyValue)>;

  // One clean forward of the population gives the naswot kernels and the clean logits; ni adds a
  // noisy forward. Seconds: the population's time shared equally by its members.
  void naswot_and_ni(const std::vector<const net::Plan*>& pp, const Setter& set) {
    const int B = s_.batch;
    const size_t P = pp.size();
    const bool want_k = has(raw_, Proxy::kNaswot), want_k1 = has(raw_, Proxy::kNaswotOnce);
    const bool want_ni = has(raw_, Proxy::kNi);
    auto t0 = Clock::now();
    std::vector<std::unique_ptr<NaswotKernels<T>>> kernels;
    for (const net::Plan* p : pp) kernels.push_back(std::make_unique<NaswotKernels<T>>(*p, B));
    ForwardOptions opt;
    opt.need_logits = want_ni;
    opt.report_sites = want_k || want_k1;
    const PopulationSchedule clean_schedule(pp, opt);
    const auto clean = cpu_forward_population<T>(clean_schedule, *bank_default_, images_.data(), B, opt,
                                                 [&](size_t m, const SiteView<T>& v) { (*kernels[m])(v); });
    std::vector<ProxyValue> k(P), k1(P);
#pragma omp parallel for schedule(dynamic, 1) if (P > 1)
    for (size_t m = 0; m < P; ++m) {
      if (want_k) k[m] = naswot_from_kernel(kernels[m]->k(), B);
      if (want_k1) k1[m] = naswot_from_kernel(kernels[m]->k_once(), B);
    }
    const double t_clean = seconds_since(t0) / static_cast<double>(P);
    for (size_t m = 0; m < P; ++m) {
      if (want_k) set(m, Proxy::kNaswot, ProxyValue{k[m].value, k[m].flag, t_clean});
      if (want_k1) set(m, Proxy::kNaswotOnce, ProxyValue{k1[m].value, k1[m].flag, want_k ? 0.0 : t_clean});
    }
    if (!want_ni) return;
    t0 = Clock::now();
    ForwardOptions nopt;
    nopt.report_sites = false;
    const PopulationSchedule noisy_schedule(pp, nopt);
    const auto noisy = cpu_forward_population<T>(noisy_schedule, *bank_default_, noisy_.data(), B, nopt);
    // ni shares naswot's clean forward; alone, it pays for it.
    const double t_ni = seconds_since(t0) / static_cast<double>(P) + ((want_k || want_k1) ? 0.0 : t_clean);
    for (size_t m = 0; m < P; ++m)
      set(m, Proxy::kNi, ProxyValue{ni_from_logits(clean[m].logits, noisy[m].logits), "", t_ni});
  }

  void entropy(const std::vector<const net::Plan*>& pp, const Setter& set) {
    const auto t0 = Clock::now();
    const size_t P = pp.size();
    const ForwardOptions opt = entropy_options();
    const PopulationSchedule schedule(pp, opt);
    std::vector<double> total(P, 0.0);
    std::vector<std::optional<ProxyValue>> failed(P);
    for (int r = 0; r < s_.entropy_repeats; ++r) {
      const auto res = cpu_forward_population<T>(schedule, bank_entropy_[r], entropy_inputs_[r].data(),
                                                 s_.entropy_batch, opt);
      for (size_t m = 0; m < P; ++m) {
        if (failed[m]) continue;
        const ProxyValue v = entropy_from_blocks(res[m].block_std, res[m].zero_variance);
        if (!v.flag.empty()) failed[m] = v;
        else total[m] += v.value;
      }
    }
    const double secs = seconds_since(t0) / static_cast<double>(P);
    for (size_t m = 0; m < P; ++m) {
      ProxyValue v = failed[m] ? *failed[m] : ProxyValue{total[m] / s_.entropy_repeats, "", 0.0};
      v.seconds = secs;
      set(m, Proxy::kEntropy, v);
    }
  }

  void entropy_seed(const std::vector<const net::Plan*>& pp, const Setter& set) {
    const auto t0 = Clock::now();
    ForwardOptions opt;
    opt.need_logits = false;
    std::vector<std::unique_ptr<EntropySeedSum<T>>> sums;
    for (const net::Plan* p : pp) sums.push_back(std::make_unique<EntropySeedSum<T>>(*p));
    const PopulationSchedule schedule(pp, opt);
    cpu_forward_population<T>(schedule, *bank_eseed_, eseed_input_.data(), s_.batch, opt,
                              [&](size_t m, const SiteView<T>& v) { (*sums[m])(v); });
    const double secs = seconds_since(t0) / static_cast<double>(pp.size());
    for (size_t m = 0; m < pp.size(); ++m) set(m, Proxy::kEntropySeed, ProxyValue{sums[m]->value(), "", secs});
  }

  // kappa of the FP64 Gram of the first min(64, B) images' gradients (SPEC.md 3), for the whole
  // population (engine/cpu_ntk.hpp). Seconds: the population's time shared equally by its members.
  void ntk(const std::vector<const net::Plan*>& pp, bool exact, const Setter& set) {
    const auto t0 = Clock::now();
    const Proxy p = exact ? Proxy::kNtk : Proxy::kNtkFast;
    NtkOptions opt;
    opt.exact = exact;
    const int n = std::min(64, s_.batch);
    const std::vector<kernels::Condition> c = cpu_ntk_population<T>(pp, *bank_default_, images_.data(), n, opt);
    const double secs = seconds_since(t0) / static_cast<double>(pp.size());
    for (size_t m = 0; m < pp.size(); ++m) {
      ProxyValue v = c[m].ill_conditioned ? worst(p, kFlagIllConditioned) : ProxyValue{c[m].kappa, "", 0.0};
      v.seconds = secs;
      set(m, p, v);
    }
  }

  // SynFlow and LogSynflow (engine/cpu_ntk.hpp: one backward of one image each, FP64), members
  // over the threads. Seconds: the population's time shared equally, once for the pair.
  void synflow(const std::vector<const net::Plan*>& pp, const Setter& set) {
    const auto t0 = Clock::now();
    std::vector<SynflowValues> v(pp.size());
    each_member(pp.size(), [&](size_t m) { v[m] = cpu_synflow(*pp[m], *bank_abs_); });
    const double secs = seconds_since(t0) / static_cast<double>(pp.size());
    const bool both = has(raw_, Proxy::kSynflow) && has(raw_, Proxy::kLogsynflow);
    for (size_t m = 0; m < pp.size(); ++m) {
      if (has(raw_, Proxy::kSynflow)) set(m, Proxy::kSynflow, ProxyValue{v[m].synflow, "", secs});
      if (has(raw_, Proxy::kLogsynflow))
        set(m, Proxy::kLogsynflow, ProxyValue{v[m].logsynflow, "", both ? 0.0 : secs});
    }
  }

  // ZiCo (engine/cpu_ntk.hpp): two cross-entropy backward passes per member, members over the
  // threads. Seconds: the population's time shared equally.
  void zico(const std::vector<const net::Plan*>& pp, const Setter& set) {
    const auto t0 = Clock::now();
    std::vector<double> v(pp.size());
    each_member(pp.size(), [&](size_t m) { v[m] = cpu_zico<T>(*pp[m], *bank_default_, images_.data(), labels_, s_.batch); });
    const double secs = seconds_since(t0) / static_cast<double>(pp.size());
    for (size_t m = 0; m < pp.size(); ++m) {
      ProxyValue z = std::isnan(v[m]) ? worst(Proxy::kZico, kFlagZeroVariance) : ProxyValue{v[m], "", 0.0};
      z.seconds = secs;
      set(m, Proxy::kZico, z);
    }
  }

  ScoreSettings s_;
  std::vector<Proxy> raw_;
  std::vector<int> labels_;
  std::vector<T> images_, noisy_, eseed_input_;
  std::optional<TypedBank<T>> bank_default_, bank_eseed_;
  std::optional<TypedBank<double>> bank_abs_;  // SynFlow's |parameters|
  std::vector<TypedBank<T>> bank_entropy_;
  std::vector<std::vector<T>> entropy_inputs_;
  FeatureProxies<T> features_;  // swap, swap_reg, meco, az_*
};

}  // namespace

std::unique_ptr<Scorer> make_cpu_scorer(const ScoreSettings& settings, const ScoreInputs& inputs) {
  settings.validate();
  if (settings.precision == Precision::kFp64)
    return std::make_unique<CpuScorer<double>>(settings, inputs);
  return std::make_unique<CpuScorer<float>>(settings, inputs);
}

}  // namespace hn::engine
