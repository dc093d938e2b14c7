// Proxy names, directions, worst values and flags (SPEC.md 3).
#pragma once
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace hn::engine {

enum class Proxy : int {
  kNaswot = 0,
  kNaswotOnce,
  kNi,
  kNinaswot,
  kEntropy,
  kEntropySeed,
  kNtk,
  kNtkFast,
  kParams,      // parameters of the network, counted from the plan
  kFlops,       // FLOPs of one 32 x 32 image, counted from the plan
  kSynflow,     // SynFlow (Tanaka et al. 2020), as zero-cost-nas computes it
  kLogsynflow,  // LogSynflow (Cavagnero et al. 2023)
  kZico,        // ZiCo (Li et al. 2023): gradients' inverse coefficient of variation over 2 batches
  kSwap,        // SWAP-Score (Peng et al. 2024): distinct sample-wise ReLU patterns
  kSwapReg,     // SWAP-Score times its Gaussian model-size regulariser
  kMeco,        // MeCo (Jiang et al. 2023): summed minimum eigenvalues of feature correlations
  kAzExpressivity,   // AZ-NAS (Lee & Ham 2024): isotropy of the block features
  kAzProgressivity,  // AZ-NAS: smallest expressivity increase from a block to the next
  kAzTrainability,   // AZ-NAS: spectral norm of the block Jacobians, near 1 is best
  kCount
};
inline constexpr int kNumProxies = static_cast<int>(Proxy::kCount);

const char* proxy_name(Proxy p);
// Throws std::invalid_argument listing the known names.
Proxy parse_proxy(const std::string& name);
// Comma-separated list; duplicates removed, order kept.
std::vector<Proxy> parse_proxy_list(const std::string& list);
std::string proxy_list_string(const std::vector<Proxy>& ps);

// Higher is better for every proxy except the NTK condition numbers.
inline bool higher_is_better(Proxy p) { return p != Proxy::kNtk && p != Proxy::kNtkFast; }
inline double worst_value(Proxy p) {
  return higher_is_better(p) ? -std::numeric_limits<double>::infinity()
                             : std::numeric_limits<double>::infinity();
}

// Flags (SPEC.md 3); empty = none.
inline constexpr const char* kFlagDegenerate = "degenerate";
inline constexpr const char* kFlagSingular = "singular";
inline constexpr const char* kFlagIllConditioned = "ill_conditioned";
inline constexpr const char* kFlagZeroVariance = "zero_variance";
inline constexpr const char* kFlagNonfinite = "nonfinite";

struct ProxyValue {
  double value = 0.0;
  std::string flag;      // empty when the value is a regular one
  double seconds = 0.0;  // wall time spent on this proxy for this architecture
};

// A value that is NaN or infinite without a flag becomes the worst value, flagged nonfinite;
// -0.0 becomes 0.
ProxyValue sanitize(Proxy p, ProxyValue v);
inline ProxyValue worst(Proxy p, const char* flag) { return ProxyValue{worst_value(p), flag, 0.0}; }

}  // namespace hn::engine
