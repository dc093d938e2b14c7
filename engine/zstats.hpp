// z statistics of proxies over a reference sample (SPEC.md 4) and the ninaswot combination.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/proxy.hpp"

namespace hn::engine {

struct ZStat {
  double mean = 0.0;
  double std = 1.0;  // population std (ddof 0)
  int n = 0;         // finite values used
  std::string settings;
  uint64_t score_seed = 0;
  std::string transform = "identity";  // what the statistics are of: the values, or their log
};
using ZStats = std::map<Proxy, ZStat>;

// Mean and population std over the finite values; throws std::runtime_error when fewer than 2
// are finite or their std is 0.
ZStat compute_zstat(Proxy p, const std::vector<double>& values, const std::string& settings,
                    uint64_t score_seed);
inline double zscore(double v, const ZStat& s) { return (v - s.mean) / s.std; }

// ninaswot = (2 z(naswot) + z(ni)) / sqrt(5); worst (with the input's flag) when either is.
ProxyValue ninaswot_value(const ProxyValue& naswot, const ProxyValue& ni, const ZStats& stats);

// Statistics files: JSON {proxy: {mean, std, n, settings, score_seed, transform}} (transform
// "identity" or "log"; absent means identity).
void write_stats_file(const std::string& path, const ZStats& stats);
// Throws std::runtime_error on a missing, malformed or incomplete file.
ZStats read_stats_file(const std::string& path);
// The same for a file's text (`name` names it in errors): every entry a known proxy with a finite
// mean, a positive finite std, n >= 2, a settings string, an unsigned score seed and a known
// transform.
ZStats parse_stats(std::string_view text, const std::string& name);
// Throws std::runtime_error when `stats` lacks p or was made with other settings, score seed or
// transform.
const ZStat& require_stat(const ZStats& stats, Proxy p, const std::string& settings,
                          uint64_t score_seed, const std::string& transform = "identity");

}  // namespace hn::engine
