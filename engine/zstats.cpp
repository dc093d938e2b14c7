#include "engine/zstats.hpp"

#include "engine/files.hpp"
#include "net/arch_input.hpp"

#include <cmath>
#include <limits>
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
  try {
    write_file_atomic(path, j.dump(1) + "\n");
  } catch (const OutputFileError& e) {
    throw std::runtime_error(std::string("statistics file: ") + e.what());
  }
}

ZStats read_stats_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open statistics file '" + path + "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_stats(text, "statistics file '" + path + "'");
}

ZStats parse_stats(std::string_view text, const std::string& name) {
  nlohmann::json j;
  try {
    j = parse_json_strict(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(name + ": " + e.what());
  }
  if (!j.is_object() || j.empty())
    throw std::runtime_error(name + " is not a JSON object of statistics per proxy");
  ZStats out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string where = name + ", entry '" + net::printable(it.key(), 40) + "': ";
    Proxy p;
    try {
      p = parse_proxy(it.key());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + e.what());
    }
    const auto& v = it.value();
    auto need = [&](const char* key, bool ok, const char* what) {
      if (!v.is_object() || !v.contains(key) || !ok)
        throw std::runtime_error(where + key + " must be " + what);
    };
    need("mean", v.is_object() && v.contains("mean") && v["mean"].is_number(), "a number");
    need("std", v.is_object() && v.contains("std") && v["std"].is_number(), "a number");
    need("n", v.is_object() && v.contains("n") && v["n"].is_number_integer(), "an integer");
    need("settings", v.is_object() && v.contains("settings") && v["settings"].is_string(), "a string");
    need("score_seed", v.is_object() && v.contains("score_seed") && v["score_seed"].is_number_unsigned(),
         "an unsigned integer");
    ZStat s{v["mean"].get<double>(), v["std"].get<double>(), 0, v["settings"].get<std::string>(),
            v["score_seed"].get<uint64_t>(), "identity"};
    const auto n = v["n"].get<int64_t>();
    if (n < 2 || n > 1000000000) throw std::runtime_error(where + "n must be from 2 to 1000000000");
    s.n = static_cast<int>(n);
    if (v.contains("transform")) {
      if (!v["transform"].is_string()) throw std::runtime_error(where + "transform must be a string");
      s.transform = v["transform"].get<std::string>();
    }
    if (s.transform != "identity" && s.transform != "log")
      throw std::runtime_error(where + "transform must be identity or log");
    // A std below the smallest normal double would turn every z into an infinity.
    if (!std::isfinite(s.mean) || !(s.std >= std::numeric_limits<double>::min()) || !std::isfinite(s.std))
      throw std::runtime_error(where + "mean must be finite and std a positive, finite, normal number");
    out[p] = s;
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
