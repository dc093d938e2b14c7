// CPU backend of the scorer: runs each architecture's plan with engine/cpu_forward and turns
// ReLU codes, logits and block statistics into proxies (SPEC.md 3).
#include <omp.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <optional>

#include "engine/cpu_forward.hpp"
#include "engine/cpu_ntk.hpp"
#include "engine/cpu_proxies.hpp"
#include "kernels/linalg.hpp"
#include "engine/scorer.hpp"
#include "kernels/cpu_ops.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

ArchScore degenerate_score(const net::Genes& g, const std::vector<Proxy>& raw) {
  ArchScore out;
  out.genes = g;
  for (Proxy p : raw) out[p] = worst(p, kFlagDegenerate);
  return out;
}

std::vector<ArchScore> Scorer::score_all(const std::vector<net::Genes>& archs) {
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
  CpuScorer(const ScoreSettings& s, const ScoreInputs& in) : s_(s), raw_(raw_proxies(s.proxies)) {
    raw_.erase(std::remove(raw_.begin(), raw_.end(), Proxy::kNinaswot), raw_.end());
    kernels::cpu_kernels_init();
    if (s_.threads > 0) omp_set_num_threads(s_.threads);
    const bool forward_default = has(raw_, Proxy::kNaswot) || has(raw_, Proxy::kNaswotOnce) ||
                                 has(raw_, Proxy::kNi) || has(raw_, Proxy::kNtk) ||
                                 has(raw_, Proxy::kNtkFast);
    if (forward_default) {
      if (in.images.size() != static_cast<size_t>(s_.batch) * net::kImageNumel)
        throw std::invalid_argument("scorer inputs do not hold --batch images");
      images_ = to_type<T>(in.images);
      bank_default_.emplace(net::WeightBank::generate(net::InitScheme::kDefault, s_.score_seed,
                                                      s_.num_classes));
    }
    if (has(raw_, Proxy::kNi)) {
      // x' = x + z, z ~ N(0, 0.05^2) drawn in float and added in T.
      const auto z = net::gaussian_images(s_.score_seed, Purpose::kNiNoise, 0, s_.batch, 0.05);
      noisy_ = images_;
      for (size_t i = 0; i < noisy_.size(); ++i) noisy_[i] += static_cast<T>(z[i]);
    }
    if (has(raw_, Proxy::kEntropy)) {
      for (int r = 0; r < s_.entropy_repeats; ++r) {
        bank_entropy_.emplace_back(net::WeightBank::generate(net::InitScheme::kEntropy,
                                                             s_.score_seed, s_.num_classes, r));
        entropy_inputs_.push_back(to_type<T>(net::gaussian_images(
            s_.score_seed, Purpose::kEntropyInput, r, s_.entropy_batch)));
      }
    }
    if (has(raw_, Proxy::kEntropySeed)) {
      bank_eseed_.emplace(net::WeightBank::generate(net::InitScheme::kEntropySeed, s_.score_seed,
                                                    s_.num_classes));
      eseed_input_ = to_type<T>(
          net::gaussian_images(s_.score_seed, Purpose::kEntropySeedInput, 0, s_.batch));
    }
  }

  const char* backend_name() const override { return "cpu"; }

  // With at least as many architectures as threads, each thread scores whole architectures
  // (no per-kernel barriers); otherwise the kernels split each network over images. Every
  // kernel's result is independent of how it is split, so the scores are the same either way.
  // `done` is called in input order.
  void score(const std::vector<net::Genes>& archs,
             const std::function<void(size_t, ArchScore&&)>& done) override {
    const int threads = omp_get_max_threads();
    if (archs.size() < 2 || static_cast<int>(archs.size()) < threads || threads < 2) {
      for (size_t i = 0; i < archs.size(); ++i) done(i, score_one(archs[i]));
      return;
    }
    std::vector<std::optional<ArchScore>> ready(archs.size());
    size_t next = 0;
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < archs.size(); ++i) {
      if (error) continue;
      try {
        ArchScore a = score_one(archs[i]);
#pragma omp critical(hn_cpu_scorer_emit)
        {
          ready[i] = std::move(a);
          for (; next < archs.size() && ready[next]; ++next) {
            done(next, std::move(*ready[next]));
            ready[next].reset();
          }
        }
      } catch (...) {
#pragma omp critical(hn_cpu_scorer_emit)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  ArchScore score_one(const net::Genes& g) {
    if (net::is_degenerate(g)) return degenerate_score(g, raw_);
    ArchScore out;
    out.genes = g;
    const net::Plan plan = net::build_plan(g, s_.num_classes);
    if (has(raw_, Proxy::kNaswot) || has(raw_, Proxy::kNaswotOnce) || has(raw_, Proxy::kNi))
      naswot_and_ni(plan, out);
    if (has(raw_, Proxy::kEntropy)) out[Proxy::kEntropy] = entropy(plan);
    if (has(raw_, Proxy::kEntropySeed)) out[Proxy::kEntropySeed] = entropy_seed(plan);
    if (has(raw_, Proxy::kNtkFast)) out[Proxy::kNtkFast] = ntk(plan, false);
    if (has(raw_, Proxy::kNtk)) out[Proxy::kNtk] = ntk(plan, true);
    for (Proxy p : raw_) out[p] = sanitize(p, *out[p]);
    return out;
  }

  // One clean forward gives the naswot kernels and the clean logits; ni adds a noisy forward.
  void naswot_and_ni(const net::Plan& plan, ArchScore& out) {
    const int B = s_.batch;
    const bool want_k = has(raw_, Proxy::kNaswot), want_k1 = has(raw_, Proxy::kNaswotOnce);
    const bool want_ni = has(raw_, Proxy::kNi);
    auto t0 = Clock::now();
    NaswotKernels<T> kernels(plan, B);
    ForwardOptions opt;
    opt.need_logits = want_ni;
    opt.report_sites = want_k || want_k1;
    const auto clean = cpu_forward<T>(plan, *bank_default_, images_.data(), B, opt, std::ref(kernels));
    if (want_k) out[Proxy::kNaswot] = naswot_from_kernel(kernels.k(), B);
    if (want_k1) out[Proxy::kNaswotOnce] = naswot_from_kernel(kernels.k_once(), B);
    const double t_clean = seconds_since(t0);
    if (want_k) out[Proxy::kNaswot]->seconds = t_clean;
    if (want_k1) out[Proxy::kNaswotOnce]->seconds = want_k ? 0.0 : t_clean;
    if (!want_ni) return;
    t0 = Clock::now();
    ForwardOptions nopt;
    nopt.report_sites = false;
    const auto noisy = cpu_forward<T>(plan, *bank_default_, noisy_.data(), B, nopt);
    // ni shares naswot's clean forward; alone, it pays for it.
    const double t_ni = seconds_since(t0) + ((want_k || want_k1) ? 0.0 : t_clean);
    out[Proxy::kNi] = ProxyValue{ni_from_logits(clean.logits, noisy.logits), "", t_ni};
  }

  ProxyValue entropy(const net::Plan& plan) {
    const auto t0 = Clock::now();
    double total = 0.0;
    for (int r = 0; r < s_.entropy_repeats; ++r) {
      const auto res = cpu_forward<T>(plan, bank_entropy_[r], entropy_inputs_[r].data(),
                                      s_.entropy_batch, entropy_options());
      const ProxyValue v = entropy_from_blocks(res.block_std, res.zero_variance);
      if (!v.flag.empty()) return v;
      total += v.value;
    }
    return ProxyValue{total / s_.entropy_repeats, "", seconds_since(t0)};
  }

  ProxyValue entropy_seed(const net::Plan& plan) {
    const auto t0 = Clock::now();
    ForwardOptions opt;
    opt.need_logits = false;
    EntropySeedSum<T> sum(plan);
    cpu_forward<T>(plan, *bank_eseed_, eseed_input_.data(), s_.batch, opt, std::ref(sum));
    return ProxyValue{sum.value, "", seconds_since(t0)};
  }

  // kappa of the FP64 Gram of the first min(64, B) images' gradients (SPEC.md 3).
  ProxyValue ntk(const net::Plan& plan, bool exact) {
    const auto t0 = Clock::now();
    const Proxy p = exact ? Proxy::kNtk : Proxy::kNtkFast;
    NtkOptions opt;
    opt.exact = exact;
    const int n = std::min(64, s_.batch);
    const auto grads = cpu_ntk_gradients<T>(plan, *bank_default_, images_.data(), n, opt);
    const kernels::Condition c = kernels::condition_number(gram_fp64(grads), n);
    ProxyValue v = c.ill_conditioned ? worst(p, kFlagIllConditioned) : ProxyValue{c.kappa, "", 0.0};
    v.seconds = seconds_since(t0);
    return v;
  }

  ScoreSettings s_;
  std::vector<Proxy> raw_;
  std::vector<T> images_, noisy_, eseed_input_;
  std::optional<TypedBank<T>> bank_default_, bank_eseed_;
  std::vector<TypedBank<T>> bank_entropy_;
  std::vector<std::vector<T>> entropy_inputs_;
};

}  // namespace

std::unique_ptr<Scorer> make_cpu_scorer(const ScoreSettings& settings, const ScoreInputs& inputs) {
  settings.validate();
  if (settings.precision == Precision::kFp64)
    return std::make_unique<CpuScorer<double>>(settings, inputs);
  return std::make_unique<CpuScorer<float>>(settings, inputs);
}

}  // namespace hn::engine
