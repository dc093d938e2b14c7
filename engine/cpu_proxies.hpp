// The proxies' arithmetic on top of a CPU forward pass (SPEC.md 3), shared by the CPU scorer and
// the tests that feed the executor foreign weights (the official-code fixture).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/cpu_forward.hpp"
#include "engine/proxy.hpp"

namespace hn::engine {

// Site callback that builds the naswot kernels: K (site weight = modules the official code
// hooks) and K_once (weight = nn.ReLU modules), exact integers.
template <typename T>
class NaswotKernels {
 public:
  NaswotKernels(const net::Plan& plan, int batch);
  void operator()(const SiteView<T>& v);
  const std::vector<int64_t>& k() const { return k_; }
  const std::vector<int64_t>& k_once() const { return k_once_; }
  // Per-site codes of the last forward, when keep_codes was set (tests).
  bool keep_codes = false;
  std::vector<std::vector<uint64_t>> codes;

 private:
  const net::Plan& plan_;
  int batch_;
  std::vector<int64_t> k_, k_once_, agree_;
  std::vector<uint64_t> scratch_;
};

// log det K by FP64 Cholesky; worst with flag `singular` when it fails (SPEC.md 3).
ProxyValue naswot_from_kernel(const std::vector<int64_t>& k, int batch);
// -sum (o - o')^2 in FP64.
template <typename T>
double ni_from_logits(const std::vector<T>& clean, const std::vector<T>& noisy);
// Sum of log s over the block ends + log 64; worst (zero_variance) when the forward stopped.
ProxyValue entropy_from_blocks(const std::vector<double>& block_std, bool zero_variance);

// Site callback for entropy_seed: sum over hooked modules of log(1 + a_l), a_l the batch mean of
// the per-image sum of |site input| (max(x, 0) for the head's in-place ReLU).
template <typename T>
class EntropySeedSum {
 public:
  explicit EntropySeedSum(const net::Plan& plan)
      : a(plan.sites.size(), 0.0), plan_(plan), seen_(plan.sites.size(), 0) {}
  void operator()(const SiteView<T>& v);
  // The sum, over the sites seen, in site order (so the same whatever order a schedule visits
  // them in).
  double value() const;
  std::vector<double> a;  // a_l per site, by site index

 private:
  const net::Plan& plan_;
  std::vector<char> seen_;
};

}  // namespace hn::engine
