#include "engine/settings.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "kernels/philox.cuh"
#include "net/plan.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

const char* precision_name(Precision p) { return p == Precision::kFp32 ? "fp32" : "fp64"; }

namespace {
// zico's cross-entropy loss needs labels, which Gaussian input has not: refused by validate() (so
// that bench checks it before timing) and by load_inputs() (for callers that skip validate).
void require_labels_for_zico(const std::vector<Proxy>& raw, bool gaussian_input) {
  if (gaussian_input && std::find(raw.begin(), raw.end(), Proxy::kZico) != raw.end())
    throw std::invalid_argument("zico needs labelled images (a cross-entropy loss): give --data (Gaussian input has no labels)");
}
}  // namespace

void ScoreSettings::validate() const {
  auto bad = [](const std::string& m) { throw std::invalid_argument(m); };
  if (proxies.empty()) bad("no proxies requested (--proxies)");
  if (batch < 2 || batch > 4096) bad("--batch must be in 2..4096, got " + std::to_string(batch));
  if (entropy_batch < 1 || entropy_batch > 4096)
    bad("--entropy-batch must be in 1..4096, got " + std::to_string(entropy_batch));
  if (entropy_repeats < 1 || entropy_repeats > 1000)
    bad("--entropy-repeats must be in 1..1000, got " + std::to_string(entropy_repeats));
  if (num_classes < 1 || num_classes > 1000)
    bad("--num-classes must be in 1..1000, got " + std::to_string(num_classes));
  if (image_offset < 0) bad("--image-offset must be >= 0");
  if (threads < 0) bad("--threads must be >= 0");
  if (device < 0) bad("--device must be >= 0");
  if (gpu_streams < 1 || gpu_streams > 64) bad("--gpu-streams must be in 1..64");
  if (tf32 && precision == Precision::kFp64) bad("--tf32 and --precision fp64 exclude each other");
  for (Proxy p : raw_proxies(proxies))
    if (p == Proxy::kZico && batch < 4) bad("zico needs --batch >= 4 (its two mini-batches are the halves of the batch)");
  require_labels_for_zico(raw_proxies(proxies), gaussian_input);
  if (swap_repeats < 1 || swap_repeats > 1000) bad("--swap-repeats must be in 1..1000, got " + std::to_string(swap_repeats));
  // Bounded so that (params - mu)^2 and mu^2 stay finite.
  if (!(swap_mu >= 0.0 && swap_mu <= 1e12)) bad("--swap-mu must be in 0..1e12 thousand parameters (0: the default)");
  if (!(swap_sigma >= 0.0 && swap_sigma <= 1e24)) bad("--swap-sigma must be in 0..1e24 (0: the default, mu^2)");
}

SwapRegParameters swap_reg_mu_sigma(const ScoreSettings& s) {
  double mu = s.swap_mu;
  if (!(mu > 0.0)) {  // the space's largest network
    if (s.space == net::Space::kNatsSss) {
      net::sss::Widths w;
      w.c.fill(64);
      mu = static_cast<double>(net::sss::sss_params(w, s.num_classes)) / 1e3;
    } else {
      net::Genes g;
      g.ops.fill(net::Op::kConv3x3);
      mu = static_cast<double>(net::build_plan(g, s.num_classes).param_count) / 1e3;
    }
  }
  return SwapRegParameters{mu, s.swap_sigma > 0.0 ? s.swap_sigma : mu * mu};
}

std::vector<Proxy> raw_proxies(const std::vector<Proxy>& wanted) {
  std::vector<Proxy> raw;
  auto add = [&](Proxy p) {
    if (std::find(raw.begin(), raw.end(), p) == raw.end()) raw.push_back(p);
  };
  for (Proxy p : wanted) {
    if (p == Proxy::kNinaswot) {
      add(Proxy::kNaswot);
      add(Proxy::kNi);
    } else {
      add(p);
    }
  }
  return raw;
}

bool needs_images(const std::vector<Proxy>& raw) {
  for (Proxy p : raw)
    if (p == Proxy::kNaswot || p == Proxy::kNaswotOnce || p == Proxy::kNi || p == Proxy::kNtk ||
        p == Proxy::kNtkFast || p == Proxy::kNinaswot || p == Proxy::kZico || p == Proxy::kSwap ||
        p == Proxy::kSwapReg || p == Proxy::kMeco)
      return true;
  return false;
}

ScoreInputs load_inputs(const ScoreSettings& s) {
  ScoreInputs in;
  const std::vector<Proxy> raw = raw_proxies(s.proxies);
  const bool zico = std::find(raw.begin(), raw.end(), Proxy::kZico) != raw.end();
  if (!needs_images(raw)) {
    in.identity = "none";
    return in;
  }
  if (s.gaussian_input) {
    require_labels_for_zico(raw, true);
    const auto g = net::gaussian_images(s.score_seed, Purpose::kGaussianInput, 0, s.batch);
    in.images.assign(g.begin(), g.end());
    in.identity = "gaussian";
    return in;
  }
  if (s.data_path.empty()) {
    if (zico) throw std::invalid_argument("zico needs labelled images: give --data FILE|DIR (CIFAR binary format)");
    throw std::invalid_argument(
        "these proxies need input images: give --data FILE|DIR (CIFAR binary format) or "
        "--gaussian-input");
  }
  const net::CifarReader reader(s.data_path, s.dataset);
  in.images = reader.normalized(s.image_offset, s.batch, &in.labels);
  in.identity = reader.identity(s.image_offset, s.batch);
  return in;
}

