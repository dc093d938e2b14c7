#include "engine/proxy.hpp"

#include <algorithm>
#include <stdexcept>

namespace hn::engine {

namespace {
constexpr const char* kNames[kNumProxies] = {"naswot", "naswot_once", "ni",     "ninaswot", "entropy",
                                             "entropy_seed", "ntk", "ntk_fast", "params", "flops",
                                             "synflow", "logsynflow", "zico", "swap",
                                             "swap_reg", "meco", "az_expressivity", "az_progressivity",
                                             "az_trainability"};
}

const char* proxy_name(Proxy p) { return kNames[static_cast<int>(p)]; }

Proxy parse_proxy(const std::string& name) {
  for (int i = 0; i < kNumProxies; ++i)
    if (name == kNames[i]) return static_cast<Proxy>(i);
  std::string known;
  for (int i = 0; i < kNumProxies; ++i) known += std::string(i ? ", " : "") + kNames[i];
  throw std::invalid_argument("unknown proxy '" + name + "' (known: " + known + ")");
}

std::vector<Proxy> parse_proxy_list(const std::string& list) {
  std::vector<Proxy> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string name = list.substr(start, end - start);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (name.empty()) throw std::invalid_argument("empty proxy name in list '" + list + "'");
    const Proxy p = parse_proxy(name);
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    start = end + 1;
  }
  return out;
}

std::string proxy_list_string(const std::vector<Proxy>& ps) {
  std::string s;
  for (size_t i = 0; i < ps.size(); ++i) s += std::string(i ? "," : "") + proxy_name(ps[i]);
  return s;
}

ProxyValue sanitize(Proxy p, ProxyValue v) {
  if (!v.flag.empty()) {
    v.value = worst_value(p);
  } else if (!std::isfinite(v.value)) {
    v.value = worst_value(p);
    v.flag = kFlagNonfinite;
  } else if (v.value == 0.0) {
    v.value = 0.0;  // no -0.0 in output
  }
  return v;
}

}  // namespace hn::engine
