#include "engine/zstats.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace hn::engine {

ZStat compute_zstat(Proxy p, const std::vector<double>& values, const std::string& settings,
                    uint64_t score_seed) {
  double sum = 0.0;
  int n = 0;
  for (double v : values)
    if (std::isfinite(v)) {
      sum += v;
      ++n;
    }
  if (n < 2)
    throw std::runtime_error(std::string("z statistics of ") + proxy_name(p) + ": only " +
                             std::to_string(n) + " finite values in the reference sample (need 2)");
  const double mean = sum / n;
  double sq = 0.0;
  for (double v : values)
    if (std::isfinite(v)) sq += (v - mean) * (v - mean);
  const double sd = std::sqrt(sq / n);
  if (!(sd > 0.0))
    throw std::runtime_error(std::string("z statistics of ") + proxy_name(p) +
                             ": the reference sample's values are all equal (std 0)");
  return ZStat{mean, sd, n, settings, score_seed};
}

ProxyValue ninaswot_value(const ProxyValue& naswot, const ProxyValue& ni, const ZStats& stats) {
  ProxyValue out;
  out.seconds = naswot.seconds + ni.seconds;
  if (!naswot.flag.empty() || !ni.flag.empty()) {
    out.flag = !naswot.flag.empty() ? naswot.flag : ni.flag;
    out.value = worst_value(Proxy::kNinaswot);
    return out;
  }
  out.value = (2.0 * zscore(naswot.value, stats.at(Proxy::kNaswot)) +
               zscore(ni.value, stats.at(Proxy::kNi))) /
              std::sqrt(5.0);
  return sanitize(Proxy::kNinaswot, out);
}

void write_stats_file(const std::string& path, const ZStats& stats) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [p, s] : stats)
    j[proxy_name(p)] = {{"mean", s.mean}, {"std", s.std}, {"n", s.n}, {"settings", s.settings},
                        {"score_seed", s.score_seed}, {"transform", s.transform}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw std::runtime_error("cannot write statistics file '" + path + "'");
    out << j.dump(1) << "\n";
    if (!out) throw std::runtime_error("cannot write statistics file '" + path + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot write statistics file '" + path + "'");
}

ZStats read_stats_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open statistics file '" + path + "'");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw std::runtime_error("statistics file '" + path + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error("statistics file '" + path + "' is not a JSON object");
  ZStats out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Proxy p = parse_proxy(it.key());
    const auto& v = it.value();
    try {
      ZStat s{v.at("mean").get<double>(), v.at("std").get<double>(), v.at("n").get<int>(),
              v.at("settings").get<std::string>(), v.at("score_seed").get<uint64_t>(),
              v.value("transform", std::string("identity"))};
      if (s.transform != "identity" && s.transform != "log")
        throw std::runtime_error("transform must be identity or log");
      if (!std::isfinite(s.mean) || !(s.std > 0.0) || !std::isfinite(s.std))
        throw std::runtime_error("mean must be finite and std positive");
      out[p] = s;
    } catch (const std::exception& e) {
      throw std::runtime_error("statistics file '" + path + "', entry " + it.key() + ": " + e.what());
    }
  }
  return out;
}

const ZStat& require_stat(const ZStats& stats, Proxy p, const std::string& settings,
                          uint64_t score_seed, const std::string& transform) {
  const auto it = stats.find(p);
  if (it == stats.end())
    throw std::runtime_error(std::string("the statistics have no entry for ") + proxy_name(p));
  if (it->second.settings != settings)
    throw std::runtime_error(std::string("the statistics of ") + proxy_name(p) +
                             " were made with other settings (" + it->second.settings +
                             ") than this run's (" + settings + ")");
  if (it->second.score_seed != score_seed)
    throw std::runtime_error(std::string("the statistics of ") + proxy_name(p) +
                             " were made with score seed " + std::to_string(it->second.score_seed) +
                             ", this run uses " + std::to_string(score_seed));
  if (it->second.transform != transform)
    throw std::runtime_error(std::string("the statistics of ") + proxy_name(p) + " are of the " +
                             it->second.transform + " of the values; this fitness needs the " + transform);
  return it->second;
}

}  // namespace hn::engine