void check_zico_labels(const std::vector<int>& labels, const ScoreSettings& s) {
  if (labels.size() != static_cast<size_t>(s.batch))
    throw std::invalid_argument("zico needs the images' labels (real data: --data)");
  for (size_t i = 0; i < labels.size() / 2 * 2; ++i)  // an odd last image is unused
    if (labels[i] < 0 || labels[i] >= s.num_classes)
      throw std::invalid_argument("zico: image " + std::to_string(i) + "'s label " + std::to_string(labels[i]) +
                                  " is not below --num-classes " + std::to_string(s.num_classes));
}

std::string settings_key(Proxy p, const ScoreSettings& s, const std::string& input_identity) {
  // NB201's keys carry no space (they predate the second one: existing caches stay valid).
  if (s.space != net::Space::kNb201) {
    ScoreSettings nb = s;
    nb.space = net::Space::kNb201;
    return settings_key(p, nb, input_identity) + ";space=" + net::space_name(s.space);
  }
  // Counts and FP64-always passes: the run's precision does not change them.
  if (p == Proxy::kParams || p == Proxy::kFlops || p == Proxy::kSynflow || p == Proxy::kLogsynflow)
    return std::string(proxy_name(p)) + ";classes=" + std::to_string(s.num_classes);
  std::string k = std::string(proxy_name(p)) + ";precision=" + precision_name(s.precision) +
                  (s.tf32 ? "+tf32" : "");
  switch (p) {
    case Proxy::kNaswot:
    case Proxy::kNaswotOnce:
      k += ";batch=" + std::to_string(s.batch) + ";input=" + input_identity;
      break;
    case Proxy::kNi:
    case Proxy::kNinaswot:
      k += ";batch=" + std::to_string(s.batch) + ";classes=" + std::to_string(s.num_classes) +
           ";input=" + input_identity;
      break;
    case Proxy::kEntropy:
      k += ";entropy_batch=" + std::to_string(s.entropy_batch) +
           ";repeats=" + std::to_string(s.entropy_repeats);
      break;
    case Proxy::kEntropySeed:
      k += ";batch=" + std::to_string(s.batch);
      break;
    case Proxy::kNtk:
    case Proxy::kNtkFast:
      k += ";batch=" + std::to_string(std::min(64, s.batch)) +
           ";classes=" + std::to_string(s.num_classes) + ";input=" + input_identity;
      break;
    case Proxy::kParams:
    case Proxy::kFlops:
    case Proxy::kSynflow:
    case Proxy::kLogsynflow:
      break;  // above
    case Proxy::kZico:  // the halves of the batch as its two mini-batches, their labels
      k += ";batch=" + std::to_string(s.batch) + ";classes=" + std::to_string(s.num_classes) +
           ";input=" + input_identity;
      break;
    case Proxy::kSwap:
    case Proxy::kSwapReg:  // the first min(16, batch) of the input images
      k += ";samples=" + std::to_string(swap_samples(s.batch)) + ";repeats=" + std::to_string(s.swap_repeats) +
           ";input=" + input_identity;
      if (p == Proxy::kSwapReg) {
        const SwapRegParameters r = swap_reg_mu_sigma(s);
        char buf[96];
        std::snprintf(buf, sizeof buf, ";classes=%d;mu=%.17g;sigma=%.17g", s.num_classes, r.mu, r.sigma);
        k += buf;
      }
      break;
    case Proxy::kMeco:  // the first input image
      k += ";input=" + input_identity;
      break;
    case Proxy::kAzExpressivity:
    case Proxy::kAzProgressivity:
    case Proxy::kAzTrainability:  // min(64, batch) Gaussian images
      k += ";batch=" + std::to_string(az_images(s.batch));
      break;
    case Proxy::kCount: break;
  }
  return k;
}

}  // namespace hn::engine

namespace hn::engine {

namespace {
const RunPreset kPresets[] = {
    {"full", "naswot,naswot_once,ni,entropy,entropy_seed,ntk_fast,ntk", 128, 32, 4, 0, true, 1000},
    {"hybrid", "naswot,ni,ntk,entropy", 128, 32, 4, 0, true, 1000},
    {"seed", "naswot,ni,ntk,entropy_seed", 128, 32, 4, 1, false, 1000},
    {"cpu-quick", "naswot,ni,ntk_fast,entropy", 32, 16, 2, 0, true, 500},
    {"hybrid-logrank", "naswot,ni,ntk,entropy", 128, 32, 4, 0, true, 1000, "logrank"},
    {"az-nas", "az_expressivity,az_progressivity,az_trainability,flops", 64, 32, 4, 0, true, 1000, "logrank"},
    {"az-meco-zico", "az_expressivity,az_progressivity,az_trainability,flops,meco,zico", 128, 32, 4, 0, true, 1000,
     "logrank"},
    {"synflow-rank", "synflow", 32, 16, 2, 0, true, 1000, "rank"},
};
}

const RunPreset& run_preset(const std::string& name) {
  for (const auto& p : kPresets)
    if (name == p.name) return p;
  std::string known;
  for (const auto& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  throw std::invalid_argument("unknown preset '" + name + "' (known: auto, " + known + ")");
}

std::vector<std::string> run_preset_names() {
  std::vector<std::string> n;
  for (const auto& p : kPresets) n.push_back(p.name);
  return n;
}

}  // namespace hn::engine
