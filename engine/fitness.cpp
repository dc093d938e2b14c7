#include "engine/fitness.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/rank_stats.hpp"

namespace hn::engine {

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

bool has(const std::vector<Proxy>& ps, Proxy p) {
  return std::find(ps.begin(), ps.end(), p) != ps.end();
}

bool is_ntk(Proxy p) { return p == Proxy::kNtk || p == Proxy::kNtkFast; }
// t = log: the NTK condition numbers under log_ntk; synflow always (its values span 1e6 to 1e52
// over NB201: raw, one architecture's z would outweigh every other proxy).
bool takes_log(const FitnessSpec& spec, Proxy p) { return (is_ntk(p) && spec.log_ntk) || p == Proxy::kSynflow; }

}  // namespace

std::string fitness_transform(const FitnessSpec& spec, Proxy p) {
  return takes_log(spec, p) ? "log" : "identity";
}

bool fitness_transformed(const FitnessSpec& spec, Proxy p, const ArchScore& s, double* out) {
  const auto& v = s[p];
  if (!v || !v->flag.empty() || !std::isfinite(v->value)) return false;
  double x = v->value;
  if (takes_log(spec, p)) {
    if (!(x > 0)) return false;
    x = std::log(x);
  }
  *out = x;
  return true;
}

const char* fitness_mode_name(FitnessMode m) {
  switch (m) {
    case FitnessMode::kZ: return "z";
    case FitnessMode::kRank: return "rank";
    case FitnessMode::kLogRank: return "logrank";
  }
  return "?";
}

FitnessMode parse_fitness_mode(const std::string& s) {
  if (s == "z") return FitnessMode::kZ;
  if (s == "rank") return FitnessMode::kRank;
  if (s == "logrank") return FitnessMode::kLogRank;
  throw std::invalid_argument("unknown fitness '" + s + "' (known: z, rank, logrank)");
}

ZStats fitness_zstats(const FitnessSpec& spec, const std::vector<ArchScore>& reference) {
  ZStats stats;
  for (Proxy p : spec.proxies) {
    std::vector<double> vals;
    for (const auto& s : reference) {
      if (net::is_degenerate(s.arch)) continue;
      double x;
      vals.push_back(fitness_transformed(spec, p, s, &x) ? x : NAN);
    }
    stats[p] = compute_zstat(p, vals, "", 0);
    stats[p].transform = fitness_transform(spec, p);
  }
  return stats;
}

double z_fitness(const FitnessSpec& spec, const ZStats& stats, const ArchScore& s) {
  const bool ninaswot = has(spec.proxies, Proxy::kNaswot) && has(spec.proxies, Proxy::kNi);
  double f = 0.0;
  double z_naswot = 0.0, z_ni = 0.0;
  for (Proxy p : spec.proxies) {
    double x;
    if (!fitness_transformed(spec, p, s, &x)) return kNegInf;
    const double z = zscore(x, stats.at(p));
    if (ninaswot && p == Proxy::kNaswot) z_naswot = z;
    else if (ninaswot && p == Proxy::kNi) z_ni = z;
    else f += higher_is_better(p) ? z : -z;
  }
  if (ninaswot) f += (2.0 * z_naswot + z_ni) / std::sqrt(5.0);
  return std::isfinite(f) ? f : kNegInf;
}

std::vector<double> archive_fitness(const FitnessSpec& spec, const ZStats& stats,
                                    const std::vector<const ArchScore*>& archive) {
  const size_t m = archive.size();
  std::vector<double> fit(m, 0.0);
  if (spec.mode == FitnessMode::kZ) {
    for (size_t i = 0; i < m; ++i) fit[i] = z_fitness(spec, stats, *archive[i]);
    return fit;
  }
  // Ranks ascending-good: a larger key is better; worst values get -inf keys (last, tied).
  for (Proxy p : spec.proxies) {
    std::vector<double> key(m);
    for (size_t i = 0; i < m; ++i) {
      double x;
      key[i] = fitness_transformed(spec, p, *archive[i], &x) ? (higher_is_better(p) ? x : -x) : kNegInf;
    }
    const std::vector<double> asc = average_ranks(key);  // 1 = worst, m = best
    for (size_t i = 0; i < m; ++i) {
      if (spec.mode == FitnessMode::kRank)
        fit[i] -= static_cast<double>(m) + 1.0 - asc[i];  // best has rank 1
      else
        fit[i] += std::log(asc[i] / static_cast<double>(m));
    }
  }
  return fit;
}

}  // namespace hn::engine
