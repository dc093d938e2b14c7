// swap, swap_reg, meco and the AZ-NAS components (docs/proxies.md, engine/feature_proxies.hpp):
// their building blocks against closed forms, the plan's MeCo hook list, the scorer's behaviour
// (population-independence, precision, degenerate inputs), parity with the PyTorch reference written
// from the definitions (tests/reference/feature_reference.py, FP64) and agreement with the authors'
// code on the same weights (tests/reference/feature_official_values.json).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <limits>
#include <nlohmann/json.hpp>

#include "engine/feature_proxies.hpp"
#include "engine/scorer.hpp"
#include "net/plan.hpp"
#include "net/sampling.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;

namespace {
const std::vector<std::string>& kArchs = test::kCoverageArchs;
const char* kIdentityCell = "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|";

bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

const std::vector<Proxy> kAll = {Proxy::kSwap, Proxy::kSwapReg, Proxy::kMeco, Proxy::kAzExpressivity,
                                 Proxy::kAzProgressivity, Proxy::kAzTrainability};

engine::ScoreSettings feature_settings(int batch = 8) {
  engine::ScoreSettings s;
  s.proxies = kAll;
  s.batch = batch;
  s.swap_repeats = 2;
  s.image_offset = 1000;
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  return s;
}
}  // namespace

// The count of distinct per-unit patterns over the sites fed, with both of its stores (a bitmap
// up to 20 samples, sorted keys beyond).
TEST(FeatureProxies, SwapCountsDistinctSampleWisePatterns) {
  // 3 images x 5 units: unit patterns (bit n = image n active) 0b101, 0b101, 0b000, 0b111, 0b010.
  const float site_a[15] = {1, 2, -1, 3, -4,  // image 0
                            -1, 0, 0, 1, 5,   // image 1 (0 is not active)
                            2, 3, -2, 1, -1};  // image 2
  engine::SwapPatterns p(3);
  p(engine::SiteView<float>{0, site_a, 3, 5});
  EXPECT_EQ(p.count(), 4);
  // A second site adding one new pattern (0b001) and repeating two.
  const float site_b[6] = {1, 1, 1, -1, -1, -1};
  const float site_b_img2[3] = {-1, -1, -1};
  std::vector<float> b(site_b, site_b + 6);
  b.insert(b.end(), site_b_img2, site_b_img2 + 3);  // 3 images x 3 units: 0b001 three times
  p(engine::SiteView<float>{1, b.data(), 3, 3});
  EXPECT_EQ(p.count(), 5);

  // The sorted-key store (more than 20 samples) counts the same patterns.
  const int n = 24;
  std::vector<double> x(static_cast<size_t>(n) * 40);
  for (int img = 0; img < n; ++img)
    for (int u = 0; u < 40; ++u) x[img * 40 + u] = ((u % 7) >> (img % 3)) & 1 ? 1.0 : -1.0;  // 7 patterns at most
  engine::SwapPatterns big(n);
  big(engine::SiteView<double>{0, x.data(), n, 40});
  std::set<std::vector<bool>> distinct;
  for (int u = 0; u < 40; ++u) {
    std::vector<bool> pat;
    for (int img = 0; img < n; ++img) pat.push_back(x[img * 40 + u] > 0);
    distinct.insert(pat);
  }
  EXPECT_EQ(big.count(), static_cast<int64_t>(distinct.size()));
  EXPECT_THROW(engine::SwapPatterns(65), std::invalid_argument);
  // The regulariser: 1 at mu, e^-1 one sqrt(sigma) away (params in thousands).
  EXPECT_DOUBLE_EQ(engine::swap_regulariser(1500000, 1500.0, 4.0), 1.0);
  EXPECT_NEAR(engine::swap_regulariser(1502000, 1500.0, 4.0), std::exp(-1.0), 1e-15);
}

