// Network plans (SPEC.md 1): N_A for every conv count, parameter counts, hooked modules.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "net/plan.hpp"
#include "test_util.hpp"

using namespace hn::net;

TEST(Plan, WeightedUnitsMatchTheFormulaForEveryCell) {
  std::array<int, 7> seen{};
  for (int c = 0; c < kNumArchs; ++c) {
    const Genes g = genes_from_code(c);
    if (is_degenerate(g)) continue;
    const Plan p = build_plan(g, 10);
    const int n = conv_edge_count(g);
    ++seen[n];
    ASSERT_EQ(p.weighted_units(), expected_weighted_units(n)) << arch_string(g);
    ASSERT_EQ(p.unweighted_units(), 143360LL * n + 40960) << arch_string(g);
    // Every nn.ReLU module is one conv edge, one reduction half or the head.
    ASSERT_EQ(p.relu_modules.size(), size_t(15 * n + 5));
  }
  for (int n = 0; n <= 6; ++n) EXPECT_GT(seen[n], 0) << "no cell with " << n << " conv edges";
}

TEST(Plan, DegenerateCellsHaveNoPlan) {
  EXPECT_THROW(build_plan(parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), 10),
               std::invalid_argument);
}

TEST(Plan, ParameterCountMatchesTheOfficialNetwork) {
  // reference_scores.json: xautodl's TinyNetwork for this cell has 587,386 parameters.
  const Genes g = parse_arch("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|");
  const Plan p = build_plan(g, 10);
  EXPECT_EQ(p.param_count, 587386);
  EXPECT_EQ(p.weighted_units(), 937984);  // the fixture K's diagonal
  EXPECT_GT(p.flops, 0);
}

TEST(Plan, HookedModulesAreTheOfficialHookSet) {
  std::ifstream in(hn::test::data_path("fixture/reference_scores.json"));
  const auto ref = nlohmann::json::parse(in);
  const Plan p = build_plan(parse_arch(ref["settings"]["arch"].get<std::string>()), 10);
  // The official code hooks each nn.ReLU and, for conv edges and reduction halves, its parent.
  std::vector<std::string> ours;
  for (const auto& m : p.relu_modules) {
    if (m.name != "lastact.1") ours.push_back(m.name.substr(0, m.name.size() - 5));  // parent
    ours.push_back(m.name);
  }
  EXPECT_EQ(ours, ref["modules_hooked_by_naswot"].get<std::vector<std::string>>());
  int hooked = 0;
  for (const auto& s : p.sites) hooked += s.hooked_modules;
  EXPECT_EQ(hooked, 99);
}

TEST(Plan, ConvFlopsOfTheAllConvCell) {
  const Plan p = build_plan(parse_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"), 10);
  // Per image: 6 convs x 5 cells per stage, 2 * C^2 * 9 * HW each, plus stem, reductions, head.
  int64_t expect = 0;
  for (int st = 0; st < 3; ++st) {
    const int64_t c = 16 << st, hw = (32 >> st) * (32 >> st);
    expect += 30 * 2 * c * c * 9 * hw;
  }
  expect += 2LL * 16 * 27 * 1024;                                               // stem
  expect += 2LL * (32 * 16 * 9 * 256 + 32 * 32 * 9 * 256 + 32 * 16 * 256);      // reduction 1
  expect += 2LL * (64 * 32 * 9 * 64 + 64 * 64 * 9 * 64 + 64 * 32 * 64);         // reduction 2
  expect += 2LL * 10 * 64;                                                      // linear
  EXPECT_EQ(p.flops, expect);
}
