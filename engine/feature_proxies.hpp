// Proxies computed from the activations of a forward pass (and, for AZ-NAS's trainability, the
// data gradients of each block): SWAP (Peng et al., ICLR 2024), MeCo (Jiang et al., NeurIPS 2023)
// and the AZ-NAS components (Lee & Ham, CVPR 2024). docs/proxies.md defines each, with where the
// authors' code differs from the papers. One implementation serves both backends (the CUDA backend
// runs them on the host for now).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "engine/cpu_forward.hpp"
#include "engine/proxy.hpp"
#include "engine/settings.hpp"

namespace hn::engine {

// ---- SWAP ------------------------------------------------------------------------------------
// Distinct sample-wise activation patterns of one network (SWAP-Score, the authors' code
// pym1024/SWAP src/metrics/swap.py): for every unit u of every ReLU module's input (every ReLU
// site), the vector (1[pre_u(x_n) > 0]) over the `samples` images n; the count of distinct
// vectors over all units of all sites. Feed it every site of one forward (a SiteCallback).
class SwapPatterns {
 public:
  // samples in 1..64; throws std::invalid_argument otherwise.
  explicit SwapPatterns(int samples);
  template <typename T>
  void operator()(const SiteView<T>& v);
  int64_t count() const;

 private:
  int samples_;
  std::vector<uint64_t> bitmap_;  // samples <= 20: one bit per pattern
  mutable std::vector<uint64_t> keys_;  // otherwise: every unit's pattern, sorted and deduplicated by count()
};

// SWAP's model-size regulariser exp(-(params / 1e3 - mu)^2 / sigma), params the network's
// parameter count (the authors' count_parameters is in thousands).
double swap_regulariser(int64_t params, double mu, double sigma);

// ---- MeCo ------------------------------------------------------------------------------------
// MeCo (the authors' code HamsterMimi/MeCo, correlation/NAS_Bench_201.py, measure 'meco'): one
// image, train-mode BN; for every tensor a module of its NB201 network returns (net::Plan::meco_taps,
// counted once per module), the Pearson correlation matrix of its C channels over the H x W
// positions (torch.corrcoef: clipped to [-1, 1]; entries of a constant channel, NaN there, set to 0),
// and its smallest eigenvalue (FP64 LAPACK); meco = the sum. x: one image (3 x 32 x 32).
template <typename T>
double cpu_meco(const net::Plan& plan, const TypedBank<T>& bank, const T* x);
// The smallest eigenvalue of the channel correlation matrix of fea (c x hw, channel-major).
template <typename T>
double meco_min_eigenvalue(const T* fea, int c, int64_t hw);

// ---- AZ-NAS ----------------------------------------------------------------------------------
// AZ-NAS's expressivity, progressivity and trainability (the authors' code cvlab-yonsei/AZ-NAS,
// NB201/ZeroShotProxy/compute_az_nas_score.py) on the block outputs F_0 (stem) .. F_17 (NATS-SSS: F_5) of a
// train-mode forward of `images` images:
//   expressivity  = sum_b E_b, E_b the entropy -sum p log(p + 1e-8) of p = s / sum s, s the
//                   eigenvalues of F_b's channel covariance over (image, position), mean removed
//   progressivity = min over b >= 1 of E_b - E_{b-1}
//   trainability  = mean over b >= 1 of -sigma_b - 1 / (sigma_b + 1e-6) + 2, sigma_b the largest
//                   singular value of G_in^T G_out / (images x H_out x W_out): G_out a Rademacher
//                   cotangent on F_b (az_cotangents), G_in its vector-Jacobian product on F_{b-1}
//                   (batch statistics in the graph), space-to-depth'd by the block's stride when
//                   its resolution differs; -inf when G_in equals G_out (a block that is the
//                   identity map).
// Statistics in FP64 on the executor's activations.
struct AzNasValues {
  double expressivity = 0.0, progressivity = 0.0, trainability = 0.0;
  bool zero_variance = false;   // some block's covariance has no positive trace (E_b undefined):
                                // expressivity and progressivity are then not measurable
  bool identity_block = false;  // trainability is -inf (flag nonfinite): some block computes the identity
};
// Rademacher (+-1) cotangents for blocks 1.. (index 0 empty): images x the block's output numel,
// element i from Philox (i, 0, kAzCotangent, block) under the score seed: +1 when word 0 is odd.
// NATS-SSS: at 64 channels (6 blocks), of which a network's block of c channels takes each
// image's first c (so narrower networks see a corner of the same numbers).
std::vector<std::vector<float>> az_cotangents(uint64_t score_seed, int images, net::Space space = net::Space::kNb201);
template <typename T>
AzNasValues cpu_az_nas(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int images,
                       const std::vector<std::vector<T>>& cotangents);

// ---- the proxies of this file for a scorer ----------------------------------------------------
// Holds the banks and inputs of swap, swap_reg, meco and the az_* proxies for one run and scores
// populations with them; members over the threads. The proxies' seconds: their work's time shared
// equally by the members (the az_* proxies share one pass: its time is on the first requested).
template <typename T>
class FeatureProxies {
 public:
  // images: the run's --batch images (ScoreInputs::images); needed when swap, swap_reg or meco is
  // requested. Throws std::invalid_argument when they are missing.
  FeatureProxies(const ScoreSettings& s, const std::vector<Proxy>& raw, const std::vector<double>& images);
  bool any() const { return swap_ || meco_ || az_; }
  using Setter = std::function<void(size_t member, Proxy, ProxyValue)>;
  void score(const std::vector<const net::Plan*>& members, const Setter& set) const;

 private:
  ScoreSettings s_;
  std::vector<Proxy> raw_;
  bool swap_ = false, meco_ = false, az_ = false;
  std::vector<T> images_;
  std::vector<TypedBank<T>> swap_banks_;
  std::optional<TypedBank<T>> default_bank_, kaiming_bank_;
  std::vector<T> az_input_;
  std::vector<std::vector<T>> az_cotangents_;
};

}  // namespace hn::engine