// MeCo's term of one tensor: 2 x 2 correlation [[1, r], [r, 1]] has smallest eigenvalue 1 - |r|; a
// constant channel's NaN entries become 0 (eigenvalue 0); one observation gives 0.
TEST(FeatureProxies, MecoMinimumEigenvalueOfTheChannelCorrelation) {
  const double x[8] = {1, 2, 3, 5,  // channel 0
                       2, 1, 4, 4};  // channel 1
  double m0 = 0, m1 = 0;
  for (int i = 0; i < 4; ++i) m0 += x[i] / 4, m1 += x[4 + i] / 4;
  double sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < 4; ++i) {
    sxy += (x[i] - m0) * (x[4 + i] - m1);
    sxx += (x[i] - m0) * (x[i] - m0);
    syy += (x[4 + i] - m1) * (x[4 + i] - m1);
  }
  const double r = sxy / std::sqrt(sxx * syy);
  EXPECT_NEAR(engine::meco_min_eigenvalue(x, 2, 4), 1.0 - std::abs(r), 1e-14);
  const double same[6] = {1, 2, 3, 2, 4, 6};  // perfectly correlated
  EXPECT_NEAR(engine::meco_min_eigenvalue(same, 2, 3), 0.0, 1e-14);
  const double constant[6] = {1, 2, 3, 7, 7, 7};
  EXPECT_NEAR(engine::meco_min_eigenvalue(constant, 2, 3), 0.0, 1e-15);
  const float one[2] = {1.0f, 2.0f};
  EXPECT_EQ(engine::meco_min_eigenvalue(one, 2, 1), 0.0);
}

