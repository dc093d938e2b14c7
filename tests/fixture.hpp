// Test-only loader for ../shared/data/fixture: float32 blobs indexed by JSON files of
// {name, shape, offset, numel}, and the mapping of xautodl parameter names to our slots.
#pragma once
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/plan.hpp"
#include "net/weight_bank.hpp"
#include "test_util.hpp"

namespace hn::test {

using TensorMap = std::map<std::string, std::vector<float>>;

inline TensorMap load_fixture_blob(const std::string& stem) {
  std::ifstream idx(data_path("fixture/" + stem + ".json"));
  if (!idx) throw std::runtime_error("missing fixture index " + stem);
  const auto j = nlohmann::json::parse(idx);
  std::ifstream blob(data_path("fixture/" + stem + ".f32"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(blob)), std::istreambuf_iterator<char>());
  TensorMap out;
  for (const auto& t : j) {
    const size_t off = t["offset"].get<size_t>(), n = t["numel"].get<size_t>();
    if ((off + n) * 4 > bytes.size()) throw std::runtime_error("fixture blob too short");
    std::vector<float> v(n);
    std::memcpy(v.data(), bytes.data() + off * 4, n * 4);
    out[t["name"].get<std::string>()] = std::move(v);
  }
  return out;
}

inline nlohmann::json fixture_scores() {
  std::ifstream in(data_path("fixture/reference_scores.json"));
  return nlohmann::json::parse(in);
}

// Slots of an architecture filled from xautodl-named tensors (conv weights, classifier); BN
// gammas / betas must be at their init values 1 / 0, which the engine assumes.
inline net::WeightBank bank_from_fixture(const TensorMap& t, const net::Genes& g, int num_classes) {
  net::WeightBank bank = net::WeightBank::zeros(num_classes);
  const std::regex edge(R"(cells\.(\d+)\.layers\.(\d+)\.op\.1\.weight)");
  const std::regex red(R"(cells\.(5|11)\.(conv_a\.op\.1|conv_b\.op\.1|downsample\.1)\.weight)");
  const std::regex bn(R"(.*\.(weight|bias)$)");
  std::smatch m;
  for (const auto& [name, v] : t) {
    if (name == "stem.0.weight") {
      bank.set_slot(net::kSlotStem, v);
    } else if (name == "classifier.weight") {
      bank.set_slot(net::kSlotLinearWeight, v);
    } else if (name == "classifier.bias") {
      bank.set_slot(net::kSlotLinearBias, v);
    } else if (std::regex_match(name, m, edge)) {
      const int cell = std::stoi(m[1]), e = std::stoi(m[2]);
      const int stage = cell / 6, g_idx = stage * 5 + cell % 6;
      bank.set_slot(net::slot_edge_conv(g_idx, e, g[e]), v);
    } else if (std::regex_match(name, m, red)) {
      const int r = m[1] == "5" ? 0 : 1;
      const std::string part = m[2];
      bank.set_slot(net::slot_reduction(r, part == "conv_a.op.1" ? 0 : part == "conv_b.op.1" ? 1 : 2), v);
    } else if (std::regex_match(name, m, bn) && name.find("running") == std::string::npos) {
      const float expect = m[1] == "weight" ? 1.0f : 0.0f;
      for (float x : v)
        if (x != expect) throw std::runtime_error("fixture BN " + name + " is not at its init value");
    }
  }
  return bank;
}

}  // namespace hn::test