// The plan lists the tensors MeCo's network returns with their module counts: the stem's conv
// once and BN three times, per conv edge its ReLU once, conv once and BN three times, a skip edge
// its source node once, a pool edge twice, the cell once (the fifth of a stack twice), the head's
// BN once and ReLU twice; dead edges count too.
TEST(FeatureProxies, MecoTapsFollowTheModulesOfItsNetwork) {
  auto total = [](const net::Plan& p) {
    int n = 0;
    for (const auto& t : p.meco_taps) n += t.modules;
    return n;
  };
  // Fixed part: stem 1 + 3, reductions 2 x (1+1+3 + 1+1+3 + 1 + 2 + 1), stacks' fifth cells 3,
  // head 1 + 2 = 4 + 28 + 3 + 3 = 38; per cell 1 (its output).
  const int fixed = 38 + 15;
  // One 3x3 conv per node from node 0 and skips elsewhere: per cell 3 conv edges x 5 + 3 skips x 1.
  const net::Plan a = net::build_plan(
      net::parse_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|skip_connect~2|"), 10);
  EXPECT_EQ(total(a), fixed + 15 * (3 * 5 + 3));
  // Pools and a dead edge: node 2 (pool from 0, conv1x1 from 1) does not reach node 3.
  const net::Plan b = net::build_plan(
      net::parse_arch("|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"), 10);
  EXPECT_EQ(total(b), fixed + 15 * (2 + 2 + 5 + 1 + 2));
  // Every tap is a 4-D map of more than one position.
  for (const auto& t : b.meco_taps) EXPECT_GT(b.values[t.value].hw(), 1);
}

// A member's values do not depend on the population around it; FP32 is a rounding regime of the
// FP64 values; a cell that is the identity map makes az_trainability the worst value.
TEST(FeatureProxies, ScorerIsPopulationIndependentAndFlagsIdentityCells) {
  engine::ScoreSettings s = feature_settings();
  std::vector<net::Genes> genes;
  for (size_t i = 0; i + 1 < kArchs.size(); ++i) genes.push_back(net::parse_arch(kArchs[i]));
  genes.push_back(net::parse_arch(kIdentityCell));
  const auto together = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(genes);
  engine::ScoreSettings one = s;
  one.population_batch = 1;
  const auto alone = engine::make_cpu_scorer(one, engine::load_inputs(one))->score_all(genes);
  engine::ScoreSettings d = s;
  d.precision = engine::Precision::kFp64;
  const auto f64 = engine::make_cpu_scorer(d, engine::load_inputs(d))->score_all(genes);
  int compared = 0;
  for (size_t i = 0; i < genes.size(); ++i) {
    SCOPED_TRACE(net::arch_string(genes[i]));
    for (Proxy p : kAll) {
      ASSERT_TRUE(together[i][p] && alone[i][p] && f64[i][p]);
      EXPECT_EQ(together[i][p]->value, alone[i][p]->value) << engine::proxy_name(p);
      EXPECT_EQ(together[i][p]->flag, alone[i][p]->flag);
      if (!together[i][p]->flag.empty()) continue;
      const double a = together[i][p]->value, b = f64[i][p]->value;
      // swap counts may differ where a pre-activation sits at 0 within rounding.
      const double tol = p == Proxy::kSwap || p == Proxy::kSwapReg ? 1e-3 : p == Proxy::kMeco ? 1e-3 : 1e-4;
      EXPECT_LE(std::abs(a - b), tol * std::max(1.0, std::abs(b))) << engine::proxy_name(p);
      ++compared;
    }
  }
  EXPECT_GT(compared, 40);
  const auto& id = together.back();
  EXPECT_EQ(id[Proxy::kAzTrainability]->flag, engine::kFlagNonfinite);  // the code's -inf
  EXPECT_EQ(id[Proxy::kAzTrainability]->value, -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(id[Proxy::kAzExpressivity]->flag.empty());
  EXPECT_TRUE(std::isfinite(id[Proxy::kAzExpressivity]->value));
  EXPECT_GE(id[Proxy::kSwap]->value, 1.0);
  // swap_reg is swap times the size factor: 1 for the largest network (kArchs[3], every edge a 3x3
  // conv), below 1 for every smaller one. (At 8 samples swap saturates at 2^8 patterns.)
  for (size_t i = 0; i < genes.size(); ++i) {
    if (!together[i][Proxy::kSwap]->flag.empty()) continue;
    EXPECT_LE(together[i][Proxy::kSwap]->value, 256.0);
    if (i == 3)
      EXPECT_EQ(together[i][Proxy::kSwapReg]->value, together[i][Proxy::kSwap]->value);
    else
      EXPECT_LT(together[i][Proxy::kSwapReg]->value, together[i][Proxy::kSwap]->value);
  }
}

// The inputs the proxies need, and their settings in the cache key.
TEST(FeatureProxies, InputsAndSettingsKeys) {
  engine::ScoreSettings s = feature_settings();
  s.data_path.clear();
  s.proxies = {Proxy::kMeco};
  EXPECT_THROW(engine::load_inputs(s), std::invalid_argument);  // needs images
  s.proxies = {Proxy::kAzExpressivity};
  EXPECT_NO_THROW(engine::load_inputs(s));  // Gaussian input of its own
  s.swap_repeats = 0;
  EXPECT_THROW(s.validate(), std::invalid_argument);
  s.swap_repeats = 4;
  s.swap_mu = -1;
  EXPECT_THROW(s.validate(), std::invalid_argument);
  s.swap_mu = 2e12;  // mu^2 (the default sigma) and (params - mu)^2 must stay finite
  EXPECT_THROW(s.validate(), std::invalid_argument);
  s.swap_mu = 0;
  const auto d = engine::swap_reg_mu_sigma(s);
  EXPECT_NEAR(d.mu, 1531.546, 1e-9);
  EXPECT_NEAR(d.sigma, d.mu * d.mu, 1e-6);
  engine::ScoreSettings t = s;
  t.swap_mu = 800;
  EXPECT_NE(engine::settings_key(Proxy::kSwapReg, s, "x"), engine::settings_key(Proxy::kSwapReg, t, "x"));
  EXPECT_EQ(engine::settings_key(Proxy::kSwap, s, "x"), engine::settings_key(Proxy::kSwap, t, "x"));
  t.swap_repeats = 8;
  EXPECT_NE(engine::settings_key(Proxy::kSwap, s, "x"), engine::settings_key(Proxy::kSwap, t, "x"));
  t.batch = 16;
  EXPECT_NE(engine::settings_key(Proxy::kAzTrainability, s, "x"), engine::settings_key(Proxy::kAzTrainability, t, "x"));
}

// The PyTorch reference written from docs/proxies.md (tests/reference/feature_reference.py, its
// own MeCo hook walk over zero-cost-nas's module layout), FP64: SPEC.md 7's 1e-9 (swap counts exact)
// on the coverage architectures and an identity cell.
TEST(FeatureReferenceParity, AllSixAgreeInFp64) {
  if (!have_torch()) GTEST_SKIP() << "Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)";
  engine::ScoreSettings s = feature_settings(16);
  s.precision = engine::Precision::kFp64;
  s.score_seed = 5;
  std::vector<std::string> archs = kArchs;
  archs.push_back(kIdentityCell);
  test::TempDir dir;
  std::string cmd = "/usr/bin/python3 " + std::string(HYBRIDNAS_SOURCE_DIR) +
                    "/tests/reference/feature_reference.py --threads 1 --score-seed 5 --data " + s.data_path +
                    " --image-offset 1000 --batch 16 --swap-repeats 2 --out " + dir.path() + " --archs";
  for (const auto& a : archs) cmd += " '" + a + "'";
  cmd += " > " + dir.path() + "/log.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::slurp(dir.path() + "/log.txt");
  std::ifstream in(dir.path() + "/feature_reference.json");
  const auto ref = nlohmann::json::parse(in);
  std::vector<net::Genes> genes;
  for (const auto& a : archs) genes.push_back(net::parse_arch(a));
  const auto got = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(genes);
  int degenerate = 0, compared = 0;
  for (size_t k = 0; k < archs.size(); ++k) {
    SCOPED_TRACE(archs[k]);
    const auto& r = ref["archs"][k];
    ASSERT_EQ(r["degenerate"].get<bool>(), net::is_degenerate(genes[k]));
    if (net::is_degenerate(genes[k])) {
      ++degenerate;
      continue;
    }
    for (Proxy p : kAll) {
      const auto& w = r[engine::proxy_name(p)];
      if (w.is_string()) {
        EXPECT_EQ(got[k][p]->value, -std::numeric_limits<double>::infinity()) << engine::proxy_name(p);
        EXPECT_EQ(got[k][p]->flag, r["flags"][engine::proxy_name(p)].get<std::string>());
        continue;
      }
      const double want = w.get<double>();
      const double tol = p == Proxy::kSwap ? 0.0 : 1e-9 * std::max(1.0, std::abs(want));
      EXPECT_LE(std::abs(got[k][p]->value - want), tol)
          << engine::proxy_name(p) << ": engine " << got[k][p]->value << ", reference " << want;
      ++compared;
    }
  }
  EXPECT_EQ(degenerate, 1);
  EXPECT_GE(compared, 50);
}

// The authors' own code (SWAP's SWAP class, MeCo's get_score on zero-cost-nas's network, AZ-NAS's
// compute_nas_score), run on the CPU on the engine's weights, inputs and cotangents (how: in the
// file): the engine's FP64 values agree to 1e-9.
TEST(FeatureOfficial, EngineAgreesWithTheAuthorsCode) {
  std::ifstream in(std::string(HYBRIDNAS_SOURCE_DIR) + "/tests/reference/feature_official_values.json");
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  const auto& st = j["settings"];
  engine::ScoreSettings s;
  s.proxies = kAll;
  s.batch = st["batch"].get<int>();
  s.swap_repeats = st["swap_repeats"].get<int>();
  s.num_classes = st["num_classes"].get<int>();
  s.score_seed = st["score_seed"].get<uint64_t>();
  s.image_offset = st["image_offset"].get<int64_t>();
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  s.precision = engine::Precision::kFp64;
  ASSERT_NEAR(engine::swap_reg_mu_sigma(s).mu, st["swap_mu"].get<double>(), 1e-9);
  ASSERT_NEAR(engine::swap_reg_mu_sigma(s).sigma, st["swap_sigma"].get<double>(), 1e-3);
  std::vector<net::Genes> genes;
  for (const auto& a : j["archs"]) genes.push_back(net::parse_arch(a["arch"].get<std::string>()));
  ASSERT_GE(genes.size(), 4u);
  const auto got = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(genes);
  for (size_t i = 0; i < genes.size(); ++i) {
    const auto& want = j["archs"][i]["official_fp64"];
    SCOPED_TRACE(j["archs"][i]["arch"].get<std::string>());
    for (Proxy p : kAll) {
      const auto& w = want[engine::proxy_name(p)];
      ASSERT_TRUE(got[i][p]);
      if (w.is_string()) {  // "-inf": the code's value for an identity cell's trainability
        EXPECT_EQ(w.get<std::string>(), "-inf");
        EXPECT_EQ(got[i][p]->value, -std::numeric_limits<double>::infinity()) << engine::proxy_name(p);
        continue;
      }
      const double x = w.get<double>();
      EXPECT_LE(std::abs(got[i][p]->value - x), 1e-9 * std::max(1.0, std::abs(x)))
          << engine::proxy_name(p) << ": engine " << got[i][p]->value << ", authors' code " << x;
    }
  }
}
